//! Start-up: what the runtime is started with ([`Options`], floor mode's
//! [`FloorHooks`]) and [`Runtime::start`], which opens the ledger, loads the
//! knowledge base, spawns its worker, connects, wires the transcript stream
//! into the channel and opens the audit log, in that order.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{CHANNEL, FloorWidget, Runtime, RuntimeError, floor, kb_live, need, widget};
use crate::audit::spawn_audit;
use crate::config::Config;
use crate::delivery::{Delivery, LiveFeed};
use crate::domain::StreamEvent;
use crate::engine::{Engine, Msg, SearchTiming};
use crate::kb::store::BuildProgress;
use crate::kb::worker::{Answer, spawn_worker};
use crate::kb::{KbError, KbOptions, ModelSpec, Retriever};
use crate::ledger::{Ledger, LedgerError, LedgerStore};
use crate::net::auth::TokenSource;
use crate::net::push::{PushClient, PushConfig};
use crate::net::rest::{Rest, http_client};
use crate::net::socket::SocketConfig;
use crate::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use crate::net::tutorial::spawn_tutorial;
use crate::net::{Backoff, Dialect, Endpoint};
use crate::paths::AppPaths;

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
    pub ledger: Box<dyn LedgerStore>,
    pub tap: Box<dyn FnMut(&serde_json::Value) + Send>,
    /// The agent widget on the floor (used when the `widget` sink is on).
    pub widget: Option<FloorWidget>,
}

/// Starts a transcript stream over the given queues.
pub(super) type StreamFactory = Box<dyn Fn(Vec<String>) -> StreamHandle + Send>;

impl Default for Options {
    fn default() -> Self {
        Self { headless_out: None, run_id: None, progress: Box::new(|_| {}), floor: None }
    }
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
    // Whether the window's model run was the one its newest utterance was
    // judged in, a moment before (the debounced path saves that run).
    tracing::debug!(request = a.request, reused_run = a.from_recent, "search answered");
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

/// A ledger store and the records it restores at start.
type OpenLedger = (Box<dyn LedgerStore>, Vec<crate::engine::ConversationRecord>);

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
        let ledger = open_ledger(config, paths, floor_ledger)?;
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
        let need = need::classifier(&mut policy, &model_hash, &paths.model_dir);
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
        let (stream_tx, mut stream_rx) = mpsc::channel::<StreamEvent>(CHANNEL);
        let new_stream = stream_factory(config, &endpoint, http, auth, stream_tx, floor);
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
}

/// The ledger to run with: the floor's store (its records are read per
/// queue when its lease is taken), else the local file when it is enabled,
/// with the records still inside the retention window.
fn open_ledger(
    config: &Config,
    paths: &AppPaths,
    floor_ledger: Option<Box<dyn LedgerStore>>,
) -> Result<Option<OpenLedger>, RuntimeError> {
    if let Some(store) = floor_ledger {
        return Ok(Some((store, Vec::new())));
    }
    if !config.ledger.enabled {
        return Ok(None);
    }
    let path = config.ledger.path.clone().unwrap_or_else(|| paths.ledger_file());
    let mut ledger = Ledger::open(&path)?;
    let cutoff = unix_ms(SystemTime::now())
        .saturating_sub(u64::try_from(config.ledger.retention().as_millis()).unwrap_or(u64::MAX));
    let records = ledger.load(cutoff)?;
    tracing::info!(path = %path.display(), calls = records.len(), "ledger open");
    Ok(Some((Box::new(ledger), records)))
}

/// How transcript streams are started for the endpoint's dialect. Outside
/// floor mode one stream follows the configured queues and users; on a
/// floor each held queue gets its own stream over just that queue.
fn stream_factory(
    config: &Config,
    endpoint: &Endpoint,
    http: reqwest::Client,
    auth: Arc<TokenSource>,
    stream_tx: mpsc::Sender<StreamEvent>,
    floor: bool,
) -> StreamFactory {
    let g = &config.genesys;
    let socket = SocketConfig {
        ping_after: Duration::from_millis(g.ping_after_ms),
        pong_timeout: Duration::from_millis(g.pong_timeout_ms),
        ..SocketConfig::default()
    };
    let api_base = endpoint.api_base.clone();
    match endpoint.dialect {
        Dialect::Notifications => {
            let stream_config = StreamConfig {
                queues: g.queues.clone(),
                users: g.users.clone(),
                socket,
                max_topics: g.max_topics_per_channel,
                copilot: config.delivery.sinks.contains(&crate::domain::Sink::GenesysCopilot),
                ..StreamConfig::default()
            };
            Box::new(move |queues: Vec<String>| {
                let mut c = stream_config.clone();
                if floor {
                    c.queues = queues;
                    c.users = Vec::new();
                }
                spawn_stream(Rest::new(http.clone(), &api_base, auth.clone()), c, stream_tx.clone())
            })
        }
        Dialect::Tutorial => Box::new(move |_| {
            spawn_tutorial(auth.clone(), api_base.clone(), socket, Backoff::default(), stream_tx.clone())
        }),
    }
}
