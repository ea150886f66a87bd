//! The simulator's side of the Genesys delivery sinks: the participant
//! attributes PATCH, Copilot third-party-action suggestions (raised by the
//! player on a cadence, answered by PATCH), and `/sim/attributes` and
//! `/sim/copilot` to inspect them. Faults, token checks and error bodies
//! are the push endpoint's.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{error, push_fault, reject_unauthorized};
use super::state::{CopilotRecord, Shared};

type Sim = State<Arc<Shared>>;

/// Bot flows cap an attribute value at 256 characters; the simulator
/// refuses longer ones so a client that overflows is caught in tests.
const MAX_VALUE_CHARS: usize = 256;

/// One participant's attributes as written.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AttributesRecord {
    pub conversation_id: String,
    pub participant_id: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// `PATCH /api/v2/conversations/{id}/participants/{participantId}/attributes`
/// with `{"attributes": {string: string}}`: merged into what is there, 202.
pub async fn attributes(
    State(sim): Sim,
    headers: HeaderMap,
    Path((conversation_id, participant_id)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = push_fault(&sim) {
        return r;
    }
    let Ok(parsed) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad.request", "body is not JSON");
    };
    let Some(map) = parsed.get("attributes").and_then(Value::as_object) else {
        return error(StatusCode::BAD_REQUEST, "invalid.value", "attributes must be an object");
    };
    let mut clean = std::collections::BTreeMap::new();
    for (k, v) in map {
        let Some(v) = v.as_str() else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid.value",
                &format!("attribute {k} is not a string"),
            );
        };
        if v.chars().count() > MAX_VALUE_CHARS {
            return error(StatusCode::BAD_REQUEST, "invalid.value", &format!("attribute {k} is too long"));
        }
        clean.insert(k.clone(), v.to_string());
    }
    {
        let mut inner = sim.lock();
        let known = inner.calls.contains_key(&conversation_id);
        if !known {
            return error(StatusCode::NOT_FOUND, "not.found", "conversation not found");
        }
        inner.attributes.entry((conversation_id, participant_id)).or_default().extend(clean);
    }
    Shared::bump(&sim.counters.attributes_written);
    StatusCode::ACCEPTED.into_response()
}

/// `PATCH /api/v2/conversations/{id}/suggestions/{suggestionId}` with a
/// `thirdPartySuggestion`: records the answer (a repeat is a retry), and
/// returns the suggestion.
pub async fn copilot_answer(
    State(sim): Sim,
    headers: HeaderMap,
    Path((conversation_id, suggestion_id)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = push_fault(&sim) {
        return r;
    }
    let Ok(parsed) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad.request", "body is not JSON");
    };
    let Some(answer) =
        parsed.get("thirdPartySuggestion").filter(|a| a.get("text").is_some_and(Value::is_string))
    else {
        return error(StatusCode::BAD_REQUEST, "invalid.value", "thirdPartySuggestion.text is required");
    };
    let mut inner = sim.lock();
    let Some(rec) = inner.copilot.get_mut(&suggestion_id).filter(|r| r.conversation_id == conversation_id)
    else {
        return error(StatusCode::NOT_FOUND, "not.found", "suggestion not found");
    };
    rec.patches += 1;
    if rec.answer.is_none() {
        Shared::bump(&sim.counters.copilot_answered);
    }
    rec.answer = Some(answer.clone());
    let out = json!({
        "id": suggestion_id, "conversation": {"id": conversation_id}, "type": "ThirdPartySuggestion",
        "state": "Suggested", "thirdPartySuggestion": answer,
    });
    (StatusCode::OK, Json(out)).into_response()
}

/// Raises a Copilot suggestion for a call (the player does, on its
/// cadence) if a client follows the call's third-party-action topic.
pub fn raise_copilot(sim: &Shared, conversation_id: &str, queue_id: &str, utterance: &str) {
    let topic = format!("v2.conversations.{conversation_id}.suggestions.thirdpartyaction");
    if !sim.subscribed(&topic) {
        return;
    }
    let sid = uuid::Uuid::new_v4().to_string();
    sim.lock().copilot.insert(
        sid.clone(),
        CopilotRecord {
            conversation_id: conversation_id.to_string(),
            suggestion_id: sid.clone(),
            answer: None,
            patches: 0,
        },
    );
    let body = json!({
        "conversationId": conversation_id, "suggestionId": sid, "state": "Suggested",
        "triggerType": "Intent", "thirdPartySuggestion": null,
        "context": { "queueId": queue_id, "mediaType": "Call", "queryStatement": utterance, "language": "en-US" }
    });
    let frame = json!({ "topicName": topic, "version": "2", "eventBody": body,
                        "metadata": { "CorrelationId": uuid::Uuid::new_v4().to_string() } });
    sim.publish(&topic, &frame.to_string());
    Shared::bump(&sim.counters.copilot_raised);
}

pub fn attributes_list(sim: &Shared) -> Vec<AttributesRecord> {
    sim.lock()
        .attributes
        .iter()
        .map(|((c, p), a)| AttributesRecord {
            conversation_id: c.clone(),
            participant_id: p.clone(),
            attributes: a.clone(),
        })
        .collect()
}

/// `GET /sim/attributes`.
pub async fn attributes_written(State(sim): Sim) -> Response {
    Json(attributes_list(&sim)).into_response()
}

/// `GET /sim/copilot`.
pub async fn copilot_records(State(sim): Sim) -> Response {
    let list: Vec<CopilotRecord> = sim.lock().copilot.values().cloned().collect();
    Json(list).into_response()
}
