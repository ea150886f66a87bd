//! Wire types for both transcript dialects, decoded with serde, and their
//! mapping to domain events. Pure: fixture-tested without sockets.
//!
//! Genesys marks almost every field optional, and real traffic bears that
//! out (status-only transcription events, missing `transcripts`, `dialect`
//! in two spellings), so every field here is an `Option` and decoding never
//! fails on a missing one. Unknown topics and types decode to
//! [`Frame::Unknown`], not an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Frames larger than this are dropped unparsed: no real event comes close,
/// and parsing megabytes on the stream's task would stall it.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

// ---- notifications dialect ---------------------------------------------------

/// The envelope of every notifications-API frame.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub topic_name: Option<String>,
    pub version: Option<String>,
    pub event_body: Option<Value>,
    pub metadata: Option<Value>,
}

/// `v2.conversations.{id}.transcription` body.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionBody {
    pub event_time: Option<String>,
    pub organization_id: Option<String>,
    pub conversation_id: Option<String>,
    pub communication_id: Option<String>,
    pub session_start_time_ms: Option<i64>,
    pub transcription_start_time_ms: Option<i64>,
    pub transcripts: Option<Vec<TranscriptResult>>,
    pub status: Option<TranscriptStatus>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptResult {
    pub utterance_id: Option<String>,
    pub is_final: Option<bool>,
    pub channel: Option<String>,
    pub alternatives: Option<Vec<Alternative>>,
    pub engine_provider: Option<String>,
    pub engine_id: Option<String>,
    pub dialect: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    pub confidence: Option<f64>,
    pub offset_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub transcript: Option<String>,
    pub decorated_transcript: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptStatus {
    pub offset_ms: Option<i64>,
    pub status: Option<String>,
}

/// `v2.routing.queues.{id}.conversations` / `v2.users.{id}.conversations` body.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConversationBody {
    pub id: Option<String>,
    pub participants: Option<Vec<Participant>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: Option<String>,
    pub purpose: Option<String>,
    pub user_id: Option<String>,
    pub queue_id: Option<String>,
    pub connected_time: Option<String>,
    pub end_time: Option<String>,
}

/// A conversation's lifecycle as far as transcription cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationPhase {
    /// An agent is connected: subscribe to its transcription.
    Active { queue_id: Option<String> },
    /// Every agent has left (or the conversation ended): unsubscribe.
    Ended,
    /// Still ringing or in IVR; nothing to do yet.
    Pending,
}

impl ConversationBody {
    /// Active while any agent participant is connected and not ended. All
    /// agent participants count: re-routes create extra agent entries.
    pub fn phase(&self) -> ConversationPhase {
        let parts = self.participants.as_deref().unwrap_or_default();
        let agents: Vec<&Participant> = parts
            .iter()
            .filter(|p| p.purpose.as_deref().is_some_and(|x| x.eq_ignore_ascii_case("agent")))
            .collect();
        let queue_id = parts.iter().find_map(|p| p.queue_id.clone());
        if agents.iter().any(|p| p.connected_time.is_some() && p.end_time.is_none()) {
            return ConversationPhase::Active { queue_id };
        }
        let everyone_left = !parts.is_empty() && parts.iter().all(|p| p.end_time.is_some());
        if everyone_left || agents.iter().any(|p| p.end_time.is_some()) {
            ConversationPhase::Ended
        } else {
            ConversationPhase::Pending
        }
    }

    /// The participants still on the call that carry an id and a purpose
    /// (an entry without either is of no use to anyone downstream).
    pub fn participants(&self) -> Vec<crate::domain::Participant> {
        self.participants
            .iter()
            .flatten()
            .filter(|p| p.end_time.is_none())
            .filter_map(|p| {
                Some(crate::domain::Participant {
                    id: p.id.clone().filter(|i| !i.is_empty())?,
                    purpose: p.purpose.clone().filter(|x| !x.is_empty())?,
                    user_id: p.user_id.clone().filter(|u| !u.is_empty()),
                })
            })
            .collect()
    }
}

/// A decoded frame of either dialect.
#[derive(Debug, Clone)]
pub enum Frame {
    Heartbeat,
    Pong,
    SocketClosing,
    /// Other `v2.system.*` topics (token revoked, no longer subscribed).
    System {
        topic: String,
        message: Option<String>,
    },
    Conversation(ConversationBody),
    Transcription(TranscriptionBody),
    /// Copilot raised a third-party-action suggestion for a call.
    CopilotSuggestion {
        conversation_id: String,
        suggestion_id: String,
        state: Option<String>,
    },
    /// Tutorial dialect: cumulative transcript of one interaction.
    TutorialTranscript {
        id: String,
        transcript: String,
    },
    /// A topic or type this client does not use.
    Unknown {
        what: String,
    },
}

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
}

/// Decodes one notifications-API text frame.
pub fn decode_notification(text: &str) -> Result<Frame, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(text.len()));
    }
    let env: Envelope = serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let topic = env.topic_name.unwrap_or_default();
    let body = env.event_body.unwrap_or(Value::Null);
    let message = body.get("message").and_then(Value::as_str).map(str::to_string);
    if topic == "channel.metadata" {
        return Ok(match message.as_deref() {
            Some(m) if m.eq_ignore_ascii_case("pong") => Frame::Pong,
            _ => Frame::Heartbeat,
        });
    }
    if topic == "v2.system.socket_closing" {
        return Ok(Frame::SocketClosing);
    }
    if topic.starts_with("v2.system.") {
        return Ok(Frame::System { topic, message });
    }
    let parse = |what: &str| DecodeError::Invalid(format!("{what} body: unexpected shape"));
    // A missing body decodes as an empty one: every field is optional.
    let body = if body.is_null() { Value::Object(serde_json::Map::new()) } else { body };
    if topic.starts_with("v2.conversations.") && topic.ends_with(".transcription") {
        let b: TranscriptionBody = serde_json::from_value(body).map_err(|_| parse("transcription"))?;
        return Ok(Frame::Transcription(b));
    }
    if is_conversation_topic(&topic) {
        let b: ConversationBody = serde_json::from_value(body).map_err(|_| parse("conversation"))?;
        return Ok(Frame::Conversation(b));
    }
    if let Some(id) =
        topic.strip_prefix("v2.conversations.").and_then(|t| t.strip_suffix(".suggestions.thirdpartyaction"))
    {
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let suggestion_id =
            field("suggestionId").filter(|s| !s.is_empty()).ok_or_else(|| parse("copilot suggestion"))?;
        let conversation_id = field("conversationId").unwrap_or_else(|| id.to_string());
        return Ok(Frame::CopilotSuggestion { conversation_id, suggestion_id, state: field("state") });
    }
    Ok(Frame::Unknown { what: if topic.is_empty() { "frame without topicName".into() } else { topic } })
}

/// `v2.routing.queues.{id}.conversations` or `v2.users.{id}.conversations`.
pub fn is_conversation_topic(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('.').collect();
    matches!(
        parts.as_slice(),
        ["v2", "routing", "queues", _, "conversations"] | ["v2", "users", _, "conversations"]
    )
}

/// The transcription topic of a conversation.
pub fn transcription_topic(conversation_id: &str) -> String {
    format!("v2.conversations.{conversation_id}.transcription")
}

/// The topic of Copilot's third-party-action suggestions for a call.
pub fn copilot_topic(conversation_id: &str) -> String {
    format!("v2.conversations.{conversation_id}.suggestions.thirdpartyaction")
}

/// The conversation id in a transcription topic.
pub fn conversation_of_topic(topic: &str) -> Option<&str> {
    topic.strip_prefix("v2.conversations.")?.strip_suffix(".transcription")
}

/// The text of a transcript result: the decorated form when present (it
/// writes numbers as digits, better for matching), else the plain one.
pub fn result_text(r: &TranscriptResult) -> Option<String> {
    let alt = r.alternatives.as_ref()?.first()?;
    let text =
        alt.decorated_transcript.as_deref().filter(|t| !t.trim().is_empty()).or(alt.transcript.as_deref())?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Whether a transcription event ends the session.
pub fn session_ended(b: &TranscriptionBody) -> bool {
    b.status.as_ref().and_then(|s| s.status.as_deref()) == Some("SESSION_ENDED")
}

/// A notifications channel as returned by `POST /api/v2/notifications/channels`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub connect_uri: String,
    pub expires: Option<String>,
}

/// One topic in a subscription request or listing.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permissions: Option<Vec<String>>,
}

impl Topic {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), state: None, rejection_reason: None, missing_permissions: None }
    }
}

/// `{"entities": [...]}` listing of subscribed topics.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct TopicListing {
    #[serde(default)]
    pub entities: Vec<Topic>,
}

/// The client's keep-alive: exactly this text.
pub const PING: &str = r#"{"message":"ping"}"#;

// ---- tutorial dialect --------------------------------------------------------

#[derive(Debug, Deserialize)]
struct TutorialFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<TutorialData>,
}

#[derive(Debug, Deserialize)]
struct TutorialData {
    id: Option<Value>,
    transcript: Option<String>,
}

/// The tutorial dialect's subscription message.
pub const TUTORIAL_SUBSCRIBE: &str = r#"{"subscribe":["interaction:transcript"]}"#;
/// The tutorial dialect's heartbeat, sent by the server and echoed back.
pub const TUTORIAL_HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;

/// Decodes one tutorial-dialect text frame.
pub fn decode_tutorial(text: &str) -> Result<Frame, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(text.len()));
    }
    let f: TutorialFrame = serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    match f.kind.as_deref() {
        Some("heartbeat") => Ok(Frame::Heartbeat),
        Some("interaction:transcript") => {
            let data =
                f.data.ok_or_else(|| DecodeError::Invalid("transcript event without `data`".into()))?;
            let id = match data.id {
                Some(Value::String(s)) if !s.is_empty() => s,
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(DecodeError::Invalid("transcript event without `data.id`".into())),
            };
            Ok(Frame::TutorialTranscript { id, transcript: data.transcript.unwrap_or_default() })
        }
        Some(other) => Ok(Frame::Unknown { what: format!("type {other}") }),
        None => Ok(Frame::Unknown { what: "frame without type".into() }),
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
