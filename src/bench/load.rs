//! `bench load`: N concurrent simulated calls, each customer speaking one
//! utterance every few seconds (real time), through the whole pipeline in
//! auto mode. Reports sustained events/s and searches/s, event→push latency,
//! backlog, CPU and peak RSS; `--find-max` searches for the largest N whose
//! p99 event→push stays under the target (1 s). `--widgets N` runs the load
//! twice, interleaved, with suggestions also going to the agent widget:
//! without pages, then with N agent pages holding SSE streams open, to
//! show what the open streams cost the pipeline.
//! With `--nats URL` every
//! trial runs twice, in the same process and the same run: once as the
//! single process (redb ledger) and once as a floor worker (KV ledger on
//! the NATS server, every event published to the stream).

use std::time::Duration;

use serde::Serialize;

use super::e2e::{bench_config, drive, finished, scratch_dir};
use super::widgets::Pages;
use super::{Latency, Machine, SplitMix, machine, proc_stats};
use crate::domain::Sink;
use crate::engine::Stage;
use crate::net::Dialect;
use crate::paths::AppPaths;
use crate::runtime::{Options as RuntimeOptions, Runtime};
use crate::sim::script::Utterance;
use crate::sim::{self, Script, SimConfig};

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
    /// Also run each trial as a floor worker on this NATS server.
    pub nats: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// `single` or `nats`.
    pub mode: &'static str,
    pub conversations: usize,
    pub events_per_s: f64,
    pub searches_per_s: f64,
    pub pushes: u64,
    pub stale: u64,
    pub event_to_push: Latency,
    pub search: Latency,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub every_s: f64,
    pub duration_s: f64,
    pub target_p99_ms: f64,
    pub trials: Vec<Trial>,
    pub max_sustainable: Option<usize>,
    /// With `--widgets`: event→push p99 with the pages open over without.
    pub widgets_p99_ratio: Option<f64>,
}

/// `n` calls of customer speech, one utterance every `every` (±20%), spread
/// so their utterances interleave evenly.
pub fn synthetic_calls(n: usize, every: Duration, duration: Duration, lines: &[String]) -> Vec<Script> {
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
                queue_id: None,
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

/// Starts the runtime as a floor worker holding the simulator's queue.
async fn floor_runtime(
    config: &crate::config::Config,
    paths: &AppPaths,
    url: &str,
    queue: &str,
) -> color_eyre::eyre::Result<(Runtime, tokio::sync::mpsc::UnboundedReceiver<crate::floor::Link>)> {
    let (link_tx, links) = tokio::sync::mpsc::unbounded_channel();
    let client = crate::floor::connect(&config.nats, url, "bench-load", link_tx).await?;
    // A prefix of its own, so no earlier run's leases or records are read.
    let mut nc = config.nats.clone();
    nc.prefix = format!("bench{:08x}", rand::random::<u32>());
    let floor = crate::floor::Floor::open(client, &nc).await?;
    let buckets = floor.buckets(&nc, Duration::from_secs(3600)).await?;
    let (bus, _task) =
        crate::floor::bus::Bus::spawn(floor.js.clone(), nc.prefix.clone(), "bench".into(), 50_000);
    let spool = crate::ledger::Ledger::open(&paths.data_dir.join("floor-spool.redb"))?;
    let hooks = crate::runtime::FloorHooks {
        ledger: Box::new(crate::floor::kv_ledger::KvLedger::new(buckets.ledger, floor.client.clone(), spool)),
        tap: bus.tap(),
        widget: None,
    };
    let mut rt =
        Runtime::start(config, paths, RuntimeOptions { floor: Some(hooks), ..RuntimeOptions::default() })
            .await?;
    rt.follow_queue(queue);
    Ok((rt, links))
}

fn trial(
    paths: &AppPaths,
    opts: &Options,
    n: usize,
    lines: &[String],
    widget: Widget,
    nats: Option<&str>,
) -> color_eyre::eyre::Result<Trial> {
    let tmp = scratch_dir(&format!("load-{n}"))?;
    let bench_paths = AppPaths { data_dir: tmp.path().to_path_buf(), ..paths.clone() };
    let scripts = synthetic_calls(n, opts.every, opts.duration, lines);
    let ids: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = tokio.block_on(async {
        let mut sc = SimConfig::new(scripts);
        sc.concurrency = n;
        sc.start_gap = Duration::ZERO;
        sc.subscribe_grace = Duration::from_secs(10);
        let sim = sim::spawn(sc).await?;
        let mut config = bench_config(&sim.base_url, &sim.queue_id, Dialect::Notifications);
        config.policy.debounce = opts.debounce;
        if let Widget::On { .. } = widget {
            config.delivery.sinks = vec![Sink::Widget, Sink::Webhook];
            config.widget.auth = crate::widget::AuthMode::None;
            config.widget.max_calls = config.widget.max_calls.max(n + 16);
        }
        let (mut rt, _links) = match nats {
            Some(url) => {
                let (rt, links) = floor_runtime(&config, &bench_paths, url, &sim.queue_id).await?;
                (rt, Some(links))
            }
            None => (Runtime::start(&config, &bench_paths, RuntimeOptions::default()).await?, None),
        };
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
        let (e2p, search) = (latency(Stage::EventToPush), latency(Stage::Search));
        let summary = rt.shutdown().await;
        sim.stop().await;
        let (widget_pages, widget_events) = (pages.opened(), pages.seen().len() as u64);
        drop(pages);
        let trial = Trial {
            mode: if nats.is_some() { "nats" } else { "single" },
            conversations: n,
            events_per_s: summary.utterances as f64 / wall,
            searches_per_s: summary.searches as f64 / wall,
            pushes: summary.pushes_ok,
            stale: summary.stale_results,
            sustained: e2p.n > 0 && e2p.p99_ms <= opts.target_p99.as_secs_f64() * 1000.0,
            event_to_push: e2p,
            search,
            max_queue,
            max_searches_in_flight: max_inflight,
            cpu_percent: 100.0 * cpu / wall,
            peak_rss_mib: proc_stats("self").peak_rss_mib,
            widget_pages,
            widget_events,
        };
        Ok::<_, color_eyre::eyre::Report>(trial)
    });
    drop(tokio);
    result
}

fn progress(t: &Trial) {
    let verdict = if t.sustained { "ok" } else { "over target" };
    eprintln!(
        "  {:>6} calls ({}): p99 event→push {:.0} ms {verdict}",
        t.conversations, t.mode, t.event_to_push.p99_ms
    );
}

pub fn run(paths: &AppPaths, opts: &Options) -> color_eyre::eyre::Result<Report> {
    let lines = customer_lines()?;
    let mut trials = Vec::new();
    let mut max_sustainable = None;
    if opts.find_max {
        // Double until the target breaks, then bisect between the last good
        // and the first bad.
        let (mut good, mut bad) = (0usize, None);
        let mut n = opts.conversations.max(1);
        while bad.is_none() && n <= 100_000 {
            let t = trial(paths, opts, n, &lines, Widget::Off, opts.nats.as_deref())?;
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
                let t = trial(paths, opts, mid, &lines, Widget::Off, opts.nats.as_deref())?;
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
        max_sustainable = (good > 0).then_some(good);
    } else if opts.widgets > 0 {
        // Interleaved, so drift on a shared machine falls on both sides.
        for widget in [Widget::On { pages: 0 }, Widget::On { pages: opts.widgets }].repeat(2) {
            let t = trial(paths, opts, opts.conversations, &lines, widget, None)?;
            progress(&t);
            trials.push(t);
        }
    } else {
        trials.push(trial(paths, opts, opts.conversations, &lines, Widget::Off, None)?);
        if let Some(url) = &opts.nats {
            trials.push(trial(paths, opts, opts.conversations, &lines, Widget::Off, Some(url))?);
        }
    }
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
        widgets_p99_ratio,
    })
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    println!(
        "one utterance per call every {:.1} s for {:.0} s; target p99 event→push {:.0} ms",
        r.every_s, r.duration_s, r.target_p99_ms
    );
    println!(
        "{:>6} {:>7} {:>6} {:>9} {:>10} {:>11} {:>11} {:>7} {:>9} {:>6} {:>8}",
        "mode",
        "calls",
        "pages",
        "events/s",
        "searches/s",
        "e2p p50 ms",
        "e2p p99 ms",
        "queue",
        "in-flight",
        "cpu %",
        "rss MiB"
    );
    for t in &r.trials {
        println!(
            "{:>6} {:>7} {:>6} {:>9.1} {:>10.1} {:>11.1} {:>11.1} {:>7} {:>9} {:>6.0} {:>8.0}",
            t.mode,
            t.conversations,
            t.widget_pages,
            t.events_per_s,
            t.searches_per_s,
            t.event_to_push.p50_ms,
            t.event_to_push.p99_ms,
            t.max_queue,
            t.max_searches_in_flight,
            t.cpu_percent,
            t.peak_rss_mib
        );
    }
    if let Some(n) = r.max_sustainable {
        println!("largest sustainable: {n} calls");
    }
    if let Some(ratio) = r.widgets_p99_ratio {
        let read: u64 = r.trials.iter().map(|t| t.widget_events).sum();
        println!(
            "event→push p99 with the pages open: {ratio:.2}x without ({read} suggestions read off the pages)"
        );
    }
}
