//! A suggestion: one article proposed for one conversation, and its life
//! `candidate → queued → sending → pushed | failed(reason) | rejected |
//! superseded`, each transition time-stamped.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::msg::{Actor, Feedback, Record};
use crate::domain::Sink;

/// Where a suggestion stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum SuggestionState {
    /// Listed (at or above `show`) but not eligible to send, or in cooldown.
    Candidate,
    /// Eligible (at or above `push`): waiting for the operator, or for auto.
    Queued,
    /// Handed to the push client.
    Sending,
    Pushed,
    Failed(String),
    Rejected,
    /// A newer search no longer returns it.
    Superseded,
}

impl SuggestionState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Pushed => "pushed",
            Self::Failed(_) => "failed",
            Self::Rejected => "rejected",
            Self::Superseded => "superseded",
        }
    }

    /// Still waiting for a decision.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Candidate | Self::Queued)
    }

    /// The operator may (re)send it.
    pub fn is_sendable(&self) -> bool {
        matches!(self, Self::Candidate | Self::Queued | Self::Failed(_))
    }
}

/// Where the suggestion came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Search,
    /// Pushed by hand from the article palette.
    Manual,
}

/// Where a suggestion stands with one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for the ledger, or in flight (with retries so far).
    Pending {
        attempts: u32,
        note: Option<String>,
    },
    Delivered {
        status: Option<u16>,
        attempts: u32,
        latency_ms: u64,
    },
    Failed {
        error: String,
        attempts: u32,
    },
}

impl DeliveryState {
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }
}

/// One sink's part of a suggestion's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub sink: Sink,
    #[serde(flatten)]
    pub state: DeliveryState,
}

/// One suggestion and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub id: String,
    pub conversation_id: String,
    pub article_id: String,
    pub title: String,
    /// What would be pushed: the matched passage, or the operator's edit.
    pub content: String,
    /// The text before an edit, kept for the audit log.
    pub original: Option<String>,
    pub score: f32,
    pub origin: Origin,
    /// The article was pushed to this conversation within the cooldown.
    pub cooling_down: bool,
    pub state: SuggestionState,
    /// Every state entered, with when.
    pub history: Vec<(Instant, SuggestionState)>,
    /// When the transcript event behind it arrived (latency accounting).
    pub event_at: Option<Instant>,
    pub sent_at: Option<Instant>,
    /// Attempts so far and the last retry reason, while sending.
    pub attempts: u32,
    pub retry_note: Option<String>,
    /// Who decided to send it, once someone did.
    pub decided_by: Option<Actor>,
    /// Per-sink delivery, once sent.
    pub deliveries: Vec<Delivery>,
    /// An agent page showed it (widget sink).
    pub acknowledged: bool,
    /// The agent's last verdict on it.
    pub feedback: Option<Feedback>,
    /// Probability that the article is right, when the KB is calibrated.
    pub probability: Option<f32>,
    pub url: Option<String>,
    /// The article changed in the knowledge base after this was made: the
    /// text shown (or sent) is the old one.
    pub article_changed: bool,
}

impl Suggestion {
    /// The ledger's record of this suggestion as it opens.
    pub fn opened(&self) -> Record {
        Record::Suggestion {
            suggestion_id: self.id.clone(),
            conversation_id: self.conversation_id.clone(),
            article_id: self.article_id.clone(),
            title: self.title.clone(),
            score: self.score,
            state: self.state.name().to_string(),
        }
    }

    pub fn new(
        id: String,
        conversation_id: &str,
        article_id: &str,
        title: &str,
        content: &str,
        score: f32,
        now: Instant,
    ) -> Self {
        Self {
            id,
            conversation_id: conversation_id.to_string(),
            article_id: article_id.to_string(),
            title: title.to_string(),
            content: content.to_string(),
            original: None,
            score,
            origin: Origin::Search,
            cooling_down: false,
            state: SuggestionState::Candidate,
            history: vec![(now, SuggestionState::Candidate)],
            event_at: None,
            sent_at: None,
            attempts: 0,
            retry_note: None,
            decided_by: None,
            deliveries: Vec::new(),
            acknowledged: false,
            feedback: None,
            probability: None,
            url: None,
            article_changed: false,
        }
    }

    /// The delivery to `sink`, if it was sent there.
    pub fn delivery_mut(&mut self, sink: Sink) -> Option<&mut Delivery> {
        self.deliveries.iter_mut().find(|d| d.sink == sink)
    }

    /// Moves to `state` at `now`; no-op if already there.
    pub fn set(&mut self, state: SuggestionState, now: Instant) {
        if self.state != state {
            self.history.push((now, state.clone()));
            self.state = state;
        }
    }

    /// Candidate or queued, by score against the push threshold.
    pub fn classify(&mut self, push: f32, now: Instant) {
        if self.state.is_open() {
            let eligible = self.score >= push && !self.cooling_down;
            self.set(if eligible { SuggestionState::Queued } else { SuggestionState::Candidate }, now);
        }
    }
}
