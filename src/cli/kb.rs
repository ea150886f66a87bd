//! The `kb` commands' command line: build, query, eval, calibrate, the
//! record import, and `kb sync` from a Genesys Knowledge base.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::KbSource;

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
        /// Write it beside the installed model's files instead, where every
        /// command running that model (`[kb] model`) finds it: need
        /// detection for a model the bundled classifier does not fit.
        #[arg(long, conflicts_with = "out")]
        install: bool,
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
