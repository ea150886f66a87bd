//! `agent-assist kb build|query|eval|sync|stats`: the operator's tools for
//! checking a knowledge base and a threshold before going live, and for
//! pulling one from Genesys Knowledge ([`sync`]).

mod sync;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use color_eyre::eyre::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

mod calibrate;
mod need;

use crate::cli::{KbCommand, KbSource};
use crate::kb::eval::{self, EvalReport};
use crate::kb::store::{self, BuildProgress};
use crate::kb::{BuildOutcome, BuildReport, Hit, HnswParams, KbOptions, ModelSpec, Retriever};
use crate::paths::{self, AppPaths};

pub fn run(cmd: KbCommand, config_file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    match cmd {
        KbCommand::Build { source, force, json } => {
            let mut opts = options(&source, paths)?;
            opts.force_rebuild = force;
            let (_, report) = open(&opts, paths, json)?;
            print_build(&report, json);
        }
        KbCommand::Query { text, source, k, json } => {
            if text.trim().is_empty() {
                return Err(crate::kb::KbError::EmptyQuery.into());
            }
            let opts = options(&source, paths)?;
            let (mut r, _) = open(&opts, paths, json)?;
            set_fusion(&mut r, &source);
            let t = Instant::now();
            let hits = r.query(&text, k)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            print_hits(&text, k, &hits, ms, json);
        }
        KbCommand::Eval { queries, source, k, per_query, json } => {
            let labelled = eval::load_queries(&queries)?;
            let opts = options(&source, paths)?;
            let (mut r, _) = open(&opts, paths, json)?;
            set_fusion(&mut r, &source);
            let mut report = eval::evaluate(&mut r, &labelled, k)?;
            if !per_query {
                report.per_query.clear();
            }
            print_eval(&report, json);
        }
        KbCommand::Sync(crate::cli::SyncCommand::Genesys(args)) => {
            return sync::genesys(&args, config_file, paths);
        }
        KbCommand::Calibrate { queries, calls, source, precision, out, json } => {
            let opts = options(&source, paths)?;
            let (mut r, _) = open(&opts, paths, json)?;
            set_fusion(&mut r, &source);
            match (queries, calls) {
                (Some(q), _) => {
                    let labelled = eval::load_queries(&q)?;
                    calibrate::run(&mut r, &labelled, &precision, out.as_deref(), json)?;
                }
                (None, Some(dir)) => {
                    calibrate::run_calls(&mut r, paths, &dir, &precision, out.as_deref(), json)?;
                }
                (None, None) => return Err(color_eyre::eyre::eyre!("give --queries FILE or --calls DIR")),
            }
        }
        KbCommand::Need { data, out, install, generated, recall, json } => {
            let out = if install { paths.model_dir.join(crate::kb::need::INSTALLED_FILE) } else { out };
            need::run(&data, &out, &ModelSpec::installed(paths), generated, recall, json)?;
        }
        KbCommand::Stats { source, json } => stats(&options(&source, paths)?, paths, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `--fusion` when given (the KB's default otherwise); a
/// calibration fitted for another fusion no longer applies.
fn set_fusion(r: &mut Retriever, source: &KbSource) {
    if let Some(f) = source.fusion {
        r.kb.fusion = f;
        r.calibration = crate::kb::calibration::for_kb(&r.kb);
    }
}

/// The KB options from the command line; the sample KB when none is given.
/// A `genesys:ID` source is its last synced copy.
pub fn options(source: &KbSource, paths: &AppPaths) -> Result<KbOptions> {
    let sources = if source.kb.is_empty() { vec![paths::bundled("kb")] } else { source.kb.clone() };
    let sources = crate::kb::genesys::local_sources(&sources, &paths.data_dir)?;
    Ok(KbOptions {
        sources,
        kind: source.index.unwrap_or_default(),
        hnsw: HnswParams::default(),
        model: ModelSpec::installed(paths),
        force_rebuild: false,
    })
}

/// Loads or builds, with a progress bar on a terminal (never in JSON mode).
pub fn open(opts: &KbOptions, paths: &AppPaths, json: bool) -> Result<(Retriever, BuildReport)> {
    let show_bar = !json && std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut on_progress = |p: BuildProgress| {
        let BuildProgress::Embedding { done, total } = p;
        if !show_bar {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("embedding {bar:30} {pos}/{len} chunks  {per_sec}  eta {eta}")
            {
                b.set_style(style);
            }
            b
        });
        b.set_position(done as u64);
    };
    let result = Retriever::open(opts, paths, &mut on_progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(result?)
}

fn print_build(r: &BuildReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    match &r.outcome {
        BuildOutcome::Loaded => println!("Loaded cached {} index (current).", r.index_kind),
        BuildOutcome::Built { reason } => println!("Built {} index ({reason}).", r.index_kind),
    }
    println!("  articles  {}", r.articles);
    println!("  chunks    {}", r.chunks);
    if matches!(r.outcome, BuildOutcome::Built { .. }) {
        println!("  embedded  {} (reused {} cached)", r.embedded, r.reused);
    }
    println!("  seconds   {:.2}", r.seconds);
    println!("  cache     {}", r.cache_dir.display());
}

fn print_hits(query: &str, k: usize, hits: &[Hit], ms: f64, json: bool) {
    if json {
        println!("{}", json!({ "query": query, "k": k, "latency_ms": ms, "hits": hits }));
        return;
    }
    if hits.is_empty() {
        println!("No articles.");
    }
    for (i, h) in hits.iter().enumerate() {
        println!("{:>2}. {:.3}  {:<24} {}", i + 1, h.score, h.article_id, h.title);
        if let Some(why) = crate::kb::rank::explain(h) {
            println!("      {why}");
        }
        println!("      {}", excerpt(&h.text, 110));
    }
    println!("({ms:.1} ms)");
}

/// The first `max` characters of a passage on one line.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

fn print_eval(r: &EvalReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!("queries        {} ({} answerable)", r.queries, r.answerable);
    println!("fusion         {:?}", r.fusion);
    println!("top-1 accuracy {:.3}", r.top1);
    println!("recall@{:<7} {:.3}", r.k, r.recall_at_k);
    println!("MRR@{:<10} {:.3}", r.k, r.mrr_at_k);
    println!(
        "latency ms     p50 {:.2}  p99 {:.2}  max {:.2}",
        r.latency_ms.p50, r.latency_ms.p99, r.latency_ms.max
    );
    if let Some(a) = &r.abstention {
        println!(
            "abstention     AUROC {:.4} ({} answerable, {} unanswerable)",
            a.auroc, a.answerable, a.unanswerable
        );
        for p in &a.at {
            println!(
                "  at {:>4.1}% out-of-scope pushed: threshold {:.3}, {:.1}% answerable pushed, precision {:.3}",
                p.oos_push_rate * 100.0,
                p.threshold,
                p.answerable_pushed * 100.0,
                p.precision
            );
        }
        for (name, auc) in &a.candidates {
            println!("  candidate {name:<14} AUROC {auc:.4}");
        }
    }
    if !r.unknown_ids.is_empty() {
        println!("unknown expected ids: {}", r.unknown_ids.join(", "));
    }
    for m in &r.misses {
        println!("miss: {:?}\n      expected {:?}, got {:?}", m.query, m.expected, m.got);
    }
}

fn stats(opts: &KbOptions, paths: &AppPaths, json: bool) -> Result<()> {
    let dir = store::cache_dir_for(paths, &opts.sources, opts.kind);
    let manifest = store::read_manifest(&dir);
    let model_hash = opts.model.fingerprint().ok();
    let source_hash = store::source_hash(&opts.sources).ok();
    let current = manifest
        .as_ref()
        .map(|m| Some(&m.source_hash) == source_hash.as_ref() && Some(&m.model_hash) == model_hash.as_ref());
    let index_bytes = std::fs::metadata(dir.join("index.faiss")).map(|m| m.len()).ok();
    let sources: Vec<PathBuf> = opts.sources.clone();
    if json {
        let out = json!({
            "sources": sources,
            "cache_dir": dir,
            "index_kind": opts.kind,
            "manifest": manifest,
            "current": current,
            "index_bytes": index_bytes,
            "model_dir": opts.model.model_dir,
            "model_hash": model_hash,
            "ort_library": opts.model.ort_library,
        });
        println!("{out}");
        return Ok(());
    }
    let list = sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    println!("sources      {list}");
    println!("cache        {}", dir.display());
    println!("model        {}", opts.model.model_dir.display());
    println!(
        "model sha256 {}",
        model_hash.as_deref().unwrap_or("(model not installed: run scripts/setup.sh)")
    );
    println!("onnxruntime  {}", opts.model.ort_library.display());
    match &manifest {
        None => println!("index        not built yet (run `agent-assist kb build`)"),
        Some(m) => {
            let state = if current == Some(true) { "current" } else { "stale: will rebuild on next use" };
            println!("index        {} ({state})", m.index_kind);
            println!("articles     {}", m.articles);
            println!("chunks       {}", m.chunks);
            println!("dimension    {}", m.dimension);
            println!("built        {} s after the epoch, in {:.2} s", m.built_at_unix, m.build_seconds);
            if let Some(b) = index_bytes {
                println!("index size   {:.1} KiB", b as f64 / 1024.0);
            }
        }
    }
    Ok(())
}
