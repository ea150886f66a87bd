//! The runtime: the one owner of state. It holds the engine and connects it
//! to the world: the knowledge-base worker thread, the transcript stream,
//! push tasks and the audit writer. Everything talks to it through one
//! bounded `Msg` channel; it runs the engine's effects without ever awaiting
//! a send to a worker (searches go on an unbounded queue the worker drains
//! latest-first, pushes are spawned, audit records are queued).
//!
//! Frontends (headless JSON lines, the TUI) drive it with [`Runtime::next`]
//! and [`Runtime::handle`], and read the engine for display.
//!
//! Knowledge-base edits are picked up while it runs ([`kb_live`]).

mod kb_live;

mod need;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::audit::{AuditHandle, spawn_audit};
use crate::config::Config;
use crate::delivery::{Delivery, LiveFeed};
use crate::domain::StreamEvent;
use crate::engine::{Effect, Engine, Msg, SearchTiming, Summary};
use crate::kb::store::{BuildProgress, StoredArticle};
use crate::kb::worker::{Answer, KbHandle, SearchJob, spawn_worker};
use crate::kb::{KbError, KbOptions, ModelSpec, Retriever};
use crate::ledger::{Ledger, LedgerError, LedgerHandle};
use crate::net::auth::{TokenInfo, TokenSource};
use crate::net::push::{PushClient, PushConfig};
use crate::net::rest::{Rest, http_client};
use crate::net::socket::SocketConfig;
use crate::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use crate::net::tutorial::spawn_tutorial;
use crate::net::{Backoff, Dialect, NetError};
use crate::paths::AppPaths;
use crate::widget::{FeedEvent, FeedOut, WidgetHub, WidgetServer};

mod floor;
mod widget;

pub use widget::{FloorWidget, agent_event};

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
    Sync(#[from] crate::kb::genesys::SyncError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot open the audit log {path}: {source}")]
    Audit { path: std::path::PathBuf, source: std::io::Error },
    #[error("no queues to follow: pass --queue ID or set genesys.queues (or genesys.users)")]
    NoQueues,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Widget(#[from] crate::widget::WidgetError),
}

/// How to start.
pub struct Options {
    /// Where the headless console's JSON lines go.
    pub headless_out: Option<Box<dyn Write + Send>>,
    /// Suggestion-id prefix; a fresh one when `None`.
    pub run_id: Option<String>,
    /// Index-build progress, for a progress display.
    pub progress: Box<dyn FnMut(BuildProgress) + Send>,
    /// Floor mode (`agent-assist worker`): no queue is followed at start.
    pub floor: Option<FloorHooks>,
}

/// What floor mode changes in the runtime: the ledger's store, a tap on
/// every event, and no stream until a queue's lease is held (then
/// [`Runtime::follow_queue`]).
pub struct FloorHooks {
    pub ledger: Box<dyn crate::ledger::LedgerStore>,
    pub tap: Box<dyn FnMut(&serde_json::Value) + Send>,
    /// The agent widget on the floor (used when the `widget` sink is on).
    pub widget: Option<FloorWidget>,
}

/// Starts a transcript stream over the given queues.
type StreamFactory = Box<dyn Fn(Vec<String>) -> StreamHandle + Send>;

impl Default for Options {
    fn default() -> Self {
        Self { headless_out: None, run_id: None, progress: Box::new(|_| {}), floor: None }
    }
}

/// The running pipeline.
pub struct Runtime {
    engine: Engine,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    kb: KbHandle,
    /// Live reload: watcher, periodic sync and the rebuild thread.
    kb_live: kb_live::KbLive,
    catalog: Arc<Vec<StoredArticle>>,
    /// Transcript streams by queue (`""`: the one over the configured
    /// queues; in floor mode one per held queue).
    streams: std::collections::BTreeMap<String, StreamHandle>,
    new_stream: StreamFactory,
    forwarder: tokio::task::JoinHandle<()>,
    delivery: Delivery,
    pushes: JoinSet<()>,
    ledger: Option<LedgerHandle>,
    /// The agent widget, when the `widget` sink is on: its feed and server.
    widget: Option<(WidgetHub, WidgetServer)>,
    /// Where feed events for the widget go (its hub, or the floor).
    feed_out: Option<FeedOut>,
    audit: AuditHandle,
    token: watch::Receiver<TokenInfo>,
    run_id: String,
    /// Queues let go of and their calls, whose stream events still in the
    /// channel are dropped (floor mode).
    handed: floor::Handed,
    /// When the engine last had a tick: ticks are due every [`TICK`] even
    /// while messages keep arriving (heartbeats alone can come faster).
    last_tick: Instant,
}

/// The engine's message for a knowledge-base answer.
fn kb_msg(a: Answer) -> Msg {
    let a = match a {
        Answer::Need(n) => {
            tracing::debug!(utterance = %n.utterance_id, need = n.need, p = ?n.probability, "need judged");
            return Msg::NeedJudged {
                conversation_id: n.conversation_id,
                utterance_id: n.utterance_id,
                need: n.need,
            };
        }
        Answer::Search(a) => a,
    };
    match a.result {
        Ok(hits) => Msg::SearchDone {
            request: a.request,
            conversation_id: a.conversation_id,
            hits,
            timing: SearchTiming { started: a.started, finished: a.finished },
        },
        Err(error) => Msg::SearchFailed { request: a.request, conversation_id: a.conversation_id, error },
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
        let floor = opts.floor.is_some();
        if endpoint.dialect == Dialect::Notifications && g.queues.is_empty() && g.users.is_empty() && !floor {
            return Err(RuntimeError::NoQueues);
        }
        // The ledger first: a second process on the same data dir must stop
        // here, before it connects or pushes anything.
        let (floor_ledger, tap, floor_widget) = match opts.floor {
            Some(f) => (Some(f.ledger), Some(f.tap), f.widget),
            None => (None, None, None),
        };
        let ledger: Option<(Box<dyn crate::ledger::LedgerStore>, _)> = if let Some(store) = floor_ledger {
            // Records are read per queue when its lease is taken.
            Some((store, Vec::new()))
        } else if config.ledger.enabled {
            let path = config.ledger.path.clone().unwrap_or_else(|| paths.ledger_file());
            let mut ledger = Ledger::open(&path)?;
            let cutoff = unix_ms(SystemTime::now())
                .saturating_sub(u64::try_from(config.ledger.retention().as_millis()).unwrap_or(u64::MAX));
            let records = ledger.load(cutoff)?;
            tracing::info!(path = %path.display(), calls = records.len(), "ledger open");
            Some((Box::new(ledger), records))
        } else {
            None
        };
        let kb_opts = KbOptions {
            // `genesys:ID` sources are synced first, then read as files.
            sources: crate::kb::genesys::resolve_sources(config, paths).await?,
            kind: config.kb.index,
            hnsw: config.kb.hnsw(),
            model: ModelSpec { threads: config.kb.model_threads(), ..ModelSpec::installed(paths) },
            force_rebuild: false,
        };
        let live_opts = kb_opts.clone();
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
            let notes = c.apply_to(&mut policy);
            tracing::info!(?notes, "thresholds from the calibration");
        }
        let catalog = Arc::new(retriever.kb.articles.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let answers = tx.clone();
        let model_hash = retriever.kb.manifest.model_hash.clone();
        let need = need::classifier(&mut policy, &model_hash);
        let kb = spawn_worker(retriever, need, Box::new(move |a| answers.blocking_send(kb_msg(a)).is_ok()));
        let kb_live = kb_live::start(config, paths, live_opts, catalog.clone(), kb.installer(), tx.clone());

        let http = http_client(config.push_timeout())?;
        let auth = TokenSource::new(http.clone(), endpoint.clone());
        let token = auth.watch();
        let push_config = PushConfig {
            url_template: g.push_url.clone(),
            max_attempts: g.push_max_attempts,
            ..PushConfig::default()
        };
        let push = PushClient::new(http.clone(), auth.clone(), &endpoint.api_base, push_config);
        let (widget, feed_out) = widget::start(config, &tx, floor_widget).await?;
        let feed = feed_out.clone().map(|out| Arc::new(out) as Arc<dyn LiveFeed>);
        let delivery = Delivery::new(push, &config.delivery.attributes_prefix, feed);
        let socket = SocketConfig {
            ping_after: Duration::from_millis(g.ping_after_ms),
            pong_timeout: Duration::from_millis(g.pong_timeout_ms),
            ..SocketConfig::default()
        };
        let (stream_tx, mut stream_rx) = mpsc::channel::<StreamEvent>(CHANNEL);
        let new_stream: StreamFactory = match endpoint.dialect {
            Dialect::Notifications => {
                let stream_config = StreamConfig {
                    queues: g.queues.clone(),
                    users: g.users.clone(),
                    socket,
                    max_topics: g.max_topics_per_channel,
                    copilot: config.delivery.sinks.contains(&crate::domain::Sink::GenesysCopilot),
                    ..StreamConfig::default()
                };
                let api_base = endpoint.api_base.clone();
                Box::new(move |queues: Vec<String>| {
                    let mut c = stream_config.clone();
                    if floor {
                        c.queues = queues;
                        c.users = Vec::new();
                    }
                    spawn_stream(Rest::new(http.clone(), &api_base, auth.clone()), c, stream_tx.clone())
                })
            }
            Dialect::Tutorial => {
                let api_base = endpoint.api_base.clone();
                Box::new(move |_| {
                    spawn_tutorial(
                        auth.clone(),
                        api_base.clone(),
                        socket,
                        Backoff::default(),
                        stream_tx.clone(),
                    )
                })
            }
        };
        let mut streams = std::collections::BTreeMap::new();
        if !floor {
            streams.insert(String::new(), new_stream(Vec::new()));
        }
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
        let audit = spawn_audit(&audit_path, opts.headless_out, tap)
            .map_err(|source| RuntimeError::Audit { path: audit_path.clone(), source })?;
        tracing::info!(run_id, audit = %audit_path.display(), dialect = %endpoint.dialect, "runtime started");
        let mut engine = Engine::new(policy, &run_id);
        engine.set_sinks(&config.delivery.sinks);
        engine.set_clock(Instant::now(), unix_ms(SystemTime::now()));
        let (ledger, restored) = match ledger {
            Some((l, records)) => {
                engine.enable_persistence();
                let handle = crate::ledger::spawn(l, tx.clone())
                    .map_err(|e| LedgerError::Io { path: paths.ledger_file(), message: e.to_string() })?;
                (Some(handle), records)
            }
            None => (None, Vec::new()),
        };
        let mut rt = Self {
            engine,
            tx,
            rx,
            kb,
            kb_live,
            catalog,
            streams,
            new_stream,
            forwarder,
            delivery,
            pushes: JoinSet::new(),
            ledger,
            widget,
            feed_out,
            audit,
            token,
            run_id,
            handed: floor::Handed::default(),
            last_tick: Instant::now(),
        };
        if let Some(url) = rt.widget_url() {
            rt.audit.json(serde_json::json!({ "event": "widget", "url": url }));
        }
        if rt.ledger.is_some() {
            let effects = rt.engine.restore(restored, Instant::now());
            for e in effects {
                rt.run(e);
            }
        }
        Ok(rt)
    }

    /// The next thing that happened: a message, a token refresh, or a tick
    /// when a debounce deadline (or the tick interval) comes round.
    pub async fn next(&mut self) -> Msg {
        // Steady traffic must not starve the timers (idle calls, eviction).
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            return Msg::Tick;
        }
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
            () = tokio::time::sleep(deadline) => {
                self.last_tick = Instant::now();
                Msg::Tick
            }
        }
    }

    /// Gives a message to the engine and carries out its effects.
    pub fn handle(&mut self, msg: Msg) {
        if self.handed.is_stale(&msg) {
            return;
        }
        // Who is on a call decides who may open its widget page.
        if let (Msg::Stream(StreamEvent::Participants { conversation_id, participants }), Some(out)) =
            (&msg, &self.feed_out)
        {
            let _ = out.publish(FeedEvent::participants(conversation_id, participants));
        }
        if let Msg::KbReloaded(r) = &msg {
            kb_live::on_reloaded(r, &self.engine, &self.kb_live, &mut self.catalog, self.feed_out.as_ref());
        }
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
            Effect::JudgeNeed { conversation_id, utterance_id, text } => {
                self.judge_need(conversation_id, utterance_id, text);
            }
            Effect::Search { request, conversation_id, query, k } => {
                if !self.kb.submit(SearchJob { request, conversation_id, query, k }) {
                    tracing::error!("knowledge-base worker is gone; search dropped");
                }
            }
            // Record, then act: the ledger releases the push once the
            // decision behind it is committed.
            Effect::Push(req) => match &self.ledger {
                Some(l) => l.hold(req),
                None => self.handle(Msg::Durable(vec![req])),
            },
            Effect::Persist(rec) => {
                if let Some(l) = &self.ledger {
                    l.record(rec);
                }
            }
            Effect::Deliver(req) => self.delivery.deliver(req, &mut self.pushes, &self.tx),
            Effect::Unfollow { conversation_id } => {
                for s in self.streams.values() {
                    s.unfollow(&conversation_id);
                }
            }
            Effect::Record(r) => {
                if let (crate::engine::Record::ConversationEnded { conversation_id }, Some(out)) =
                    (&r, &self.feed_out)
                {
                    let _ = out.publish(FeedEvent::Ended { conversation_id: conversation_id.clone() });
                }
                self.audit.record(r);
            }
        }
    }

    /// The agent widget's address, when it is served.
    pub fn widget_url(&self) -> Option<&str> {
        self.widget.as_ref().map(|(_, s)| s.url.as_str())
    }

    /// The agent widget page of one call, when the widget is served.
    pub fn widget_page(&self, conversation_id: &str) -> Option<String> {
        self.widget.as_ref().map(|(_, s)| s.page_url(conversation_id))
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

    /// Writes a ready-made JSON line to the audit log and headless output.
    pub fn note(&self, line: serde_json::Value) {
        self.audit.json(line);
    }

    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    /// Stops the stream, lets pushes in flight finish (recording their
    /// outcomes), writes the summary, and flushes the audit log.
    pub async fn shutdown(mut self) -> Summary {
        for s in self.streams.values() {
            s.cancel.cancel();
        }
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
        for (_, s) in std::mem::take(&mut self.streams) {
            let _ = s.task.await;
        }
        self.forwarder.abort();
        if let Some(l) = self.ledger.take() {
            l.close();
        }
        if let Some((_, server)) = self.widget.take() {
            server.stop().await;
        }
        if let Err(e) = self.audit.close() {
            tracing::error!(error = %e, "audit log could not be flushed");
        }
        self.kb_live.stop();
        self.kb.stop();
        summary
    }
}
