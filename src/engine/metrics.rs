//! Counters and per-stage latency histograms (hdrhistogram, microseconds):
//! event received → search started → matches → push sent → push
//! acknowledged, plus end to end. Read by the status bar, the headless
//! summary and the benchmarks.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The pipeline stages measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Transcript event received → search started (debounce and queueing).
    EventToSearch,
    /// Search started → matches (embedding and FAISS).
    Search,
    /// Matches → push decided (automatic pushes only).
    Decide,
    /// Push decided → recorded in the ledger, free to leave.
    Record,
    /// The ledger's commit a push waited for, inside `Record` (the rest of
    /// `Record` is hand-offs between threads).
    Commit,
    /// Transcript event received → push handed to the sinks (automatic
    /// pushes only; includes the ledger write).
    EventToPush,
    /// Push sent → acknowledged (network and retries).
    Push,
    /// Transcript event received → push acknowledged (automatic pushes only).
    EndToEnd,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::EventToSearch,
        Stage::Search,
        Stage::Decide,
        Stage::Record,
        Stage::Commit,
        Stage::EventToPush,
        Stage::Push,
        Stage::EndToEnd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::EventToSearch => "event_to_search",
            Self::Search => "search",
            Self::Decide => "decide",
            Self::Record => "record",
            Self::Commit => "commit",
            Self::EventToPush => "event_to_push",
            Self::Push => "push",
            Self::EndToEnd => "end_to_end",
        }
    }
}

/// Percentiles of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What a run did, for the headless summary line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub utterances: u64,
    pub searches: u64,
    /// Final utterances need detection kept out of the query window.
    #[serde(default)]
    pub needless: u64,
    pub suggestions: u64,
    pub pushes_ok: u64,
    pub pushes_failed: u64,
    pub stale_results: u64,
    pub discarded_frames: u64,
    /// Searches the knowledge base could not answer.
    #[serde(default)]
    pub search_errors: u64,
    pub latency: BTreeMap<String, Percentiles>,
}

/// Counters and histograms.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub utterances: u64,
    pub searches: u64,
    /// Final utterances judged to carry no need.
    pub needless: u64,
    pub stale_results: u64,
    pub search_errors: u64,
    pub suggestions: u64,
    pub pushes_ok: u64,
    pub pushes_failed: u64,
    pub discarded_frames: u64,
    stages: BTreeMap<Stage, Histogram<u64>>,
    /// The latest end-to-end latencies (ms), for a sparkline.
    pub recent_e2e_ms: VecDeque<u64>,
}

const RECENT: usize = 120;

impl Default for Metrics {
    fn default() -> Self {
        let stages = Stage::ALL
            .iter()
            .filter_map(|&s| Histogram::new_with_bounds(1, 3_600_000_000, 3).ok().map(|h| (s, h)))
            .collect();
        Self {
            utterances: 0,
            searches: 0,
            needless: 0,
            stale_results: 0,
            search_errors: 0,
            suggestions: 0,
            pushes_ok: 0,
            pushes_failed: 0,
            discarded_frames: 0,
            stages,
            recent_e2e_ms: VecDeque::new(),
        }
    }
}

impl Metrics {
    /// Records `to - from` for a stage (zero if `to` is earlier).
    pub fn record(&mut self, stage: Stage, from: Instant, to: Instant) {
        self.record_took(stage, to.saturating_duration_since(from));
    }

    /// Records a duration measured elsewhere (the ledger's commit).
    pub fn record_took(&mut self, stage: Stage, d: Duration) {
        if let Some(h) = self.stages.get_mut(&stage) {
            h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        if stage == Stage::EndToEnd {
            self.recent_e2e_ms.push_back(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if self.recent_e2e_ms.len() > RECENT {
                self.recent_e2e_ms.pop_front();
            }
        }
    }

    /// A stage's percentiles; `None` before its first sample.
    pub fn percentiles(&self, stage: Stage) -> Option<Percentiles> {
        let h = self.stages.get(&stage).filter(|h| !h.is_empty())?;
        let ms = |v: u64| Duration::from_micros(v).as_secs_f64() * 1000.0;
        Some(Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
        })
    }

    /// The raw histogram of a stage (microseconds), for benchmarks.
    pub fn histogram(&self, stage: Stage) -> Option<&Histogram<u64>> {
        self.stages.get(&stage)
    }

    pub fn summary(&self) -> Summary {
        Summary {
            utterances: self.utterances,
            searches: self.searches,
            needless: self.needless,
            suggestions: self.suggestions,
            pushes_ok: self.pushes_ok,
            pushes_failed: self.pushes_failed,
            stale_results: self.stale_results,
            discarded_frames: self.discarded_frames,
            search_errors: self.search_errors,
            latency: Stage::ALL
                .iter()
                .filter_map(|&s| self.percentiles(s).map(|p| (s.name().to_string(), p)))
                .collect(),
        }
    }
}
