//! Who may see what. A page proves itself once (`POST /agent/session`):
//! with `auth = "genesys"` by the agent's Genesys token, checked with
//! `GET /api/v2/users/me` and matched against the call's agent
//! participants; with `auth = "none"` (loopback only) by asking. It gets a
//! short-lived random session token bound to that one call, which the feed,
//! acknowledgements and feedback then require. Tokens are never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

/// Most sessions held at once; expired ones are dropped first.
const MAX_SESSIONS: usize = 100_000;

/// A page's right to one call's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub conversation_id: String,
    /// The Genesys user (`None` with `auth = "none"`).
    pub user_id: Option<String>,
    pub expires: Instant,
}

/// Why a request was refused, as the page is told (JSON with `error` and a
/// sentence it can show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No, a wrong, or an expired credential: sign in again.
    Unauthorized(String),
    /// A valid credential for someone who may not see this call.
    Forbidden(String),
    /// The request itself is wrong.
    BadRequest(String),
    /// Genesys could not be asked, or the engine is not listening.
    Unavailable(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
        };
        (status, [("cache-control", "no-store")], Json(json!({ "error": code, "message": message })))
            .into_response()
    }
}

/// The sessions issued so far.
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, map: Mutex::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new random token for one call.
    pub fn issue(&self, conversation_id: &str, user_id: Option<String>) -> String {
        let token: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let session =
            Session { conversation_id: conversation_id.to_string(), user_id, expires: now + self.ttl };
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(t, _)| t.clone())
        {
            map.remove(&oldest);
        }
        map.insert(token.clone(), session);
        token
    }

    /// The session behind `token` if it is live and bound to this call.
    pub fn check(&self, token: Option<&str>, conversation_id: &str) -> Result<Session, Refusal> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(Refusal::Unauthorized("no session: open the widget page to sign in".into()));
        };
        let map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(s) = map.get(token) else {
            return Err(Refusal::Unauthorized("unknown session: sign in again".into()));
        };
        if s.expires <= Instant::now() {
            return Err(Refusal::Unauthorized("the session has expired: sign in again".into()));
        }
        if s.conversation_id != conversation_id {
            return Err(Refusal::Forbidden("this session is for another call".into()));
        }
        Ok(s.clone())
    }
}

/// Asks Genesys who a token belongs to.
pub struct GenesysCheck {
    http: reqwest::Client,
    api_base: String,
}

impl GenesysCheck {
    pub fn new(api_base: &str) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, api_base: api_base.trim_end_matches('/').to_string() })
    }

    /// The user id of a Genesys access token (`GET /api/v2/users/me`).
    pub async fn user_of(&self, token: &str) -> Result<String, Refusal> {
        let url = format!("{}/api/v2/users/me", self.api_base);
        let answer = self.http.get(&url).bearer_auth(token).send().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "widget: cannot reach Genesys to check a sign-in");
            Refusal::Unavailable("cannot reach Genesys Cloud to check the sign-in; try again".into())
        })?;
        let status = answer.status();
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::BAD_REQUEST
            || status == StatusCode::FORBIDDEN
        {
            return Err(Refusal::Unauthorized(
                "Genesys Cloud did not accept the sign-in (wrong or expired token, or not a user's token)"
                    .into(),
            ));
        }
        if !status.is_success() {
            tracing::warn!(%status, "widget: Genesys answered /users/me with an error");
            return Err(Refusal::Unavailable(format!("Genesys Cloud answered {status}; try again")));
        }
        let body: serde_json::Value = answer
            .json()
            .await
            .map_err(|_| Refusal::Unavailable("Genesys Cloud sent an unreadable user".into()))?;
        body.get("id")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Refusal::Unavailable("Genesys Cloud sent a user without an id".into()))
    }
}
