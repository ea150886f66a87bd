//! The floor dashboard in a real terminal: a real nats-server, the real
//! simulator, one worker, and `console --nats` (no `--headless`) inside
//! tmux, driven with send-keys and read with capture-pane. Calls appear with
//! the worker that owns them, `a` on a match sends it through that worker,
//! which delivers it once, and the answer shows on the status line; with the
//! server stopped the console shows "floor link down" and recovers by
//! itself when it is back.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_assist::sim::SimHandle;
use serde_json::Value;

use crate::nats_support::NatsServer;
use crate::support::net::{sim_config, start};
use crate::support::{bundled_scripts, console_process, installed_model, link_model, warm_index};

const QUEUES: [&str; 2] = ["queue-a", "queue-b"];

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
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics with the screen after `timeout`.
async fn wait_for<T>(s: &Session, timeout: Duration, what: &str, mut f: impl FnMut(&str) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let screen = s.capture();
        if let Some(v) = f(&screen) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; screen:\n{screen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bundled scripts over two queues, in a loop.
async fn floor_sim() -> SimHandle {
    let mut scripts = bundled_scripts();
    for (i, s) in scripts.iter_mut().enumerate() {
        s.queue_id = Some(QUEUES[i % QUEUES.len()].to_string());
    }
    let mut config = sim_config(scripts);
    config.speed = 6.0;
    config.repeat = true;
    config.concurrency = 4;
    start(config).await
}

/// The worker's floor id, from its first stdout line.
fn worker(dir: &std::path::Path, nats: &str, sim: &SimHandle) -> (Worker, String) {
    link_model(dir);
    let mut args =
        vec!["worker", "--nats", nats, "--mode", "manual", "--lease-ttl", "2s", "--exit-after", "300s"];
    for q in QUEUES {
        args.extend(["--queue", q]);
    }
    let mut child = console_process(dir)
        .args(&args)
        .env("GENESYS_API_BASE", &sim.base_url)
        .env("GENESYS_CLIENT_ID", "floor-test")
        .env("GENESYS_CLIENT_SECRET", "floor-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if v["event"] == "floor_member" {
                let _ = tx.send(v["id"].as_str().unwrap_or_default().to_string());
            }
            // Keep reading so the worker never blocks on a full pipe.
        }
    });
    let id = rx.recv_timeout(Duration::from_secs(120)).expect("the worker joins the floor");
    (Worker(child), id)
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
    let tmp = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start();
    let sim = floor_sim().await;
    let url = nats.url();
    let (w, worker_id) = worker(&tmp.path().join("w1"), &url, &sim);
    // As the worker column shows it: `worker-host-PID-XXXX` → `PID-XXXX`.
    let short = agent_assist::ui::state::short_worker(&worker_id).to_string();

    let dir = tmp.path().join("console");
    link_model(&dir);
    let model = installed_model();
    let command = format!(
        "env AGENT_ASSIST_CONFIG_DIR={cfg} AGENT_ASSIST_DATA_DIR={data} AGENT_ASSIST_CACHE_DIR={cache} ORT_DYLIB_PATH={ort} GENESYS_API_BASE={api} GENESYS_CLIENT_ID=floor-test GENESYS_CLIENT_SECRET=floor-secret {bin} console --nats {url} --exit-after 300s; sleep 30",
        cfg = dir.join("config").display(),
        data = dir.join("data").display(),
        cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kb-cache").display(),
        ort = model.ort_library.display(),
        api = sim.base_url,
        bin = env!("CARGO_BIN_EXE_agent-assist"),
    );
    let name = format!("aa-floor-{}", std::process::id());
    let started = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "200", "-y", "50", &command])
        .status()
        .expect("tmux is installed (scripts/setup.sh)");
    assert!(started.success());
    let s = Session(name);

    // The dashboard is up on the floor, and calls appear with their worker.
    wait_for(&s, Duration::from_secs(60), "the floor dashboard", |screen| {
        (screen.contains("Conversations") && screen.contains("⇄ FLOOR")).then_some(())
    })
    .await;
    wait_for(&s, Duration::from_secs(120), "calls owned by the worker", |screen| {
        (screen.lines().filter(|l| l.contains(&short) && l.contains("queue-")).count() >= 2).then_some(())
    })
    .await;
    // A match to send on the selected call (suggested or not: `a` sends it).
    wait_for(&s, Duration::from_secs(120), "a match on the selected call", |screen| {
        [" queued ", " candidate "].iter().any(|st| screen.contains(st)).then_some(())
    })
    .await;
    assert!(operator_pushes(&sim).is_empty(), "manual mode pushed by itself");

    s.keys(&["a"]);
    let line = wait_for(&s, Duration::from_secs(20), "the owner's answer", |screen| {
        screen.lines().find(|l| l.contains("accepted by") || l.contains("refused by")).map(str::to_string)
    })
    .await;
    assert!(line.contains(&format!("accepted by {short}")), "{line}");
    let sid = wait_for(&s, Duration::from_secs(30), "the push at the simulator", |_| {
        operator_pushes(&sim).first().cloned()
    })
    .await;
    wait_for(&s, Duration::from_secs(30), "the push in the console's push log", |screen| {
        screen.contains("pushed 204").then_some(())
    })
    .await;
    let pushes = operator_pushes(&sim);
    assert_eq!(pushes.iter().filter(|p| **p == sid).count(), 1, "{sid} delivered more than once: {pushes:?}");
    assert_eq!(pushes.len(), 1, "one key, one push: {pushes:?}");
    assert_eq!(sim.stats().duplicate_suggestions, 0);

    // The floor link: down while the server is away, back by itself.
    nats.stop();
    wait_for(&s, Duration::from_secs(30), "floor link down", |screen| {
        screen.contains("FLOOR LINK DOWN").then_some(())
    })
    .await;
    s.keys(&["]"]);
    wait_for(&s, Duration::from_secs(10), "a command refused while down", |screen| {
        screen.contains("not sent, the floor link is down").then_some(())
    })
    .await;
    nats.restart();
    wait_for(&s, Duration::from_secs(30), "floor link up", |screen| {
        (screen.contains("⇄ FLOOR") && !screen.contains("FLOOR LINK DOWN")).then_some(())
    })
    .await;

    // A floor console does not serve widget pages: it says so.
    s.keys(&["w"]);
    wait_for(&s, Duration::from_secs(10), "the widget refusal", |screen| {
        screen.contains("served by the workers").then_some(())
    })
    .await;

    s.keys(&["q"]);
    wait_for(&s, Duration::from_secs(20), "the dashboard to close", |screen| {
        (!screen.contains("Conversations")).then_some(())
    })
    .await;
    drop(w);
    sim.stop().await;
}
