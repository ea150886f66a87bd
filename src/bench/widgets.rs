//! `bench widgets`: the agent widget under many open pages. N pages (one per
//! call, as the agent desktop opens one per interaction) hold a Server-Sent
//! Events stream open over real loopback sockets while suggestions are
//! published to every call in rounds; each page measures publish → event
//! read. Reports delivery (every event on every stream, none twice), the
//! latency, CPU and memory. `bench load --widgets N` is meant to run this
//! beside the pipeline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Latency, Machine, ProcStats, machine, proc_stats};
use crate::widget::{AuthMode, FeedEvent, WidgetConfig, WidgetHub, WidgetSuggestion};

#[derive(Debug, Clone)]
pub struct Options {
    /// Pages (streams) open at once, one call each.
    pub streams: usize,
    /// Suggestions published to every call.
    pub rounds: usize,
    /// Pause between rounds.
    pub every: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub streams: usize,
    pub rounds: usize,
    pub every_ms: u64,
    /// Streams that opened (status 200).
    pub opened: usize,
    pub events_expected: u64,
    pub events_received: u64,
    /// Events a stream saw twice (must be 0).
    pub duplicates: u64,
    /// From `publish` to the event read on a page's socket.
    pub publish_to_page: Latency,
    /// Time `publish` itself took (render + fan-out).
    pub publish_call: Latency,
    pub elapsed_s: f64,
    pub cpu_s: f64,
    pub proc: ProcStats,
    pub machine: Machine,
}

/// Runs the benchmark on a runtime of its own.
pub fn run(opts: &Options) -> Result<Report> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure(opts))
}

/// The measurement, on the caller's runtime.
pub async fn measure(opts: &Options) -> Result<Report> {
    let n = opts.streams.max(1);
    let config = WidgetConfig { auth: AuthMode::None, max_calls: n + 16, ..WidgetConfig::default() };
    let hub = WidgetHub::new(&config);
    let (signals, _keep) = mpsc::channel(1024);
    let server = crate::widget::serve(config, hub.clone(), signals).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(n).build()?;
    let published: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<(usize, String, Duration)>();
    let (open_tx, mut open_rx) = mpsc::unbounded_channel::<bool>();
    let cpu0 = proc_stats("self").cpu_s;
    let t0 = Instant::now();
    let mut pages = Vec::new();
    for i in 0..n {
        let (http, url, published, lat_tx, open_tx) =
            (http.clone(), server.url.clone(), published.clone(), lat_tx.clone(), open_tx.clone());
        let expected = opts.rounds;
        pages.push(tokio::spawn(async move {
            let call = format!("bench-call-{i}");
            let ok = page(
                &http,
                &url,
                &call,
                expected,
                &published,
                |id, d| {
                    let _ = lat_tx.send((i, id, d));
                },
                &open_tx,
            )
            .await;
            if !ok {
                let _ = open_tx.send(false);
            }
        }));
    }
    drop((lat_tx, open_tx));
    let mut opened = 0;
    while opened < n {
        match tokio::time::timeout(Duration::from_secs(30), open_rx.recv()).await {
            Ok(Some(true)) => opened += 1,
            Ok(Some(false)) | Ok(None) | Err(_) => break,
        }
    }
    let mut publish_call = Vec::new();
    for round in 0..opts.rounds {
        for i in 0..n {
            let id = format!("s{round}-c{i}");
            let event = FeedEvent::Suggestion(WidgetSuggestion {
                conversation_id: format!("bench-call-{i}"),
                suggestion_id: id.clone(),
                article_id: format!("article-{round}"),
                title: "Reset the router".into(),
                score: 0.61,
                probability: Some(0.8),
                text: "Ask the customer to **unplug the router** for 30 seconds, then plug it back in."
                    .into(),
                url: Some("https://kb.example.com/router".into()),
                state: "sent".into(),
            });
            let at = Instant::now();
            published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, at);
            hub.publish(event);
            publish_call.push(at.elapsed());
        }
        tokio::time::sleep(opts.every).await;
    }
    let mut seen: HashMap<(usize, String), ()> = HashMap::new();
    let (mut samples, mut duplicates) = (Vec::new(), 0u64);
    let expected = (opened * opts.rounds) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (samples.len() as u64) < expected {
        match tokio::time::timeout_at(deadline, lat_rx.recv()).await {
            Ok(Some((page, id, d))) => {
                if seen.insert((page, id), ()).is_some() {
                    duplicates += 1;
                } else {
                    samples.push(d);
                }
            }
            _ => break,
        }
    }
    let elapsed_s = t0.elapsed().as_secs_f64();
    let proc = proc_stats("self");
    for p in pages {
        p.abort();
    }
    server.stop().await;
    if opened == 0 {
        return Err(eyre!("no widget stream could be opened"));
    }
    Ok(Report {
        streams: n,
        rounds: opts.rounds,
        every_ms: u64::try_from(opts.every.as_millis()).unwrap_or(u64::MAX),
        opened,
        events_expected: expected,
        events_received: samples.len() as u64,
        duplicates,
        publish_to_page: Latency::of(&samples),
        publish_call: Latency::of(&publish_call),
        elapsed_s,
        cpu_s: proc.cpu_s - cpu0,
        proc,
        machine: machine(),
    })
}

/// One page: a session, the stream, and each `suggestion` event timed
/// against its publish instant until `expected` have come.
async fn page(
    http: &reqwest::Client,
    base: &str,
    call: &str,
    expected: usize,
    published: &Mutex<HashMap<String, Instant>>,
    on_event: impl Fn(String, Duration),
    opened: &mpsc::UnboundedSender<bool>,
) -> bool {
    let mut got = 0;
    let followed = follow_page(
        http,
        base,
        call,
        || {
            let _ = opened.send(true);
        },
        |id, _| {
            let at = published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).copied();
            if let Some(at) = at {
                on_event(id.to_string(), at.elapsed());
                got += 1;
            }
            got < expected
        },
    )
    .await;
    followed.is_ok()
}

/// Opens an agent page on `call` as the browser does (a session, then the
/// SSE feed), calls `opened` once the feed answers, then `on_suggestion`
/// with each `suggestion` event's id and the instant it was read, until
/// that returns false or the feed ends (the call ended). `Err` if the page
/// could not open. Shared by `bench widgets`, `bench e2e` and `bench load`.
pub async fn follow_page(
    http: &reqwest::Client,
    base: &str,
    call: &str,
    opened: impl FnOnce(),
    mut on_suggestion: impl FnMut(&str, Instant) -> bool,
) -> Result<()> {
    let body = serde_json::json!({ "conversation_id": call });
    let v: serde_json::Value =
        http.post(format!("{base}/agent/session")).json(&body).send().await?.json().await?;
    let session = v["session"].as_str().ok_or_else(|| eyre!("no session for {call}: {v}"))?;
    let req =
        http.get(format!("{base}/agent/events")).query(&[("conversationId", call), ("session", session)]);
    let mut resp = req.send().await?;
    if !resp.status().is_success() {
        return Err(eyre!("the feed of {call} answered {}", resp.status()));
    }
    opened();
    let mut buffer = String::new();
    while let Some(chunk) = resp.chunk().await? {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name).map(str::trim_start));
            if field("event:") != Some("suggestion") {
                continue;
            }
            let Some(Ok(v)) = field("data:").map(serde_json::from_str::<serde_json::Value>) else { continue };
            if let Some(id) = v["suggestion_id"].as_str()
                && !on_suggestion(id, at)
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Agent pages that benchmarks hold open on calls, one task each, each
/// recording which suggestion it read and when. Dropping it closes them.
/// The pages run on a one-thread runtime of their own: on a floor they are
/// browsers on the agents' machines, so they must not queue on the
/// pipeline's scheduler (they still share the machine's cores).
#[derive(Default)]
pub struct Pages {
    seen: Arc<Mutex<Vec<(String, std::time::Instant)>>>,
    opened: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.tasks.abort_all();
        // Callable from async code, unlike dropping the runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Pages {
    /// Opens a page on each of `calls` (a call may be named twice: two
    /// pages), on the caller's runtime.
    pub fn open(base: &str, calls: &[String]) -> Self {
        let mut pages = Self::default();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build();
        let handle = match &runtime {
            Ok(rt) => rt.handle().clone(),
            // Without a runtime of their own, the pages share the caller's.
            Err(_) => tokio::runtime::Handle::current(),
        };
        pages.runtime = runtime.ok();
        let http = reqwest::Client::builder().pool_max_idle_per_host(calls.len()).build().unwrap_or_default();
        for call in calls {
            let (http, base, call) = (http.clone(), base.to_string(), call.clone());
            let (seen, opened) = (pages.seen.clone(), pages.opened.clone());
            pages.tasks.spawn_on(
                async move {
                    let record = |id: &str, at: Instant| {
                        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        seen.push((id.to_string(), at.into_std()));
                        true
                    };
                    let on_open = || {
                        opened.fetch_add(1, Ordering::Relaxed);
                    };
                    if let Err(e) = follow_page(&http, &base, &call, on_open, record).await {
                        tracing::warn!(%call, error = %e, "bench: an agent page failed");
                    }
                },
                &handle,
            );
        }
        pages
    }

    /// Waits up to `limit` for every page's call to end its feed.
    pub async fn wait_ended(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async { while self.tasks.join_next().await.is_some() {} }).await;
    }

    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// Each suggestion a page read, with the instant it was read.
    pub fn seen(&self) -> Vec<(String, std::time::Instant)> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

pub fn print_table(r: &Report) {
    println!(
        "widget streams: {} open of {} ({} rounds, every {} ms)",
        r.opened, r.streams, r.rounds, r.every_ms
    );
    println!("events: {} of {} received, {} duplicates", r.events_received, r.events_expected, r.duplicates);
    println!("publish → page:  {}  max {:.2} ms", r.publish_to_page, r.publish_to_page.max_ms);
    println!("publish() call:  {}", r.publish_call);
    println!(
        "elapsed {:.1} s, CPU {:.2} s, peak RSS {:.0} MiB ({} cores, {})",
        r.elapsed_s, r.cpu_s, r.proc.peak_rss_mib, r.machine.cores, r.machine.cpu
    );
}
