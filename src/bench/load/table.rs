//! `bench load`'s table: one row per trial (made from what a trial
//! measured the same way in either mode), then what the floor added and
//! each mode's largest sustainable calls.

use std::time::Duration;

use super::{Latency, Report, Trial};
use crate::bench::proc_stats;

/// What one trial measured, in either mode.
pub(super) struct Run {
    pub mode: &'static str,
    pub workers: usize,
    pub conversations: usize,
    pub utterances: u64,
    pub searches: u64,
    pub pushes: u64,
    pub stale: u64,
    /// Wall-clock seconds of the trial, and this process's CPU seconds.
    pub wall_s: f64,
    pub cpu_s: f64,
    pub event_to_push: Latency,
    pub search: Latency,
    pub record: Latency,
    pub max_queue: usize,
    pub max_searches_in_flight: usize,
}

impl Trial {
    /// The table's row for `run`: rates, CPU and the verdict against
    /// `target_p99` worked out alike for both modes; the widget and bus
    /// columns are empty (a trial that has them sets them).
    pub(super) fn of(run: Run, target_p99: Duration) -> Self {
        let e2p = run.event_to_push;
        Self {
            mode: run.mode,
            workers: run.workers,
            conversations: run.conversations,
            events_per_s: run.utterances as f64 / run.wall_s,
            searches_per_s: run.searches as f64 / run.wall_s,
            pushes: run.pushes,
            stale: run.stale,
            sustained: e2p.n > 0 && e2p.p99_ms <= target_p99.as_secs_f64() * 1000.0,
            event_to_push: e2p,
            search: run.search,
            record: run.record,
            max_queue: run.max_queue,
            max_searches_in_flight: run.max_searches_in_flight,
            cpu_percent: 100.0 * run.cpu_s / run.wall_s,
            peak_rss_mib: proc_stats("self").peak_rss_mib,
            widget_pages: 0,
            widget_events: 0,
            bus_cpu_percent: None,
            bus_cpu_share: None,
            queues_held: Vec::new(),
        }
    }
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    println!(
        "one utterance per call every {:.1} s for {:.0} s; target p99 event→push {:.0} ms",
        r.every_s, r.duration_s, r.target_p99_ms
    );
    println!(
        "{:>6} {:>7} {:>7} {:>6} {:>9} {:>10} {:>11} {:>11} {:>7} {:>9} {:>6} {:>6} {:>8}",
        "mode",
        "workers",
        "calls",
        "pages",
        "events/s",
        "searches/s",
        "e2p p50 ms",
        "e2p p99 ms",
        "queue",
        "in-flight",
        "cpu %",
        "bus %",
        "rss MiB"
    );
    for t in &r.trials {
        let bus = t.bus_cpu_percent.map_or_else(|| "-".to_string(), |b| format!("{b:.0}"));
        println!(
            "{:>6} {:>7} {:>7} {:>6} {:>9.1} {:>10.1} {:>11.1} {:>11.1} {:>7} {:>9} {:>6.0} {:>6} {:>8.0}",
            t.mode,
            t.workers,
            t.conversations,
            t.widget_pages,
            t.events_per_s,
            t.searches_per_s,
            t.event_to_push.p50_ms,
            t.event_to_push.p99_ms,
            t.max_queue,
            t.max_searches_in_flight,
            t.cpu_percent,
            bus,
            t.peak_rss_mib
        );
    }
    for t in r.trials.iter().filter_map(|t| t.bus_cpu_share.map(|s| (t, s))) {
        let (t, share) = t;
        println!(
            "bus share of CPU, {} workers, {} calls: {:.1}% (queues held {:?})",
            t.workers,
            t.conversations,
            100.0 * share,
            t.queues_held
        );
    }
    for t in &r.trials {
        println!(
            "  {} {} workers {} calls: search p50/p99 {:.1}/{:.1} ms, ledger record p50/p99 {:.1}/{:.1} ms",
            t.mode,
            t.workers,
            t.conversations,
            t.search.p50_ms,
            t.search.p99_ms,
            t.record.p50_ms,
            t.record.p99_ms
        );
    }
    for a in &r.floor_added {
        println!(
            "event→push through NATS, {} workers, {} calls: p50 {:+.1} ms, p99 {:+.1} ms over the single process",
            a.workers, a.conversations, a.p50_added_ms, a.p99_added_ms
        );
    }
    for m in &r.max_by_mode {
        let n = m.max_sustainable.map_or_else(|| "none".to_string(), |n| n.to_string());
        println!("largest sustainable ({}, {} workers): {n} calls", m.mode, m.workers);
    }
    if r.max_by_mode.is_empty()
        && let Some(n) = r.max_sustainable
    {
        println!("largest sustainable: {n} calls");
    }
    if let Some(ratio) = r.widgets_p99_ratio {
        let read: u64 = r.trials.iter().map(|t| t.widget_events).sum();
        println!(
            "event→push p99 with the pages open: {ratio:.2}x without ({read} suggestions read off the pages)"
        );
    }
}
