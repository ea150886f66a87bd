//! `bench kb`: index build throughput (texts embedded per second), cached
//! index load time, and single-query latency, for the two shapes of KB: the
//! sample KB (long chunks of help articles) and 10,000 short untitled
//! records (generated, or the first records of a file such as an intent
//! set); incremental rebuilds of the short KB after editing one and three
//! records (the embedding cache at work); and with `--strategies`, the ways
//! of batching and of using the cores, measured side by side
//! ([`batching`]).

mod batching;

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
    /// Records in the short KB (0 skips it).
    pub generated_articles: usize,
    /// Take the short KB's records from this JSON Lines file (its first
    /// `generated_articles` lines) instead of generating them.
    pub records: Option<PathBuf>,
    pub queries: usize,
    /// Write the texts embedded for each KB into this directory as
    /// `<kb>.jsonl` (one JSON string per line), so another implementation
    /// can embed exactly the same texts.
    pub export_texts: Option<PathBuf>,
    /// Compare batching strategies on each KB's texts.
    pub strategies: bool,
    /// Extra token budgets to try in that comparison.
    pub budgets: Vec<usize>,
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
    /// CPU time of the whole process (every thread) during the build: on a
    /// machine shared with other work this is the steadier figure.
    pub build_cpu_s: Option<f64>,
    /// Embedded texts per second of build.
    pub texts_per_s: f64,
    pub cached_load_ms: f64,
    pub query: Latency,
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
    pub batching: Vec<batching::Strategy>,
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

/// Writes `n` short untitled records, each a run of 5 to 15 consecutive
/// words of the sample KB's sentences from a random place (seeded, so every
/// run generates the same KB; nearly every record is distinct, as in an
/// intent set).
pub fn generate_kb(path: &Path, n: usize, pool: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let words: Vec<&str> = pool.iter().flat_map(|s| s.split_whitespace()).collect();
    let mut rng = SplitMix::new(7);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let len = 5 + rng.below(11);
        let start = rng.below(words.len().saturating_sub(len).max(1));
        let content = words.iter().skip(start).take(len).copied().collect::<Vec<_>>().join(" ");
        let rec = serde_json::json!({ "id": format!("gen-{i}"), "content": content });
        writeln!(out, "{rec}")?;
    }
    out.flush()
}

/// Copies the first `n` lines of a JSON Lines file.
fn first_records(from: &Path, to: &Path, n: usize) -> Result<(), KbError> {
    let text =
        std::fs::read_to_string(from).map_err(|source| KbError::Io { path: from.to_path_buf(), source })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(n).collect();
    std::fs::write(to, lines.join("\n") + "\n")
        .map_err(|source| KbError::Io { path: to.to_path_buf(), source })
}

/// A build's figures and the texts it embedded.
struct Measured {
    run: KbRun,
    texts: Vec<String>,
}

fn measure(
    name: &str,
    sources: Vec<PathBuf>,
    queries: &[String],
    embedder: &mut FastEmbedder,
    paths: &AppPaths,
) -> Result<Measured, KbError> {
    let opts = KbOptions {
        sources,
        kind: IndexKind::Flat,
        hnsw: HnswParams::default(),
        model: ModelSpec::installed(paths),
        force_rebuild: true,
    };
    let cpu_before = process_cpu_s();
    let started = Instant::now();
    let (kb, report) = store::open(&opts, paths, embedder, &mut |_| {})?;
    let build_s = started.elapsed().as_secs_f64();
    let build_cpu_s = process_cpu_s().zip(cpu_before).map(|(after, before)| after - before);
    let texts: Vec<String> =
        kb.chunks.iter().map(|c| c.embed_text(&kb.articles[c.article as usize].title)).collect();
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
    let run = KbRun {
        name: name.into(),
        articles: report.articles,
        texts: report.chunks,
        embedded: report.embedded,
        build_s,
        build_cpu_s,
        texts_per_s: report.embedded as f64 / build_s,
        cached_load_ms,
        query: Latency::of(&samples),
    };
    Ok(Measured { run, texts })
}

/// User plus system CPU seconds of this process, all threads, from
/// `/proc/self/stat` (Linux; `None` elsewhere). Read by hand: one line of
/// text, not worth a dependency. Ticks are the kernel's USER_HZ, 100 on
/// Linux.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Writes `texts` as `dir/<name>.jsonl`, one JSON string per line.
fn export(dir: &Path, name: &str, texts: &[String]) -> Result<(), KbError> {
    let io = |path: PathBuf| move |source| KbError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let path = dir.join(format!("{name}.jsonl"));
    let lines: Vec<String> = texts.iter().map(|t| serde_json::Value::String(t.clone()).to_string()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").map_err(io(path.clone()))
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

    let mut measured = vec![measure("sample", vec![kb_dir], &sample_queries, &mut embedder, &bench_paths)?];
    let mut incrementals = Vec::new();
    if opts.generated_articles > 0 {
        let file = tmp.join("short.jsonl");
        let name = match &opts.records {
            Some(from) => {
                first_records(from, &file, opts.generated_articles)?;
                let stem = from
                    .parent()
                    .and_then(|p| p.file_name())
                    .map_or_else(|| "records".to_string(), |s| s.to_string_lossy().into_owned());
                format!("{stem}-{}", opts.generated_articles)
            }
            None => {
                generate_kb(&file, opts.generated_articles, &pool)
                    .map_err(|source| KbError::Io { path: file.clone(), source })?;
                format!("short-{}", opts.generated_articles)
            }
        };
        measured.push(measure(&name, vec![file.clone()], &generated_queries, &mut embedder, &bench_paths)?);
        for edits in [1, 3] {
            incrementals.push(incremental(&name, &file, edits, 5, &mut embedder, &bench_paths)?);
        }
    }
    let mut strategies = Vec::new();
    for m in &measured {
        if let Some(dir) = &opts.export_texts {
            export(dir, &m.run.name, &m.texts)?;
        }
        if opts.strategies {
            strategies.extend(batching::compare(&mut embedder, &m.run.name, &m.texts, &opts.budgets)?);
        }
    }
    let runs = measured.into_iter().map(|m| m.run).collect();
    Ok(Report { machine: machine(), runs, incremental: incrementals, batching: strategies })
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    println!(
        "{:<18} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11}  single query",
        "kb", "articles", "texts", "embedded", "build s", "cpu s", "texts/s", "load ms"
    );
    for k in &r.runs {
        println!(
            "{:<18} {:>8} {:>7} {:>8} {:>9.2} {:>9.2} {:>9.1} {:>11.1}  {}",
            k.name,
            k.articles,
            k.texts,
            k.embedded,
            k.build_s,
            k.build_cpu_s.unwrap_or(f64::NAN),
            k.texts_per_s,
            k.cached_load_ms,
            k.query
        );
    }
    for i in &r.incremental {
        println!(
            "{:<18} rebuild after editing {} record(s): median {:.2} s, max {:.2} s over {} runs (embedded {}, reused {})",
            i.kb, i.edited, i.median_s, i.max_s, i.runs, i.embedded, i.reused
        );
    }
    for b in &r.batching {
        println!(
            "{:<18} {:<48} {:>6} texts {:>8.2} s {:>8.1} texts/s",
            b.kb, b.strategy, b.texts, b.seconds, b.texts_per_s
        );
    }
}
