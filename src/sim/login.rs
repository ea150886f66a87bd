//! The simulator's agent sign-in: `GET /oauth/authorize` (the implicit
//! grant, approved at once for the configured test agent, as a Genesys login
//! page would after the agent signs in) and `GET /api/v2/users/me` (the user
//! behind such a token). The agent widget's login flow runs against these.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{error, token_valid};
use super::state::Shared;

/// `GET /oauth/authorize?client_id&response_type=token&redirect_uri&state`:
/// redirects to `redirect_uri#access_token=…&token_type=bearer&expires_in=…&state=…`.
pub async fn authorize(State(sim): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let param = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    // Without a usable redirect URI there is nowhere to send an error: say
    // it on the page, as the OAuth spec asks.
    let Some(redirect) = param("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.redirect.uri",
            "redirect_uri must be an absolute URL",
        );
    };
    if !matches!(redirect.scheme(), "http" | "https") {
        return error(StatusCode::BAD_REQUEST, "invalid.redirect.uri", "redirect_uri must be http or https");
    }
    if param("client_id").is_none() {
        return error(StatusCode::BAD_REQUEST, "invalid.client", "client_id is required");
    }
    let mut fields: Vec<(&str, String)> = Vec::new();
    if param("response_type") == Some("token") {
        let token = format!("{:032x}", rand::random::<u128>());
        let ttl = sim.settings.token_ttl;
        let valid_for = sim.token_lifetime_override().map_or(ttl, |o| o.min(ttl));
        let until = tokio::time::Instant::now() + valid_for;
        sim.lock().user_tokens.insert(token.clone(), (sim.settings.agent_user.clone(), until));
        Shared::bump(&sim.counters.tokens_issued);
        fields.push(("access_token", token));
        fields.push(("token_type", "bearer".into()));
        fields.push(("expires_in", ttl.as_secs().to_string()));
    } else {
        fields.push(("error", "unsupported_response_type".into()));
        fields.push(("error_description", "only response_type=token is supported".into()));
    }
    if let Some(state) = param("state") {
        fields.push(("state", state.to_string()));
    }
    let fragment = serde_urlencoded::to_string(&fields).unwrap_or_default();
    let mut target = redirect;
    target.set_fragment(Some(&fragment));
    (StatusCode::FOUND, [(header::LOCATION, target.to_string()), (header::CACHE_CONTROL, "no-store".into())])
        .into_response()
}

/// `GET /api/v2/users/me`: the signed-in user of an implicit-grant token;
/// 401 for an unknown or expired one, 400 for a client-credentials token
/// (it has no user, as in Genesys).
pub async fn users_me(State(sim): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .unwrap_or_default();
    let user = sim
        .lock()
        .user_tokens
        .get(token)
        .filter(|(_, until)| tokio::time::Instant::now() < *until)
        .map(|(user, _)| user.clone());
    match user {
        Some(id) => Json(json!({
            "id": id, "name": format!("Simulated agent {id}"), "username": format!("{id}@example.invalid"),
            "state": "active", "selfUri": format!("/api/v2/users/{id}")
        }))
        .into_response(),
        None if !token.is_empty() && token_valid(&sim, token) => error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "This request requires a user context. Client credentials cannot be used for requests to this resource.",
        ),
        None => {
            Shared::bump(&sim.counters.served_401);
            error(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials.")
        }
    }
}
