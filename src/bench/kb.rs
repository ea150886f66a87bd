//! `bench kb`: index build throughput (texts embedded per second), cached
//! index load time, and single-query latency, for the sample KB and for a
//! generated KB of 10,000 records; incremental rebuilds of that KB after
//! editing one and three records (the embedding cache at work); plus the
//! effect of sorting texts by length before batching, measured side by side.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{Latency, Machine, SplitMix, machine};
use crate::kb::eval::load_queries;
use crate::kb::store::{self, BuildOutcome};
use crate::kb::{Embedder, FastEmbedder, HnswParams, IndexKind, KbError, KbOptions, ModelSpec};
use crate::paths::{self, AppPaths};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub generated_articles: usize,
    pub queries: usize,
    /// Write the texts embedded for the sample KB here (one JSON string per
    /// line), so another implementation can embed exactly the same texts.
    pub export_texts: Option<PathBuf>,
}

/// One knowledge base's figures.
#[derive(Debug, Clone, Serialize)]
pub struct KbRun {
    pub name: String,
    pub articles: usize,
    pub texts: usize,
    /// Distinct texts the model embedded (identical texts are embedded once).
    pub embedded: usize,
    pub build_s: f64,
    /// Embedded texts per second of build.
    pub texts_per_s: f64,
    pub cached_load_ms: f64,
    pub query: Latency,
}

/// Sorted versus unsorted batching on the same texts.
#[derive(Debug, Clone, Serialize)]
pub struct Batching {
    pub texts: usize,
    pub sorted_texts_per_s: f64,
    pub unsorted_texts_per_s: f64,
    pub speedup: f64,
}

/// Rebuilds after editing a few records of a built KB (model loaded).
#[derive(Debug, Clone, Serialize)]
pub struct Incremental {
    pub kb: String,
    pub edited: usize,
    pub runs: usize,
    pub median_s: f64,
    pub max_s: f64,
    /// Chunks embedded and reused in the last run.
    pub embedded: usize,
    pub reused: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub runs: Vec<KbRun>,
    pub incremental: Vec<Incremental>,
    pub batching: Batching,
}

/// Appends a sentence to the content of `edits` records of a JSON Lines
/// KB, different records each `round`.
fn edit_records(path: &Path, edits: usize, round: usize) -> Result<(), KbError> {
    let io = |source| KbError::Io { path: path.to_path_buf(), source };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let n = lines.len().max(1);
    for j in 0..edits {
        let i = ((round * edits + j) * 7919 + 13) % n;
        let mut rec: serde_json::Value =
            serde_json::from_str(&lines[i]).map_err(|e| KbError::Index(format!("generated record: {e}")))?;
        if let Some(c) = rec.get_mut("content").and_then(|c| c.as_str().map(String::from)) {
            rec["content"] = serde_json::Value::String(format!("{c} Edited in round {round}."));
        }
        lines[i] = rec.to_string();
    }
    std::fs::write(path, lines.join("\n") + "\n").map_err(io)
}

/// Times `runs` rebuilds, each after editing `edits` records.
fn incremental(
    name: &str,
    file: &Path,
    edits: usize,
    runs: usize,
    embedder: &mut FastEmbedder,
    paths: &AppPaths,
) -> Result<Incremental, KbError> {
    let opts = KbOptions {
        sources: vec![file.to_path_buf()],
        kind: IndexKind::Flat,
        hnsw: HnswParams::default(),
        model: ModelSpec::installed(paths),
        force_rebuild: false,
    };
    let mut times = Vec::with_capacity(runs);
    let mut last = (0, 0);
    for round in 0..runs {
        edit_records(file, edits, round + edits * 100)?;
        let t = Instant::now();
        let (_, report) = store::open(&opts, paths, embedder, &mut |_| {})?;
        times.push(t.elapsed());
        if report.outcome == BuildOutcome::Loaded {
            return Err(KbError::Index("an edited KB was loaded from cache instead of rebuilt".into()));
        }
        last = (report.embedded, report.reused);
    }
    let lat = Latency::of(&times);
    Ok(Incremental {
        kb: name.into(),
        edited: edits,
        runs,
        median_s: lat.p50_ms / 1000.0,
        max_s: lat.max_ms / 1000.0,
        embedded: last.0,
        reused: last.1,
    })
}

/// Sentences of the sample KB, for generated records and queries.
fn sentences(kb_dir: &Path) -> Result<Vec<String>, KbError> {
    let articles = crate::kb::source::load_sources(&[kb_dir.to_path_buf()])?;
    Ok(articles
        .iter()
        .flat_map(|a| {
            a.content
                .split(['.', '\n'])
                .map(str::trim)
                .filter(|s| s.split_whitespace().count() >= 6)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Writes `n` records of two to four sample sentences each (seeded, so every
/// run generates the same KB).
pub fn generate_kb(path: &Path, n: usize, pool: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let mut rng = SplitMix::new(7);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let k = 2 + rng.below(3);
        let content: Vec<&str> = (0..k).map(|_| pool[rng.below(pool.len())].as_str()).collect();
        let title = pool[rng.below(pool.len())].split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        let rec = serde_json::json!({ "id": format!("gen-{i}"), "title": title, "content": content.join(". ") + "." });
        writeln!(out, "{rec}")?;
    }
    out.flush()
}

fn measure(
    name: &str,
    sources: Vec<PathBuf>,
    queries: &[String],
    embedder: &mut FastEmbedder,
    paths: &AppPaths,
    export: Option<&Path>,
) -> Result<KbRun, KbError> {
    let opts = KbOptions {
        sources,
        kind: IndexKind::Flat,
        hnsw: HnswParams::default(),
        model: ModelSpec::installed(paths),
        force_rebuild: true,
    };
    let started = Instant::now();
    let (kb, report) = store::open(&opts, paths, embedder, &mut |_| {})?;
    let build_s = started.elapsed().as_secs_f64();
    if let Some(path) = export {
        let lines: Vec<String> = kb
            .chunks
            .iter()
            .map(|c| {
                serde_json::Value::String(c.embed_text(&kb.articles[c.article as usize].title)).to_string()
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")
            .map_err(|source| KbError::Io { path: path.to_path_buf(), source })?;
    }
    drop(kb);
    let reopen = KbOptions { force_rebuild: false, ..opts };
    let started = Instant::now();
    let (mut kb, again) = store::open(&reopen, paths, embedder, &mut |_| {})?;
    let cached_load_ms = started.elapsed().as_secs_f64() * 1000.0;
    if again.outcome != BuildOutcome::Loaded {
        return Err(KbError::Index("the cached index was not reused".into()));
    }
    let mut samples = Vec::with_capacity(queries.len());
    embedder.embed_one("warm up")?;
    for q in queries {
        let t = Instant::now();
        let v = embedder.embed_one(q)?;
        kb.search(&v, 5)?;
        samples.push(t.elapsed());
    }
    Ok(KbRun {
        name: name.into(),
        articles: report.articles,
        texts: report.chunks,
        embedded: report.embedded,
        build_s,
        texts_per_s: report.embedded as f64 / build_s,
        cached_load_ms,
        query: Latency::of(&samples),
    })
}

fn batching(embedder: &mut FastEmbedder, pool: &[String], n: usize) -> Result<Batching, KbError> {
    // Mixed lengths, as real chunks are: one to eight sentences each.
    let mut rng = SplitMix::new(11);
    let texts: Vec<String> = (0..n)
        .map(|_| {
            (0..1 + rng.below(8)).map(|_| pool[rng.below(pool.len())].as_str()).collect::<Vec<_>>().join(". ")
        })
        .collect();
    let mut rate = |sorted: bool| -> Result<f64, KbError> {
        embedder.sort_by_length = sorted;
        let t = Instant::now();
        embedder.embed_many(&texts, &mut |_| {})?;
        Ok(texts.len() as f64 / t.elapsed().as_secs_f64())
    };
    let unsorted = rate(false)?;
    let sorted = rate(true)?;
    Ok(Batching {
        texts: n,
        sorted_texts_per_s: sorted,
        unsorted_texts_per_s: unsorted,
        speedup: sorted / unsorted,
    })
}

pub fn run(paths: &AppPaths, opts: &Options) -> Result<Report, KbError> {
    let scratch =
        super::e2e::scratch_dir("kb").map_err(|source| KbError::Io { path: std::env::temp_dir(), source })?;
    let tmp = scratch.path();
    let bench_paths = AppPaths { cache_dir: tmp.join("cache"), ..paths.clone() };
    let mut embedder = FastEmbedder::load(&ModelSpec::installed(paths))?;
    let kb_dir = paths::bundled("kb");
    let pool = sentences(&kb_dir)?;
    let labelled: Vec<String> = load_queries(&paths::bundled("tests/fixtures/kb_queries.jsonl"))
        .map(|q| q.into_iter().map(|q| q.query).collect())
        .unwrap_or_else(|_| pool.iter().take(50).cloned().collect());
    let mut rng = SplitMix::new(3);
    let take = |v: &[String], rng: &mut SplitMix| {
        (0..opts.queries).map(|_| v[rng.below(v.len())].clone()).collect::<Vec<_>>()
    };
    let sample_queries = take(&labelled, &mut rng);
    let generated_queries = take(&pool, &mut rng);

    let mut runs = vec![measure(
        "sample",
        vec![kb_dir],
        &sample_queries,
        &mut embedder,
        &bench_paths,
        opts.export_texts.as_deref(),
    )?];
    let mut incrementals = Vec::new();
    if opts.generated_articles > 0 {
        let file = tmp.join("generated.jsonl");
        generate_kb(&file, opts.generated_articles, &pool)
            .map_err(|source| KbError::Io { path: file.clone(), source })?;
        let name = format!("generated-{}", opts.generated_articles);
        runs.push(measure(&name, vec![file.clone()], &generated_queries, &mut embedder, &bench_paths, None)?);
        for edits in [1, 3] {
            incrementals.push(incremental(&name, &file, edits, 5, &mut embedder, &bench_paths)?);
        }
    }
    let batching = batching(&mut embedder, &pool, 1000)?;
    Ok(Report { machine: machine(), runs, incremental: incrementals, batching })
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    println!(
        "{:<18} {:>8} {:>7} {:>8} {:>9} {:>9} {:>11}  single query",
        "kb", "articles", "texts", "embedded", "build s", "texts/s", "load ms"
    );
    for k in &r.runs {
        println!(
            "{:<18} {:>8} {:>7} {:>8} {:>9.2} {:>9.1} {:>11.1}  {}",
            k.name, k.articles, k.texts, k.embedded, k.build_s, k.texts_per_s, k.cached_load_ms, k.query
        );
    }
    for i in &r.incremental {
        println!(
            "{:<18} rebuild after editing {} record(s): median {:.2} s, max {:.2} s over {} runs (embedded {}, reused {})",
            i.kb, i.edited, i.median_s, i.max_s, i.runs, i.embedded, i.reused
        );
    }
    let b = &r.batching;
    println!(
        "batching {} mixed-length texts: sorted {:.1}/s, unsorted {:.1}/s ({:.2}x)",
        b.texts, b.sorted_texts_per_s, b.unsorted_texts_per_s, b.speedup
    );
}
