//! The real terminal: `agent-assist demo` inside tmux, driven with
//! send-keys and read with capture-pane. A suggestion appears, `a` approves
//! it and the simulator records the push; `e`, typing and ctrl-s send an
//! edited text that arrives as typed; `q` quits and the process ends.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::installed_model;

struct Session(String);

impl Session {
    fn capture(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux").args(["send-keys", "-t", &self.0]).args(keys).status().unwrap();
        assert!(status.success());
    }
    fn alive(&self) -> bool {
        Command::new("tmux").args(["has-session", "-t", &self.0]).status().is_ok_and(|s| s.success())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

/// Polls `f` until it returns `Some`, or panics with the screen after `timeout`.
async fn wait_for<T>(s: &Session, timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; screen:\n{}",
            s.capture()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pushes(base: &str) -> Vec<Value> {
    let Ok(resp) = reqwest::get(format!("{base}/sim/pushes")).await else { return Vec::new() };
    resp.json().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_in_tmux_approve_and_edit_reach_the_simulator() {
    let tmp = tempfile::tempdir().unwrap();
    let model = installed_model();
    let models = tmp.path().join("data/models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model.model_dir, models.join("all-MiniLM-L6-v2")).unwrap();
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kb-cache");
    let command = format!(
        "env AGENT_ASSIST_CONFIG_DIR={cfg} AGENT_ASSIST_DATA_DIR={data} AGENT_ASSIST_CACHE_DIR={cache} ORT_DYLIB_PATH={ort} {bin} demo --speed 10; sleep 30",
        cfg = tmp.path().join("config").display(),
        data = tmp.path().join("data").display(),
        cache = cache.display(),
        ort = model.ort_library.display(),
        bin = env!("CARGO_BIN_EXE_agent-assist"),
    );
    let name = format!("aa-test-{}", std::process::id());
    let started = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "40", &command])
        .status()
        .expect("tmux is installed (scripts/setup.sh)");
    assert!(started.success());
    let s = Session(name);

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
