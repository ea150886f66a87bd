//! The mirror's delivery half: a worker's decisions and each sink's
//! outcome, on the suggestion and in the push log, as the engine's own
//! push code records them.

use std::time::Instant;

use super::super::msg::{Action, Actor};
use super::super::push::{PushLogEntry, PushStatus};
use super::super::suggestion::{Delivery, DeliveryState, Origin, SuggestionState};
use super::super::{Engine, Stage};
use crate::domain::Sink;

impl Engine {
    pub(super) fn mirror_decision(
        &mut self,
        cid: &str,
        sid: &str,
        action: Action,
        by: Actor,
        edited: Option<String>,
        at: Instant,
    ) {
        let sinks = self.sinks.clone();
        let Some(c) = self.conversations.get_mut(cid) else { return };
        let Some(s) = c.suggestion_mut(sid) else { return };
        if action == Action::Reject {
            s.set(SuggestionState::Rejected, at);
            let article = s.article_id.clone();
            c.pushed.insert(article, at);
            return;
        }
        if action == Action::ManualPush {
            s.origin = Origin::Manual;
        }
        if let Some(text) = edited {
            s.original.get_or_insert_with(|| s.content.clone());
            s.content = text;
        }
        s.set(SuggestionState::Sending, at);
        s.sent_at = Some(at);
        s.attempts = 0;
        s.retry_note = None;
        s.decided_by = Some(by);
        s.deliveries = sinks
            .iter()
            .map(|&sink| Delivery { sink, state: DeliveryState::Pending { attempts: 0, note: None } })
            .collect();
        let article = s.article_id.clone();
        c.pushed.insert(article, at);
        self.sending.insert(sid.to_string(), cid.to_string());
        for sink in sinks {
            self.mirror_log(sid, sink, PushStatus::Sending, at);
        }
    }

    /// One sink's outcome; the suggestion is pushed once every sink has
    /// answered and one delivered it, failed when all failed.
    pub(super) fn mirror_push(
        &mut self,
        cid: &str,
        sid: &str,
        sink: Sink,
        state: DeliveryState,
        at: Instant,
    ) {
        let log_status = match &state {
            DeliveryState::Delivered { status, attempts, latency_ms } => PushStatus::Pushed {
                status: *status,
                attempts: *attempts,
                latency_ms: *latency_ms,
                acknowledged: false,
            },
            DeliveryState::Failed { error, attempts } => {
                PushStatus::Failed { error: error.clone(), attempts: *attempts }
            }
            DeliveryState::Pending { .. } => PushStatus::Sending,
        };
        let ok = matches!(state, DeliveryState::Delivered { .. });
        self.mirror_log(sid, sink, log_status, at);
        if ok {
            self.metrics.pushes_ok += 1;
        } else {
            self.metrics.pushes_failed += 1;
        }
        let Some(c) = self.conversations.get_mut(cid) else { return };
        let Some(s) = c.suggestion_mut(sid) else { return };
        let first_ok = ok && !s.deliveries.iter().any(|d| matches!(d.state, DeliveryState::Delivered { .. }));
        match s.delivery_mut(sink) {
            Some(d) => d.state = state,
            None => s.deliveries.push(Delivery { sink, state }),
        }
        if first_ok && let Some(from) = s.event_at {
            self.metrics.record(Stage::EndToEnd, from, at);
        }
        if s.deliveries.iter().any(|d| d.state.is_pending()) {
            return;
        }
        let delivered = s.deliveries.iter().any(|d| matches!(d.state, DeliveryState::Delivered { .. }));
        if delivered {
            s.set(SuggestionState::Pushed, at);
        } else {
            let error = s
                .deliveries
                .iter()
                .rev()
                .find_map(|d| {
                    if let DeliveryState::Failed { error, .. } = &d.state {
                        Some(error.clone())
                    } else {
                        None
                    }
                })
                .unwrap_or_default();
            s.set(SuggestionState::Failed(error), at);
            // As in the engine: a failed push lifts the cooldown.
            let article = s.article_id.clone();
            c.pushed.remove(&article);
        }
        self.sending.remove(sid);
    }

    /// Updates the push log's line for (suggestion, sink), or adds one.
    pub(super) fn mirror_log(&mut self, sid: &str, sink: Sink, status: PushStatus, at: Instant) {
        if let Some(e) = self.log_entry(sid, sink) {
            e.status = status;
            return;
        }
        let Some(s) = self.conversations.values().find_map(|c| c.suggestions.iter().find(|s| s.id == sid))
        else {
            return;
        };
        let entry = PushLogEntry {
            at,
            suggestion_id: sid.to_string(),
            conversation_id: s.conversation_id.clone(),
            article_id: s.article_id.clone(),
            title: s.title.clone(),
            by: s.decided_by.unwrap_or(Actor::Operator),
            sink,
            status,
        };
        self.log(entry);
    }
}
