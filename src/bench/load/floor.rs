//! `bench load --nats URL --workers N`: a floor of N workers in this
//! process on a real NATS server. Each worker is what `agent-assist worker`
//! runs — its own connection, knowledge-base worker and model, KV ledger,
//! publisher and lease keeper — and the simulator's queues are split
//! between them by their leases, as on a real floor. The trial's figures
//! are the workers' together (event→push histograms merged), and the bus's
//! CPU is the NATS server's own, read from `/proc/<pid>/stat`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::table::Run;
use super::{Latency, Options, Trial};
use crate::bench::proc_stats;
use crate::config::Config;
use crate::engine::Stage;
use crate::floor::bus::Bus;
use crate::floor::kv_ledger::KvLedger;
use crate::floor::lease::{self, LeaseEvent};
use crate::floor::{Floor, connect};
use crate::paths::AppPaths;
use crate::runtime::{FloorHooks, Options as RuntimeOptions, Runtime};
use crate::sim;

/// Queues the simulator's calls are spread over in floor trials: divisible
/// by 1, 2 and 3 workers, so each holds an equal share.
pub const QUEUES: usize = 6;
/// The lease TTL in trials: short, so the queues are split quickly.
const LEASE_TTL_MS: u64 = 1_000;

/// What the driver reads from a worker while it runs.
#[derive(Default)]
struct Shared {
    idle: AtomicBool,
    held: AtomicUsize,
    max_queue: AtomicUsize,
    max_inflight: AtomicUsize,
}

/// A running floor of workers.
pub struct Workers {
    tasks: Vec<JoinHandle<Runtime>>,
    keepers: Vec<JoinHandle<()>>,
    buses: Vec<JoinHandle<()>>,
    shared: Vec<Arc<Shared>>,
    cancel: CancellationToken,
    floor: Floor,
}

/// The trial's queue names.
pub fn queue_names() -> Vec<String> {
    (0..QUEUES).map(|i| format!("load-q{i}")).collect()
}

/// Starts `n` workers on a floor of their own (a fresh prefix, so no
/// earlier run's leases or records are read).
pub async fn start(config: &Config, paths: &AppPaths, root: &Path, url: &str, n: usize) -> Result<Workers> {
    let mut nc = config.nats.clone();
    nc.prefix = format!("bench{:08x}", rand::random::<u32>());
    nc.lease_ttl_ms = LEASE_TTL_MS;
    let cancel = CancellationToken::new();
    // Everyone announces itself before anyone takes a queue, so the
    // leases split the queues evenly.
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        let owner = format!("bench-w{i}");
        let (link_tx, _links) = mpsc::unbounded_channel();
        let client = connect(&nc, url, &owner, link_tx).await?;
        let floor = Floor::open(client, &nc).await?;
        let buckets = floor.buckets(&nc, Duration::from_secs(3600)).await?;
        lease::announce(&buckets.leases, &owner).await;
        members.push((owner, floor, buckets));
    }
    // Workers sharing this machine share its cores: each model gets its
    // part (`[kb] threads` = cores ÷ workers, as the README advises for a
    // floor on one machine) unless the configuration already says.
    let mut config = config.clone();
    if config.kb.threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        config.kb.threads = (cores / n.max(1)).max(1);
    }
    let config = &config;
    let queues = queue_names();
    let mut w = Workers {
        tasks: Vec::new(),
        keepers: Vec::new(),
        buses: Vec::new(),
        shared: Vec::new(),
        cancel: cancel.clone(),
        floor: members[0].1.clone(),
    };
    let mut started = Vec::with_capacity(n);
    for (i, (owner, floor, buckets)) in members.into_iter().enumerate() {
        let wpaths = AppPaths { data_dir: root.join(format!("w{i}")), ..paths.clone() };
        std::fs::create_dir_all(&wpaths.data_dir)?;
        let (bus, bus_task) =
            Bus::spawn(floor.js.clone(), nc.prefix.clone(), owner.clone(), nc.publish_buffer);
        let spool = crate::ledger::Ledger::open(&wpaths.data_dir.join("floor-spool.redb"))?;
        // Fenced as a worker process is: its records wait for its leases.
        let fence = lease::Fence::default();
        let fenced = Some((fence.clone(), lease::fence_after(nc.lease_ttl())));
        let hooks = FloorHooks {
            ledger: Box::new(KvLedger::new(buckets.ledger.clone(), floor.client.clone(), spool, fenced)),
            tap: bus.tap(),
            widget: None,
        };
        let opts = RuntimeOptions { floor: Some(hooks), ..RuntimeOptions::default() };
        let rt = Runtime::start(config, &wpaths, opts).await?;
        w.buses.push(bus_task);
        started.push((owner, buckets, rt, bus, fence));
    }
    for (owner, buckets, rt, bus, fence) in started {
        let (lease_tx, leases) = mpsc::channel(64);
        let ttl = nc.lease_ttl();
        w.keepers.push(lease::spawn(
            buckets.leases,
            owner,
            lease::Policy { ttl, rebalance: nc.rebalance },
            queues.clone(),
            fence,
            lease_tx,
            cancel.clone(),
        ));
        let shared = Arc::new(Shared::default());
        w.shared.push(shared.clone());
        w.tasks.push(tokio::spawn(run_worker(rt, leases, bus, shared, cancel.clone())));
    }
    Ok(w)
}

/// One worker's loop: leases decide what it follows; everything else is
/// the runtime's.
async fn run_worker(
    mut rt: Runtime,
    mut leases: mpsc::Receiver<LeaseEvent>,
    bus: Bus,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Runtime {
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(ev) = leases.recv() => match ev {
                LeaseEvent::Acquired(q) => rt.follow_queue(&q),
                LeaseEvent::Lost(q) => rt.unfollow_queue(&q),
                LeaseEvent::Releasing { queue, synced } => {
                    rt.unfollow_queue(&queue);
                    rt.sync_ledger(synced);
                }
                LeaseEvent::Released(_) => {}
            },
            msg = rt.next() => {
                rt.handle(msg);
                rt.drain_ready(256);
            }
        }
        let e = rt.engine();
        shared.max_queue.fetch_max(rt.queue_depth(), Ordering::Relaxed);
        let inflight = e.conversations().filter(|c| c.inflight.is_some()).count();
        shared.max_inflight.fetch_max(inflight, Ordering::Relaxed);
        let idle = e.pushes_in_flight() == 0
            && e.conversations().all(|c| c.inflight.is_none() && c.search_due.is_none());
        shared.idle.store(idle, Ordering::Relaxed);
        shared.held.store(rt.followed_queues().len(), Ordering::Relaxed);
    }
    drop(bus);
    rt
}

/// What a floor trial measured, the workers together.
pub struct Figures {
    pub utterances: u64,
    pub searches: u64,
    pub pushes: u64,
    pub stale: u64,
    pub event_to_push: Option<Histogram<u64>>,
    pub search: Option<Histogram<u64>>,
    pub record: Option<Histogram<u64>>,
    pub max_queue: usize,
    pub max_inflight: usize,
    /// Queues each worker held at the end.
    pub held: Vec<usize>,
}

impl Workers {
    /// Whether every worker has nothing left to search or push.
    pub fn idle(&self) -> bool {
        self.shared.iter().all(|s| s.idle.load(Ordering::Relaxed))
    }

    /// Queues held over all workers.
    pub fn held(&self) -> usize {
        self.shared.iter().map(|s| s.held.load(Ordering::Relaxed)).sum()
    }

    /// Waits until every queue is held (the leases are split).
    pub async fn wait_held(&self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while self.held() < QUEUES {
            if tokio::time::Instant::now() >= deadline {
                return Err(eyre!("the workers took {} of {QUEUES} queues in {within:?}", self.held()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the workers (each flushes its ledger and audit log), releases
    /// the leases, and removes the trial's stream and buckets.
    pub async fn stop(self) -> Figures {
        let held = self.shared.iter().map(|s| s.held.load(Ordering::Relaxed)).collect();
        let max_queue = self.shared.iter().map(|s| s.max_queue.load(Ordering::Relaxed)).max().unwrap_or(0);
        let max_inflight = self.shared.iter().map(|s| s.max_inflight.load(Ordering::Relaxed)).sum();
        self.cancel.cancel();
        let mut runtimes = Vec::new();
        for t in self.tasks {
            if let Ok(rt) = t.await {
                runtimes.push(rt);
            }
        }
        let merged = |stage: Stage| {
            let mut out: Option<Histogram<u64>> = None;
            for h in runtimes.iter().filter_map(|rt| rt.engine().metrics().histogram(stage)) {
                match &mut out {
                    None => out = Some(h.clone()),
                    Some(m) => {
                        if let Err(e) = m.add(h) {
                            tracing::warn!(error = %e, "bench load: a worker's histogram not merged");
                        }
                    }
                }
            }
            out
        };
        let (event_to_push, search, record) =
            (merged(Stage::EventToPush), merged(Stage::Search), merged(Stage::Record));
        let (mut utterances, mut searches, mut pushes, mut stale) = (0, 0, 0, 0);
        for rt in runtimes {
            let s = rt.shutdown().await;
            utterances += s.utterances;
            searches += s.searches;
            pushes += s.pushes_ok;
            stale += s.stale_results;
        }
        for k in self.keepers {
            let _ = k.await;
        }
        for b in self.buses {
            let _ = tokio::time::timeout(Duration::from_secs(5), b).await;
        }
        let upper = self.floor.prefix.to_ascii_uppercase();
        for stream in [format!("{upper}_EVENTS"), format!("KV_{upper}_leases"), format!("KV_{upper}_ledger")]
        {
            if let Err(e) = self.floor.js.delete_stream(&stream).await {
                tracing::warn!(stream, error = %e, "bench load: trial stream not removed");
            }
        }
        Figures {
            utterances,
            searches,
            pushes,
            stale,
            event_to_push,
            search,
            record,
            max_queue,
            max_inflight,
            held,
        }
    }
}

/// One trial on a floor of `workers` workers: the same calls, the same
/// end condition, the workers' figures together, and the server's CPU.
#[allow(clippy::too_many_arguments)]
pub(super) async fn trial(
    config: &crate::config::Config,
    paths: &AppPaths,
    root: &std::path::Path,
    url: &str,
    workers: usize,
    sim: &sim::SimHandle,
    n: usize,
    opts: &Options,
) -> color_eyre::eyre::Result<Trial> {
    let server = server_pid(url);
    if server.is_none() {
        tracing::warn!(
            "bench load: the NATS server's process is not on this machine; its CPU is not measured"
        );
    }
    let floor = start(config, paths, root, url, workers).await?;
    floor.wait_held(Duration::from_secs(20)).await?;
    let server_cpu = || server.map(|p| proc_stats(&p.to_string()).cpu_s);
    let (cpu_before, bus_before) = (proc_stats("self").cpu_s, server_cpu());
    let started = tokio::time::Instant::now();
    let limit = opts.duration * 3 + Duration::from_secs(30);
    while !(sim.stats().conversations_ended >= n as u64 && floor.idle()) && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = proc_stats("self").cpu_s - cpu_before;
    let bus = bus_before.zip(server_cpu()).map(|(b, a)| a - b);
    let f = floor.stop().await;
    let latency = |h: &Option<hdrhistogram::Histogram<u64>>| {
        h.as_ref().map_or(Latency::of(&[]), Latency::from_histogram)
    };
    let run = Run {
        mode: "nats",
        workers,
        conversations: n,
        utterances: f.utterances,
        searches: f.searches,
        pushes: f.pushes,
        stale: f.stale,
        wall_s: wall,
        cpu_s: cpu,
        event_to_push: latency(&f.event_to_push),
        search: latency(&f.search),
        record: latency(&f.record),
        max_queue: f.max_queue,
        max_searches_in_flight: f.max_inflight,
    };
    Ok(Trial {
        bus_cpu_percent: bus.map(|b| 100.0 * b / wall),
        bus_cpu_share: bus.map(|b| if b + cpu > 0.0 { b / (b + cpu) } else { 0.0 }),
        queues_held: f.held,
        ..Trial::of(run, opts.target_p99)
    })
}

/// The pid of the process listening on the URL's port on this machine
/// (the NATS server), found through its listening socket's inode.
pub fn server_pid(url: &str) -> Option<u32> {
    let first = url.split(',').next()?.trim();
    let hostport = first.split_once("://").map_or(first, |(_, r)| r);
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let port: u16 =
        hostport.rsplit_once(':').map_or(Some(4222), |(_, p)| p.trim_end_matches('/').parse().ok())?;
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            let listening = f.get(3) == Some(&"0A");
            let on_port =
                f.get(1).and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                    == Some(port);
            if listening
                && on_port
                && let Some(inode) = f.get(9)
            {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}
