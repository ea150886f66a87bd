//! A Genesys Cloud simulator on loopback: both token endpoints, notification
//! channels and subscriptions, the streaming WebSocket with heartbeats and
//! ping/pong, the tutorial WebSocket, the push endpoint and the other
//! delivery sinks' endpoints ([`sinks`]), the agent's implicit-grant login
//! and `/users/me` ([`login`]), scripted conversations ([`player`]), the
//! Genesys Knowledge API over the sample KB ([`knowledge`]) and fault
//! injection ([`fault`]). It is the demo's default peer and every network
//! test's.
//!
//! Start it in-process with [`spawn`], or as `agent-assist sim`, which
//! prints `{"base_url": ..., "queue_id": ...}` once ready.

pub mod analytics;
pub mod api;
pub mod fault;
pub mod knowledge;
pub mod login;
pub mod player;
pub mod script;
pub mod sinks;
pub mod state;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use fault::Fault;
pub use script::Script;
pub use state::{PushRecord, SimStats};

use player::Playback;
use state::{Settings, Shared};

/// The default queue every script without its own `queue_id` plays on.
pub const DEFAULT_QUEUE_ID: &str = "b4a8d1f2-6c3e-4f7a-9d25-0e8c7b1a3f60";

/// The longest token or channel lifetime the simulator accepts.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub scripts: Vec<Script>,
    pub speed: f64,
    pub faults: Vec<Fault>,
    pub heartbeat: Duration,
    pub token_ttl: Duration,
    pub channel_ttl: Duration,
    pub queue_id: String,
    pub concurrency: usize,
    pub repeat: bool,
    pub start_gap: Duration,
    pub subscribe_grace: Duration,
    pub credentials: Option<(String, String)>,
    /// Raise a Copilot third-party-action suggestion every N customer
    /// utterances (0: never).
    pub copilot_every: u32,
    /// The agent user on every call, and the one `/oauth/authorize` signs
    /// in without asking (the test agent of the widget's login flow).
    pub agent_user: String,
    /// Calls taken by another agent: script id → user id.
    pub call_agents: std::collections::BTreeMap<String, String>,
    /// Markdown KB the Knowledge API serves (none: empty knowledge bases).
    pub knowledge_dir: Option<PathBuf>,
    /// Largest page of a Knowledge API listing.
    pub knowledge_page_size: usize,
    /// The round the calls start at: round 0 uses the scripts' own ids,
    /// round N appends `-rN`. The demo starts each run at a round of its
    /// own, so a run's calls are not taken for the ones a previous run left
    /// in the demo's ledger.
    pub first_round: u32,
}

impl SimConfig {
    /// Defaults around a set of scripts: real-time speed, 30 s heartbeats,
    /// day-long tokens and channels, four calls at once.
    pub fn new(scripts: Vec<Script>) -> Self {
        Self {
            port: 0,
            scripts,
            speed: 1.0,
            faults: Vec::new(),
            heartbeat: Duration::from_secs(30),
            token_ttl: Duration::from_secs(86_399),
            channel_ttl: Duration::from_secs(86_400),
            queue_id: DEFAULT_QUEUE_ID.into(),
            concurrency: 4,
            repeat: false,
            start_gap: Duration::from_secs(4),
            subscribe_grace: Duration::from_secs(5),
            credentials: None,
            copilot_every: 0,
            agent_user: analytics::SIM_AGENT.into(),
            call_agents: std::collections::BTreeMap::new(),
            knowledge_dir: Some(crate::paths::bundled("kb")),
            knowledge_page_size: knowledge::DEFAULT_PAGE_SIZE,
            first_round: 0,
        }
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Script(#[from] script::ScriptError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("invalid simulator setting: {0}")]
    Config(String),
}

/// A running simulator.
pub struct SimHandle {
    pub base_url: String,
    pub queue_id: String,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    pub fn pushes(&self) -> Vec<PushRecord> {
        self.shared.lock().pushes.clone()
    }

    /// Participant attributes written so far, by (conversation, participant).
    pub fn attributes(&self) -> Vec<sinks::AttributesRecord> {
        sinks::attributes_list(&self.shared)
    }

    /// Copilot suggestions raised, with their answers.
    pub fn copilot(&self) -> Vec<state::CopilotRecord> {
        self.shared.lock().copilot.values().cloned().collect()
    }

    /// Invalidates every issued token, as a revocation would: the next
    /// call with an old token gets a 401.
    pub fn revoke_tokens(&self) {
        let mut inner = self.shared.lock();
        inner.tokens.clear();
        inner.user_tokens.clear();
    }

    /// Makes the token endpoint answer `status` (401: `invalid_client`;
    /// anything else: a transient failure) until called with `None`.
    pub fn fail_token_requests(&self, status: Option<u16>) {
        self.shared.token_failure.store(status.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes subscription requests that name a call's transcription topic
    /// answer `status` until called with `None` (the discovery topics still
    /// subscribe), as a rate limit or outage on topic subscriptions would.
    pub fn fail_transcript_subscriptions(&self, status: Option<u16>) {
        self.shared
            .transcript_subscription_failure
            .store(status.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
    }

    /// Every access token issued so far (for tests that check none leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Whether any channel is subscribed to `topic`.
    pub fn subscribed(&self, topic: &str) -> bool {
        self.shared.subscribed(topic)
    }

    /// Starts or ends a network outage: while on, every streaming socket is
    /// closed and new ones are refused; REST keeps working. Calls go on
    /// playing, so their events meanwhile are lost, as on a real network.
    pub fn set_outage(&self, on: bool) {
        self.shared.outage.store(on, std::sync::atomic::Ordering::SeqCst);
        if on {
            self.shared.close_all();
        }
    }

    /// Edits a Knowledge document (body, title or state); false if unknown.
    pub fn knowledge_edit(&self, document_id: &str, edit: &knowledge::Edit) -> bool {
        self.shared.knowledge().edit(document_id, edit)
    }

    /// Deletes a Knowledge document; false if unknown.
    pub fn knowledge_delete(&self, document_id: &str) -> bool {
        self.shared.knowledge().delete(document_id)
    }

    /// Stops serving and playing.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Loads every script in a directory (the `--conversations` option).
pub fn load_scripts(dir: &std::path::Path) -> Result<Vec<Script>, SimError> {
    Ok(script::load_dir(dir)?)
}

/// The bundled conversations directory.
pub fn default_conversations() -> PathBuf {
    crate::paths::bundled("assets/conversations")
}

/// Binds, starts serving and playing, and returns once ready.
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SimError> {
    if !(config.speed.is_finite() && config.speed > 0.0) {
        return Err(SimError::Config(format!("speed must be a positive number, not {}", config.speed)));
    }
    // Expiry times are written as RFC 3339 dates, which end at year 9999.
    for (name, d) in [("token ttl", config.token_ttl), ("channel ttl", config.channel_ttl)] {
        if d > MAX_TTL {
            return Err(SimError::Config(format!("{name} of {} s is more than ten years", d.as_secs())));
        }
    }
    if config.heartbeat.is_zero() || config.heartbeat > MAX_TTL {
        return Err(SimError::Config("heartbeat interval must be positive and under ten years".into()));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|source| SimError::Bind { port: config.port, source })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind { port: config.port, source })?;
    let base_url = format!("http://{addr}");
    let settings = Settings {
        queue_id: config.queue_id.clone(),
        token_ttl: config.token_ttl,
        channel_ttl: config.channel_ttl,
        heartbeat: config.heartbeat,
        credentials: config.credentials.clone(),
        cooldown_ms: 600_000,
        copilot_every: config.copilot_every,
        agent_user: config.agent_user.clone(),
    };
    let shared = Arc::new(Shared::new(base_url.clone(), settings, &config.faults));
    *shared.knowledge() = knowledge::build(config.knowledge_dir.as_deref(), config.knowledge_page_size);
    let app = Router::new()
        .route("/oauth/token", post(api::token))
        .route("/oauth/authorize", get(login::authorize))
        .route("/api/v2/users/me", get(login::users_me))
        .route("/api/v2/notifications/channels", post(api::create_channel))
        .route("/api/v2/notifications/channels/{id}", get(api::channel_exists))
        .route(
            "/api/v2/notifications/channels/{id}/subscriptions",
            get(api::subscriptions)
                .post(api::subscriptions)
                .put(api::subscriptions)
                .delete(api::subscriptions),
        )
        .route("/channels/{id}", get(ws::channel_socket))
        .route("/api/v2/interactions/events/websocket", get(ws::tutorial_socket))
        .route("/api/v2/agent-assist/interactions/{conversation_id}/results", post(api::push))
        .route("/api/v2/analytics/conversations/details/query", post(analytics::details_query))
        .route(
            "/api/v2/conversations/{conversation_id}/participants/{participant_id}/attributes",
            axum::routing::patch(sinks::attributes),
        )
        .route(
            "/api/v2/conversations/{conversation_id}/suggestions/{suggestion_id}",
            axum::routing::patch(sinks::copilot_answer),
        )
        .route("/sim/attributes", get(sinks::attributes_written))
        .route("/sim/copilot", get(sinks::copilot_records))
        .route("/api/v2/knowledge/knowledgebases", get(knowledge::knowledge_bases))
        .route("/api/v2/knowledge/knowledgebases/{kb}/documents", get(knowledge::documents))
        .route("/api/v2/knowledge/knowledgebases/{kb}/documents/{id}", get(knowledge::document))
        .route(
            "/sim/knowledge/documents/{id}",
            post(knowledge::control_edit).delete(knowledge::control_delete),
        )
        .route("/sim/pushes", get(api::pushes))
        .route("/sim/stats", get(api::stats))
        .with_state(shared.clone());
    let cancel = CancellationToken::new();
    let playback = Playback {
        scripts: config.scripts,
        speed: config.speed,
        concurrency: config.concurrency,
        repeat: config.repeat,
        start_gap: config.start_gap,
        subscribe_grace: config.subscribe_grace,
        call_agents: config.call_agents,
        first_round: config.first_round,
    };
    let (stop, director_sim, closer) = (cancel.clone(), shared.clone(), shared.clone());
    let task = tokio::spawn(async move {
        // Graceful shutdown waits for open connections, so close the
        // sockets (they would otherwise live forever) when asked to stop.
        let shutdown = async move {
            stop.cancelled().await;
            closer.close_all();
        };
        let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        let director = player::direct(director_sim, playback);
        tokio::select! {
            r = serve.into_future() => if let Err(e) = r { tracing::error!(error = %e, "simulator server failed") },
            () = async { director.await; std::future::pending::<()>().await } => {}
        }
    });
    tracing::info!(%base_url, "simulator listening");
    Ok(SimHandle { base_url, queue_id: config.queue_id, shared, cancel, task })
}
