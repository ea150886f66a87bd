//! The simulator's `POST /api/v2/analytics/conversations/details/query`:
//! enough of the real query for catch-up to be tested against it. It reads
//! the interval (matching conversations by start time, as Genesys does),
//! `queueId`/`userId` segment predicates, `conversationId` and
//! `conversationEnd notExists` conversation predicates and paging, and
//! answers from the calls the player has announced. Unknown filters are
//! ignored rather than refused.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{error, reject_unauthorized};
use super::fault::Fault;
use super::state::Shared;

/// The default agent user of every call, and the user the simulator's
/// implicit grant signs in (see [`crate::sim::SimConfig::agent_user`]).
pub const SIM_AGENT: &str = "sim-agent";

pub async fn details_query(State(sim): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if sim.faults_of("analytics-403").next().is_some() {
        Shared::bump(&sim.counters.served_403);
        return error(
            StatusCode::FORBIDDEN,
            "missing.any.permissions",
            "Unable to perform the requested action. You must have at least one of the following permissions assigned: [analytics:conversationDetail:view]",
        );
    }
    for f in sim.faults_of("analytics-500") {
        if let Fault::Analytics500 { every } = f.fault
            && f.fires(every)
        {
            Shared::bump(&sim.counters.served_500);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal.server.error",
                "The server encountered an error",
            );
        }
    }
    let Ok(q) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad.request", "The request body is not valid JSON.");
    };
    let Some((from, to)) = q["interval"].as_str().and_then(parse_interval) else {
        return error(StatusCode::BAD_REQUEST, "bad.request", "interval must be start/end in ISO-8601.");
    };
    let wanted = |dimension: &str| -> Vec<String> {
        let filters = q["segmentFilters"].as_array().into_iter().flatten();
        filters
            .flat_map(|f| f["predicates"].as_array().into_iter().flatten())
            .filter(|p| p["dimension"] == dimension)
            .filter_map(|p| p["value"].as_str().map(String::from))
            .collect()
    };
    let (queues, users) = (wanted("queueId"), wanted("userId"));
    let conversation_predicates: Vec<&Value> = q["conversationFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["predicates"].as_array().into_iter().flatten())
        .collect();
    let open_only = conversation_predicates
        .iter()
        .any(|p| p["dimension"] == "conversationEnd" && p["operator"] == "notExists");
    let ids: Vec<&str> = conversation_predicates
        .iter()
        .filter(|p| p["dimension"] == "conversationId")
        .filter_map(|p| p["value"].as_str())
        .collect();
    let size = q["paging"]["pageSize"].as_u64().unwrap_or(25).clamp(1, 100) as usize;
    let number = q["paging"]["pageNumber"].as_u64().unwrap_or(1).max(1) as usize;

    let inner = sim.lock();
    let mut matched: Vec<(&String, &super::state::SimCall)> = inner
        .calls
        .iter()
        .filter(|(_, c)| c.started >= from && c.started <= to)
        .filter(|(_, c)| !open_only || c.ended.is_none())
        .filter(|(id, _)| ids.is_empty() || ids.contains(&id.as_str()))
        .filter(|(_, c)| {
            (queues.is_empty() && users.is_empty())
                || queues.contains(&c.queue_id)
                || users.contains(&c.agent_user)
        })
        .collect();
    matched.sort_by_key(|(id, c)| (c.started, (*id).clone()));
    let total = matched.len();
    let page: Vec<Value> = matched
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .map(|(id, c)| {
            let mut v = json!({
                "conversationId": id,
                "conversationStart": rfc3339(c.started),
                "originatingDirection": "inbound",
                "participants": [
                    {"purpose": "customer", "sessions": [{"mediaType": "voice", "segments": [{"segmentType": "interact"}]}]},
                    {"purpose": "acd", "sessions": [{"mediaType": "voice", "segments": [{"segmentType": "interact", "queueId": c.queue_id}]}]},
                    {"purpose": "agent", "userId": c.agent_user, "sessions": [{"mediaType": "voice", "segments": [{"segmentType": "interact", "queueId": c.queue_id}]}]}
                ],
            });
            if let Some(end) = c.ended {
                v["conversationEnd"] = json!(rfc3339(end));
            }
            v
        })
        .collect();
    // Genesys leaves out `conversations` when nothing matched.
    let mut answer = json!({ "totalHits": total });
    if !page.is_empty() {
        answer["conversations"] = Value::Array(page);
    }
    (StatusCode::OK, Json(answer)).into_response()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn parse_interval(s: &str) -> Option<(SystemTime, SystemTime)> {
    let (a, b) = s.split_once('/')?;
    Some((humantime::parse_rfc3339_weak(a).ok()?, humantime::parse_rfc3339_weak(b).ok()?))
}
