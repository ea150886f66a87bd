//! Scripted conversations the simulator plays. A script is a JSON file:
//!
//! - `{"id", "queue_id"?, "title"?, "expected_articles"?, "utterances":
//!   [{"at_ms", "channel": "EXTERNAL"|"INTERNAL", "text"}]}`, or
//! - for replaying captured traffic, `{"id", "frames": [{"at_ms", "frame":
//!   <raw server JSON, sent verbatim>}]}`.
//!
//! `expected_articles` is the labelled expectation the end-to-end tests
//! judge suggestions by; the simulator itself ignores it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utterance {
    pub at_ms: u64,
    pub channel: String,
    pub text: String,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrame {
    pub at_ms: u64,
    pub frame: Value,
}

/// A conversation to play.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub id: String,
    #[serde(default)]
    pub queue_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub expected_articles: Vec<String>,
    #[serde(default)]
    pub utterances: Vec<Utterance>,
    #[serde(default)]
    pub frames: Vec<RawFrame>,
}

impl Script {
    /// Length of the script in milliseconds of call time.
    pub fn duration_ms(&self) -> u64 {
        let u = self.utterances.last().map_or(0, |u| u.at_ms);
        let f = self.frames.last().map_or(0, |f| f.at_ms);
        u.max(f)
    }
}

/// A script that cannot be played, with the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScriptError {
    pub path: PathBuf,
    pub message: String,
}

/// Loads one script and checks it is playable.
pub fn load_script(path: &Path) -> Result<Script, ScriptError> {
    let err = |message: String| ScriptError { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let s: Script = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    if s.id.trim().is_empty() {
        return Err(err("script has an empty `id`".into()));
    }
    match (s.utterances.is_empty(), s.frames.is_empty()) {
        (true, true) => return Err(err("script has neither `utterances` nor `frames`".into())),
        (false, false) => return Err(err("script has both `utterances` and `frames`; use one".into())),
        _ => {}
    }
    for (i, u) in s.utterances.iter().enumerate() {
        if !matches!(u.channel.as_str(), "EXTERNAL" | "INTERNAL") {
            return Err(err(format!(
                "utterance {i}: channel must be EXTERNAL or INTERNAL, not `{}`",
                u.channel
            )));
        }
        if u.text.trim().is_empty() {
            return Err(err(format!("utterance {i} has no text")));
        }
    }
    let times: Vec<u64> =
        s.utterances.iter().map(|u| u.at_ms).chain(s.frames.iter().map(|f| f.at_ms)).collect();
    if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
        return Err(err(format!("entry {} goes back in time (at_ms must not decrease)", i + 1)));
    }
    Ok(s)
}

/// Loads every `*.json` script in a directory, sorted by file name, and
/// checks that conversation ids are unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Script>, ScriptError> {
    let err = |message: String| ScriptError { path: dir.to_path_buf(), message };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let scripts = files.iter().map(|f| load_script(f)).collect::<Result<Vec<_>, _>>()?;
    if scripts.is_empty() {
        return Err(err("no conversation scripts (*.json) here".into()));
    }
    for (i, s) in scripts.iter().enumerate() {
        if let Some(j) = scripts[..i].iter().position(|o| o.id == s.id) {
            return Err(ScriptError {
                path: files[i].clone(),
                message: format!("conversation id `{}` is also used by {}", s.id, files[j].display()),
            });
        }
    }
    Ok(scripts)
}
