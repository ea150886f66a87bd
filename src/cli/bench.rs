//! The `bench` commands' command line: one variant a benchmark, each with
//! its own knobs and `--json`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::kb::IndexKind;

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
