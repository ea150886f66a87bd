//! The push half of the engine: handing a suggestion to the push client,
//! following its attempts and outcome, and the push log the console shows.
//! A failed push lifts the article's cooldown so it can be suggested again.

use std::time::Instant;

use super::{Action, Actor, Effect, Engine, Record, Stage, Suggestion, SuggestionState};
use crate::domain::{PushAttempt, PushItem, PushOutcome, PushRequest};

/// Entries kept in the push log.
const PUSH_LOG: usize = 200;

/// One line of the push log.
#[derive(Debug, Clone, PartialEq)]
pub struct PushLogEntry {
    pub at: Instant,
    pub suggestion_id: String,
    pub conversation_id: String,
    pub article_id: String,
    pub title: String,
    pub by: Actor,
    pub status: PushStatus,
}

/// Where a push stands, for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum PushStatus {
    Sending,
    Retrying { attempt: u32, reason: String },
    Pushed { status: Option<u16>, attempts: u32, latency_ms: u64 },
    Failed { error: String, attempts: u32 },
}

impl Engine {
    /// Hands a suggestion to the push client.
    pub(super) fn send(
        &mut self,
        id: &str,
        sid: &str,
        by: Actor,
        action: Action,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(c) = self.conversations.get_mut(id) else { return };
        let Some(s) = c.suggestions.iter_mut().find(|s| s.id == sid) else { return };
        s.set(SuggestionState::Sending, now);
        s.sent_at = Some(now);
        s.attempts = 0;
        s.retry_note = None;
        let edited = action == Action::SendEdited;
        fx.push(Effect::Record(Record::Decision {
            suggestion_id: s.id.clone(),
            conversation_id: id.to_string(),
            article_id: s.article_id.clone(),
            action,
            by,
            original: if edited { s.original.clone() } else { None },
            edited: if edited { Some(s.content.clone()) } else { None },
        }));
        fx.push(Effect::Push(PushRequest {
            suggestion_id: s.id.clone(),
            conversation_id: id.to_string(),
            items: vec![PushItem {
                article_id: s.article_id.clone(),
                title: s.title.clone(),
                content: s.content.clone(),
                score: s.score,
            }],
        }));
        c.pushed.insert(s.article_id.clone(), now);
        self.push_log.push_back(PushLogEntry {
            at: now,
            suggestion_id: s.id.clone(),
            conversation_id: id.to_string(),
            article_id: s.article_id.clone(),
            title: s.title.clone(),
            by,
            status: PushStatus::Sending,
        });
        if self.push_log.len() > PUSH_LOG {
            self.push_log.pop_front();
        }
        self.sending.insert(sid.to_string(), id.to_string());
    }

    pub(super) fn on_push_attempt(&mut self, a: PushAttempt, fx: &mut Vec<Effect>) {
        if let Some(s) = self.sending_suggestion(&a.suggestion_id) {
            s.attempts = a.attempt;
            s.retry_note = Some(a.reason.clone());
        }
        if let Some(e) = self.push_log.iter_mut().rev().find(|e| e.suggestion_id == a.suggestion_id) {
            e.status = PushStatus::Retrying { attempt: a.attempt, reason: a.reason.clone() };
        }
        fx.push(Effect::Record(Record::PushAttempt(a)));
    }

    fn sending_suggestion(&mut self, sid: &str) -> Option<&mut Suggestion> {
        let cid = self.sending.get(sid)?;
        self.conversations.get_mut(cid)?.suggestion_mut(sid)
    }

    pub(super) fn on_push_done(&mut self, o: PushOutcome, now: Instant, fx: &mut Vec<Effect>) {
        let cid = self.sending.remove(&o.suggestion_id);
        let cooldown_article = {
            let Some(c) = cid.as_ref().and_then(|id| self.conversations.get_mut(id)) else { return };
            let Some(s) = c.suggestion_mut(&o.suggestion_id) else { return };
            s.attempts = o.attempts;
            s.retry_note = None;
            let (sent_at, event_at, article) = (s.sent_at, s.event_at, s.article_id.clone());
            match &o.error {
                None => s.set(SuggestionState::Pushed, now),
                Some(e) => s.set(SuggestionState::Failed(e.clone()), now),
            }
            if let Some(at) = sent_at {
                self.metrics.record(Stage::Push, at, now);
            }
            let by_auto = self
                .push_log
                .iter()
                .rev()
                .find(|e| e.suggestion_id == o.suggestion_id)
                .is_some_and(|e| e.by == Actor::Auto);
            if o.ok()
                && by_auto
                && let Some(at) = event_at
            {
                self.metrics.record(Stage::EndToEnd, at, now);
            }
            fx.push(Effect::Record(Record::Push {
                suggestion_id: o.suggestion_id.clone(),
                conversation_id: o.conversation_id.clone(),
                article_id: article.clone(),
                ok: o.ok(),
                status: o.status,
                attempts: o.attempts,
                latency_ms: o.latency_ms,
                error: o.error.clone(),
            }));
            article
        };
        if o.ok() {
            self.metrics.pushes_ok += 1;
        } else {
            self.metrics.pushes_failed += 1;
            // A failed push does not start a cooldown: it may be suggested again.
            if let Some(c) = cid.as_ref().and_then(|id| self.conversations.get_mut(id)) {
                c.pushed.remove(&cooldown_article);
            }
            self.notice(
                now,
                format!("push of {cooldown_article} failed: {}", o.error.clone().unwrap_or_default()),
            );
        }
        if let Some(e) = self.push_log.iter_mut().rev().find(|e| e.suggestion_id == o.suggestion_id) {
            e.status = match o.error {
                None => {
                    PushStatus::Pushed { status: o.status, attempts: o.attempts, latency_ms: o.latency_ms }
                }
                Some(error) => PushStatus::Failed { error, attempts: o.attempts },
            };
        }
    }
}
