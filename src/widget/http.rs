//! The widget's routes: the page and its script and style (embedded in the
//! binary), the session sign-in, the call's live feed over Server-Sent
//! Events, and the page's acknowledgements and feedback, which become
//! [`AgentSignal`]s for the engine.
//!
//! The session token travels in the feed's query string (an `EventSource`
//! cannot set headers, and a cookie would be a third-party one inside the
//! agent desktop's frame); nothing here logs request URLs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::hub::FeedItem;
use super::render::escape_html;
use super::session::{GenesysCheck, Refusal, Sessions};
use super::{AgentSignal, AuthMode, FeedbackKind, WidgetConfig, WidgetError, WidgetHub};

const PAGE: &str = include_str!("../../assets/widget/agent.html");
const SCRIPT: &str = include_str!("../../assets/widget/agent.js");
const STYLE: &str = include_str!("../../assets/widget/agent.css");
/// Longest conversation id accepted (Genesys ids are 36-character UUIDs).
const MAX_ID: usize = 128;
/// Suggestions acknowledged in one request.
const MAX_ACKS: usize = 100;
/// How long a page waits for the engine's channel before a 503.
const SIGNAL_WAIT: Duration = Duration::from_secs(5);

/// What every handler shares.
pub struct AppState {
    hub: WidgetHub,
    signals: mpsc::Sender<AgentSignal>,
    sessions: Sessions,
    auth: AuthMode,
    genesys: Option<GenesysCheck>,
    page: String,
    csp: String,
}

impl AppState {
    pub fn new(
        config: &WidgetConfig,
        hub: WidgetHub,
        signals: mpsc::Sender<AgentSignal>,
    ) -> Result<Self, WidgetError> {
        let genesys = match config.auth {
            AuthMode::Genesys => {
                Some(GenesysCheck::new(&config.api_base).map_err(|e| WidgetError::Client(e.to_string()))?)
            }
            AuthMode::None => None,
        };
        let page = PAGE
            .replace("{{AUTH}}", config.auth.as_str())
            .replace("{{CLIENT_ID}}", &escape_html(config.client_id.trim()))
            .replace("{{LOGIN_BASE}}", &escape_html(config.login_base.trim_end_matches('/')));
        let mut csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'"
            .to_string();
        if !config.frame_ancestors.is_empty() {
            csp.push_str("; frame-ancestors ");
            csp.push_str(&config.frame_ancestors.join(" "));
        }
        Ok(Self {
            hub,
            signals,
            sessions: Sessions::new(config.session_ttl()),
            auth: config.auth,
            genesys,
            page,
            csp,
        })
    }
}

type St = State<Arc<AppState>>;

/// All the widget's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/agent", get(page))
        .route("/agent/widget.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/agent/widget.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/agent/session", post(open_session))
        .route("/agent/events", get(events))
        .route("/agent/ack", post(ack))
        .route("/agent/feedback", post(feedback))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(common_headers))
        .with_state(state)
}

async fn common_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Article links must not tell other sites which call the agent is on.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn page(State(st): St) -> Response {
    let csp =
        HeaderValue::from_str(&st.csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        st.page.clone(),
    )
        .into_response();
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    r
}

fn conversation(id: Option<&str>) -> Result<String, Refusal> {
    let id = id.map(str::trim).unwrap_or_default();
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refusal::BadRequest("a conversation id is required (conversationId)".into()));
    }
    Ok(id.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::trim)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::BadRequest(format!("body: {e}")))
}

#[derive(Deserialize)]
struct SessionBody {
    conversation_id: String,
}

/// `POST /agent/session` (`Authorization: Bearer <Genesys token>` when
/// `auth = "genesys"`): a session for one call, or why not.
async fn open_session(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    let req: SessionBody = parse(&body)?;
    let conversation_id = conversation(Some(&req.conversation_id))?;
    let user_id = match &st.genesys {
        None => None,
        Some(check) => {
            let token = bearer(&headers).filter(|t| !t.is_empty()).ok_or_else(|| {
                Refusal::Unauthorized("sign in with Genesys Cloud first (no token was sent)".into())
            })?;
            let user = check.user_of(token).await?;
            let agents = st.hub.agents(&conversation_id).unwrap_or_default();
            if !agents.contains(&user) {
                tracing::info!(conversation = %conversation_id, user = %user, "widget: refused a user who is not an agent on the call");
                return Err(Refusal::Forbidden(
                    "you are not an agent on this call, so its suggestions are not shown here".into(),
                ));
            }
            Some(user)
        }
    };
    let session = st.sessions.issue(&conversation_id, user_id.clone());
    let body = json!({
        "session": session, "expires_in_s": st.sessions.ttl().as_secs(), "user_id": user_id,
        "conversation_id": conversation_id, "auth": st.auth.as_str(),
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(rename = "conversationId")]
    conversation_id: Option<String>,
    session: Option<String>,
    /// For a page that opens a new `EventSource` after signing in again
    /// (a new one does not send `Last-Event-ID` by itself).
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

/// `GET /agent/events?conversationId=ID&session=TOKEN`: the call's feed.
async fn events(
    State(st): St,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let conversation_id = conversation(q.conversation_id.as_deref())?;
    let session = st.sessions.check(q.session.as_deref(), &conversation_id)?;
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).or(q.last_event_id.as_deref());
    let sub = st.hub.subscribe(&conversation_id, last);
    if sub.ended && sub.replay.is_empty() {
        // Nothing more will come: 204 tells the browser to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let feed = Feed {
        hub: st.hub.clone(),
        first: true,
        replay: sub.replay.into_iter(),
        live: sub.live,
        after: sub.after,
        ended: sub.ended,
        done: false,
        until: session.expires,
    };
    Ok(Sse::new(feed.into_stream())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// One page's stream: the replay, then live items, until the call ends,
/// the session expires (the page signs in again), or the page falls too
/// far behind (it reconnects and resumes from the log).
struct Feed {
    hub: WidgetHub,
    first: bool,
    replay: std::vec::IntoIter<FeedItem>,
    live: broadcast::Receiver<FeedItem>,
    after: u64,
    ended: bool,
    done: bool,
    until: Instant,
}

impl Feed {
    fn event(&mut self, item: &FeedItem) -> Event {
        self.done |= item.kind == "ended";
        let mut e = Event::default().event(item.kind).data(&*item.data);
        if let Some(id) = item.id {
            e = e.id(self.hub.event_id(id));
        }
        e
    }

    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        stream::unfold(self, |mut f| async move {
            if f.first {
                f.first = false;
                // Reconnect soon after a drop; the default is a few seconds.
                return Some((Ok(Event::default().retry(Duration::from_millis(1000)).comment("feed")), f));
            }
            if f.done {
                return None;
            }
            if let Some(item) = f.replay.next() {
                let e = f.event(&item);
                return Some((Ok(e), f));
            }
            if f.ended {
                return None;
            }
            loop {
                tokio::select! {
                    r = f.live.recv() => match r {
                        Ok(item) if item.id.is_some_and(|id| id <= f.after) => {}
                        Ok(item) => {
                            let e = f.event(&item);
                            return Some((Ok(e), f));
                        }
                        Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep_until(f.until) => return None,
                }
            }
        })
    }
}

#[derive(Deserialize)]
struct AckBody {
    conversation_id: String,
    suggestion_ids: Vec<String>,
}

/// `POST /agent/ack` (`Authorization: Bearer <session>`): the page shows
/// these suggestions. Each becomes one `Acknowledged` per user.
async fn ack(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    let req: AckBody = parse(&body)?;
    let conversation_id = conversation(Some(&req.conversation_id))?;
    let session = st.sessions.check(bearer(&headers), &conversation_id)?;
    for suggestion_id in req.suggestion_ids.into_iter().take(MAX_ACKS) {
        if st.hub.acknowledge(&conversation_id, &suggestion_id, session.user_id.as_deref()) {
            let user_id = session.user_id.clone();
            send(
                &st,
                AgentSignal::Acknowledged {
                    conversation_id: conversation_id.clone(),
                    suggestion_id,
                    user_id,
                },
            )
            .await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct FeedbackBody {
    conversation_id: String,
    suggestion_id: String,
    kind: FeedbackKind,
}

/// `POST /agent/feedback` (`Authorization: Bearer <session>`):
/// `{"conversation_id", "suggestion_id", "kind": "useful"|"not_useful"|"copied"}`.
async fn feedback(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    let req: FeedbackBody = parse(&body)?;
    let conversation_id = conversation(Some(&req.conversation_id))?;
    let session = st.sessions.check(bearer(&headers), &conversation_id)?;
    if !st.hub.shows(&conversation_id, &req.suggestion_id) {
        return Err(Refusal::BadRequest("this call shows no such suggestion".into()));
    }
    let signal = AgentSignal::Feedback {
        conversation_id,
        suggestion_id: req.suggestion_id,
        kind: req.kind,
        user_id: session.user_id,
    };
    send(&st, signal).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn send(st: &AppState, signal: AgentSignal) -> Result<(), Refusal> {
    match tokio::time::timeout(SIGNAL_WAIT, st.signals.send(signal)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Refusal::Unavailable("agent-assist is not taking feedback right now; try again".into())),
    }
}
