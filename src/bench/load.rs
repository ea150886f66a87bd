//! `bench load`: N concurrent simulated calls, each customer speaking one
//! utterance every few seconds (real time), through the whole pipeline in
//! auto mode. Reports sustained events/s and searches/s, event→push latency,
//! backlog, CPU and peak RSS; `--find-max` searches for the largest N whose
//! p99 event→push stays under the target (1 s). `--widgets N` runs the load
//! twice, interleaved, with suggestions also going to the agent widget:
//! without pages, then with N agent pages holding SSE streams open, to
//! show what the open streams cost the pipeline.
//! With `--nats URL` every
//! trial also runs as a floor on that NATS server, in the same process and
//! the same run: `--workers N` runs floors of 1, 2, … N workers ([`floor`]),
//! the simulator's calls spread over six queues split by the workers'
//! leases; each floor trial reports the NATS server's CPU beside the
//! workers', and `--find-max` searches each mode's largest N.

use std::time::Duration;

use serde::Serialize;

use super::e2e::{bench_config, drive, finished, scratch_dir};
use super::widgets::Pages;
use super::{Latency, Machine, SplitMix, machine, proc_stats};

mod floor;
mod table;

use table::Run;

use crate::domain::Sink;
use crate::engine::Stage;
use crate::net::Dialect;
use crate::paths::AppPaths;
use crate::runtime::{Options as RuntimeOptions, Runtime};
use crate::sim::script::Utterance;
use crate::sim::{self, Script, SimConfig};
pub use table::print_table;

#[derive(Debug, Clone)]
pub struct Options {
    pub conversations: usize,
    pub every: Duration,
    pub duration: Duration,
    pub debounce: Duration,
    pub find_max: bool,
    pub target_p99: Duration,
    /// Agent pages to hold open (0: no widget).
    pub widgets: usize,
    /// Also run each trial as a floor on this NATS server.
    pub nats: Option<String>,
    /// With `nats`: floors of 1 up to this many workers.
    pub workers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// `single` or `nats`.
    pub mode: &'static str,
    /// Floor workers (0: the single process).
    pub workers: usize,
    pub conversations: usize,
    pub events_per_s: f64,
    pub searches_per_s: f64,
    pub pushes: u64,
    pub stale: u64,
    pub event_to_push: Latency,
    pub search: Latency,
    /// Push decided → its record committed (redb, or the floor's KV
    /// bucket): what the ledger adds to event→push.
    pub record: Latency,
    /// Most messages waiting in the runtime's channel at once.
    pub max_queue: usize,
    /// Most searches in flight (queued at or running in the KB worker).
    pub max_searches_in_flight: usize,
    pub cpu_percent: f64,
    pub peak_rss_mib: f64,
    pub sustained: bool,
    /// Agent pages that held a stream open, and the suggestions they read.
    pub widget_pages: usize,
    pub widget_events: u64,
    /// Floor trials: the NATS server's CPU over the trial (% of one core),
    /// and its share of all CPU spent (server + this process).
    pub bus_cpu_percent: Option<f64>,
    pub bus_cpu_share: Option<f64>,
    /// Floor trials: queues each worker held.
    pub queues_held: Vec<usize>,
}

/// A mode's largest sustainable calls (`--find-max`).
#[derive(Debug, Clone, Serialize)]
pub struct MaxOf {
    pub mode: &'static str,
    pub workers: usize,
    pub max_sustainable: Option<usize>,
}

/// A floor trial against the single process at the same load.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub workers: usize,
    pub conversations: usize,
    /// Event→push through the floor minus the single process's.
    pub p50_added_ms: f64,
    pub p99_added_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub every_s: f64,
    pub duration_s: f64,
    pub target_p99_ms: f64,
    pub trials: Vec<Trial>,
    pub max_sustainable: Option<usize>,
    /// With `--find-max`: each mode's largest sustainable calls.
    pub max_by_mode: Vec<MaxOf>,
    /// With `--nats`: what the floor adds, trial by trial.
    pub floor_added: Vec<Added>,
    /// With `--widgets`: event→push p99 with the pages open over without.
    pub widgets_p99_ratio: Option<f64>,
}

/// `n` calls of customer speech, one utterance every `every` (±20%), spread
/// so their utterances interleave evenly.
pub fn synthetic_calls(n: usize, every: Duration, duration: Duration, lines: &[String]) -> Vec<Script> {
    calls_on_queues(n, every, duration, lines, &[])
}

/// [`synthetic_calls`], dealt round-robin over `queues` (none: the
/// simulator's own queue).
pub fn calls_on_queues(
    n: usize,
    every: Duration,
    duration: Duration,
    lines: &[String],
    queues: &[String],
) -> Vec<Script> {
    let mut rng = SplitMix::new(42);
    let every_ms = every.as_millis() as f64;
    (0..n)
        .map(|i| {
            let mut t = every_ms * i as f64 / n as f64;
            let mut utterances = Vec::new();
            while t < duration.as_millis() as f64 {
                let text = lines[rng.below(lines.len())].clone();
                utterances.push(Utterance { at_ms: t as u64, channel: "EXTERNAL".into(), text });
                t += every_ms * (0.8 + 0.4 * rng.unit());
            }
            Script {
                id: format!("load-{n}-{i:05}"),
                queue_id: (!queues.is_empty()).then(|| queues[i % queues.len()].clone()),
                title: None,
                expected_articles: vec![],
                utterances,
                frames: vec![],
            }
        })
        .collect()
}

fn customer_lines() -> color_eyre::eyre::Result<Vec<String>> {
    Ok(sim::load_scripts(&sim::default_conversations())?
        .into_iter()
        .flat_map(|s| s.utterances.into_iter().filter(|u| u.channel == "EXTERNAL").map(|u| u.text))
        .filter(|t| t.split_whitespace().count() >= 4)
        .collect())
}

/// What a trial delivers to: the webhook alone, or the widget too with
/// `pages` agent pages open.
#[derive(Debug, Clone, Copy)]
enum Widget {
    Off,
    On { pages: usize },
}

/// How a trial runs: the single process, or a floor of this many workers
/// on this NATS server.
#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    Single,
    Floor { url: &'a str, workers: usize },
}

fn trial(
    paths: &AppPaths,
    opts: &Options,
    n: usize,
    lines: &[String],
    widget: Widget,
    mode: Mode<'_>,
) -> color_eyre::eyre::Result<Trial> {
    let tmp = scratch_dir(&format!("load-{n}"))?;
    let bench_paths = AppPaths { data_dir: tmp.path().to_path_buf(), ..paths.clone() };
    // With --nats both modes play the same calls, spread over the floor's
    // queues (the single process follows them all).
    let queues = if opts.nats.is_some() { floor::queue_names() } else { Vec::new() };
    let scripts = calls_on_queues(n, opts.every, opts.duration, lines, &queues);
    let ids: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = tokio.block_on(async {
        let mut sc = SimConfig::new(scripts);
        sc.concurrency = n;
        sc.start_gap = Duration::ZERO;
        // Floor workers load their models one after the other first.
        sc.subscribe_grace = Duration::from_secs(30);
        let sim = sim::spawn(sc).await?;
        let mut config = bench_config(&sim.base_url, &sim.queue_id, Dialect::Notifications);
        config.policy.debounce = opts.debounce;
        if !queues.is_empty() {
            config.genesys.queues.clone_from(&queues);
        }
        if let Widget::On { .. } = widget {
            config.delivery.sinks = vec![Sink::Widget, Sink::Webhook];
            config.widget.auth = crate::widget::AuthMode::None;
            config.widget.max_calls = config.widget.max_calls.max(n + 16);
        }
        if let Mode::Floor { url, workers } = mode {
            let t = floor::trial(&config, &bench_paths, tmp.path(), url, workers, &sim, n, opts).await;
            sim.stop().await;
            return t;
        }
        let mut rt = Runtime::start(&config, &bench_paths, RuntimeOptions::default()).await?;
        let pages = match (widget, rt.widget_url()) {
            (Widget::On { pages }, Some(base)) if pages > 0 => {
                // One page per call, as the agent desktop opens them.
                let calls: Vec<String> = ids.iter().cycle().take(pages).cloned().collect();
                Pages::open(base, &calls)
            }
            _ => Pages::default(),
        };
        let cpu_before = proc_stats("self").cpu_s;
        let started = tokio::time::Instant::now();
        let (mut max_queue, mut max_inflight) = (0usize, 0usize);
        let limit = opts.duration * 3 + Duration::from_secs(30);
        while !finished(&rt, &sim, n as u64) && started.elapsed() < limit {
            // Drive in slices so the backlog can be sampled as it happens.
            drive(&mut rt, &sim, n as u64, Duration::from_millis(50)).await;
            max_queue = max_queue.max(rt.queue_depth());
            max_inflight =
                max_inflight.max(rt.engine().conversations().filter(|c| c.inflight.is_some()).count());
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = proc_stats("self").cpu_s - cpu_before;
        let m = rt.engine().metrics();
        let latency = |s: Stage| m.histogram(s).map_or(Latency::of(&[]), Latency::from_histogram);
        let (e2p, search, record) =
            (latency(Stage::EventToPush), latency(Stage::Search), latency(Stage::Record));
        let summary = rt.shutdown().await;
        sim.stop().await;
        let (widget_pages, widget_events) = (pages.opened(), pages.seen().len() as u64);
        drop(pages);
        let run = Run {
            mode: "single",
            workers: 0,
            conversations: n,
            utterances: summary.utterances,
            searches: summary.searches,
            pushes: summary.pushes_ok,
            stale: summary.stale_results,
            wall_s: wall,
            cpu_s: cpu,
            event_to_push: e2p,
            search,
            record,
            max_queue,
            max_searches_in_flight: max_inflight,
        };
        let trial = Trial { widget_pages, widget_events, ..Trial::of(run, opts.target_p99) };
        Ok::<_, color_eyre::eyre::Report>(trial)
    });
    drop(tokio);
    result
}

fn progress(t: &Trial) {
    let verdict = if t.sustained { "ok" } else { "over target" };
    eprintln!(
        "  {:>6} calls ({}, {} workers): p99 event→push {:.0} ms {verdict}",
        t.conversations, t.mode, t.workers, t.event_to_push.p99_ms
    );
}

/// Doubles N until the target breaks, then bisects between the last good
/// and the first bad; returns the largest good N.
fn find_max(
    paths: &AppPaths,
    opts: &Options,
    lines: &[String],
    mode: Mode<'_>,
    trials: &mut Vec<Trial>,
) -> color_eyre::eyre::Result<Option<usize>> {
    let (mut good, mut bad) = (0usize, None);
    let mut n = opts.conversations.max(1);
    while bad.is_none() && n <= 100_000 {
        let t = trial(paths, opts, n, lines, Widget::Off, mode)?;
        if t.sustained {
            good = n
        } else {
            bad = Some(n)
        }
        progress(&t);
        trials.push(t);
        n *= 2;
    }
    if let Some(mut hi) = bad {
        let mut lo = good;
        while hi - lo > (lo / 8).max(1) {
            let mid = (lo + hi) / 2;
            let t = trial(paths, opts, mid, lines, Widget::Off, mode)?;
            progress(&t);
            if t.sustained {
                lo = mid
            } else {
                hi = mid
            }
            trials.push(t);
        }
        good = lo;
    }
    Ok((good > 0).then_some(good))
}

pub fn run(paths: &AppPaths, opts: &Options) -> color_eyre::eyre::Result<Report> {
    let lines = customer_lines()?;
    let mut trials = Vec::new();
    let mut max_sustainable = None;
    let mut max_by_mode = Vec::new();
    let mut modes = vec![Mode::Single];
    if let Some(url) = &opts.nats {
        modes.extend((1..=opts.workers.max(1)).map(|workers| Mode::Floor { url, workers }));
    }
    if opts.find_max {
        for mode in modes {
            let max = find_max(paths, opts, &lines, mode, &mut trials)?;
            let (name, workers) = match mode {
                Mode::Single => ("single", 0),
                Mode::Floor { workers, .. } => ("nats", workers),
            };
            max_sustainable = max_sustainable.or(max);
            max_by_mode.push(MaxOf { mode: name, workers, max_sustainable: max });
        }
    } else if opts.widgets > 0 {
        // Interleaved, so drift on a shared machine falls on both sides.
        for widget in [Widget::On { pages: 0 }, Widget::On { pages: opts.widgets }].repeat(2) {
            let t = trial(paths, opts, opts.conversations, &lines, widget, Mode::Single)?;
            progress(&t);
            trials.push(t);
        }
    } else {
        for mode in modes {
            let t = trial(paths, opts, opts.conversations, &lines, Widget::Off, mode)?;
            progress(&t);
            trials.push(t);
        }
    }
    let floor_added = trials
        .iter()
        .filter(|t| t.workers > 0)
        .filter_map(|t| {
            let single = trials.iter().find(|s| s.workers == 0 && s.conversations == t.conversations)?;
            Some(Added {
                workers: t.workers,
                conversations: t.conversations,
                p50_added_ms: t.event_to_push.p50_ms - single.event_to_push.p50_ms,
                p99_added_ms: t.event_to_push.p99_ms - single.event_to_push.p99_ms,
            })
        })
        .collect();
    let widgets_p99_ratio = (opts.widgets > 0).then(|| {
        let p99 = |open: bool| {
            let v: Vec<f64> = trials
                .iter()
                .filter(|t| (t.widget_pages > 0) == open)
                .map(|t| t.event_to_push.p99_ms)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        p99(true) / p99(false)
    });
    Ok(Report {
        machine: machine(),
        every_s: opts.every.as_secs_f64(),
        duration_s: opts.duration.as_secs_f64(),
        target_p99_ms: opts.target_p99.as_secs_f64() * 1000.0,
        trials,
        max_sustainable,
        max_by_mode,
        floor_added,
        widgets_p99_ratio,
    })
}
