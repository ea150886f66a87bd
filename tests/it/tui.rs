//! The real terminal: `agent-assist demo` inside tmux, driven with
//! send-keys and read with capture-pane. A suggestion appears, `a` approves
//! it and the simulator records the push; `e`, typing and ctrl-s send an
//! edited text that arrives as typed; `q` quits and the process ends.

use std::time::Duration;

use serde_json::Value;

use crate::support::link_model;
use crate::support::tmux::{Session, shell_line, wait_for};

async fn pushes(base: &str) -> Vec<Value> {
    let Ok(resp) = reqwest::get(format!("{base}/sim/pushes")).await else { return Vec::new() };
    resp.json().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_in_tmux_approve_and_edit_reach_the_simulator() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let command = shell_line(tmp.path(), &[], "demo --speed 10");
    let s = Session::start(format!("aa-test-{}", std::process::id()), 120, 40, &command);

    // The simulator's address is on the hint line.
    let base = wait_for(&s, Duration::from_secs(90), "the dashboard", async || {
        let screen = s.capture();
        let at = screen.find("sim http://")?;
        let url: String = screen[at + 4..].chars().take_while(|c| !c.is_whitespace() && *c != '│').collect();
        Some(url)
    })
    .await;
    wait_for(&s, Duration::from_secs(60), "a queued suggestion", async || {
        s.capture().contains(" queued ").then_some(())
    })
    .await;
    assert!(pushes(&base).await.is_empty(), "manual mode pushed by itself");

    s.keys(&["a"]);
    let first = wait_for(&s, Duration::from_secs(20), "the approved push", async || {
        pushes(&base).await.first().cloned()
    })
    .await;
    assert_eq!(first["body"]["results"][0]["type"], "article");
    wait_for(&s, Duration::from_secs(10), "the push log", async || {
        s.capture().contains("pushed 204").then_some(())
    })
    .await;

    s.keys(&["e"]);
    wait_for(&s, Duration::from_secs(10), "the editor", async || {
        s.capture().contains("ctrl-s send").then_some(())
    })
    .await;
    s.keys(&["-l", " EDITED-BY-TMUX"]);
    s.keys(&["C-s"]);
    let edited = wait_for(&s, Duration::from_secs(20), "the edited push", async || {
        pushes(&base).await.into_iter().find(|p| {
            p["body"]["results"][0]["content"].as_str().is_some_and(|c| c.ends_with("EDITED-BY-TMUX"))
        })
    })
    .await;
    assert_eq!(edited["attempts"], 1);

    s.keys(&["q"]);
    // After quitting, the shell runs `sleep`: the dashboard is gone and the
    // terminal is back to normal (no alternate screen left behind).
    wait_for(&s, Duration::from_secs(20), "the dashboard to close", async || {
        (!s.capture().contains("Conversations")).then_some(())
    })
    .await;
    assert!(s.alive());
    wait_for(&s, Duration::from_secs(20), "the simulator to stop with the demo", async || {
        reqwest::get(format!("{base}/sim/stats")).await.is_err().then_some(())
    })
    .await;
}
