//! The command-line surface (clap). Parsing only; each command's behaviour
//! lives in `cmd/`. The `kb` and `bench` commands' options are in [`kb`]
//! and [`bench`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::kb::IndexKind;

mod bench;
mod kb;

pub use bench::BenchCommand;
pub use kb::{GenesysSyncArgs, KbCommand, SyncCommand};

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
