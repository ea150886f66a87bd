//! The command-line surface (clap). Parsing only; each command's behaviour
//! lives in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::kb::IndexKind;

/// Supervises real-time agent assist for Genesys Cloud contact centres.
#[derive(Debug, Parser)]
#[command(name = "agent-assist", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: config.toml in the config dir).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level for agent-assist, e.g. `info` or `trace` (libraries stay at
    /// `warn`), or a full filter such as `agent_assist=debug,ort=info`.
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, query, evaluate and inspect the knowledge-base index.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Run the built-in Genesys Cloud simulator on 127.0.0.1.
    Sim(SimArgs),
    /// The one-command demo: the simulator, the sample knowledge base and the
    /// dashboard, with nothing configured.
    Demo(DemoArgs),
    /// Measure the hot paths (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Supervise agent assist against a Genesys Cloud org (or any API base):
    /// the dashboard, or JSON lines with --headless.
    Console(ConsoleArgs),
    /// Run the headless pipeline as one worker of a floor on NATS
    /// JetStream: it follows the queues whose lease it holds.
    Worker(WorkerArgs),
}

/// Options of `agent-assist worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// NATS server URL (default: `nats.url`).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// A queue this worker may take. Repeatable; default `genesys.queues`.
    #[arg(long = "queue", value_name = "ID")]
    pub queues: Vec<String>,
    /// Global mode at start.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<crate::engine::Mode>,
    /// Lease TTL override, e.g. `2s` (default: `nats.lease_ttl_ms`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub lease_ttl: Option<std::time::Duration>,
    /// Stop after this long, e.g. `90s` or `15m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub exit_after: Option<std::time::Duration>,
    #[command(flatten)]
    pub source: KbSource,
    #[command(flatten)]
    pub widget: WidgetArgs,
}

/// Options of `agent-assist demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Time compression of the simulated calls (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Transcript protocol the simulator and console speak.
    #[arg(long, value_name = "DIALECT", default_value = "notifications")]
    pub dialect: crate::net::Dialect,
    /// Port for the simulator (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub sim_port: u16,
    /// Mode at start.
    #[arg(long, value_name = "MODE", default_value = "manual")]
    pub mode: crate::engine::Mode,
    /// Calls playing at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Inject simulator faults, as for `agent-assist sim --fault`.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<crate::sim::Fault>,
    #[command(flatten)]
    pub source: KbSource,
    #[command(flatten)]
    pub widget: WidgetArgs,
}

/// Options of `agent-assist console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// No terminal UI: one JSON object per line on stdout (`event` field).
    #[arg(long)]
    pub headless: bool,
    /// Global mode at start.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<crate::engine::Mode>,
    /// Transcript protocol.
    #[arg(long, value_name = "DIALECT")]
    pub dialect: Option<crate::net::Dialect>,
    /// A queue whose conversations to follow. Repeatable.
    #[arg(long = "queue", value_name = "ID")]
    pub queues: Vec<String>,
    /// Stop after this long, e.g. `90s` or `15m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub exit_after: Option<std::time::Duration>,
    /// Watch a floor of workers on this NATS server instead of running the
    /// pipeline here (a reader: it never pushes).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    #[command(flatten)]
    pub source: KbSource,
    #[command(flatten)]
    pub widget: WidgetArgs,
}

/// The agent widget's command-line overrides (`console` and `demo`).
#[derive(Debug, Clone, Default, Args)]
pub struct WidgetArgs {
    /// Port of the agent widget (default: `widget.bind`'s, 0 = a free one).
    #[arg(long, value_name = "PORT")]
    pub widget_port: Option<u16>,
    /// Serve the widget over HTTPS with a certificate for localhost made at
    /// start (for local trials; the browser asks to trust it).
    #[arg(long)]
    pub widget_self_signed: bool,
}

impl WidgetArgs {
    /// Applies the flags over the `[widget]` section.
    pub fn apply(&self, w: &mut crate::widget::WidgetConfig) -> Result<(), crate::widget::WidgetConfigError> {
        if let Some(port) = self.widget_port {
            let mut addr = w.bind_addr()?;
            addr.set_port(port);
            w.bind = addr.to_string();
        }
        if self.widget_self_signed {
            w.self_signed = true;
            w.cert = None;
            w.key = None;
        }
        Ok(())
    }
}

/// Options of `agent-assist sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Directory of conversation scripts (default: the bundled `assets/conversations/`).
    #[arg(long, value_name = "DIR")]
    pub conversations: Option<PathBuf>,
    /// Time compression: 10 plays a call ten times faster than scripted.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Inject a fault, e.g. `push-429:every=3,retry_after=1`. Repeatable.
    /// Kinds: push-429, push-500, push-slow, push-403, ws-drop, ws-malformed,
    /// ws-duplicate, token-expire, socket-closing, heartbeat-stop,
    /// analytics-403, analytics-500, rest-429, rest-503, knowledge-403,
    /// knowledge-429, knowledge-500.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<crate::sim::Fault>,
    /// Seconds between heartbeats on each socket.
    #[arg(long, default_value_t = 30.0)]
    pub heartbeat_s: f64,
    /// Lifetime of issued tokens (`expires_in`), seconds.
    #[arg(long, default_value_t = 86_399)]
    pub token_ttl_s: u64,
    /// Lifetime of notification channels, seconds.
    #[arg(long, default_value_t = 86_400)]
    pub channel_ttl_s: u64,
    /// Conversations playing at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Start the scripts over when all have played, forever.
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Accept only this client id (with --client-secret); any by default.
    #[arg(long, requires = "client_secret")]
    pub client_id: Option<String>,
    #[arg(long, requires = "client_id")]
    pub client_secret: Option<String>,
    /// Raise a Copilot third-party-action suggestion every N customer
    /// utterances of each call whose topic is subscribed (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub copilot_every: u32,
    /// Markdown KB the Knowledge API serves (default: the bundled `kb/`).
    #[arg(long, value_name = "DIR")]
    pub knowledge: Option<PathBuf>,
    /// Largest page of a Knowledge API listing.
    #[arg(long, default_value_t = crate::sim::knowledge::DEFAULT_PAGE_SIZE)]
    pub knowledge_page_size: usize,
}

/// Which knowledge base and which index.
#[derive(Debug, Clone, Args)]
pub struct KbSource {
    /// A knowledge-base source: a directory of Markdown or HTML articles, a
    /// JSON Lines / CSV file of records, or `genesys:ID` (a synced Genesys
    /// knowledge base). Repeat for several. Default: the sample `kb/`.
    #[arg(long = "kb", value_name = "PATH")]
    pub kb: Vec<PathBuf>,
    /// Index type: `flat` (exact) or `hnsw` (approximate, for large KBs).
    #[arg(long = "index", value_name = "KIND")]
    pub index: Option<IndexKind>,
    /// How BM25 is fused with the dense ranking: `dense` (cosine only),
    /// `rrf[:k]` or `weighted[:w]`. Default: the measured best.
    #[arg(long = "fusion", value_name = "FUSION")]
    pub fusion: Option<crate::kb::rank::Fusion>,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Build the index (or load it if current) and report what it holds.
    Build {
        #[command(flatten)]
        source: KbSource,
        /// Rebuild even if the cached index is current, embedding every
        /// chunk again (the embedding cache is ignored and rewritten).
        #[arg(long)]
        force: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rank articles for a piece of customer speech.
    Query {
        /// The text to search for.
        text: String,
        #[command(flatten)]
        source: KbSource,
        /// Number of articles to return.
        #[arg(short = 'k', default_value_t = 5)]
        k: usize,
        #[arg(long)]
        json: bool,
    },
    /// Score retrieval on a labelled query set (JSON Lines of
    /// `{"query": ..., "expected": [ids]}`) and measure query latency.
    Eval {
        /// The labelled queries file.
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        #[command(flatten)]
        source: KbSource,
        /// Rank cut-off for recall@k and MRR@k.
        #[arg(short = 'k', default_value_t = 3)]
        k: usize,
        /// Include every query's scores in the JSON report.
        #[arg(long)]
        per_query: bool,
        #[arg(long)]
        json: bool,
    },
    /// Fit a map from the decision score to the probability that the top
    /// article is right, on a labelled query set (lines with `"expected": []`
    /// are queries nothing answers); store it with the index and print the
    /// thresholds reaching given precisions.
    Calibrate {
        /// The labelled queries file.
        #[arg(long, value_name = "FILE", required_unless_present = "calls", conflicts_with = "calls")]
        queries: Option<PathBuf>,
        /// Or a directory of labelled call scripts (the simulator's format,
        /// with `expected_articles`): fits on their search windows, with the
        /// agreement of successive searches.
        #[arg(long, value_name = "DIR")]
        calls: Option<PathBuf>,
        #[command(flatten)]
        source: KbSource,
        /// Precisions to print thresholds for.
        #[arg(long, value_delimiter = ',', default_values_t = [0.8, 0.9, 0.95, 0.97])]
        precision: Vec<f64>,
        /// Also write the calibration to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Fit the need classifier (which utterances start a search) on a
    /// labelled intent set in `kb eval`'s layout (CLINC150's), report its
    /// held-out precision and recall, and write it.
    Need {
        /// Directory holding `kb.jsonl` and `queries.jsonl`.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Where to write the classifier.
        #[arg(long, value_name = "FILE", default_value = "assets/need-classifier.json")]
        out: PathBuf,
        /// Spelled-out words and numbers read out to generate for training.
        #[arg(long, default_value_t = 2000)]
        generated: usize,
        /// Share of utterances with a need that must still search (on a
        /// validation slice of the training data).
        #[arg(long, default_value_t = 0.99)]
        recall: f64,
        #[arg(long)]
        json: bool,
    },
    /// Pull a knowledge base from elsewhere into a local source.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Show what is indexed, where, and with which model.
    Stats {
        #[command(flatten)]
        source: KbSource,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Genesys Cloud Knowledge (credentials as for the console). Without
    /// --knowledge-base, lists the knowledge bases the client can see.
    Genesys(GenesysSyncArgs),
}

/// Options of `agent-assist kb sync genesys`.
#[derive(Debug, Clone, Args)]
pub struct GenesysSyncArgs {
    /// The knowledge base to pull; use it afterwards as `--kb genesys:ID`.
    #[arg(long = "knowledge-base", value_name = "ID")]
    pub knowledge_base: Option<String>,
    /// Include draft documents, not only published ones.
    #[arg(long)]
    pub include_drafts: bool,
    /// Only documents with this label (name or id). Repeatable.
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Index build throughput, cached load and query latency: the sample KB
    /// (long chunks) and a KB of short untitled records.
    Kb {
        /// Records in the short-record knowledge base (0 skips it).
        #[arg(long, default_value_t = 10_000)]
        articles: usize,
        /// Take the short records from this JSON Lines file (its first
        /// --articles lines) instead of generating them.
        #[arg(long, value_name = "FILE")]
        records: Option<PathBuf>,
        /// Single queries to time per knowledge base.
        #[arg(long, default_value_t = 300)]
        queries: usize,
        /// Write each KB's embedded texts into this directory as
        /// <kb>.jsonl (JSON string per line).
        #[arg(long, value_name = "DIR")]
        export_texts: Option<PathBuf>,
        /// Also embed each KB's texts under every batching strategy.
        #[arg(long)]
        strategies: bool,
        /// Extra token budgets for --strategies (comma-separated).
        #[arg(long, value_delimiter = ',')]
        budgets: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// FAISS flat vs HNSW on synthetic clustered unit vectors.
    Index {
        #[arg(long, default_value_t = 100_000)]
        vectors: usize,
        #[arg(long, default_value = "flat")]
        kind: IndexKind,
        #[arg(long, default_value_t = 384)]
        dim: usize,
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(long, default_value_t = 32)]
        hnsw_m: u32,
        #[arg(long, default_value_t = 80)]
        ef_construction: u32,
        #[arg(long, default_value_t = 64)]
        ef_search: u32,
        #[arg(long)]
        json: bool,
    },
    /// The simulator plus the pipeline: per-stage latency against the floor.
    E2e {
        #[arg(long, default_value_t = 4.0)]
        speed: f64,
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        #[arg(long, default_value = "notifications")]
        dialect: crate::net::Dialect,
        /// Only the first N bundled calls.
        #[arg(long)]
        calls: Option<usize>,
        /// Most words in a query window (default: the config's policy).
        #[arg(long)]
        window_max_words: Option<usize>,
        /// Search on every utterance (need detection off), to compare.
        #[arg(long)]
        no_need_detection: bool,
        /// ONNX Runtime threads for the search model, pipeline and floor
        /// alike (`[kb] threads`; default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Auto mode with the default policy (calibrated thresholds,
        /// debounce, cooldown) instead of pushing every search's best article.
        #[arg(long)]
        default_policy: bool,
        /// Edit an article of a copy of the sample KB this often (e.g. 2s),
        /// so live reloads rebuild and swap the index during the run.
        #[arg(long, value_parser = humantime::parse_duration)]
        reload_every: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
    /// The bundled calls through the engine and the real KB on a simulated
    /// clock: searches, needless utterances, relevance, auto-push precision.
    Replay {
        #[command(flatten)]
        opts: crate::bench::replay::Options,
        #[arg(long)]
        json: bool,
    },
    /// Many concurrent calls; --find-max searches the largest sustainable number.
    Load {
        #[arg(long, default_value_t = 50)]
        conversations: usize,
        /// Seconds between one call's utterances.
        #[arg(long, default_value_t = 3.0)]
        every_s: f64,
        /// Seconds each call lasts.
        #[arg(long, default_value_t = 20.0)]
        duration_s: f64,
        #[arg(long, default_value_t = 0)]
        debounce_ms: u64,
        #[arg(long)]
        find_max: bool,
        /// The p99 event→push target for --find-max, milliseconds.
        #[arg(long, default_value_t = 1000)]
        target_p99_ms: u64,
        /// Also deliver to the agent widget and compare the load without
        /// and with N agent pages holding SSE streams open.
        #[arg(long, default_value_t = 0)]
        widgets: usize,
        /// Also run as a floor on this NATS server (KV ledger, every event
        /// published), in the same run as the single process.
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// With --nats: run floors of 1, 2, … N workers (in this process,
        /// the queues split by their leases); each is compared with the
        /// single process, and --find-max runs for each.
        #[arg(long, default_value_t = 1, requires = "nats")]
        workers: usize,
        #[arg(long)]
        json: bool,
    },
    /// Many open agent-widget pages (SSE streams) while suggestions are
    /// published to every call: delivery and publish→page latency.
    Widgets {
        /// Pages open at once, one call each.
        #[arg(long, default_value_t = 200)]
        streams: usize,
        /// Suggestions published to every call.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Milliseconds between rounds.
        #[arg(long, default_value_t = 250)]
        every_ms: u64,
        #[arg(long)]
        json: bool,
    },
}
