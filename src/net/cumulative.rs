//! Turns the tutorial dialect's cumulative transcripts into utterances.
//!
//! Each `interaction:transcript` event carries the whole transcript so far.
//! Lines are utterances (`Customer: ...` / `Agent: ...`; an unlabelled line
//! is the customer's); what was appended since the last event becomes new
//! utterances, and a line whose text changed is re-sent under the same
//! utterance id so it replaces the earlier version downstream.

use std::collections::HashMap;

use crate::domain::{Speaker, TranscriptEvent};

/// Per-interaction memory of the transcript seen so far.
#[derive(Debug, Default)]
pub struct Cumulative {
    seen: HashMap<String, Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    text: String,
    lines: Vec<String>,
}

/// Splits a transcript line into speaker and text.
pub fn parse_line(line: &str) -> (Speaker, &str) {
    let line = line.trim();
    if let Some((label, rest)) = line.split_once(':') {
        match label.trim().to_ascii_lowercase().as_str() {
            "agent" | "internal" => return (Speaker::Agent, rest.trim()),
            "customer" | "caller" | "external" => return (Speaker::Customer, rest.trim()),
            _ => {}
        }
    }
    (Speaker::Customer, line)
}

impl Cumulative {
    /// The utterances that `transcript` adds or changes for `id`.
    pub fn update(&mut self, id: &str, transcript: &str) -> Vec<TranscriptEvent> {
        let seen = self.seen.entry(id.to_string()).or_default();
        // Fast path: only look at the tail when the text grew (the last
        // line seen may have been partial, so it is re-read).
        let (start_line, tail) = if transcript.starts_with(seen.text.as_str()) {
            let from = seen.text.rfind('\n').map_or(0, |p| p + 1);
            let complete = seen.text[..from].lines().filter(|l| !l.trim().is_empty()).count();
            (complete, &transcript[from..])
        } else {
            (0, transcript)
        };
        let mut out = Vec::new();
        let new_lines: Vec<&str> = tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        for (k, line) in new_lines.iter().enumerate() {
            let i = start_line + k;
            if seen.lines.get(i).is_some_and(|old| old == line) {
                continue;
            }
            let (speaker, text) = parse_line(line);
            if !text.is_empty() {
                out.push(TranscriptEvent {
                    conversation_id: id.to_string(),
                    utterance_id: format!("{id}:{i}"),
                    speaker,
                    text: text.to_string(),
                    is_final: true,
                    offset_ms: None,
                });
            }
            if i < seen.lines.len() {
                seen.lines[i] = (*line).to_string();
            } else {
                seen.lines.push((*line).to_string());
            }
        }
        seen.lines.truncate(start_line + new_lines.len());
        seen.text = transcript.to_string();
        out
    }

    /// Forgets an interaction (it ended or went idle).
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ev: &[TranscriptEvent]) -> Vec<(String, Speaker, String)> {
        ev.iter().map(|e| (e.utterance_id.clone(), e.speaker, e.text.clone())).collect()
    }

    #[test]
    fn appended_lines_become_new_utterances() {
        let mut c = Cumulative::default();
        let a = c.update("c1", "Agent: Hello, how can I help?");
        assert_eq!(texts(&a), vec![("c1:0".into(), Speaker::Agent, "Hello, how can I help?".into())]);
        let b = c.update("c1", "Agent: Hello, how can I help?\nCustomer: I forgot my password");
        assert_eq!(texts(&b), vec![("c1:1".into(), Speaker::Customer, "I forgot my password".into())]);
        assert!(c.update("c1", "Agent: Hello, how can I help?\nCustomer: I forgot my password").is_empty());
    }

    #[test]
    fn a_growing_or_revised_line_keeps_its_id() {
        let mut c = Cumulative::default();
        c.update("c", "Customer: I forgot");
        let grown = c.update("c", "Customer: I forgot my password");
        assert_eq!(texts(&grown), vec![("c:0".into(), Speaker::Customer, "I forgot my password".into())]);
        let revised = c.update("c", "Customer: I forgot my passcode\nAgent: ok");
        assert_eq!(revised.len(), 2);
        assert_eq!(revised[0].utterance_id, "c:0");
        assert_eq!(revised[1].speaker, Speaker::Agent);
    }

    #[test]
    fn unlabelled_text_is_the_customer_and_ids_are_per_interaction() {
        let mut c = Cumulative::default();
        let a = c.update("x", "my earbuds won't pair");
        let b = c.update("y", "my camera is offline");
        assert_eq!((a[0].speaker, a[0].utterance_id.as_str()), (Speaker::Customer, "x:0"));
        assert_eq!(b[0].utterance_id, "y:0");
        c.forget("x");
        assert_eq!(c.len(), 1);
    }
}
