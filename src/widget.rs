//! The agent widget: the page agent-assist serves for the Genesys agent
//! desktop (an Interaction Widget), showing one call's suggestions live.
//!
//! The delivery layer publishes [`FeedEvent`]s to a [`WidgetHub`] (one feed
//! per call, see [`hub`]); [`serve`] runs the HTTP(S) server whose pages
//! read a feed over Server-Sent Events ([`http`]) once they have shown they
//! may ([`session`]), and sends what agents do ([`AgentSignal`]) back on a
//! channel for the engine. The engine stays the owner of suggestion state;
//! the hub holds only the widget's projection of it.

pub mod config;
pub mod http;
pub mod hub;
pub mod render;
pub mod session;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use config::{AuthMode, WidgetConfig, WidgetConfigError};
pub use hub::WidgetHub;

/// One suggestion as a call's feed shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidgetSuggestion {
    pub conversation_id: String,
    /// Idempotency key: publishing the same id again changes nothing.
    pub suggestion_id: String,
    pub article_id: String,
    pub title: String,
    pub score: f32,
    /// Calibrated probability of being right, when retrieval has one.
    pub probability: Option<f32>,
    /// The matched passage, Markdown (rendered to safe HTML by the hub).
    pub text: String,
    /// The article's address; only `http(s)` ones are shown.
    pub url: Option<String>,
    /// Shown beside the title, e.g. `sent`, `changed`, `superseded`.
    pub state: String,
}

impl WidgetSuggestion {
    /// A suggestion of one matched article (its best chunk as the passage).
    pub fn from_hit(
        conversation_id: &str,
        suggestion_id: &str,
        hit: &crate::domain::Hit,
        state: &str,
    ) -> Self {
        Self {
            conversation_id: conversation_id.to_string(),
            suggestion_id: suggestion_id.to_string(),
            article_id: hit.article_id.clone(),
            title: hit.title.clone(),
            score: hit.score,
            probability: None,
            text: hit.text.clone(),
            url: hit.url.clone(),
            state: state.to_string(),
        }
    }
}

/// What the delivery layer tells the widget about a call. Serialized (as
/// `{"feed": "suggestion", ...}`) when a floor worker publishes it to the
/// stream for every worker's widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "feed", rename_all = "snake_case")]
pub enum FeedEvent {
    /// The agent users on the call: who may open its feed. Replaces the
    /// previous list (a transfer brings a new agent and drops the old).
    Participants { conversation_id: String, agent_user_ids: Vec<String> },
    /// A new suggestion (idempotent by `suggestion_id`).
    Suggestion(WidgetSuggestion),
    /// A suggestion's new state, e.g. `changed`, `superseded`, or feedback
    /// counts in words.
    Update { conversation_id: String, suggestion_id: String, state: String },
    /// The call is over; its feed stays readable for `ended_grace_s`.
    Ended { conversation_id: String },
}

impl FeedEvent {
    /// The participants event for a call, from the stream's participants.
    pub fn participants(conversation_id: &str, participants: &[crate::domain::Participant]) -> Self {
        let agent_user_ids =
            participants.iter().filter(|p| p.is_agent()).filter_map(|p| p.user_id.clone()).collect();
        Self::Participants { conversation_id: conversation_id.to_string(), agent_user_ids }
    }
}

impl FeedEvent {
    /// The call it is about.
    pub fn conversation_id(&self) -> &str {
        match self {
            Self::Participants { conversation_id, .. }
            | Self::Update { conversation_id, .. }
            | Self::Ended { conversation_id } => conversation_id,
            Self::Suggestion(s) => &s.conversation_id,
        }
    }
}

/// A floor's way out for feed events: hands one to the floor's stream,
/// or says why it could not.
pub type FloorFeedFn = Arc<dyn Fn(FeedEvent) -> Result<(), String> + Send + Sync>;

/// Where the pipeline sends what the widget shows.
#[derive(Clone)]
pub enum FeedOut {
    /// This process's own hub (the single process).
    Hub(WidgetHub),
    /// The floor's stream, from which every worker's hub is fed (floor
    /// mode: any worker serves any call's page).
    Floor(FloorFeedFn),
}

impl FeedOut {
    /// Sends one event on; `Err` says why it is not shown.
    pub fn publish(&self, ev: FeedEvent) -> Result<(), String> {
        match self {
            Self::Hub(hub) => match hub.publish(ev) {
                PublishOutcome::Delivered | PublishOutcome::Duplicate => Ok(()),
                PublishOutcome::Closed => Err("the call has ended; its widget shows nothing new".into()),
                PublishOutcome::Unknown => Err("the widget does not know this call".into()),
            },
            Self::Floor(send) => send(ev),
        }
    }
}

/// How a [`WidgetHub::publish`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    /// In the call's feed; pages showing the call have been sent it.
    Delivered,
    /// Already there (same suggestion id, same state, or already ended).
    Duplicate,
    /// An update for a suggestion or call the hub does not hold.
    Unknown,
    /// A new suggestion for a call that has ended: not shown.
    Closed,
}

/// What an agent did with a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Useful,
    NotUseful,
    /// Copied the passage: counts as used.
    Copied,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Useful => "useful",
            Self::NotUseful => "not useful",
            Self::Copied => "copied",
        }
    }
}

/// From agent pages to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum AgentSignal {
    /// A page has received and shown the suggestion (once per user).
    Acknowledged {
        conversation_id: String,
        suggestion_id: String,
        user_id: Option<String>,
    },
    Feedback {
        conversation_id: String,
        suggestion_id: String,
        kind: FeedbackKind,
        user_id: Option<String>,
    },
}

/// Why the widget could not start.
#[derive(Debug, thiserror::Error)]
pub enum WidgetError {
    #[error(transparent)]
    Config(#[from] WidgetConfigError),
    #[error("widget: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("widget TLS: {0}")]
    Tls(String),
    #[error("widget: cannot build its HTTP client: {0}")]
    Client(String),
}

/// A running widget server.
pub struct WidgetServer {
    /// Where it listens, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub url: String,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl WidgetServer {
    /// The page of one call (the Interaction Widget's URL, filled in).
    pub fn page_url(&self, conversation_id: &str) -> String {
        let q = serde_urlencoded::to_string([("conversationId", conversation_id)]).unwrap_or_default();
        format!("{}/agent?{q}", self.url)
    }

    /// Stops serving; open pages see their stream end and reconnect later.
    pub async fn stop(self) {
        self.handle.shutdown();
        let _ = self.task.await;
    }
}

/// Starts serving the widget on `config.bind` and returns once listening.
/// Agent signals go to `signals`; a full channel makes pages wait, a closed
/// one makes them fail with 503.
pub async fn serve(
    config: WidgetConfig,
    hub: WidgetHub,
    signals: mpsc::Sender<AgentSignal>,
) -> Result<WidgetServer, WidgetError> {
    config.check_servable()?;
    let addr = config.bind_addr()?;
    let tls = tls::server_config(&config).await?;
    let listener = TcpListener::bind(addr).map_err(|source| WidgetError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| WidgetError::Bind { addr, source })?;
    let host = if config.self_signed {
        "localhost".to_string()
    } else if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let url = format!("{}://{host}:{}", if tls.is_some() { "https" } else { "http" }, local.port());
    let state = http::AppState::new(&config, hub, signals)?;
    let app = http::router(Arc::new(state)).into_make_service();
    let handle = axum_server::Handle::new();
    let bind_err = |source| WidgetError::Bind { addr, source };
    let task = match tls {
        Some(rustls) => {
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls).map_err(bind_err)?;
            let server = server.handle(handle.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "widget server failed");
                }
            })
        }
        None => {
            let server = axum_server::from_tcp(listener).map_err(bind_err)?.handle(handle.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "widget server failed");
                }
            })
        }
    };
    tracing::info!(%url, auth = config.auth.as_str(), "widget listening");
    Ok(WidgetServer { url, handle, task })
}
