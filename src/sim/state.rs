//! The simulator's shared state: issued tokens, notification channels and
//! their topics and sockets, tutorial listeners, recorded pushes, and the
//! counters behind `/sim/stats`. Handlers hold the lock only to read or
//! update; sending happens through each socket's own queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::fault::{Every, Fault};

/// What a socket's writer is asked to send.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// An event frame (counts toward `every=N` faults).
    Event(String),
    /// Close the connection (another one took over the channel).
    Replaced,
}

/// A notification channel.
pub struct ChannelState {
    pub topics: BTreeSet<String>,
    pub expires: SystemTime,
    /// The connected socket, if any: its id and queue.
    pub conn: Option<(u64, mpsc::UnboundedSender<Outbound>)>,
}

/// One recorded push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushRecord {
    pub conversation_id: String,
    pub suggestion_id: Option<String>,
    pub body: Value,
    /// Milliseconds since the simulator started.
    pub received_ms: u64,
    pub received_at: String,
    /// How many requests carried this suggestion (1 unless a retry repeated it).
    pub attempts: u32,
}

/// Counters served at `/sim/stats`.
#[derive(Debug, Default)]
pub struct Counters {
    pub utterances_sent: AtomicU64,
    pub frames_sent: AtomicU64,
    pub pushes_recorded: AtomicU64,
    pub duplicate_suggestions: AtomicU64,
    pub idempotent_replays: AtomicU64,
    pub attributes_written: AtomicU64,
    pub copilot_raised: AtomicU64,
    pub copilot_answered: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub served_401: AtomicU64,
    pub served_403: AtomicU64,
    pub served_429: AtomicU64,
    pub served_500: AtomicU64,
    pub ws_connections: AtomicU64,
    pub pings_answered: AtomicU64,
    pub channels_created: AtomicU64,
    pub conversations_started: AtomicU64,
    pub conversations_ended: AtomicU64,
    pub knowledge_requests: AtomicU64,
    pub knowledge_documents_fetched: AtomicU64,
}

/// A snapshot of the counters (what `/sim/stats` returns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub utterances_sent: u64,
    pub frames_sent: u64,
    pub pushes_recorded: u64,
    /// The same article reaching a call again under a new suggestion id
    /// within the cooldown, without an operator asking for it: what an
    /// agent would see twice.
    pub duplicate_suggestions: u64,
    /// Requests repeating a suggestion id already recorded (a retry of
    /// something that had arrived): recorded once, harmless.
    pub idempotent_replays: u64,
    /// Participant-attribute PATCHes applied.
    pub attributes_written: u64,
    /// Copilot third-party-action suggestions raised, and answered.
    pub copilot_raised: u64,
    pub copilot_answered: u64,
    pub tokens_issued: u64,
    pub served_401: u64,
    pub served_403: u64,
    pub served_429: u64,
    pub served_500: u64,
    pub ws_connections: u64,
    pub pings_answered: u64,
    pub channels_created: u64,
    pub conversations_started: u64,
    pub conversations_ended: u64,
    /// Knowledge API requests answered (listings and documents).
    #[serde(default)]
    pub knowledge_requests: u64,
    /// Single documents served (`GET .../documents/{id}`).
    #[serde(default)]
    pub knowledge_documents_fetched: u64,
    pub faults_injected: BTreeMap<String, u64>,
}

/// Per-fault firing counters, one per configured fault.
pub struct FaultState {
    pub fault: Fault,
    pub every: Every,
    pub injected: AtomicU64,
}

impl FaultState {
    /// Counts an event; true when this fault fires on it (and records that).
    pub fn fires(&self, n: u64) -> bool {
        let hit = self.every.tick(n);
        if hit {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

/// A Copilot third-party-action suggestion the simulator raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopilotRecord {
    pub conversation_id: String,
    pub suggestion_id: String,
    /// The `thirdPartySuggestion` answered, once it was.
    pub answer: Option<Value>,
    /// PATCHes received (more than 1: retries of the same answer).
    pub patches: u32,
}

/// A conversation the player has announced, for the analytics query.
#[derive(Debug, Clone)]
pub struct SimCall {
    pub queue_id: String,
    /// The agent user on the call.
    pub agent_user: String,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
}

#[derive(Default)]
pub struct Inner {
    pub tokens: HashMap<String, Instant>,
    /// Tokens from the implicit grant: the signed-in user and the expiry.
    pub user_tokens: HashMap<String, (String, Instant)>,
    pub channels: HashMap<String, ChannelState>,
    pub tutorial: HashMap<u64, mpsc::UnboundedSender<Outbound>>,
    pub pushes: Vec<PushRecord>,
    pub push_index: HashMap<String, usize>,
    /// When each (conversation, article) was last recorded (ms since start).
    pub pushed_articles: HashMap<(String, String), u64>,
    /// Participant attributes as written, by (conversation, participant).
    pub attributes: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Copilot suggestions raised, by suggestion id.
    pub copilot: BTreeMap<String, CopilotRecord>,
    /// Every conversation played so far, by id.
    pub calls: BTreeMap<String, SimCall>,
    /// Every token issued, revoked or not (tests check none leaks).
    pub issued: Vec<String>,
}

/// Fixed behaviour of a simulator instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_id: String,
    pub token_ttl: Duration,
    pub channel_ttl: Duration,
    pub heartbeat: Duration,
    /// Accepted client id and secret; any non-empty pair when `None`.
    pub credentials: Option<(String, String)>,
    /// An article pushed again to a call within this long (ms) by auto
    /// mode counts as a duplicate suggestion.
    pub cooldown_ms: u64,
    /// Raise a Copilot third-party-action suggestion every this many
    /// customer utterances of a call whose topic is subscribed (0: never).
    pub copilot_every: u32,
    /// The user `/oauth/authorize` signs in (and every call's default agent).
    pub agent_user: String,
}

/// Everything the handlers and the player share.
pub struct Shared {
    pub base_url: String,
    pub settings: Settings,
    pub started: Instant,
    pub started_at: SystemTime,
    pub faults: Vec<FaultState>,
    pub counters: Counters,
    /// Woken whenever subscriptions or listeners change.
    pub changed: Notify,
    /// While set, streaming sockets are refused (a network outage).
    pub outage: AtomicBool,
    /// While non-zero, the token endpoint answers with this status.
    pub token_failure: std::sync::atomic::AtomicU16,
    /// While non-zero, subscription requests naming a call's transcription
    /// topic answer with this status.
    pub transcript_subscription_failure: std::sync::atomic::AtomicU16,
    /// The Knowledge API's knowledge bases and documents.
    pub knowledge: Mutex<super::knowledge::Knowledge>,
    next_conn: AtomicU64,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(base_url: String, settings: Settings, faults: &[Fault]) -> Self {
        Self {
            base_url,
            settings,
            started: Instant::now(),
            started_at: SystemTime::now(),
            faults: faults
                .iter()
                .map(|&fault| FaultState { fault, every: Every::default(), injected: AtomicU64::new(0) })
                .collect(),
            counters: Counters::default(),
            changed: Notify::new(),
            outage: AtomicBool::new(false),
            token_failure: std::sync::atomic::AtomicU16::new(0),
            transcript_subscription_failure: std::sync::atomic::AtomicU16::new(0),
            knowledge: Mutex::new(super::knowledge::Knowledge::default()),
            next_conn: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The state, even if a handler panicked while holding the lock.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The knowledge bases, even if a handler panicked while holding the lock.
    pub fn knowledge(&self) -> MutexGuard<'_, super::knowledge::Knowledge> {
        self.knowledge.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The configured faults of one kind.
    pub fn faults_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a FaultState> + 'a {
        self.faults.iter().filter(move |f| f.fault.kind() == kind)
    }

    /// How long tokens stay valid when `token-expire` is on.
    pub fn token_lifetime_override(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f.fault {
            Fault::TokenExpire { after } => Some(after),
            _ => None,
        })
    }

    /// Sends an event to every connected socket subscribed to `topic`;
    /// returns how many received it.
    pub fn publish(&self, topic: &str, frame: &str) -> usize {
        let inner = self.lock();
        let mut n = 0;
        for ch in inner.channels.values() {
            if ch.topics.contains(topic)
                && let Some((_, tx)) = &ch.conn
                && tx.send(Outbound::Event(frame.to_string())).is_ok()
            {
                n += 1;
            }
        }
        n
    }

    /// Sends a frame to every connected socket (captured-traffic replay of
    /// frames without a topic).
    pub fn publish_all(&self, frame: &str) {
        let inner = self.lock();
        for (_, tx) in inner.channels.values().filter_map(|c| c.conn.as_ref()) {
            let _ = tx.send(Outbound::Event(frame.to_string()));
        }
    }

    /// Sends a frame to every subscribed tutorial-dialect client.
    pub fn publish_tutorial(&self, frame: &str) -> usize {
        let inner = self.lock();
        inner.tutorial.values().filter(|tx| tx.send(Outbound::Event(frame.to_string())).is_ok()).count()
    }

    /// Closes every socket (simulator shutdown).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        for ch in inner.channels.values_mut() {
            if let Some((_, tx)) = ch.conn.take() {
                let _ = tx.send(Outbound::Replaced);
            }
        }
        for (_, tx) in inner.tutorial.drain() {
            let _ = tx.send(Outbound::Replaced);
        }
    }

    /// Whether any channel is subscribed to `topic`.
    pub fn subscribed(&self, topic: &str) -> bool {
        self.lock().channels.values().any(|c| c.topics.contains(topic))
    }

    /// Whether any client listens at all: a connected socket on a channel
    /// subscribed to conversation events, or a tutorial subscriber.
    pub fn has_listener(&self) -> bool {
        let inner = self.lock();
        !inner.tutorial.is_empty()
            || inner.channels.values().any(|c| {
                c.conn.is_some() && c.topics.iter().any(|t| crate::net::protocol::is_conversation_topic(t))
            })
    }

    /// Whether a tutorial-dialect client is subscribed.
    pub fn has_tutorial_listener(&self) -> bool {
        !self.lock().tutorial.is_empty()
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut faults_injected = BTreeMap::new();
        for f in &self.faults {
            *faults_injected.entry(f.fault.kind().to_string()).or_insert(0) += get(&f.injected);
        }
        SimStats {
            utterances_sent: get(&c.utterances_sent),
            frames_sent: get(&c.frames_sent),
            pushes_recorded: get(&c.pushes_recorded),
            duplicate_suggestions: get(&c.duplicate_suggestions),
            idempotent_replays: get(&c.idempotent_replays),
            attributes_written: get(&c.attributes_written),
            copilot_raised: get(&c.copilot_raised),
            copilot_answered: get(&c.copilot_answered),
            tokens_issued: get(&c.tokens_issued),
            served_401: get(&c.served_401),
            served_403: get(&c.served_403),
            served_429: get(&c.served_429),
            served_500: get(&c.served_500),
            ws_connections: get(&c.ws_connections),
            pings_answered: get(&c.pings_answered),
            channels_created: get(&c.channels_created),
            conversations_started: get(&c.conversations_started),
            conversations_ended: get(&c.conversations_ended),
            knowledge_requests: get(&c.knowledge_requests),
            knowledge_documents_fetched: get(&c.knowledge_documents_fetched),
            faults_injected,
        }
    }
}
