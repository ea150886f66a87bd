//! `bench load`'s table: one row per trial, then what the floor added and
//! each mode's largest sustainable calls.

use super::Report;

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
