//! Read-only views of the engine's state, for the dashboard, the widget
//! and the runtime (which never change it but through `handle`).

use std::collections::VecDeque;
use std::time::Instant;

use super::{Conversation, Engine, Metrics, Notice, Policy, PushLogEntry};
use crate::domain::ConnectionState;

impl Engine {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    pub fn conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.conversations.values()
    }
    pub fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.get(id)
    }
    pub fn connection(&self) -> &ConnectionState {
        &self.connection
    }
    pub fn connection_since(&self) -> Option<Instant> {
        self.connection_since
    }
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last_heartbeat
    }
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    pub fn push_log(&self) -> &VecDeque<PushLogEntry> {
        &self.push_log
    }
    pub fn notices(&self) -> &VecDeque<Notice> {
        &self.notices
    }
    pub fn paused_all(&self) -> bool {
        self.paused_all
    }
    pub fn pushes_in_flight(&self) -> usize {
        self.sending.len()
    }

    /// Of the matches in the last [`CANDIDATE_WINDOW`](super::CANDIDATE_WINDOW), how many score at or
    /// above `threshold`, and how many there were.
    pub fn would_pass(&self, threshold: f32) -> (usize, usize) {
        let pass = self.recent_scores.iter().filter(|(_, s)| *s >= threshold).count();
        (pass, self.recent_scores.len())
    }

    /// When the next debounced search is due, for the runtime's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conversations.values().filter_map(|c| c.search_due).min()
    }
}
