//! The benchmarks as a user runs them, small: `bench e2e` in both dialects
//! finishes (last round it hung in the notifications dialect, and nothing
//! ran it) and its pages read every suggestion delivered to the widget;
//! `bench load --widgets` runs with and without pages and reports both;
//! `bench load --workers 2 --nats` runs floors of one and two workers on a
//! real nats-server beside the single process.

use serde_json::Value;

use crate::support::{console_process, link_model, warm_index};

fn bench(args: &[&str]) -> Value {
    warm_index();
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let out = console_process(tmp.path()).arg("bench").args(args).arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bench {args:?} printed JSON: {e}"))
}

#[test]
fn bench_e2e_finishes_in_both_dialects_and_its_pages_read_every_widget_delivery() {
    for dialect in ["notifications", "tutorial"] {
        let r = bench(&["e2e", "--calls", "1", "--speed", "20", "--dialect", dialect]);
        assert_eq!(r["dialect"], dialect);
        let pushes = r["pushes"].as_u64().unwrap();
        assert!(pushes > 0, "{dialect}: {r}");
        let delivered = r["widget_delivered"].as_u64().unwrap();
        assert!(delivered > 0, "{dialect}: {r}");
        assert_eq!(r["widget_seen"], r["widget_delivered"], "{dialect}: every delivery read: {r}");
        assert_eq!(r["event_to_widget"]["n"], r["widget_seen"], "{dialect}: each timed: {r}");
        // Every floor replays the run's searched windows, whatever the pacing.
        let searched = r["floor"]["paced"]["n"].as_u64().unwrap();
        assert!(searched > 0, "{dialect}: {r}");
        for pacing in ["back_to_back", "as_run"] {
            assert_eq!(r["floor"][pacing]["n"].as_u64(), Some(searched), "{dialect}: {pacing}: {r}");
        }
        assert!(r["overhead_p50_as_run"].as_f64().unwrap() > 0.0, "{dialect}: {r}");
    }
}

#[test]
fn bench_load_compares_the_pipeline_without_and_with_open_agent_pages() {
    let r = bench(&["load", "--conversations", "4", "--duration-s", "4", "--every-s", "1", "--widgets", "4"]);
    let trials = r["trials"].as_array().unwrap();
    let pages: Vec<u64> = trials.iter().map(|t| t["widget_pages"].as_u64().unwrap()).collect();
    assert_eq!(pages, [0, 4, 0, 4], "{r}");
    for t in trials.iter().filter(|t| t["widget_pages"] == 4) {
        assert!(t["widget_events"].as_u64().unwrap() > 0, "the open pages read suggestions: {t}");
    }
    assert!(r["widgets_p99_ratio"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn bench_load_runs_floors_of_one_and_two_workers_beside_the_single_process() {
    let nats = crate::nats_support::NatsServer::start();
    let r = bench(&[
        "load",
        "--conversations",
        "6",
        "--duration-s",
        "4",
        "--every-s",
        "1",
        "--workers",
        "2",
        "--nats",
        &nats.url(),
    ]);
    let trials = r["trials"].as_array().unwrap();
    let workers: Vec<u64> = trials.iter().map(|t| t["workers"].as_u64().unwrap()).collect();
    assert_eq!(workers, [0, 1, 2], "{r}");
    for t in trials {
        assert!(t["pushes"].as_u64().unwrap() > 0, "every mode pushed: {t}");
        assert!(t["event_to_push"]["n"].as_u64().unwrap() > 0, "{t}");
    }
    for t in trials.iter().filter(|t| t["workers"] != 0) {
        // The queues were split by the leases: all held, each worker some.
        let held: Vec<u64> =
            t["queues_held"].as_array().unwrap().iter().map(|q| q.as_u64().unwrap()).collect();
        assert_eq!(held.len() as u64, t["workers"].as_u64().unwrap(), "{t}");
        assert_eq!(held.iter().sum::<u64>(), 6, "{t}");
        assert!(held.iter().all(|q| *q > 0), "{t}");
        // The server's CPU was read from /proc.
        let share = t["bus_cpu_share"].as_f64().expect("the bus's share of CPU");
        assert!((0.0..1.0).contains(&share) && t["bus_cpu_percent"].as_f64().unwrap() >= 0.0, "{t}");
    }
    let added: Vec<u64> =
        r["floor_added"].as_array().unwrap().iter().map(|a| a["workers"].as_u64().unwrap()).collect();
    assert_eq!(added, [1, 2], "{r}");
}
