//! The runtime: the one owner of state. It holds the engine and connects it
//! to the world: the knowledge-base worker thread, the transcript stream,
//! push tasks and the audit writer. Everything talks to it through one
//! bounded `Msg` channel; it runs the engine's effects without ever awaiting
//! a send to a worker (searches go on an unbounded queue the worker drains
//! latest-first, pushes are spawned, audit records are queued).
//!
//! Frontends (headless JSON lines, the TUI) drive it with [`Runtime::next`]
//! and [`Runtime::handle`], and read the engine for display.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::audit::{AuditHandle, spawn_audit};
use crate::config::Config;
use crate::domain::StreamEvent;
use crate::engine::{Effect, Engine, Msg, Summary};
use crate::kb::store::{BuildProgress, StoredArticle};
use crate::kb::worker::{KbHandle, SearchJob, spawn_worker};
use crate::kb::{KbError, KbOptions, ModelSpec, Retriever};
use crate::net::auth::{TokenInfo, TokenSource};
use crate::net::push::{PushClient, PushConfig};
use crate::net::rest::{Rest, http_client};
use crate::net::socket::SocketConfig;
use crate::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use crate::net::tutorial::spawn_tutorial;
use crate::net::{Backoff, Dialect, NetError};
use crate::paths::AppPaths;

/// Capacity of the message channel: workers wait when it is full.
const CHANNEL: usize = 4096;
/// Longest wait between ticks (eviction, idle timeouts, the status bar).
const TICK: Duration = Duration::from_millis(250);
/// How long shutdown waits for pushes in flight to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot open the audit log {path}: {source}")]
    Audit { path: std::path::PathBuf, source: std::io::Error },
    #[error("no queues to follow: pass --queue ID or set genesys.queues (or genesys.users)")]
    NoQueues,
}

/// How to start.
pub struct Options {
    /// Where the headless console's JSON lines go.
    pub headless_out: Option<Box<dyn Write + Send>>,
    /// Suggestion-id prefix; a fresh one when `None`.
    pub run_id: Option<String>,
    /// Index-build progress, for a progress display.
    pub progress: Box<dyn FnMut(BuildProgress) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self { headless_out: None, run_id: None, progress: Box::new(|_| {}) }
    }
}

/// The running pipeline.
pub struct Runtime {
    engine: Engine,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    kb: KbHandle,
    catalog: Arc<Vec<StoredArticle>>,
    stream: StreamHandle,
    forwarder: tokio::task::JoinHandle<()>,
    push: PushClient,
    pushes: JoinSet<()>,
    audit: AuditHandle,
    token: watch::Receiver<TokenInfo>,
    run_id: String,
}

/// A run id: UTC start time plus a random suffix, e.g. `20261124T101530-3fa2`.
pub fn new_run_id() -> String {
    let t = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = t.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{}-{:04x}", compact.trim_end_matches('Z'), rand::random::<u16>())
}

impl Runtime {
    /// Loads the knowledge base, connects, and starts every worker.
    pub async fn start(config: &Config, paths: &AppPaths, opts: Options) -> Result<Self, RuntimeError> {
        let endpoint = config.endpoint()?;
        let g = &config.genesys;
        if endpoint.dialect == Dialect::Notifications && g.queues.is_empty() && g.users.is_empty() {
            return Err(RuntimeError::NoQueues);
        }
        let kb_opts = KbOptions {
            sources: config.kb.sources(),
            kind: config.kb.index,
            hnsw: config.kb.hnsw(),
            model: ModelSpec::installed(paths),
            force_rebuild: false,
        };
        let kb_paths = paths.clone();
        let mut progress = opts.progress;
        let (retriever, report) =
            tokio::task::spawn_blocking(move || Retriever::open(&kb_opts, &kb_paths, &mut *progress))
                .await
                .map_err(|e| KbError::Index(format!("index loader stopped: {e}")))??;
        tracing::info!(articles = report.articles, chunks = report.chunks, "knowledge base ready");
        // Target precisions become score thresholds when the KB is calibrated.
        let mut policy = config.policy.clone();
        if let Some(c) = &retriever.calibration {
            let notes = policy.apply_precision_targets(|p| c.threshold_for(p));
            tracing::info!(?notes, "thresholds from the calibration");
        }
        let catalog = Arc::new(retriever.kb.articles.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let kb = spawn_worker(retriever, tx.clone());

        let http = http_client(config.push_timeout())?;
        let auth = TokenSource::new(http.clone(), endpoint.clone());
        let token = auth.watch();
        let push_config = PushConfig {
            url_template: g.push_url.clone(),
            max_attempts: g.push_max_attempts,
            ..PushConfig::default()
        };
        let push = PushClient::new(http.clone(), auth.clone(), &endpoint.api_base, push_config);
        let socket = SocketConfig {
            ping_after: Duration::from_millis(g.ping_after_ms),
            pong_timeout: Duration::from_millis(g.pong_timeout_ms),
            ..SocketConfig::default()
        };
        let (stream_tx, mut stream_rx) = mpsc::channel::<StreamEvent>(CHANNEL);
        let stream = match endpoint.dialect {
            Dialect::Notifications => {
                let stream_config = StreamConfig {
                    queues: g.queues.clone(),
                    users: g.users.clone(),
                    socket,
                    max_topics: g.max_topics_per_channel,
                    ..StreamConfig::default()
                };
                spawn_stream(Rest::new(http, &endpoint.api_base, auth), stream_config, stream_tx)
            }
            Dialect::Tutorial => {
                spawn_tutorial(auth, endpoint.api_base.clone(), socket, Backoff::default(), stream_tx)
            }
        };
        let forward = tx.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(ev) = stream_rx.recv().await {
                if forward.send(Msg::Stream(ev)).await.is_err() {
                    break;
                }
            }
        });

        let run_id = opts.run_id.unwrap_or_else(new_run_id);
        let audit_path = paths.audit_dir().join(format!("audit-{run_id}.jsonl"));
        let audit = spawn_audit(&audit_path, opts.headless_out)
            .map_err(|source| RuntimeError::Audit { path: audit_path.clone(), source })?;
        tracing::info!(run_id, audit = %audit_path.display(), dialect = %endpoint.dialect, "runtime started");
        Ok(Self {
            engine: Engine::new(policy, &run_id),
            tx,
            rx,
            kb,
            catalog,
            stream,
            forwarder,
            push,
            pushes: JoinSet::new(),
            audit,
            token,
            run_id,
        })
    }

    /// The next thing that happened: a message, a token refresh, or a tick
    /// when a debounce deadline (or the tick interval) comes round.
    pub async fn next(&mut self) -> Msg {
        let deadline = self
            .engine
            .next_deadline()
            .map_or(TICK, |d| d.saturating_duration_since(Instant::now()).min(TICK));
        tokio::select! {
            msg = self.rx.recv() => msg.unwrap_or(Msg::Tick),
            Ok(()) = self.token.changed() => {
                let info = *self.token.borrow_and_update();
                let secs = info.expires_at.and_then(|t| t.duration_since(SystemTime::now()).ok()).map_or(0, |d| d.as_secs());
                Msg::Stream(StreamEvent::TokenRefreshed { expires_in_s: secs })
            }
            () = tokio::time::sleep(deadline) => Msg::Tick,
        }
    }

    /// Gives a message to the engine and carries out its effects.
    pub fn handle(&mut self, msg: Msg) {
        let effects = self.engine.handle(msg, Instant::now());
        for e in effects {
            self.run(e);
        }
        while self.pushes.try_join_next().is_some() {}
    }

    /// Handles everything already queued (up to a bound), without waiting.
    pub fn drain_ready(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Ok(msg) = self.rx.try_recv() else { break };
            self.handle(msg);
            n += 1;
        }
        n
    }

    fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Search { request, conversation_id, query, k } => {
                if !self.kb.submit(SearchJob { request, conversation_id, query, k }) {
                    tracing::error!("knowledge-base worker is gone; search dropped");
                }
            }
            Effect::Push(req) => {
                let (client, tx) = (self.push.clone(), self.tx.clone());
                self.pushes.spawn(async move {
                    let attempts = tx.clone();
                    let mut report = move |a| {
                        // Attempt reports are for display; never wait for room.
                        if attempts.try_send(Msg::PushAttempted(a)).is_err() {
                            tracing::debug!("push attempt report dropped: channel full");
                        }
                    };
                    let outcome = client.push(&req, &mut report).await;
                    let _ = tx.send(Msg::PushDone(outcome)).await;
                });
            }
            Effect::Record(r) => self.audit.record(r),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Every article in the knowledge base (for the manual-push palette).
    pub fn catalog(&self) -> &Arc<Vec<StoredArticle>> {
        &self.catalog
    }

    /// Messages waiting in the channel.
    pub fn queue_depth(&self) -> usize {
        self.rx.len()
    }

    pub fn token_info(&self) -> TokenInfo {
        *self.token.borrow()
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    /// Stops the stream, lets pushes in flight finish (recording their
    /// outcomes), writes the summary, and flushes the audit log.
    pub async fn shutdown(mut self) -> Summary {
        self.stream.cancel.cancel();
        let give_up = tokio::time::Instant::now() + DRAIN;
        while !self.pushes.is_empty() {
            tokio::select! {
                Some(msg) = self.rx.recv() => self.handle(msg),
                _ = self.pushes.join_next() => {}
                () = tokio::time::sleep_until(give_up) => {
                    tracing::warn!(left = self.pushes.len(), "shutting down with pushes still in flight");
                    break;
                }
            }
        }
        self.drain_ready(usize::MAX);
        let summary = self.engine.metrics().summary();
        let mut line = serde_json::to_value(&summary).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut line {
            map.insert("event".into(), "summary".into());
            map.insert("audit_log".into(), self.audit.path().display().to_string().into());
        }
        self.audit.json(line);
        let _ = self.stream.task.await;
        self.forwarder.abort();
        if let Err(e) = self.audit.close() {
            tracing::error!(error = %e, "audit log could not be flushed");
        }
        self.kb.stop();
        summary
    }
}
