//! One conversation's state: its utterances, the current query window, the
//! pending search, the latest matches, its suggestions and push history.
//! Every collection is bounded, so a long call cannot grow memory forever.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::context::CallContext;
use super::msg::RequestId;
use super::policy::{Mode, Policy};
use super::suggestion::Suggestion;
use crate::domain::{Hit, Participant, Speaker, TranscriptEvent};

/// Utterances kept per conversation (the transcript pane shows the latest).
pub const MAX_UTTERANCES: usize = 500;
/// Suggestions kept per conversation; the oldest closed ones go first.
pub const MAX_SUGGESTIONS: usize = 200;

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub id: String,
    pub speaker: Speaker,
    pub text: String,
    pub is_final: bool,
    pub at: Instant,
    /// Whether need detection found a need in it: `None` until judged (a
    /// judged utterance keeps its verdict while its text is unchanged).
    pub need: Option<bool>,
}

/// A conversation as the engine sees it.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub queue_id: Option<String>,
    pub started_at: Instant,
    pub last_activity: Instant,
    pub ended_at: Option<Instant>,
    /// Overrides the global mode when set.
    pub mode: Option<Mode>,
    pub paused: bool,
    pub utterances: VecDeque<Utterance>,
    /// Ids of the utterances in the current query window.
    pub window: Vec<String>,
    pub window_text: String,
    /// Bumped whenever the window's text changes.
    pub window_seq: u64,
    /// When the newest event in the window arrived.
    pub window_event_at: Option<Instant>,
    /// When the debounced search is due, and when the burst began.
    pub search_due: Option<Instant>,
    pub burst_started: Option<Instant>,
    /// The search in flight and the window version it was made for.
    pub inflight: Option<(RequestId, u64)>,
    pub matches: Vec<Hit>,
    pub matches_query: String,
    pub suggestions: Vec<Suggestion>,
    /// When each article was last pushed here (cooldown).
    pub pushed: HashMap<String, Instant>,
    /// Send times of automatic pushes in the last minute (rate cap).
    pub auto_sends: VecDeque<Instant>,
    pub searches: u64,
    /// Who takes part, from the conversation events (widget access, the
    /// attributes sink's customer participant).
    pub participants: Vec<Participant>,
    /// Taken over from the ledger at start and not yet heard of from the
    /// stream; ended if the stream stays silent about it (it ended while
    /// we were down).
    pub restored_at: Option<Instant>,
    /// How many current searches had each article best, and for the latest
    /// search's best: how many earlier searches had it best too (votes) and
    /// its lead over the runner-up — what auto mode credits ([`super::auto`]).
    pub best_counts: HashMap<String, u32>,
    /// Evidence per article from the call's searches ([`super::context`]).
    pub context: CallContext,
    pub best_votes: u32,
    pub best_lead: f32,
    /// Why the latest search's best article was or was not sent
    /// automatically, for the matches pane.
    pub auto_note: Option<String>,
}

impl Conversation {
    pub fn new(id: &str, queue_id: Option<String>, now: Instant) -> Self {
        Self {
            id: id.to_string(),
            queue_id,
            started_at: now,
            last_activity: now,
            ended_at: None,
            mode: None,
            paused: false,
            utterances: VecDeque::new(),
            window: Vec::new(),
            window_text: String::new(),
            window_seq: 0,
            window_event_at: None,
            search_due: None,
            burst_started: None,
            inflight: None,
            matches: Vec::new(),
            matches_query: String::new(),
            suggestions: Vec::new(),
            pushed: HashMap::new(),
            auto_sends: VecDeque::new(),
            searches: 0,
            participants: Vec::new(),
            restored_at: None,
            best_counts: HashMap::new(),
            context: CallContext::default(),
            best_votes: 0,
            best_lead: 0.0,
            auto_note: None,
        }
    }

    /// The customer participant's id, when the events named one.
    pub fn customer_participant(&self) -> Option<String> {
        self.participants.iter().rev().find(|p| p.purpose == "customer").map(|p| p.id.clone())
    }

    /// The mode in force: the conversation's own, else the global one.
    pub fn effective_mode(&self, global: Mode) -> Mode {
        self.mode.unwrap_or(global)
    }

    /// Adds an utterance, or replaces an earlier version with the same id.
    pub fn upsert(&mut self, ev: &TranscriptEvent, now: Instant) {
        self.last_activity = now;
        let mut u = Utterance {
            id: ev.utterance_id.clone(),
            speaker: ev.speaker,
            text: ev.text.clone(),
            is_final: ev.is_final,
            at: now,
            need: None,
        };
        // Revisions are for recent utterances; look back only a little way.
        if let Some(existing) = self.utterances.iter_mut().rev().take(32).find(|x| x.id == u.id) {
            if existing.text == u.text && existing.is_final == u.is_final {
                u.need = existing.need;
            }
            *existing = u;
        } else {
            self.utterances.push_back(u);
            if self.utterances.len() > MAX_UTTERANCES {
                self.utterances.pop_front();
            }
        }
    }

    /// Whether a final utterance counts for the window and must first be
    /// judged by need detection: its text, if so.
    pub fn needs_judging(&self, utterance_id: &str, policy: &Policy) -> Option<String> {
        let u = self.utterances.iter().rev().take(32).find(|u| u.id == utterance_id)?;
        let counted = u.is_final && (u.speaker == Speaker::Customer || policy.include_agent);
        let long_enough = u.text.split_whitespace().count() >= policy.window_min_words;
        (policy.need_detection && counted && long_enough && u.need.is_none()).then(|| u.text.clone())
    }

    /// Records need detection's verdict on an utterance; false if it is
    /// gone or changed since.
    pub fn set_need(&mut self, utterance_id: &str, need: bool) -> bool {
        match self.utterances.iter_mut().rev().take(32).find(|u| u.id == utterance_id && u.is_final) {
            Some(u) => {
                u.need = Some(need);
                true
            }
            None => false,
        }
    }

    /// Recomputes the query window; true if its text changed.
    pub fn refresh_window(&mut self, policy: &Policy) -> bool {
        let mut ids = Vec::new();
        let mut parts: Vec<&str> = Vec::new();
        let mut newest = None;
        let mut words = 0;
        for u in self.utterances.iter().rev() {
            let counted = u.is_final && (u.speaker == Speaker::Customer || policy.include_agent);
            let n = u.text.split_whitespace().count();
            // With need detection on, an utterance joins before its verdict
            // (searching at once costs nothing: the verdict comes from the
            // same model run) and leaves when judged needless.
            let needless = policy.need_detection && u.need == Some(false);
            if !counted || n < policy.window_min_words || needless {
                continue;
            }
            if ids.len() == policy.window || words >= policy.window_max_words {
                break;
            }
            newest = newest.or(Some(u.at));
            let room = policy.window_max_words - words;
            // Keep the end of an over-long utterance: it is the most recent speech.
            let text = if n > room { tail_words(&u.text, room) } else { u.text.as_str() };
            words += n.min(room);
            ids.push(u.id.clone());
            parts.push(text);
        }
        ids.reverse();
        parts.reverse();
        let text = parts.join(" ");
        self.window = ids;
        self.window_event_at = newest;
        if text != self.window_text {
            self.window_text = text;
            self.window_seq += 1;
            return true;
        }
        false
    }

    /// Automatic pushes sent in the minute before `now`.
    pub fn auto_sends_last_minute(&mut self, now: Instant) -> usize {
        while self.auto_sends.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            self.auto_sends.pop_front();
        }
        self.auto_sends.len()
    }

    /// Whether `article` was pushed here within `cooldown` before `now`.
    pub fn in_cooldown(&self, article: &str, cooldown: Duration, now: Instant) -> bool {
        self.pushed.get(article).is_some_and(|t| now.duration_since(*t) < cooldown)
    }

    /// Drops the oldest closed suggestions beyond the cap.
    pub fn trim_suggestions(&mut self) {
        while self.suggestions.len() > MAX_SUGGESTIONS {
            match self
                .suggestions
                .iter()
                .position(|s| !s.state.is_open() && s.state != super::SuggestionState::Sending)
            {
                Some(i) => {
                    self.suggestions.remove(i);
                }
                None => break,
            }
        }
    }

    pub fn suggestion_mut(&mut self, id: &str) -> Option<&mut Suggestion> {
        self.suggestions.iter_mut().find(|s| s.id == id)
    }
}

fn tail_words(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices().rev() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == n {
                    return text[i..].trim_start();
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_words_keeps_the_end() {
        assert_eq!(tail_words("a b c d", 2), "c d");
        assert_eq!(tail_words("a b", 5), "a b");
        assert_eq!(tail_words("  a  b ", 1), "b ");
        assert_eq!(tail_words("a b", 0), "");
    }
}
