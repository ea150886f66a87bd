//! Restarts against the same simulator, with the durable ledger: kill -9 at
//! random points while pushes are in flight under mixed faults, then start
//! again; nothing reaches an agent twice and no approval is lost. Also the
//! ledger's lock, a damaged ledger file, and a full disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_assist::engine::{Actor, SuggestionState};
use agent_assist::ledger::Ledger;
use agent_assist::sim::{Fault, SimHandle};
use rand::Rng;

use crate::support::net::{pushes_by_article, sim_config, start};
use crate::support::process::{ConsoleProcess, sim_console};
use crate::support::{bundled_scripts, console_process, link_model};

/// A headless console on `sim`, its stdout lines arriving on a channel.
pub type Headless = ConsoleProcess;

// An inherent impl on the shared process type: the restart, live-reload
// and full-disk tests start their consoles the same way.
impl Headless {
    pub fn start(tmp: &Path, sim: &SimHandle, mode: &str) -> Self {
        Self::start_with(tmp, sim, mode, |_| {})
    }

    /// [`Headless::start`] with the command adjusted by `tweak` (more
    /// arguments or environment) before it is spawned.
    pub fn start_with(tmp: &Path, sim: &SimHandle, mode: &str, tweak: impl FnOnce(&mut Command)) -> Self {
        crate::support::warm_index();
        let mut command = sim_console(tmp, sim, "restart");
        command.args([
            "console",
            "--headless",
            "--mode",
            mode,
            "--queue",
            &sim.queue_id,
            "--exit-after",
            "300s",
        ]);
        tweak(&mut command);
        ConsoleProcess::spawn("the console", command, tmp.join("console.stderr"))
    }
}

fn faulty_sim_config() -> agent_assist::sim::SimConfig {
    let mut config = sim_config(bundled_scripts());
    config.speed = 15.0;
    config.repeat = true;
    config.concurrency = 4;
    config.faults = vec![
        Fault::Push429 { every: 5, retry_after_s: Some(0.2) },
        Fault::Push500 { every: 7 },
        Fault::PushSlow { every: 3, delay: Duration::from_millis(400) },
        Fault::WsDrop { every: 60 },
        Fault::TokenExpire { after: Duration::from_secs(3) },
    ];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_in_auto_mode_never_pushes_an_article_twice() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let sim = start(faulty_sim_config()).await;
    let mut rng = rand::rng();
    for round in 0..4 {
        let h = Headless::start(tmp.path(), &sim, "auto");
        // Kill after a random number of push events (attempts count: they
        // are pushes in flight).
        let target = rng.random_range(1..=4);
        let mut seen = 0;
        while seen < target {
            let Some(v) = h.next(Duration::from_secs(60)) else {
                panic!("round {round}: no push within 60 s")
            };
            if v["event"] == "push" || v["event"] == "push_attempt" || v["event"] == "decision" {
                seen += 1;
            }
        }
        h.kill9();
    }
    // A last run ends cleanly after a few more pushes.
    let h = Headless::start(tmp.path(), &sim, "auto");
    let mut restored = None;
    let mut pushes = 0;
    while pushes < 3 {
        let v = h.next(Duration::from_secs(60)).expect("pushes go on after restarts");
        if v["event"] == "restored" {
            restored = Some(v.clone());
        }
        if v["event"] == "push" {
            pushes += 1;
        }
    }
    h.terminate();
    let restored = restored.expect("the last run restored the ledger");
    assert!(restored["conversations"].as_u64().unwrap() >= 1, "{restored}");

    let stats = sim.stats();
    assert_eq!(stats.duplicate_suggestions, 0, "{stats:?}");
    for ((conv, article), times) in pushes_by_article(&sim) {
        for pair in times.windows(2) {
            let gap = pair[1].0.saturating_sub(pair[0].0);
            assert!(gap >= 600_000 || pair[1].1, "{article} pushed to {conv} twice within the cooldown");
        }
    }
    assert!(stats.faults_injected.values().sum::<u64>() > 0, "{stats:?}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_approvals_survive_kill_nine_and_arrive_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let sim = start(faulty_sim_config()).await;
    let mut approved: BTreeSet<String> = BTreeSet::new();
    for round in 0..3 {
        let mut h = Headless::start(tmp.path(), &sim, "manual");
        // Approve the first queued suggestion, then die right after the
        // decision, with the push (and maybe its record) in flight.
        loop {
            let Some(v) = h.next(Duration::from_secs(60)) else {
                panic!("round {round}: nothing to approve")
            };
            if v["event"] == "suggestion" && v["state"] == "queued" {
                let sid = v["suggestion_id"].as_str().unwrap().to_string();
                h.send(&serde_json::json!({ "command": "approve", "suggestion": sid }));
            }
            if v["event"] == "decision" && v["by"] == "operator" {
                approved.insert(v["suggestion_id"].as_str().unwrap().to_string());
                break;
            }
        }
        h.kill9();
    }
    // Restart and wait until every approval the ledger holds has arrived.
    let h = Headless::start(tmp.path(), &sim, "manual");
    // Running (its signal handling too) before anything is asked of it: the
    // approvals may all have arrived before the kill, and a SIGTERM during
    // start-up would end it the default way.
    let up = tokio::time::Instant::now() + Duration::from_secs(90);
    while !h.next(Duration::from_secs(1)).is_some_and(|v| v["event"] == "connection") {
        assert!(tokio::time::Instant::now() < up, "the restarted console reported no connection");
    }
    let wait = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let got: BTreeSet<String> = sim.pushes().iter().filter_map(|p| p.suggestion_id.clone()).collect();
        if approved.is_subset(&got) {
            break;
        }
        assert!(tokio::time::Instant::now() < wait, "approvals lost: {:?}", approved.difference(&got));
        let _ = h.next(Duration::from_millis(200));
    }
    h.terminate();
    // What the ledger says was approved is exactly what arrived, each once.
    let mut ledger = Ledger::open(&tmp.path().join("data/ledger.redb")).unwrap();
    let in_ledger: BTreeSet<String> = ledger
        .load(0)
        .unwrap()
        .into_iter()
        .flat_map(|c| c.suggestions)
        .filter(|s| s.decided_by == Some(Actor::Operator))
        .map(|s| {
            assert_eq!(s.state, SuggestionState::Pushed, "{} not delivered: {:?}", s.id, s.state);
            s.id
        })
        .collect();
    assert!(approved.is_subset(&in_ledger), "{approved:?} vs {in_ledger:?}");
    let pushes = sim.pushes();
    for id in &approved {
        assert_eq!(pushes.iter().filter(|p| p.suggestion_id.as_deref() == Some(id)).count(), 1, "{id}");
    }
    assert_eq!(sim.stats().duplicate_suggestions, 0);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_ledger_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let mut config = sim_config(bundled_scripts().into_iter().take(2).collect());
    config.repeat = true;
    let sim = start(config).await;
    let first = Headless::start(tmp.path(), &sim, "manual");
    // Running once it has said anything (the ledger is opened before that).
    first.next(Duration::from_secs(60)).expect("the first console runs");
    let out = console_process(tmp.path())
        .args(["console", "--headless", "--queue", &sim.queue_id, "--exit-after", "5s"])
        .env("GENESYS_API_BASE", &sim.base_url)
        .env("GENESYS_CLIENT_ID", "x")
        .env("GENESYS_CLIENT_SECRET", "y")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("in use by another agent-assist") && err.contains("ledger.redb"), "{err}");
    first.terminate();
    sim.stop().await;
}

#[test]
fn a_damaged_ledger_is_named_with_the_command_to_move_it_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("data/ledger.redb");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A truncated copy of a real ledger, and a file of garbage.
    {
        let l = Ledger::open(&path).unwrap();
        drop(l);
    }
    let bytes = std::fs::read(&path).unwrap();
    for damaged in [bytes[..bytes.len() / 3].to_vec(), b"not a ledger at all\n".repeat(100)] {
        std::fs::write(&path, &damaged).unwrap();
        let out = console_process(tmp.path())
            .args(["console", "--headless", "--queue", "q", "--exit-after", "5s"])
            .env("GENESYS_API_BASE", "http://127.0.0.1:9")
            .env("GENESYS_CLIENT_ID", "x")
            .env("GENESYS_CLIENT_SECRET", "y")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(path.to_str().unwrap()) && err.contains("mv "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // The damaged file is left as it was: nothing silently replaced.
        assert_eq!(std::fs::read(&path).unwrap(), damaged);
    }
}
