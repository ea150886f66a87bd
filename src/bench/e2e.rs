//! `bench e2e`: the simulator and the whole pipeline in one process, in auto
//! mode with debounce 0 and every search's best article pushed, so each
//! customer utterance yields a push. Reports each stage's latency, and beside
//! it, in the same run, the floor: the same query windows embedded and
//! searched alone. The ratio of the two is the pipeline's overhead. It also
//! scores what was found against each call's labelled articles, so a change
//! that buys speed with relevance shows here. Suggestions go to the agent
//! widget as well as the webhook, with a page open on every call, so the
//! report also has event→widget: the suggestion read off the page's SSE
//! stream.
//! With `--reload-every` it edits a copy of the KB at that pace, so the same
//! run shows the latency while live reloads rebuild and swap the index.

mod floor;
mod quality;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use quality::{Relevance, relevance as quality_of};

use super::widgets::Pages;
use super::{Latency, Machine, machine, proc_stats};
use crate::audit::read_log;
use crate::config::Config;
use crate::domain::Sink;
use crate::engine::{Mode, Stage};
use crate::net::{Dialect, Secret};
use crate::paths::AppPaths;
use crate::runtime::{Options as RuntimeOptions, Runtime};
use crate::sim::{self, SimConfig};

#[derive(Debug, Clone)]
pub struct Options {
    pub speed: f64,
    pub concurrency: usize,
    pub dialect: Dialect,
    /// Play only the first N bundled calls.
    pub calls: Option<usize>,
    /// Overrides `policy.window_max_words`.
    pub window_max_words: Option<usize>,
    /// Judge utterances before searching (need detection).
    pub need_detection: bool,
    /// The search model's intra-op threads (`None`: every core).
    pub threads: Option<usize>,
    /// Auto mode with the default policy (calibrated thresholds, debounce,
    /// cooldown) instead of pushing every search's best article.
    pub default_policy: bool,
    /// Edit an article of a KB copy this often (live reloads under load).
    pub reload_every: Option<Duration>,
}

/// Live reloads during the run (with `--reload-every`).
#[derive(Debug, Clone, Serialize)]
pub struct Reloads {
    pub edits: usize,
    pub reloads: usize,
    /// From noticing an edit to the new index answering.
    pub took: Latency,
    /// Share of the run's wall time spent rebuilding.
    pub busy_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub dialect: Dialect,
    pub calls: usize,
    pub utterances: u64,
    pub searches: u64,
    /// Final utterances need detection kept from searching.
    pub needless: u64,
    /// Whether need detection ran (the runtime turns it off when no
    /// classifier fits the model).
    pub need_detection: bool,
    pub default_policy: bool,
    pub pushes: u64,
    /// Pipeline stages, from the engine's histograms.
    pub stages: BTreeMap<String, Latency>,
    /// The same windows embedded and searched alone: paced 100 ms apart,
    /// back to back, and at the run's own pace (see [`floor::Floor`]).
    pub floor: floor::Floor,
    /// event→push-sent p50 over the 100 ms-paced floor's p50 (and p99 over p99).
    pub overhead_p50: f64,
    pub overhead_p99: f64,
    /// event→push-sent p50 over the back-to-back floor's p50.
    pub overhead_p50_back_to_back: f64,
    /// event→push-sent p50 (p99) over the floor paced as the run was.
    pub overhead_p50_as_run: f64,
    pub overhead_p99_as_run: f64,
    pub window_max_words: usize,
    pub relevance: Relevance,
    /// Transcript event received → the suggestion read off the agent page's
    /// SSE stream (a page open on every call from its start).
    pub event_to_widget: Latency,
    /// Its p50 over event→push's p50.
    pub widget_over_push_p50: f64,
    /// Suggestions the pages read, of those delivered to the widget sink.
    pub widget_seen: usize,
    pub widget_delivered: usize,
    pub peak_rss_mib: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reloads: Option<Reloads>,
}

/// A config for the simulator at `base`, tuned so every search pushes.
pub fn bench_config(base: &str, queue: &str, dialect: Dialect) -> Config {
    let mut c = Config::default();
    c.genesys.dialect = dialect;
    c.genesys.api_base = base.into();
    c.genesys.login_base = base.into();
    c.genesys.client_id = "bench".into();
    c.genesys.client_secret = Secret::new("bench");
    c.genesys.queues = vec![queue.into()];
    let p = &mut c.policy;
    p.mode = Mode::Auto;
    p.debounce = Duration::ZERO;
    (p.show, p.push, p.auto) = (-1.0, -1.0, -1.0);
    // Raw thresholds, not the calibrated ones: every search must push.
    (p.push_precision, p.auto_precision) = (0.0, 0.0);
    p.top_k = 1;
    p.cooldown = Duration::ZERO;
    p.max_pushes_per_minute = u32::MAX;
    c
}

/// Whether the simulator has played `calls` conversations and the pipeline
/// has nothing left to search or push.
pub fn finished(rt: &Runtime, sim: &sim::SimHandle, calls: u64) -> bool {
    let engine = rt.engine();
    sim.stats().conversations_ended >= calls
        && engine.pushes_in_flight() == 0
        && engine.conversations().all(|c| c.inflight.is_none() && c.search_due.is_none())
}

/// Runs the runtime until [`finished`] or `limit` has passed, whether or
/// not anything arrives meanwhile; returns whether it finished.
pub async fn drive(rt: &mut Runtime, sim: &sim::SimHandle, calls: u64, limit: Duration) -> bool {
    let deadline = crate::duration::deadline(tokio::time::Instant::now(), limit);
    loop {
        if finished(rt, sim, calls) {
            return true;
        }
        let Ok(msg) = tokio::time::timeout_at(deadline, rt.next()).await else {
            tracing::warn!(stats = ?sim.stats(), "bench e2e stopped at its time limit");
            return false;
        };
        rt.handle(msg);
        rt.drain_ready(512);
    }
}

pub fn run(paths: &AppPaths, opts: &Options) -> color_eyre::eyre::Result<Report> {
    let tmp = scratch_dir("e2e")?;
    let bench_paths = AppPaths { data_dir: tmp.path().to_path_buf(), ..paths.clone() };
    let mut scripts = sim::load_scripts(&sim::default_conversations())?;
    if let Some(n) = opts.calls {
        scripts.truncate(n);
    }
    let calls = scripts.len();
    let expected: BTreeMap<String, Vec<String>> =
        scripts.iter().map(|s| (s.id.clone(), s.expected_articles.clone())).collect();
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let call_ids: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let started = Instant::now();
    let (summary, stages, audit, window_max_words, widget, edits, need_on) = tokio.block_on(async {
        let mut sc = SimConfig::new(scripts);
        sc.speed = opts.speed;
        sc.concurrency = opts.concurrency;
        sc.start_gap = Duration::from_secs(2);
        let sim = sim::spawn(sc).await?;
        let mut config = if opts.default_policy {
            let mut c = bench_config(&sim.base_url, &sim.queue_id, opts.dialect);
            c.policy = crate::engine::Policy { mode: Mode::Auto, ..crate::engine::Policy::default() };
            c
        } else {
            bench_config(&sim.base_url, &sim.queue_id, opts.dialect)
        };
        config.policy.need_detection = opts.need_detection;
        config.kb.threads = opts.threads.unwrap_or(0);
        if let Some(w) = opts.window_max_words {
            config.policy.window_max_words = w;
            config.validate()?;
        }
        let window_max_words = config.policy.window_max_words;
        config.delivery.sinks = vec![Sink::Widget, Sink::Webhook];
        config.widget.auth = crate::widget::AuthMode::None;
        // Keep ended calls, so each suggestion's event time can be read at the end.
        config.policy.ended_grace = Duration::from_secs(3600);
        if opts.reload_every.is_some() {
            config.kb.paths = vec![super::kb_edits::copy_sample_kb(tmp.path())?];
        }
        let mut rt = Runtime::start(&config, &bench_paths, RuntimeOptions::default()).await?;
        // As run: the runtime turns detection off for a model no classifier fits.
        let need_on = rt.engine().policy().need_detection;
        let base = rt.widget_url().ok_or_else(|| color_eyre::eyre::eyre!("the widget is not served"))?;
        let mut pages = Pages::open(base, &call_ids);
        let editor = match (opts.reload_every, config.kb.paths.first()) {
            (Some(every), Some(kb)) => Some(super::kb_edits::Editor::start(kb.clone(), every)?),
            _ => None,
        };
        let finished = drive(&mut rt, &sim, calls as u64, Duration::from_secs(3600)).await;
        let edits = editor.map(super::kb_edits::Editor::stop);
        if !finished {
            rt.shutdown().await;
            sim.stop().await;
            return Err(color_eyre::eyre::eyre!("the calls did not finish within an hour"));
        }
        // Every call has ended: the pages read their last events and close.
        pages.wait_ended(Duration::from_secs(10)).await;
        let seen = pages.seen();
        let widget = (event_to_widget(&rt, &seen), seen.len());
        let stages: BTreeMap<String, Latency> = Stage::ALL
            .iter()
            .filter_map(|&s| {
                rt.engine().metrics().histogram(s).map(|h| (s.name().to_string(), Latency::from_histogram(h)))
            })
            .collect();
        let audit = rt.audit_path().to_path_buf();
        let summary = rt.shutdown().await;
        sim.stop().await;
        Ok::<_, color_eyre::eyre::Report>((summary, stages, audit, window_max_words, widget, edits, need_on))
    })?;
    drop(tokio);
    let wall = started.elapsed();
    let log = read_log(&audit)?;
    let widget_delivered =
        log.iter().filter(|v| v["event"] == "push" && v["sink"] == "widget" && v["ok"] == true).count();
    let reloads = edits.map(|edits| {
        let took: Vec<Duration> = log
            .iter()
            .filter(|v| v["event"] == "kb_reloaded")
            .filter_map(|v| v["took_ms"].as_u64().map(Duration::from_millis))
            .collect();
        let busy: Duration = took.iter().sum();
        Reloads {
            edits,
            reloads: took.len(),
            took: Latency::of(&took),
            busy_share: busy.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        }
    });
    let queries: Vec<floor::Query> = log
        .iter()
        .filter(|v| v["event"] == "search" && v["stale"] == false)
        .filter_map(|v| {
            let text = v["query"].as_str()?.to_string();
            let at = humantime::parse_rfc3339(v["ts"].as_str()?).ok()?;
            Some(floor::Query { text, at })
        })
        .collect();
    let relevance = quality::relevance(&log, &expected);
    let floor = floor::measure(paths, opts.threads, &queries)?;
    let e2p = stages.get(Stage::EventToPush.name()).copied().unwrap_or(Latency::of(&[]));
    Ok(Report {
        machine: machine(),
        dialect: opts.dialect,
        calls,
        utterances: summary.utterances,
        searches: summary.searches,
        needless: summary.needless,
        need_detection: need_on,
        default_policy: opts.default_policy,
        pushes: summary.pushes_ok,
        stages,
        overhead_p50: e2p.p50_ms / floor.paced.p50_ms,
        overhead_p99: e2p.p99_ms / floor.paced.p99_ms,
        overhead_p50_back_to_back: e2p.p50_ms / floor.back_to_back.p50_ms,
        overhead_p50_as_run: e2p.p50_ms / floor.as_run.p50_ms,
        overhead_p99_as_run: e2p.p99_ms / floor.as_run.p99_ms,
        floor,
        window_max_words,
        relevance,
        widget_over_push_p50: widget.0.p50_ms / e2p.p50_ms,
        event_to_widget: widget.0,
        widget_seen: widget.1,
        widget_delivered,
        peak_rss_mib: proc_stats("self").peak_rss_mib,
        reloads,
    })
}

/// Transcript event → the page read the suggestion, for each suggestion
/// the pages read (the engine keeps every call's event times for this run).
fn event_to_widget(rt: &Runtime, seen: &[(String, Instant)]) -> Latency {
    let event_at: HashMap<&str, Instant> = rt
        .engine()
        .conversations()
        .flat_map(|c| c.suggestions.iter())
        .filter_map(|s| Some((s.id.as_str(), s.event_at?)))
        .collect();
    let samples: Vec<Duration> = seen
        .iter()
        .filter_map(|(id, at)| Some(at.saturating_duration_since(*event_at.get(id.as_str())?)))
        .collect();
    Latency::of(&samples)
}

/// A fresh temporary directory for a benchmark's files, removed when the
/// returned guard drops (also when the run fails part way).
pub fn scratch_dir(name: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(&format!("agent-assist-bench-{name}-")).tempdir()
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    println!(
        "{} calls ({} dialect): {} utterances, {} searches, {} pushes; need detection {}, {} utterances judged needless",
        r.calls,
        r.dialect,
        r.utterances,
        r.searches,
        r.pushes,
        if r.need_detection { "on" } else { "off" },
        r.needless
    );
    for (stage, l) in &r.stages {
        println!("  {stage:<16} {l}");
    }
    println!("  floor: embed            {}", r.floor.embed);
    println!("  floor: embed+search     {}", r.floor.paced);
    println!("  floor: back to back     {}", r.floor.back_to_back);
    println!("  floor: paced as the run {}  (median gap {:.0} ms)", r.floor.as_run, r.floor.gap_p50_ms);
    println!(
        "  event→push over floor: p50 {:.2}x  p99 {:.2}x  (p50 {:.2}x over the back-to-back floor; {:.2}x / {:.2}x over the floor paced as the run)",
        r.overhead_p50,
        r.overhead_p99,
        r.overhead_p50_back_to_back,
        r.overhead_p50_as_run,
        r.overhead_p99_as_run
    );
    println!(
        "  event→widget     {}  (p50 {:.2}x event→push; {} of {} widget deliveries read off the pages)",
        r.event_to_widget, r.widget_over_push_p50, r.widget_seen, r.widget_delivered
    );
    println!(
        "  relevance (window_max_words {}): best article relevant in {:.0}% of searches; {} of {} calls got one",
        r.window_max_words,
        r.relevance.top1_share * 100.0,
        r.relevance.calls_covered,
        r.relevance.calls_labelled
    );
    println!(
        "  auto pushes ({}): {} of {} relevant ({:.0}%); {} of {} calls got a relevant push",
        if r.default_policy { "default policy" } else { "every search pushed" },
        r.relevance.auto_relevant,
        r.relevance.auto_pushes,
        r.relevance.auto_precision * 100.0,
        r.relevance.calls_with_relevant_push,
        r.relevance.calls_labelled
    );
    println!("  peak RSS {:.0} MiB (simulator and pipeline in one process)", r.peak_rss_mib);
    if let Some(l) = &r.reloads {
        println!(
            "  live reload: {} edits, {} reloads, rebuild+swap {}; rebuilding {:.0}% of the run",
            l.edits,
            l.reloads,
            l.took,
            l.busy_share * 100.0
        );
    }
}
