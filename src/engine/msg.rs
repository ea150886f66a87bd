//! The engine's three vocabularies: [`Msg`] (facts it is told), [`Command`]
//! (what the operator asked for) and [`Effect`] (what it asks the runtime to
//! do). [`Record`] is the audit log's and the headless console's line.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::durable::ConversationRecord;
use super::policy::{Knob, Mode};
use crate::domain::{
    ConnectionState, Hit, PushAttempt, PushOutcome, PushRequest, Sink, Speaker, StreamEvent,
};

/// Identifies a search request; results for any other id are stale.
pub type RequestId = u64;

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// From the transcript stream.
    Stream(StreamEvent),
    /// The knowledge base answered a search.
    SearchDone { request: RequestId, conversation_id: String, hits: Vec<Hit>, timing: SearchTiming },
    /// The knowledge base could not answer a search.
    SearchFailed { request: RequestId, conversation_id: String, error: String },
    /// One attempt of a push failed and will be retried.
    PushAttempted(PushAttempt),
    /// A push finished, one way or the other.
    PushDone(PushOutcome),
    /// The operator asked for something.
    Command(Command),
    /// Time passed: timers may be due.
    Tick,
    /// The ledger has recorded everything these pushes depend on: they may
    /// now be delivered. `commit` is how long the ledger's commit took (its
    /// flush to disk), when one was written for them.
    Durable { pushes: Vec<PushRequest>, commit: Option<Duration> },
    /// The ledger could not record; these pushes were held back, unsent.
    LedgerFailed { error: String, held: Vec<PushRequest> },
    /// The ledger records again after a failure.
    LedgerRecovered,
    /// An agent's page reacted to a suggestion.
    Agent(AgentEvent),
    /// Need detection judged a final utterance ([`Effect::JudgeNeed`]).
    NeedJudged { conversation_id: String, utterance_id: String, need: bool },
    /// A queue's lease went to another worker (floor mode): its calls are
    /// that worker's now.
    HandedOver { queue: String },
    /// A rebuilt knowledge base answers searches from now on.
    KbReloaded(KbReload),
    /// A rebuild (or the sync feeding it) failed; the old index stays.
    KbReloadFailed { reason: String },
}

/// What changed in the knowledge base with a live reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbReload {
    /// The new index's version (the index the process started with is 1).
    pub version: u64,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// From the start of the rebuild to the new index being ready.
    pub took: Duration,
    /// Articles in the new index.
    pub articles: usize,
}

/// What an agent's widget page reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The page received and showed the suggestion.
    Acknowledged {
        conversation_id: String,
        suggestion_id: String,
        user_id: Option<String>,
    },
    Feedback {
        conversation_id: String,
        suggestion_id: String,
        feedback: Feedback,
        user_id: Option<String>,
    },
}

/// An agent's verdict on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Useful,
    NotUseful,
    /// Copied the text: counts as used.
    Copied,
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Useful => "useful",
            Self::NotUseful => "not useful",
            Self::Copied => "copied",
        }
    }
}

/// When the knowledge-base worker started and finished a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTiming {
    pub started: Instant,
    pub finished: Instant,
}

/// An article chosen by the operator to push by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleRef {
    pub id: String,
    pub title: String,
    pub content: String,
}

/// Operator intents, each about a conversation or a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Send one listed suggestion.
    Approve {
        suggestion: String,
    },
    /// Send every suggestion of a conversation that is at or above `push`.
    ApproveAll {
        conversation: String,
    },
    /// Send a suggestion with edited text in place of its content.
    Edit {
        suggestion: String,
        text: String,
    },
    Reject {
        suggestion: String,
    },
    /// Send a failed suggestion again.
    Retry {
        suggestion: String,
    },
    /// Push any article to a conversation, regardless of cooldown.
    PushArticle {
        conversation: String,
        article: ArticleRef,
    },
    /// Set the mode of one conversation, or the global mode.
    SetMode {
        conversation: Option<String>,
        mode: Mode,
    },
    /// Pause (or resume) one conversation, or everything.
    SetPaused {
        conversation: Option<String>,
        paused: bool,
    },
    /// Move a knob by some steps.
    Adjust {
        knob: Knob,
        steps: i32,
    },
}

/// What the engine asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Judge whether a final utterance carries a need (answered with
    /// [`Msg::NeedJudged`], before any search whose window holds it is
    /// answered); it leaves the query window if it does not.
    JudgeNeed {
        conversation_id: String,
        utterance_id: String,
        text: String,
        /// The query window holding it at its end, which it is read in.
        context: String,
    },
    Search {
        request: RequestId,
        conversation_id: String,
        query: String,
        k: usize,
    },
    /// Deliver once everything recorded before it is durable (record,
    /// then act): the runtime hands it to the ledger, which answers with
    /// [`Msg::Durable`].
    Push(PushRequest),
    /// Deliver now, to the request's sinks.
    Deliver(PushRequest),
    /// Save a conversation's durable state (suggestions, decisions,
    /// deliveries, cooldowns) to the ledger.
    Persist(Box<ConversationRecord>),
    /// Stop following a conversation the engine ended on its own (it went
    /// idle), so the stream drops its topic and ignores its late events:
    /// the stream's view of which calls are live agrees with the engine's.
    Unfollow {
        conversation_id: String,
    },
    /// Append to the audit log (and print, in headless mode).
    Record(Record),
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Auto,
    Operator,
}

/// A decision on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Send,
    SendEdited,
    Reject,
    Retry,
    ManualPush,
}

/// One line of the audit log / headless output. Tagged by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    Transcript {
        conversation_id: String,
        utterance_id: String,
        speaker: Speaker,
        text: String,
        is_final: bool,
    },
    ConversationStarted {
        conversation_id: String,
        queue_id: Option<String>,
    },
    ConversationEnded {
        conversation_id: String,
    },
    /// A completed search; `stale` ones came back after the window moved
    /// on and were not used.
    Search {
        conversation_id: String,
        request: RequestId,
        query: String,
        results: Vec<ScoredArticle>,
        stale: bool,
        /// The version of the index that answered (see [`Msg::KbReloaded`]).
        #[serde(default)]
        kb_version: u64,
    },
    Suggestion {
        suggestion_id: String,
        conversation_id: String,
        article_id: String,
        title: String,
        score: f32,
        state: String,
    },
    Decision {
        suggestion_id: String,
        conversation_id: String,
        article_id: String,
        action: Action,
        by: Actor,
        #[serde(skip_serializing_if = "Option::is_none")]
        original: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        edited: Option<String>,
    },
    PushAttempt(PushAttempt),
    Push {
        suggestion_id: String,
        conversation_id: String,
        sink: Sink,
        article_id: String,
        ok: bool,
        status: Option<u16>,
        attempts: u32,
        latency_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Connection(ConnectionState),
    /// Something the operator should know about the stream (a missing
    /// permission, say); it went on.
    Warning {
        message: String,
    },
    Setting {
        knob: String,
        value: String,
    },
    /// An agent page showed a suggestion (widget sink).
    Acknowledged {
        suggestion_id: String,
        conversation_id: String,
        article_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// An agent said whether a suggestion helped.
    AgentFeedback {
        suggestion_id: String,
        conversation_id: String,
        article_id: String,
        feedback: Feedback,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// The ledger's health changed (delivery state saved again, or not).
    Ledger {
        ok: bool,
        message: String,
    },
    /// A rebuilt knowledge base is in use: article ids added, removed and
    /// changed, and how many shown suggestions were marked changed.
    KbReloaded {
        version: u64,
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
        took_ms: u64,
        articles: usize,
        marked_changed: usize,
    },
    /// An operator's command was refused, and why.
    Refused {
        message: String,
    },
    /// A rebuild failed; the previous index is still answering.
    KbReloadFailed {
        reason: String,
    },
    /// Calls and deliveries taken over from the ledger at start.
    Restored {
        conversations: usize,
        suggestions: usize,
        redelivered: usize,
    },
}

/// An article id with its score (and call-context credit), for search
/// records, in the order the engine ranked them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredArticle {
    pub article_id: String,
    pub score: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<f32>,
}

impl ScoredArticle {
    /// What the engine ranked it by: its score plus the call context.
    pub fn ranked_score(&self) -> f32 {
        self.score + self.context.unwrap_or(0.0)
    }
}
