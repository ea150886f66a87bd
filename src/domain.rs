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
    Transcript(TranscriptEvent),
    /// A frame that could not be used; the stream went on.
    Discarded {
        reason: String,
    },
    /// Something the operator should know; the stream goes on.
    Warning {
        message: String,
    },
}

/// One article result in a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushItem {
    pub article_id: String,
    pub title: String,
    pub content: String,
    pub score: f32,
}

/// A request to show articles to the agent of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Idempotency key: every retry of this push carries the same id.
    pub suggestion_id: String,
    pub conversation_id: String,
    pub items: Vec<PushItem>,
}

/// How one HTTP attempt of a push went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAttempt {
    pub suggestion_id: String,
    pub attempt: u32,
    /// HTTP status, or `None` for a connection error or timeout.
    pub status: Option<u16>,
    /// Why it will be retried, and after how long.
    pub retry_in_ms: Option<u64>,
    pub reason: String,
}

/// The end result of a push after all its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushOutcome {
    pub suggestion_id: String,
    pub conversation_id: String,
    pub status: Option<u16>,
    pub attempts: u32,
    pub latency_ms: u64,
    /// `None` when pushed; otherwise what went wrong, in the server's words
    /// where it gave any.
    pub error: Option<String>,
}

impl PushOutcome {
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
}
