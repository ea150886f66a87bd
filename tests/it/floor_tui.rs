//! The floor dashboard in a real terminal: a real nats-server, the real
//! simulator, one worker, and `console --nats` (no `--headless`) inside
//! tmux, driven with send-keys and read with capture-pane. Calls appear with
//! the worker that owns them, `a` on a match sends it through that worker,
//! which delivers it once, and the answer shows on the status line; with the
//! server stopped the console shows "floor link down" and recovers by
//! itself when it is back.

use std::time::Duration;

use agent_assist::sim::SimHandle;

use crate::support::floor::{Member, Rig, until};
use crate::support::tmux::{Session, shell_line, wait_for_screen};
use crate::support::{link_model, warm_index};

const QUEUES: [&str; 2] = ["queue-a", "queue-b"];

/// A worker in `w1` on both queues, and its floor id (from its
/// `floor_member` line).
fn worker(rig: &Rig) -> (Member, String) {
    let mut args =
        vec!["worker", "--nats", &rig.url, "--mode", "manual", "--lease-ttl", "2s", "--exit-after", "300s"];
    for q in QUEUES {
        args.extend(["--queue", q]);
    }
    let mut w = Member::start(rig.root(), "w1", &args, &rig.sim);
    until(&mut [&mut w], Duration::from_secs(120), "the worker joins the floor", |m| {
        m[0].events("floor_member").next().is_some()
    });
    let id = w.events("floor_member").find_map(|v| v["id"].as_str().map(String::from)).unwrap_or_default();
    (w, id)
}

/// Operator-decided pushes the simulator received, by suggestion id.
fn operator_pushes(sim: &SimHandle) -> Vec<String> {
    sim.pushes()
        .iter()
        .filter(|p| p.body["results"][0]["metadata"]["decided_by"] == "operator")
        .filter_map(|p| p.suggestion_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_dashboard_shows_the_calls_and_an_approval_goes_through_the_owner_once() {
    warm_index();
    let mut rig = Rig::over(&QUEUES, 6.0, 4).await;
    let (w, worker_id) = worker(&rig);
    // As the worker column shows it: `worker-host-PID-XXXX` → `PID-XXXX`.
    let short = agent_assist::ui::state::short_worker(&worker_id).to_string();

    let dir = rig.root().join("console");
    link_model(&dir);
    let env = [
        ("GENESYS_API_BASE", rig.sim.base_url.as_str()),
        ("GENESYS_CLIENT_ID", "floor-test"),
        ("GENESYS_CLIENT_SECRET", "floor-secret"),
    ];
    let command = shell_line(&dir, &env, &format!("console --nats {} --exit-after 300s", rig.url));
    let s = Session::start(format!("aa-floor-{}", std::process::id()), 200, 50, &command);

    // The dashboard is up on the floor, and calls appear with their worker.
    wait_for_screen(&s, Duration::from_secs(60), "the floor dashboard", |screen| {
        (screen.contains("Conversations") && screen.contains("⇄ FLOOR")).then_some(())
    })
    .await;
    wait_for_screen(&s, Duration::from_secs(120), "calls owned by the worker", |screen| {
        (screen.lines().filter(|l| l.contains(&short) && l.contains("queue-")).count() >= 2).then_some(())
    })
    .await;
    // A match to send on the selected call (suggested or not: `a` sends it).
    wait_for_screen(&s, Duration::from_secs(120), "a match on the selected call", |screen| {
        [" queued ", " candidate "].iter().any(|st| screen.contains(st)).then_some(())
    })
    .await;
    assert!(operator_pushes(&rig.sim).is_empty(), "manual mode pushed by itself");

    s.keys(&["a"]);
    let line = wait_for_screen(&s, Duration::from_secs(20), "the owner's answer", |screen| {
        screen.lines().find(|l| l.contains("accepted by") || l.contains("refused by")).map(str::to_string)
    })
    .await;
    assert!(line.contains(&format!("accepted by {short}")), "{line}");
    let sid = wait_for_screen(&s, Duration::from_secs(30), "the push at the simulator", |_| {
        operator_pushes(&rig.sim).first().cloned()
    })
    .await;
    wait_for_screen(&s, Duration::from_secs(30), "the push in the console's push log", |screen| {
        screen.contains("pushed 204").then_some(())
    })
    .await;
    let pushes = operator_pushes(&rig.sim);
    assert_eq!(pushes.iter().filter(|p| **p == sid).count(), 1, "{sid} delivered more than once: {pushes:?}");
    assert_eq!(pushes.len(), 1, "one key, one push: {pushes:?}");
    assert_eq!(rig.sim.stats().duplicate_suggestions, 0);

    // The floor link: down while the server is away, back by itself.
    rig.nats.stop();
    wait_for_screen(&s, Duration::from_secs(30), "floor link down", |screen| {
        screen.contains("FLOOR LINK DOWN").then_some(())
    })
    .await;
    s.keys(&["]"]);
    wait_for_screen(&s, Duration::from_secs(10), "a command refused while down", |screen| {
        screen.contains("not sent, the floor link is down").then_some(())
    })
    .await;
    rig.nats.restart();
    wait_for_screen(&s, Duration::from_secs(30), "floor link up", |screen| {
        (screen.contains("⇄ FLOOR") && !screen.contains("FLOOR LINK DOWN")).then_some(())
    })
    .await;

    // A floor console does not serve widget pages: it says so.
    s.keys(&["w"]);
    wait_for_screen(&s, Duration::from_secs(10), "the widget refusal", |screen| {
        screen.contains("served by the workers").then_some(())
    })
    .await;

    s.keys(&["q"]);
    wait_for_screen(&s, Duration::from_secs(20), "the dashboard to close", |screen| {
        (!screen.contains("Conversations")).then_some(())
    })
    .await;
    drop(w);
    rig.sim.stop().await;
}
