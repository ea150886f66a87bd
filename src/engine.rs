//! The assist engine: a pure state machine from transcript events, search
//! results, push outcomes and operator commands to effects.
//!
//! `Engine::handle(msg, now) -> Vec<Effect>` is the only way state changes.
//! Time and ids come in as data, so every transition is a plain unit test;
//! this module imports no runtime, UI, network or ML crate (a test guards
//! that). It owns the conversations ([`conversation`]), the suggestion state
//! machine ([`suggestion`]), the policy ([`policy`]) and the metrics
//! ([`metrics`]); operator commands live in [`operator`], pushes and the
//! push log in [`push`], a call's searches and their results in [`search`],
//! the read-only views of the state in [`read`].

mod agent;
mod auto;
pub mod context;
pub mod conversation;
pub mod durable;
pub mod kb_reload;
pub mod metrics;
pub mod mirror;
pub mod msg;
mod operator;
pub mod policy;
mod push;
mod read;
mod search;
pub mod suggestion;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_delivery;
#[cfg(test)]
mod tests_need;
#[cfg(test)]
mod tests_support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use agent::ArticleFeedback;
pub use conversation::Conversation;
pub use durable::{Clock, ConversationRecord, SuggestionRecord};
pub use metrics::{Metrics, Stage, Summary};
pub use msg::KbReload;
pub use msg::{
    Action, Actor, AgentEvent, ArticleRef, Command, Effect, Feedback, Msg, Record, RequestId, ScoredArticle,
    SearchTiming,
};
pub use policy::{Knob, Mode, Policy};
pub use push::{PushLogEntry, PushStatus};
use search::schedule_search;
pub use suggestion::{Delivery, DeliveryState, Origin, Suggestion, SuggestionState};

use crate::domain::{ConnectionState, Sink, StreamEvent};

/// Entries kept in the notice list.
const NOTICES: usize = 50;
/// How long a call taken over from the ledger may go unconfirmed by the
/// stream (catch-up reports calls in progress within seconds of connecting)
/// before it is taken to have ended while the process was down.
pub const RESTORE_GRACE: Duration = Duration::from_secs(60);
/// How far back "candidates in the last N minutes" looks.
pub const CANDIDATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A message for the operator (a refused command, a failed search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: Instant,
    pub text: String,
}

/// The engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    run_id: String,
    conversations: BTreeMap<String, Conversation>,
    next_request: RequestId,
    next_suggestion: u64,
    paused_all: bool,
    connection: ConnectionState,
    /// When the connection entered its current state.
    connection_since: Option<Instant>,
    last_heartbeat: Option<Instant>,
    metrics: Metrics,
    push_log: VecDeque<PushLogEntry>,
    notices: VecDeque<Notice>,
    /// Scores of recent matches, for "how many would pass this threshold".
    recent_scores: VecDeque<(Instant, f32)>,
    /// Suggestion id → conversation id, for pushes in flight.
    sending: HashMap<String, String>,
    /// Decisions waiting for the ledger before they are recorded as made.
    undurable: HashMap<String, Record>,
    /// Where decided suggestions go (`delivery.sinks`, less Copilot).
    sinks: Vec<Sink>,
    /// Answer Copilot's third-party-action requests.
    copilot: bool,
    /// Per-article agent reactions.
    feedback: HashMap<String, ArticleFeedback>,
    /// Emit ledger records; false when no ledger is kept.
    persist: bool,
    /// False while the ledger cannot record: nothing is sent automatically.
    ledger_ok: bool,
    /// Change keys of the records last persisted, per conversation.
    persisted: HashMap<String, u64>,
    /// Conversations whose durable state changed without a record saying so.
    touched: std::collections::BTreeSet<String>,
    /// Wall-clock anchor for ledger times; until the runtime sets one, the
    /// first message's time stands for Unix time 0 (tests need no clock).
    clock: Option<Clock>,
    /// The knowledge base's version, deletions and changes ([`kb_reload`]).
    kb: kb_reload::KbState,
}

impl Engine {
    /// A new engine; `run_id` prefixes suggestion ids so they stay unique
    /// across runs (they are the push's idempotency key).
    pub fn new(policy: Policy, run_id: &str) -> Self {
        Self {
            policy,
            run_id: run_id.to_string(),
            conversations: BTreeMap::new(),
            next_request: 0,
            next_suggestion: 0,
            paused_all: false,
            connection: ConnectionState::Connecting,
            connection_since: None,
            last_heartbeat: None,
            metrics: Metrics::default(),
            push_log: VecDeque::new(),
            notices: VecDeque::new(),
            recent_scores: VecDeque::new(),
            sending: HashMap::new(),
            undurable: HashMap::new(),
            sinks: vec![Sink::Webhook],
            copilot: false,
            feedback: HashMap::new(),
            persist: false,
            ledger_ok: true,
            persisted: HashMap::new(),
            touched: std::collections::BTreeSet::new(),
            clock: None,
            kb: kb_reload::KbState::default(),
        }
    }

    /// Sets where decided suggestions are delivered. `genesys-copilot` is
    /// not a fan-out target: it answers Copilot's own requests.
    pub fn set_sinks(&mut self, sinks: &[Sink]) {
        self.copilot = sinks.contains(&Sink::GenesysCopilot);
        self.sinks = sinks.iter().copied().filter(|s| *s != Sink::GenesysCopilot).collect();
    }

    pub fn sinks(&self) -> &[Sink] {
        &self.sinks
    }

    /// Whether the ledger records (false: delivery state cannot be saved).
    pub fn ledger_ok(&self) -> bool {
        self.ledger_ok
    }

    /// Applies one message at time `now` and returns what to do.
    pub fn handle(&mut self, msg: Msg, now: Instant) -> Vec<Effect> {
        self.clock.get_or_insert(Clock::new(now, 0));
        let mut fx = Vec::new();
        match msg {
            Msg::Stream(ev) => self.on_stream(ev, now, &mut fx),
            Msg::SearchDone { request, conversation_id, hits, timing } => {
                self.on_search_done(request, &conversation_id, hits, timing, now, &mut fx);
            }
            Msg::SearchFailed { request, conversation_id, error } => {
                if let Some(c) = self.conversations.get_mut(&conversation_id)
                    && c.inflight.is_some_and(|(r, _)| r == request)
                {
                    c.inflight = None;
                }
                self.metrics.search_errors += 1;
                self.notice(now, format!("search failed for {conversation_id}: {error}"));
            }
            Msg::PushAttempted(a) => self.on_push_attempt(a, &mut fx),
            Msg::PushDone(o) => self.on_push_done(o, now, &mut fx),
            Msg::Command(c) => self.on_command(c, now, &mut fx),
            Msg::Tick => self.on_tick(now, &mut fx),
            Msg::Durable { pushes, commit } => self.on_durable(pushes, commit, now, &mut fx),
            Msg::LedgerFailed { error, held } => {
                self.touched.extend(held.iter().map(|r| r.conversation_id.clone()));
                self.on_ledger_failed(error, held, now, &mut fx);
            }
            Msg::LedgerRecovered => self.on_ledger_recovered(now, &mut fx),
            Msg::Agent(ev) => self.on_agent(ev, now, &mut fx),
            Msg::NeedJudged { conversation_id, utterance_id, need } => {
                self.on_need_judged(&conversation_id, &utterance_id, need, now);
            }
            Msg::HandedOver { queue } => self.on_handed_over(&queue, now),
            Msg::KbReloaded(r) => self.on_kb_reloaded(r, now, &mut fx),
            Msg::KbReloadFailed { reason } => self.on_kb_reload_failed(reason, now, &mut fx),
        }
        self.fire_due_searches(now, &mut fx);
        self.persist_changes(&mut fx);
        fx
    }

    fn on_stream(&mut self, ev: StreamEvent, now: Instant, fx: &mut Vec<Effect>) {
        match ev {
            StreamEvent::Connection(state) => {
                self.connection = state.clone();
                self.connection_since = Some(now);
                fx.push(Effect::Record(Record::Connection(state)));
            }
            StreamEvent::Heartbeat => self.last_heartbeat = Some(now),
            // Token expiry is shown from the runtime's token watch, its one copy.
            StreamEvent::TokenRefreshed { .. } => {}
            StreamEvent::Discarded { .. } => self.metrics.discarded_frames += 1,
            StreamEvent::Warning { message } => {
                self.notice(now, message.clone());
                fx.push(Effect::Record(Record::Warning { message }));
            }
            StreamEvent::ConversationStarted { conversation_id, queue_id } => {
                if let Some(c) = self.conversations.get_mut(&conversation_id) {
                    c.restored_at = None;
                } else {
                    let c = Conversation::new(&conversation_id, queue_id.clone(), now);
                    self.conversations.insert(conversation_id.clone(), c);
                    fx.push(Effect::Record(Record::ConversationStarted { conversation_id, queue_id }));
                }
            }
            StreamEvent::ConversationEnded { conversation_id } => self.end(&conversation_id, now, fx),
            StreamEvent::Participants { conversation_id, participants } => {
                if let Some(c) = self.conversations.get_mut(&conversation_id)
                    && c.participants != participants
                {
                    c.participants = participants;
                    self.touched.insert(conversation_id);
                }
            }
            StreamEvent::CopilotRequest { conversation_id, suggestion_id } => {
                self.on_copilot_request(&conversation_id, suggestion_id, now, fx);
            }
            StreamEvent::Transcript(t) => {
                if !self.conversations.contains_key(&t.conversation_id) {
                    // Transcripts can arrive before (or without) a start event.
                    let c = Conversation::new(&t.conversation_id, None, now);
                    self.conversations.insert(t.conversation_id.clone(), c);
                    fx.push(Effect::Record(Record::ConversationStarted {
                        conversation_id: t.conversation_id.clone(),
                        queue_id: None,
                    }));
                }
                let policy = &self.policy;
                let paused_all = self.paused_all;
                let Some(c) = self.conversations.get_mut(&t.conversation_id).filter(|c| c.ended_at.is_none())
                else {
                    return;
                };
                c.upsert(&t, now);
                c.restored_at = None;
                if t.is_final {
                    self.metrics.utterances += 1;
                }
                let judge = c.needs_judging(&t.utterance_id, policy);
                if c.refresh_window(policy)
                    && c.effective_mode(policy.mode) != Mode::Off
                    && !c.paused
                    && !paused_all
                {
                    schedule_search(c, policy.debounce, now);
                }
                if let Some(text) = judge {
                    // Judged as read at the end of the window that holds it
                    // (the search's own text, so one model run serves both).
                    fx.push(Effect::JudgeNeed {
                        conversation_id: t.conversation_id.clone(),
                        utterance_id: t.utterance_id.clone(),
                        text,
                        context: c.window_text.clone(),
                    });
                }
                fx.push(Effect::Record(Record::Transcript {
                    conversation_id: t.conversation_id,
                    utterance_id: t.utterance_id,
                    speaker: t.speaker,
                    text: t.text,
                    is_final: t.is_final,
                }));
            }
        }
    }

    /// Forgets a queue's calls without ending them (they go on with the
    /// worker that took the queue); what of theirs still waits for the
    /// ledger is then never delivered from here ([`Engine::on_durable`]).
    fn on_handed_over(&mut self, queue: &str, now: Instant) {
        let gone: Vec<String> = self
            .conversations
            .iter()
            .filter(|(_, c)| c.queue_id.as_deref() == Some(queue))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.conversations.remove(id);
            self.touched.remove(id);
        }
        self.sending.retain(|_, cid| !gone.contains(cid));
        if !gone.is_empty() {
            self.notice(now, format!("queue {queue} moved to another worker with {} calls", gone.len()));
        }
    }

    fn end(&mut self, id: &str, now: Instant, fx: &mut Vec<Effect>) {
        let Some(c) = self.conversations.get_mut(id).filter(|c| c.ended_at.is_none()) else { return };
        c.ended_at = Some(now);
        c.search_due = None;
        c.burst_started = None;
        for s in c.suggestions.iter_mut().filter(|s| s.state.is_open()) {
            s.set(SuggestionState::Superseded, now);
        }
        fx.push(Effect::Record(Record::ConversationEnded { conversation_id: id.to_string() }));
    }

    fn on_tick(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let idle = self.policy.idle_timeout;
        let quiet: Vec<String> = self
            .conversations
            .values()
            .filter(|c| {
                c.ended_at.is_none()
                    && (now.duration_since(c.last_activity) >= idle
                        || c.restored_at.is_some_and(|t| now.duration_since(t) >= RESTORE_GRACE))
            })
            .map(|c| c.id.clone())
            .collect();
        for id in quiet {
            self.end(&id, now, fx);
            // The stream never said it ended: stop following it there too.
            fx.push(Effect::Unfollow { conversation_id: id });
        }
        let grace = self.policy.ended_grace;
        let sending = &self.sending;
        self.conversations.retain(|id, c| {
            let expired = c.ended_at.is_some_and(|t| now.duration_since(t) >= grace);
            // Keep a conversation while one of its pushes is still in flight.
            !expired || sending.values().any(|cid| cid == id)
        });
    }

    fn notice(&mut self, now: Instant, text: String) {
        self.notices.push_back(Notice { at: now, text });
        if self.notices.len() > NOTICES {
            self.notices.pop_front();
        }
    }
}
