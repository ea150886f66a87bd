//! Genesys Cloud connectivity: OAuth client credentials ([`auth`]), the
//! transcript stream in both dialects ([`stream`], [`tutorial`]) with
//! catch-up on conversations it did not see start ([`catchup`]), and the
//! push client with its retry policy ([`push`]), and the Genesys Knowledge
//! API that a knowledge base can be synced from ([`knowledge`]). Wire types live in
//! [`protocol`]; the retry and backoff rules are pure ([`policy`]).
//!
//! Secrets never reach logs or the screen: [`Secret`] prints as `***`, and
//! every error message passes through [`redact`], which blanks tokens in URLs.

pub mod auth;
pub mod catchup;
pub mod cumulative;
pub mod knowledge;
pub mod policy;
pub mod protocol;
pub mod push;
pub mod rest;
pub mod sinks;
pub mod socket;
pub mod stream;
pub mod tutorial;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A credential or token: usable, never printable.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Blanks the values of token-bearing query parameters in any text.
pub fn redact(text: &str) -> String {
    const KEYS: [&str; 3] = ["access_token=", "client_secret=", "token="];
    let mut out = text.to_string();
    for key in KEYS {
        let mut from = 0;
        while let Some(pos) = out[from..].find(key) {
            let start = from + pos + key.len();
            let end = out[start..].find(['&', ' ', '"', '\'', ')', '\n']).map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    out
}

/// An id from the network as one percent-encoded URL path segment (`/`,
/// `?`, `#`, `%` and spaces included), so it can never change which
/// resource a request goes to. `None` for ids no path can carry: empty,
/// `.` and `..` (URL parsers resolve those, even percent-encoded).
pub fn path_segment(id: &str) -> Option<String> {
    if matches!(id, "" | "." | "..") {
        return None;
    }
    // The `url` crate's own segment encoder: push onto an empty path and
    // take the result back out.
    let mut u = url::Url::parse("http://x/").ok()?;
    u.path_segments_mut().ok()?.push(id);
    u.path().strip_prefix('/').map(str::to_string)
}

/// Which transcript protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The real Genesys Cloud Notifications API.
    #[default]
    Notifications,
    /// The original design document's contract.
    Tutorial,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notifications => "notifications",
            Self::Tutorial => "tutorial",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "notifications" => Ok(Self::Notifications),
            "tutorial" => Ok(Self::Tutorial),
            other => Err(format!("unknown dialect `{other}` (expected notifications or tutorial)")),
        }
    }
}

/// Where the org's API and login service are, and the client credentials.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub dialect: Dialect,
    /// e.g. `https://api.mypurecloud.com`, or the simulator's base URL.
    pub api_base: String,
    /// e.g. `https://login.mypurecloud.com`; the tutorial dialect uses `api_base`.
    pub login_base: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        // The first retry comes quickly (a dropped socket loses what is sent
        // while it is down); later ones back off to half a minute.
        Self { initial: Duration::from_millis(100), max: Duration::from_secs(30) }
    }
}

/// Network failures, as data the engine and console can show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("cannot reach {what}: {message}")]
    Connect { what: String, message: String },
    #[error("timed out waiting for {what}")]
    Timeout { what: String },
    #[error("token request rejected ({status}): {message}")]
    Auth { status: u16, message: String },
    #[error("unauthorized (401) even with a fresh token: {message}")]
    Unauthorized { message: String },
    #[error("forbidden (403): {message}")]
    Forbidden { message: String },
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("unexpected response: {message}")]
    Protocol { message: String },
}

impl NetError {
    /// Errors that retrying cannot fix (wrong credentials, missing permission).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Auth { status: 400..=403, .. } | Self::Forbidden { .. } | Self::Unauthorized { .. }
        )
    }
}

impl From<reqwest::Error> for NetError {
    fn from(e: reqwest::Error) -> Self {
        let e = e.without_url();
        let message = redact(&error_chain(&e));
        if e.is_timeout() {
            Self::Timeout { what: "the server".into() }
        } else {
            Self::Connect { what: "the server".into(), message }
        }
    }
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn ids_become_single_encoded_path_segments() {
        let seg = path_segment("a/b?c#d%e f").unwrap();
        assert_eq!(seg, "a%2Fb%3Fc%23d%25e%20f");
        let u = url::Url::parse(&format!("http://h/x/{seg}/y")).unwrap();
        assert_eq!(u.path_segments().unwrap().count(), 3);
        assert_eq!(u.query(), None);
        assert_eq!(u.fragment(), None);
        assert_eq!(path_segment("plain-id_1.2"), Some("plain-id_1.2".into()));
        for bad in ["", ".", ".."] {
            assert_eq!(path_segment(bad), None);
        }
    }

    #[test]
    fn tokens_in_urls_are_redacted() {
        let url = "ws://h/api/v2/interactions/events/websocket?access_token=abc.def&x=1";
        assert_eq!(redact(url), "ws://h/api/v2/interactions/events/websocket?access_token=***&x=1");
        assert_eq!(redact("client_secret=s3cr3t"), "client_secret=***");
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
