//! Plain domain types shared by the network layer, the engine and the
//! console: what a transcript event, a connection state and a push outcome
//! are, independent of any wire format or runtime. Pure data (serde only).

use serde::{Deserialize, Serialize};

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Customer,
    Agent,
}

impl Speaker {
    /// Genesys channel names: `EXTERNAL` is the customer, `INTERNAL` the
    /// agent or IVR. `BOTH`/`UNKNOWN`/missing count as the customer, since
    /// suggestions are for what the customer says.
    pub fn from_channel(channel: Option<&str>) -> Self {
        match channel.map(str::to_ascii_uppercase).as_deref() {
            Some("INTERNAL") => Self::Agent,
            _ => Self::Customer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
        }
    }
}

/// One utterance (or a revision of one), whichever dialect it came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEvent {
    pub conversation_id: String,
    pub utterance_id: String,
    pub speaker: Speaker,
    pub text: String,
    pub is_final: bool,
    /// Offset from the start of the call, when the source says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<i64>,
}

/// The transcript stream's state, for the engine and the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    Live,
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// Stopped for good (bad credentials, missing permission); says why.
    Failed {
        reason: String,
    },
}

impl ConnectionState {
    pub fn label(&self) -> String {
        match self {
            Self::Connecting => "connecting".into(),
            Self::Live => "live".into(),
            Self::Reconnecting { attempt, delay_ms, reason } => {
                format!("reconnecting in {:.1} s (attempt {attempt}: {reason})", *delay_ms as f64 / 1000.0)
            }
            Self::Failed { reason } => format!("failed: {reason}"),
        }
    }
}

/// Something the transcript stream observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamEvent {
    Connection(ConnectionState),
    /// A heartbeat or pong arrived: the socket is alive.
    Heartbeat,
    /// A token was obtained; it expires in this many seconds.
    TokenRefreshed {
        expires_in_s: u64,
    },
    ConversationStarted {
        conversation_id: String,
        queue_id: Option<String>,
    },
    ConversationEnded {
        conversation_id: String,
    },
    /// Who is on a conversation, from a conversation event that lists its
    /// participants (sent again whenever they change, e.g. on a transfer).
    Participants {
        conversation_id: String,
        participants: Vec<Participant>,
    },
    Transcript(TranscriptEvent),
    /// A frame that could not be used; the stream went on.
    Discarded {
        reason: String,
    },
    /// Something the operator should know; the stream goes on.
    Warning {
        message: String,
    },
    /// Genesys Copilot raised a third-party-action suggestion for a call and
    /// waits for our answer (`v2.conversations.{id}.suggestions.thirdpartyaction`).
    CopilotRequest {
        conversation_id: String,
        suggestion_id: String,
    },
}

/// Where a suggestion is delivered. The engine decides what to deliver;
/// each sink knows how (see `delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sink {
    /// The built-in agent widget: the conversation's live feed.
    Widget,
    /// The original design's push contract (`genesys.push_url`).
    Webhook,
    /// Participant attributes on the customer participant.
    GenesysAttributes,
    /// Answers to Genesys Copilot third-party-action suggestions (preview).
    GenesysCopilot,
}

impl Sink {
    pub const ALL: [Self; 4] = [Self::Widget, Self::Webhook, Self::GenesysAttributes, Self::GenesysCopilot];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Widget => "widget",
            Self::Webhook => "webhook",
            Self::GenesysAttributes => "genesys-attributes",
            Self::GenesysCopilot => "genesys-copilot",
        }
    }
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Sink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown sink `{s}` (expected widget, webhook, genesys-attributes or genesys-copilot)")
        })
    }
}

/// One participant of a conversation: the ids a delivery sink needs (the
/// customer's participant id for its attributes, the agents' user ids for
/// who may see the call's suggestions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The participant id (per conversation, not a user id).
    pub id: String,
    /// `customer`, `agent`, `acd`, `ivr`, ... as Genesys sends it.
    pub purpose: String,
    /// The user behind an agent participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Participant {
    pub fn is_agent(&self) -> bool {
        self.purpose.eq_ignore_ascii_case("agent")
    }
}

/// One article result in a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushItem {
    pub article_id: String,
    pub title: String,
    pub content: String,
    pub score: f32,
}

/// A request to show articles to the agent of one conversation, through
/// the listed sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Idempotency key: every retry of this push carries the same id, in
    /// this run and after a restart.
    pub suggestion_id: String,
    pub conversation_id: String,
    pub items: Vec<PushItem>,
    /// The sinks still to deliver to.
    pub sinks: Vec<Sink>,
    /// An operator decided (rather than auto mode).
    #[serde(default)]
    pub operator: bool,
    /// The customer participant (for `genesys-attributes`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_participant: Option<String>,
    /// The Genesys Copilot suggestion this answers (`genesys-copilot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copilot_suggestion: Option<String>,
    /// The article's link, when the knowledge base has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Probability that the article is right, when calibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
}

/// How one HTTP attempt of a push went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAttempt {
    pub suggestion_id: String,
    pub sink: Sink,
    pub attempt: u32,
    /// HTTP status, or `None` for a connection error or timeout.
    pub status: Option<u16>,
    /// Why it will be retried, and after how long.
    pub retry_in_ms: Option<u64>,
    pub reason: String,
}

/// The end result of a push to one sink after all its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOutcome {
    pub suggestion_id: String,
    pub sink: Sink,
    pub conversation_id: String,
    pub status: Option<u16>,
    pub attempts: u32,
    pub latency_ms: u64,
    /// `None` when pushed; otherwise what went wrong, in the server's words
    /// where it gave any.
    pub error: Option<String>,
}

impl PushOutcome {
    /// The outcome of `req` at `sink`, `latency_ms` after it started.
    pub fn of(
        req: &PushRequest,
        sink: Sink,
        status: Option<u16>,
        attempts: u32,
        latency_ms: u64,
        error: Option<String>,
    ) -> Self {
        Self {
            suggestion_id: req.suggestion_id.clone(),
            sink,
            conversation_id: req.conversation_id.clone(),
            status,
            attempts,
            latency_ms,
            error,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One article matched by a search, with its best chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub article_id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The score thresholds apply to, in -1..=1: the cosine similarity of
    /// the best chunk, or the hybrid score when BM25 is fused in.
    pub score: f32,
    /// Which chunk of the article matched best.
    pub chunk: u32,
    /// That chunk's text (without the title prefix).
    pub text: String,
    /// Explanation of a hybrid hit: the best chunk's cosine ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense: Option<f32>,
    /// ... its BM25 score ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    /// ... and the query terms it contains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// Calibrated probability that this is the right article, when the KB
    /// has a calibration (`kb calibrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
    /// Credit from the call's earlier searches (the engine's call context,
    /// `crate::engine::context`); hits are ranked by `score` plus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<f32>,
}

impl Hit {
    /// What the hit is ranked by within a call: its score plus the call
    /// context's credit.
    pub fn ranked_score(&self) -> f32 {
        self.score + self.context.unwrap_or(0.0)
    }
}
