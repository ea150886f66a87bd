//! The engine's durable state, as the ledger keeps it: per conversation, the
//! suggestions with their states, decisions and per-sink deliveries, and
//! when each article was pushed (the cooldown). [`Engine::snapshot`] makes a
//! conversation's record after a transition; [`Engine::restore`] rebuilds
//! calls in progress from the records at start, so a restart looks to agents
//! like nothing happened: same suggestion ids, no article re-pushed within
//! its cooldown, decided-but-undelivered suggestions delivered once.
//!
//! Records carry wall-clock times (Unix milliseconds); the engine works in
//! `Instant`s and converts through a clock anchor the runtime sets.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::msg::{Actor, Effect, Feedback, Record};
use super::policy::Mode;
use super::push::request;
use super::suggestion::{Delivery, DeliveryState, Origin, Suggestion, SuggestionState};
use super::{Conversation, Engine};
use crate::domain::Participant;

/// One conversation's durable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: String,
    pub queue_id: Option<String>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub mode: Option<Mode>,
    pub paused: bool,
    #[serde(default)]
    pub participants: Vec<Participant>,
    pub suggestions: Vec<SuggestionRecord>,
    /// Article id → when it was last pushed here (Unix ms).
    pub pushed: BTreeMap<String, u64>,
}

/// One suggestion's durable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionRecord {
    pub id: String,
    pub article_id: String,
    pub title: String,
    pub content: String,
    pub original: Option<String>,
    pub score: f32,
    #[serde(default)]
    pub probability: Option<f32>,
    #[serde(default)]
    pub url: Option<String>,
    pub origin: Origin,
    pub state: SuggestionState,
    pub decided_by: Option<Actor>,
    pub created_ms: u64,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    #[serde(default)]
    pub acknowledged: bool,
    #[serde(default)]
    pub feedback: Option<Feedback>,
}

impl ConversationRecord {
    /// A call in progress with nothing suggested or pushed yet.
    pub fn new(id: &str, queue_id: Option<&str>, started_ms: u64) -> Self {
        Self {
            id: id.to_string(),
            queue_id: queue_id.map(str::to_string),
            started_ms,
            ended_ms: None,
            mode: None,
            paused: false,
            participants: Vec::new(),
            suggestions: Vec::new(),
            pushed: BTreeMap::new(),
        }
    }

    /// Whether the call ended before `cutoff_ms` (pruned by retention).
    pub fn ended_before(&self, cutoff_ms: u64) -> bool {
        self.ended_ms.is_some_and(|t| t < cutoff_ms)
    }

    /// What matters for "has it changed": everything but the live scores
    /// and passages of undecided suggestions, which move with every search
    /// and are not worth a disk write each time.
    fn change_key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.id, &self.ended_ms, &self.mode, self.paused, &self.pushed).hash(&mut h);
        self.participants.iter().for_each(|p| (&p.id, &p.purpose, &p.user_id).hash(&mut h));
        for s in &self.suggestions {
            (&s.id, s.state.name(), &s.decided_by, s.acknowledged, &s.feedback).hash(&mut h);
            if s.decided_by.is_some() {
                (&s.content, &s.original, s.score.to_bits()).hash(&mut h);
            }
            for d in &s.deliveries {
                (d.sink, serde_json::to_string(&d.state).unwrap_or_default()).hash(&mut h);
            }
        }
        h.finish()
    }
}

/// Maps the engine's `Instant`s to Unix milliseconds and back.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    at: Instant,
    unix_ms: u64,
}

impl Clock {
    pub fn new(at: Instant, unix_ms: u64) -> Self {
        Self { at, unix_ms }
    }

    pub fn to_ms(self, t: Instant) -> u64 {
        match t.checked_duration_since(self.at) {
            Some(d) => self.unix_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => {
                let back = self.at.saturating_duration_since(t);
                self.unix_ms.saturating_sub(u64::try_from(back.as_millis()).unwrap_or(u64::MAX))
            }
        }
    }

    /// The instant of a Unix time; times before the process could
    /// represent clamp to the anchor.
    pub fn to_instant(self, ms: u64) -> Instant {
        if ms >= self.unix_ms {
            self.at.checked_add(Duration::from_millis(ms - self.unix_ms)).unwrap_or(self.at)
        } else {
            self.at.checked_sub(Duration::from_millis(self.unix_ms - ms)).unwrap_or(self.at)
        }
    }
}

impl Engine {
    /// Sets the wall clock the ledger's times are read and written in.
    pub fn set_clock(&mut self, now: Instant, unix_ms: u64) {
        self.clock = Some(Clock::new(now, unix_ms));
    }

    /// Turns on ledger records ([`Effect::Persist`]) after transitions.
    pub fn enable_persistence(&mut self) {
        self.persist = true;
    }

    /// A conversation's durable record.
    pub fn snapshot(&self, id: &str) -> Option<ConversationRecord> {
        let c = self.conversations.get(id)?;
        let clock = self.clock?;
        let ms = |t: Instant| clock.to_ms(t);
        Some(ConversationRecord {
            id: c.id.clone(),
            queue_id: c.queue_id.clone(),
            started_ms: ms(c.started_at),
            ended_ms: c.ended_at.map(ms),
            mode: c.mode,
            paused: c.paused,
            participants: c.participants.clone(),
            // Superseded suggestions are history for the audit log only.
            suggestions: c
                .suggestions
                .iter()
                .filter(|s| s.state != SuggestionState::Superseded)
                .map(|s| SuggestionRecord {
                    id: s.id.clone(),
                    article_id: s.article_id.clone(),
                    title: s.title.clone(),
                    content: s.content.clone(),
                    original: s.original.clone(),
                    score: s.score,
                    probability: s.probability,
                    url: s.url.clone(),
                    origin: s.origin,
                    state: s.state.clone(),
                    decided_by: s.decided_by,
                    created_ms: s.history.first().map_or(0, |(t, _)| ms(*t)),
                    deliveries: s.deliveries.clone(),
                    acknowledged: s.acknowledged,
                    feedback: s.feedback,
                })
                .collect(),
            pushed: c.pushed.iter().map(|(a, t)| (a.clone(), ms(*t))).collect(),
        })
    }

    /// After a message: a record for each conversation whose durable state
    /// changed, put before every other effect so that what is decided is
    /// recorded before it is acted on.
    pub(super) fn persist_changes(&mut self, fx: &mut Vec<Effect>) {
        if !self.persist {
            return;
        }
        let mut ids: Vec<String> = std::mem::take(&mut self.touched).into_iter().collect();
        for e in fx.iter() {
            if let Effect::Record(r) = e
                && let Some(id) = record_conversation(r)
                && !ids.iter().any(|x| x == id)
            {
                ids.push(id.to_string());
            }
        }
        let mut records = Vec::new();
        for id in ids {
            let Some(rec) = self.snapshot(&id) else { continue };
            let key = rec.change_key();
            if self.persisted.get(&id) != Some(&key) {
                self.persisted.insert(id, key);
                records.push(Effect::Persist(Box::new(rec)));
            }
        }
        if !records.is_empty() {
            records.append(fx);
            *fx = records;
        }
    }

    /// Rebuilds the calls still in progress from the ledger's records;
    /// returns the deliveries to finish (decided, not yet delivered
    /// everywhere), which go out once with their original ids.
    pub fn restore(&mut self, records: Vec<ConversationRecord>, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        let clock = *self.clock.get_or_insert(Clock::new(now, 0));
        let (mut calls, mut suggestions, mut redelivered) = (0, 0, 0);
        for rec in records.into_iter().filter(|r| r.ended_ms.is_none()) {
            let t = |ms: u64| clock.to_instant(ms);
            let mut c = Conversation::new(&rec.id, rec.queue_id.clone(), t(rec.started_ms));
            c.last_activity = now;
            c.restored_at = Some(now);
            c.mode = rec.mode;
            c.paused = rec.paused;
            c.participants = rec.participants.clone();
            c.pushed = rec.pushed.iter().map(|(a, ms)| (a.clone(), t(*ms))).collect();
            for s in &rec.suggestions {
                let mut out = Suggestion::new(
                    s.id.clone(),
                    &rec.id,
                    &s.article_id,
                    &s.title,
                    &s.content,
                    s.score,
                    t(s.created_ms),
                );
                out.original = s.original.clone();
                out.origin = s.origin;
                out.decided_by = s.decided_by;
                out.deliveries = s.deliveries.clone();
                out.acknowledged = s.acknowledged;
                out.feedback = s.feedback;
                out.probability = s.probability;
                out.url = s.url.clone();
                out.set(s.state.clone(), now);
                if out.state == SuggestionState::Sending {
                    // Decided before the restart; finish the sinks that had
                    // not answered, under the same idempotency key.
                    let pending: Vec<_> =
                        out.deliveries.iter().filter(|d| d.state.is_pending()).map(|d| d.sink).collect();
                    out.sent_at = Some(now);
                    for d in out.deliveries.iter_mut().filter(|d| d.state.is_pending()) {
                        d.state = DeliveryState::Pending { attempts: 0, note: Some("after restart".into()) };
                    }
                    let customer = c.customer_participant();
                    fx.push(Effect::Deliver(request(&out, &rec.id, pending, customer, None)));
                    self.sending.insert(out.id.clone(), rec.id.clone());
                    redelivered += 1;
                }
                suggestions += 1;
                c.suggestions.push(out);
            }
            self.persisted.insert(rec.id.clone(), rec.change_key());
            self.conversations.insert(rec.id.clone(), c);
            calls += 1;
        }
        fx.insert(0, Effect::Record(Record::Restored { conversations: calls, suggestions, redelivered }));
        fx
    }
}

/// The conversation a record is about, for the records that follow a
/// durable change.
fn record_conversation(r: &Record) -> Option<&str> {
    match r {
        Record::ConversationStarted { conversation_id, .. }
        | Record::ConversationEnded { conversation_id }
        | Record::Suggestion { conversation_id, .. }
        | Record::Decision { conversation_id, .. }
        | Record::Push { conversation_id, .. }
        | Record::Search { conversation_id, .. }
        | Record::Acknowledged { conversation_id, .. }
        | Record::AgentFeedback { conversation_id, .. } => Some(conversation_id),
        _ => None,
    }
}
