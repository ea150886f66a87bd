//! The simulator's REST side: both token endpoints, notification channels
//! and subscriptions, the push endpoint with its faults, and the `/sim/*`
//! inspection endpoints. Error bodies follow Genesys's `ErrorBody` shape.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::fault::Fault;
use super::state::{ChannelState, PushRecord, Shared};
use crate::net::protocol::{
    Topic, TopicListing, conversation_of_topic, is_conversation_topic, transcription_topic,
};

type Sim = State<Arc<Shared>>;

/// A Genesys-style error response.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "message": message, "code": code, "status": status.as_u16(), "messageParams": {}, "details": [], "errors": [] });
    (status, Json(body)).into_response()
}

/// Checks the bearer token: `Some(401 response)` for a missing, unknown or
/// expired one, `None` when the caller may proceed.
pub fn reject_unauthorized(sim: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let valid = token.is_some_and(|t| token_valid(sim, t));
    if valid {
        return None;
    }
    Shared::bump(&sim.counters.served_401);
    Some(error(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials."))
}

/// Whether a token was issued here and has not expired.
pub fn token_valid(sim: &Shared, token: &str) -> bool {
    sim.lock().tokens.get(token).is_some_and(|until| tokio::time::Instant::now() < *until)
}

/// `POST /oauth/token`: Basic credentials + `grant_type` (real Genesys), or
/// the credentials in the form body (tutorial).
pub async fn token(State(sim): Sim, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    let creds = basic.or_else(|| Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone())));
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            Json(json!({ "error": error, "description": description, "error_description": description })),
        )
            .into_response()
    };
    let forced = sim.token_failure.load(std::sync::atomic::Ordering::SeqCst);
    if forced != 0 {
        let status = StatusCode::from_u16(forced).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return if forced == 401 {
            oauth_error(status, "invalid_client", "authentication failed")
        } else {
            oauth_error(status, "temporarily_unavailable", "the login service is unavailable")
        };
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let Some((id, secret)) = creds.filter(|(i, s)| !i.is_empty() && !s.is_empty()) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client not found");
    };
    if let Some((want_id, want_secret)) = &sim.settings.credentials
        && (&id != want_id || &secret != want_secret)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "authentication failed");
    }
    let token = format!("{:032x}", rand::random::<u128>());
    let ttl = sim.settings.token_ttl;
    let valid_for = sim.token_lifetime_override().map_or(ttl, |o| o.min(ttl));
    let until = crate::duration::deadline(tokio::time::Instant::now(), valid_for);
    {
        let mut inner = sim.lock();
        inner.tokens.insert(token.clone(), until);
        inner.issued.push(token.clone());
    }
    if sim.token_lifetime_override().is_some() {
        sim.faults_of("token-expire").for_each(|f| {
            f.injected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
    Shared::bump(&sim.counters.tokens_issued);
    Json(json!({ "access_token": token, "token_type": "bearer", "expires_in": ttl.as_secs() }))
        .into_response()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The `rest-429` and `rest-503` faults, for channel and subscription
/// requests: `Some(refusal)` when one fires.
fn rest_fault(sim: &Shared) -> Option<Response> {
    for f in &sim.faults {
        match f.fault {
            Fault::Rest429 { every, retry_after_s } if f.fires(every) => {
                Shared::bump(&sim.counters.served_429);
                let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too.many.requests", "Rate limit exceeded");
                if let Some(v) = retry_after_s.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Some(r);
            }
            Fault::Rest503 { every } if f.fires(every) => {
                Shared::bump(&sim.counters.served_500);
                return Some(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service.unavailable",
                    "try again later",
                ));
            }
            _ => {}
        }
    }
    None
}

/// `POST /api/v2/notifications/channels`.
pub async fn create_channel(State(sim): Sim, headers: HeaderMap) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = rest_fault(&sim) {
        return r;
    }
    let n = sim.counters.channels_created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("streaming-{n}-{:016x}", rand::random::<u64>());
    let expires = crate::duration::deadline(SystemTime::now(), sim.settings.channel_ttl);
    let ws_base = sim.base_url.replacen("http://", "ws://", 1);
    sim.lock().channels.insert(id.clone(), ChannelState { topics: BTreeSet::new(), expires, conn: None });
    let connect_uri = format!("{ws_base}/channels/{id}");
    Json(json!({ "id": id, "connectUri": connect_uri, "expires": rfc3339(expires) })).into_response()
}

/// `HEAD` (and `GET`) `/api/v2/notifications/channels/{id}`: 200 or 404.
pub async fn channel_exists(State(sim): Sim, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    let live = sim.lock().channels.get(&id).is_some_and(|c| c.expires > SystemTime::now());
    if live {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "not.found", "channel not found")
    }
}

fn valid_topic(t: &str) -> bool {
    let per_call = |suffix: &str| {
        t.strip_prefix("v2.conversations.")
            .and_then(|r| r.strip_suffix(suffix))
            .is_some_and(|id| !id.is_empty() && !id.contains('.'))
    };
    is_conversation_topic(t)
        || per_call(".transcription")
            && conversation_of_topic(t).is_some_and(|id| transcription_topic(id) == t)
        || per_call(".suggestions.thirdpartyaction")
}

fn listing(topics: &BTreeSet<String>) -> Json<TopicListing> {
    let entities =
        topics.iter().map(|t| Topic { state: Some("Permitted".into()), ..Topic::new(t.clone()) }).collect();
    Json(TopicListing { entities })
}

/// `GET`, `POST` (add), `PUT` (replace), `DELETE` (clear) subscriptions.
pub async fn subscriptions(
    State(sim): Sim,
    method: axum::http::Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(_q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = rest_fault(&sim) {
        return r;
    }
    let requested: Vec<String> = if method == axum::http::Method::POST || method == axum::http::Method::PUT {
        match serde_json::from_str::<Vec<Topic>>(&body) {
            Ok(t) => t.into_iter().map(|t| t.id).collect(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad.request",
                    &format!("body must be [{{\"id\": topic}}]: {e}"),
                );
            }
        }
    } else {
        Vec::new()
    };
    if let Some(bad) = requested.iter().find(|t| !valid_topic(t)) {
        return error(StatusCode::BAD_REQUEST, "invalid.value", &format!("Invalid topic: {bad}"));
    }
    let refuse = sim.transcript_subscription_failure.load(std::sync::atomic::Ordering::SeqCst);
    if refuse != 0 && requested.iter().any(|t| t.ends_with(".transcription")) {
        let status = StatusCode::from_u16(refuse).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        // The error code matches the status, as Genesys Cloud's bodies do.
        let code =
            if status == StatusCode::TOO_MANY_REQUESTS { "too.many.requests" } else { "service.unavailable" };
        return error(status, code, "topic subscriptions are unavailable");
    }
    let response = {
        let mut inner = sim.lock();
        let Some(ch) = inner.channels.get_mut(&id).filter(|c| c.expires > SystemTime::now()) else {
            return error(StatusCode::NOT_FOUND, "not.found", "channel not found");
        };
        let mut next = match method {
            axum::http::Method::POST => ch.topics.clone(),
            _ => BTreeSet::new(),
        };
        if method == axum::http::Method::GET {
            next = ch.topics.clone();
        }
        next.extend(requested);
        if next.len() > 1000 {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid.value",
                "A channel may subscribe to at most 1000 topics",
            );
        }
        ch.topics = next;
        listing(&ch.topics).into_response()
    };
    sim.changed.notify_waiters();
    response
}

/// `POST /api/v2/agent-assist/interactions/{conversationId}/results`.
pub async fn push(
    State(sim): Sim,
    headers: HeaderMap,
    Path(conversation_id): Path<String>,
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
    let Some(results) = parsed.get("results").and_then(Value::as_array).filter(|r| !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "invalid.value", "results must be a non-empty array");
    };
    let suggestion_id =
        results[0].pointer("/metadata/suggestion_id").and_then(Value::as_str).map(str::to_string);
    {
        let mut inner = sim.lock();
        let seen = suggestion_id.as_ref().and_then(|s| inner.push_index.get(s).copied());
        if let Some(i) = seen {
            // The same idempotency key again: a retry of something that had
            // arrived. Recorded once; the agent sees it once.
            inner.pushes[i].attempts += 1;
            Shared::bump(&sim.counters.idempotent_replays);
        } else {
            let auto = results[0].pointer("/metadata/decided_by").and_then(Value::as_str) != Some("operator");
            let article = results[0].get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let now_ms = sim.elapsed_ms();
            let key = (conversation_id.clone(), article);
            if auto
                && inner
                    .pushed_articles
                    .get(&key)
                    .is_some_and(|t| now_ms.saturating_sub(*t) < sim.settings.cooldown_ms)
            {
                // A new suggestion id for an article this agent already got
                // within the cooldown, and no operator asked for it again.
                Shared::bump(&sim.counters.duplicate_suggestions);
            }
            inner.pushed_articles.insert(key, now_ms);
            let record = PushRecord {
                conversation_id,
                suggestion_id: suggestion_id.clone(),
                body: parsed.clone(),
                received_ms: sim.elapsed_ms(),
                received_at: rfc3339(SystemTime::now()),
                attempts: 1,
            };
            inner.pushes.push(record);
            let index = inner.pushes.len() - 1;
            if let Some(s) = suggestion_id {
                inner.push_index.insert(s, index);
            }
            Shared::bump(&sim.counters.pushes_recorded);
        }
    }
    // push-slow: the push has arrived and is recorded; only the answer is late.
    for f in &sim.faults {
        if let Fault::PushSlow { every, delay } = f.fault
            && f.fires(every)
        {
            tokio::time::sleep(delay).await;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The push faults (`push-429`, `push-500`, `push-403`), which every
/// delivery endpoint answers with alike; `None` when none fires.
pub fn push_fault(sim: &Shared) -> Option<Response> {
    for f in &sim.faults {
        match f.fault {
            Fault::Push429 { every, retry_after_s } if f.fires(every) => {
                Shared::bump(&sim.counters.served_429);
                let wait = retry_after_s.unwrap_or(1.0);
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too.many.requests.retry.after",
                    &format!("Rate limit exceeded the maximum. Retry the request in [{wait}] seconds"),
                );
                if let Some(s) = retry_after_s
                    && let Ok(v) = HeaderValue::from_str(&s.to_string())
                {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r.headers_mut().insert("inin-ratelimit-reset", HeaderValue::from(wait.ceil() as u64));
                return Some(r);
            }
            Fault::Push500 { every } if f.fires(every) => {
                Shared::bump(&sim.counters.served_500);
                return Some(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal.server.error",
                    "The server encountered an error",
                ));
            }
            Fault::Push403 { every } if f.fires(every) => {
                Shared::bump(&sim.counters.served_403);
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "missing.permissions",
                    "You are missing the following permission(s): [agentAssist:suggestion:add]",
                ));
            }
            _ => {}
        }
    }
    None
}

/// `GET /sim/pushes`.
pub async fn pushes(State(sim): Sim) -> Response {
    Json(sim.lock().pushes.clone()).into_response()
}

/// `GET /sim/stats`.
pub async fn stats(State(sim): Sim) -> Response {
    Json(sim.stats()).into_response()
}
