//! `agent-assist bench`: measurements of every hot path, printed as a table
//! or JSON. Timing claims live here, never in tests. Each benchmark reports
//! medians and tails measured in one run; comparisons (pipeline vs floor,
//! flat vs HNSW) are taken side by side in the same run.
//!
//! - [`kb`]: index build throughput, cached-index load, single-query latency;
//! - [`index`]: FAISS flat vs HNSW at 10k–1M synthetic vectors;
//! - [`e2e`]: the simulator plus the pipeline, per stage, against the floor;
//! - [`load`]: many concurrent calls, and the largest sustainable number;
//! - [`replay`]: the bundled calls through the engine on a simulated clock
//!   (deterministic relevance, need detection and auto-push precision);
//! - [`widgets`]: many open agent-widget streams while suggestions are published.

pub mod e2e;
pub mod index;
pub mod kb;
pub mod kb_edits;
pub mod load;
pub mod replay;
pub mod widgets;

use std::time::Duration;

use crate::kb::{HnswParams, IndexKind, KbOptions, ModelSpec};
use crate::paths::AppPaths;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub n: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From durations.
    pub fn of(samples: &[Duration]) -> Self {
        let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
            return Self { n: 0, p50_ms: 0.0, p99_ms: 0.0, max_ms: 0.0 };
        };
        for s in samples {
            h.saturating_record(u64::try_from(s.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        Self::from_histogram(&h)
    }

    /// From a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Self { n: 0, p50_ms: 0.0, p99_ms: 0.0, max_ms: 0.0 };
        }
        Self {
            n: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:.2} ms  p99 {:.2} ms  (n={})", self.p50_ms, self.p99_ms, self.n)
    }
}

/// This process's resource use, from `/proc/self` (Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcStats {
    /// Peak resident set size (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Current resident set size (VmRSS), MiB.
    pub rss_mib: f64,
    /// User + system CPU time, seconds.
    pub cpu_s: f64,
}

/// Reads `/proc/{pid}/status` and `/proc/{pid}/stat` (`self` for this process).
pub fn proc_stats(pid: &str) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based); here offset by the two before ')'.
    let cpu_s = (ticks(11) + ticks(12)) / 100.0;
    ProcStats { peak_rss_mib: kib("VmHWM:") / 1024.0, rss_mib: kib("VmRSS:") / 1024.0, cpu_s }
}

/// The machine, for reports: cores and CPU model.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
    Machine { cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get), cpu }
}

/// A deterministic pseudo-random generator for reproducible synthetic data
/// (splitmix64; `rand`'s seeded generators would do, but this keeps the
/// data identical across `rand` versions).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Prints a report as JSON or as `key  value` lines.
pub fn print<T: Serialize>(report: &T, json: bool, table: impl FnOnce(&T)) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
    } else {
        table(report);
    }
}

/// The bundled sample KB with the installed model and a flat index, loaded
/// from the cache when it is current: what the replay, the e2e floor and
/// the examples measure against.
pub fn sample_kb_options(paths: &AppPaths, threads: Option<usize>) -> KbOptions {
    KbOptions {
        sources: crate::config::Config::default().kb.sources(),
        kind: IndexKind::Flat,
        hnsw: HnswParams::default(),
        model: ModelSpec { threads, ..ModelSpec::installed(paths) },
        force_rebuild: false,
    }
}
