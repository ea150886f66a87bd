//! The delivery half of the engine: deciding to send a suggestion, holding
//! it until the ledger has recorded the decision, handing it to the sinks,
//! following each sink's attempts and outcome, and the push log the console
//! shows (one line per suggestion and sink). A suggestion is `pushed` once
//! every sink has answered and at least one delivered it; `failed` when all
//! failed. A failed push lifts the article's cooldown so it can be suggested
//! again.

use std::time::{Duration, Instant};

use super::suggestion::{Delivery, DeliveryState};
use super::{Action, Actor, Effect, Engine, Record, Stage, Suggestion, SuggestionState};
use crate::domain::{PushAttempt, PushItem, PushOutcome, PushRequest, Sink};

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
    pub sink: Sink,
    pub status: PushStatus,
}

/// Where a push stands, for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum PushStatus {
    /// Decided; waiting for the ledger to record it.
    Recording,
    Sending,
    Retrying {
        attempt: u32,
        reason: String,
    },
    Pushed {
        status: Option<u16>,
        attempts: u32,
        latency_ms: u64,
        acknowledged: bool,
    },
    Failed {
        error: String,
        attempts: u32,
    },
    /// What the agent said about it (a line of its own).
    Agent {
        feedback: super::Feedback,
    },
    /// Not a push: the knowledge base was reloaded (or failed to), a line
    /// of its own between the pushes.
    Kb {
        ok: bool,
        text: String,
    },
}

impl Engine {
    /// Decides to send a suggestion: records the decision and asks the
    /// runtime to deliver it once the ledger has it.
    pub(super) fn send(
        &mut self,
        id: &str,
        sid: &str,
        by: Actor,
        action: Action,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let sinks = self.sinks.clone();
        let Some(c) = self.conversations.get_mut(id) else { return };
        let customer = c.customer_participant();
        let Some(s) = c.suggestions.iter_mut().find(|s| s.id == sid) else { return };
        if sinks.is_empty() {
            s.set(SuggestionState::Failed("no delivery sink is configured".into()), now);
            self.notice(now, "not sent: `delivery.sinks` names no sink that can send".into());
            return;
        }
        s.set(SuggestionState::Sending, now);
        s.sent_at = Some(now);
        s.attempts = 0;
        s.retry_note = None;
        s.decided_by = Some(by);
        self.touched.insert(id.to_string());
        s.deliveries = sinks
            .iter()
            .map(|&sink| Delivery { sink, state: DeliveryState::Pending { attempts: 0, note: None } })
            .collect();
        let edited = action == Action::SendEdited;
        // Said (audit log, headless output) once the ledger has it: a
        // decision that is printed has survived whatever happens next.
        self.undurable.insert(
            sid.to_string(),
            Record::Decision {
                suggestion_id: s.id.clone(),
                conversation_id: id.to_string(),
                article_id: s.article_id.clone(),
                action,
                by,
                original: if edited { s.original.clone() } else { None },
                edited: if edited { Some(s.content.clone()) } else { None },
            },
        );
        fx.push(Effect::Push(request(s, id, sinks.clone(), customer, None)));
        c.pushed.insert(s.article_id.clone(), now);
        let (article, title) = (s.article_id.clone(), s.title.clone());
        for sink in sinks {
            self.log(PushLogEntry {
                at: now,
                suggestion_id: sid.to_string(),
                conversation_id: id.to_string(),
                article_id: article.clone(),
                title: title.clone(),
                by,
                sink,
                status: PushStatus::Recording,
            });
        }
        self.sending.insert(sid.to_string(), id.to_string());
    }

    pub(super) fn log(&mut self, entry: PushLogEntry) {
        self.push_log.push_back(entry);
        if self.push_log.len() > PUSH_LOG {
            self.push_log.pop_front();
        }
    }

    pub(super) fn log_entry(&mut self, sid: &str, sink: Sink) -> Option<&mut PushLogEntry> {
        self.push_log.iter_mut().rev().find(|e| e.suggestion_id == sid && e.sink == sink)
    }

    /// The ledger has the decisions: deliver.
    pub(super) fn on_durable(
        &mut self,
        reqs: Vec<PushRequest>,
        commit: Option<Duration>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(took) = commit {
            self.metrics.record_took(Stage::Commit, took);
        }
        for req in reqs {
            if !self.conversations.contains_key(&req.conversation_id) {
                // Handed over while it waited: the call's new owner decides.
                self.undurable.remove(&req.suggestion_id);
                continue;
            }
            if let Some(decision) = self.undurable.remove(&req.suggestion_id) {
                fx.push(Effect::Record(decision));
            }
            if let Some(s) = self.sending_suggestion(&req.suggestion_id) {
                let (sent_at, event_at, auto) = (s.sent_at, s.event_at, s.decided_by == Some(Actor::Auto));
                if let Some(at) = sent_at {
                    self.metrics.record(Stage::Record, at, now);
                }
                if auto && let Some(at) = event_at {
                    self.metrics.record(Stage::EventToPush, at, now);
                }
            }
            for &sink in &req.sinks {
                if let Some(e) = self.log_entry(&req.suggestion_id, sink) {
                    e.status = PushStatus::Sending;
                }
            }
            fx.push(Effect::Deliver(req));
        }
    }

    /// The ledger could not record: nothing held back is sent. Automatic
    /// decisions wait to be made again once it records; the operator's are
    /// failed with the reason, to be retried.
    pub(super) fn on_ledger_failed(
        &mut self,
        error: String,
        held: Vec<PushRequest>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.ledger_ok {
            self.ledger_ok = false;
            let message = format!("delivery state cannot be saved ({error}); automatic sending is paused");
            self.notice(now, message.clone());
            fx.push(Effect::Record(Record::Ledger { ok: false, message }));
        }
        for req in held {
            let decision = self.undurable.remove(&req.suggestion_id);
            let Some(cid) = self.sending.remove(&req.suggestion_id) else { continue };
            let Some(c) = self.conversations.get_mut(&cid) else { continue };
            let Some(s) = c.suggestion_mut(&req.suggestion_id) else { continue };
            let reason = format!("not sent: delivery state could not be saved ({error})");
            if s.decided_by == Some(Actor::Auto) {
                // Undone: auto mode decides again once the ledger records.
                s.deliveries.clear();
                s.decided_by = None;
                s.set(SuggestionState::Queued, now);
            } else {
                // The operator did decide; the audit log keeps that.
                fx.extend(decision.map(Effect::Record));
                for d in &mut s.deliveries {
                    d.state = DeliveryState::Failed { error: reason.clone(), attempts: 0 };
                }
                s.set(SuggestionState::Failed(reason.clone()), now);
            }
            let article = s.article_id.clone();
            c.pushed.remove(&article);
            for sink in req.sinks {
                if let Some(e) = self.log_entry(&req.suggestion_id, sink) {
                    e.status = PushStatus::Failed { error: reason.clone(), attempts: 0 };
                }
            }
        }
    }

    pub(super) fn on_ledger_recovered(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        if self.ledger_ok {
            return;
        }
        self.ledger_ok = true;
        let message = "delivery state is saved again; automatic sending resumes".to_string();
        self.notice(now, message.clone());
        fx.push(Effect::Record(Record::Ledger { ok: true, message }));
        let ids: Vec<String> = self.conversations.keys().cloned().collect();
        for id in ids {
            self.auto_send(&id, None, now, fx);
        }
    }

    pub(super) fn on_push_attempt(&mut self, a: PushAttempt, fx: &mut Vec<Effect>) {
        if let Some(s) = self.sending_suggestion(&a.suggestion_id) {
            s.attempts = a.attempt;
            s.retry_note = Some(format!("{}: {}", a.sink, a.reason));
            if let Some(d) = s.delivery_mut(a.sink) {
                d.state = DeliveryState::Pending { attempts: a.attempt, note: Some(a.reason.clone()) };
            }
        }
        if let Some(e) = self.log_entry(&a.suggestion_id, a.sink) {
            e.status = PushStatus::Retrying { attempt: a.attempt, reason: a.reason.clone() };
        }
        fx.push(Effect::Record(Record::PushAttempt(a)));
    }

    fn sending_suggestion(&mut self, sid: &str) -> Option<&mut Suggestion> {
        let cid = self.sending.get(sid)?;
        self.conversations.get_mut(cid)?.suggestion_mut(sid)
    }

    pub(super) fn on_push_done(&mut self, o: PushOutcome, now: Instant, fx: &mut Vec<Effect>) {
        let Some(cid) = self.sending.get(&o.suggestion_id).cloned() else { return };
        let Some(c) = self.conversations.get_mut(&cid) else { return };
        let Some(s) = c.suggestion_mut(&o.suggestion_id) else { return };
        let first_ok =
            o.ok() && !s.deliveries.iter().any(|d| matches!(d.state, DeliveryState::Delivered { .. }));
        if let Some(d) = s.delivery_mut(o.sink) {
            d.state = match &o.error {
                None => DeliveryState::Delivered {
                    status: o.status,
                    attempts: o.attempts,
                    latency_ms: o.latency_ms,
                },
                Some(e) => DeliveryState::Failed { error: e.clone(), attempts: o.attempts },
            };
        }
        let (sent_at, event_at, by, article) = (s.sent_at, s.event_at, s.decided_by, s.article_id.clone());
        if first_ok {
            if let Some(at) = sent_at {
                self.metrics.record(Stage::Push, at, now);
            }
            if by == Some(Actor::Auto)
                && let Some(at) = event_at
            {
                self.metrics.record(Stage::EndToEnd, at, now);
            }
        }
        let finished = !s.deliveries.iter().any(|d| d.state.is_pending());
        let any_ok = s.deliveries.iter().any(|d| matches!(d.state, DeliveryState::Delivered { .. }));
        if finished {
            s.attempts = s.deliveries.iter().map(attempts_of).max().unwrap_or(o.attempts);
            s.retry_note = None;
            if any_ok {
                s.set(SuggestionState::Pushed, now);
            } else {
                let errors: Vec<String> = s
                    .deliveries
                    .iter()
                    .filter_map(|d| match &d.state {
                        DeliveryState::Failed { error, .. } => Some(format!("{}: {error}", d.sink)),
                        _ => None,
                    })
                    .collect();
                s.set(SuggestionState::Failed(errors.join("; ")), now);
            }
        }
        fx.push(Effect::Record(Record::Push {
            suggestion_id: o.suggestion_id.clone(),
            conversation_id: o.conversation_id.clone(),
            sink: o.sink,
            article_id: article.clone(),
            ok: o.ok(),
            status: o.status,
            attempts: o.attempts,
            latency_ms: o.latency_ms,
            error: o.error.clone(),
        }));
        if finished {
            self.sending.remove(&o.suggestion_id);
            if any_ok {
                self.metrics.pushes_ok += 1;
            } else {
                self.metrics.pushes_failed += 1;
                // A failed push does not start a cooldown: it may be suggested again.
                c.pushed.remove(&article);
            }
        }
        if let Some(e) = &o.error {
            self.notice(now, format!("{} push of {article} failed: {e}", o.sink));
        }
        if let Some(e) = self.log_entry(&o.suggestion_id, o.sink) {
            e.status = match o.error {
                None => PushStatus::Pushed {
                    status: o.status,
                    attempts: o.attempts,
                    latency_ms: o.latency_ms,
                    acknowledged: false,
                },
                Some(error) => PushStatus::Failed { error, attempts: o.attempts },
            };
        }
    }
}

fn attempts_of(d: &Delivery) -> u32 {
    match &d.state {
        DeliveryState::Pending { attempts, .. }
        | DeliveryState::Delivered { attempts, .. }
        | DeliveryState::Failed { attempts, .. } => *attempts,
    }
}

/// What the sinks are given for a suggestion.
pub(super) fn request(
    s: &Suggestion,
    conversation_id: &str,
    sinks: Vec<Sink>,
    customer_participant: Option<String>,
    copilot_suggestion: Option<String>,
) -> PushRequest {
    PushRequest {
        suggestion_id: s.id.clone(),
        conversation_id: conversation_id.to_string(),
        items: vec![PushItem {
            article_id: s.article_id.clone(),
            title: s.title.clone(),
            content: s.content.clone(),
            score: s.score,
        }],
        sinks,
        operator: s.decided_by == Some(Actor::Operator),
        customer_participant,
        copilot_suggestion,
        url: s.url.clone(),
        probability: s.probability,
    }
}
