//! The floor tests' rig: a real nats-server, the real simulator playing the
//! bundled scripts over the floor's queues, and worker and console
//! processes ([`Member`]) whose JSON lines the tests read. Shared by the
//! floor, rebalance, widget and dashboard tests so each starts the same way.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_assist::sim::SimHandle;
use serde_json::Value;

use super::net::{pushes_by_article, sim_config, start};
use super::process::{ConsoleProcess, sim_console};
use super::{bundled_scripts, link_model};
use crate::nats_support::NatsServer;

pub const QUEUES: [&str; 3] = ["queue-a", "queue-b", "queue-c"];

/// What every floor test starts with: a directory for its processes, a
/// nats-server, and the simulator. Members are started on it and dropped
/// before it, so the server outlives every process that uses it. Fields
/// drop in the reverse of their start (simulator, server, directory).
pub struct Rig {
    pub sim: SimHandle,
    /// The server's address, as the members are given it.
    pub url: String,
    pub nats: NatsServer,
    pub tmp: tempfile::TempDir,
}

impl Rig {
    /// The three-queue floor ([`QUEUES`]), six calls at a time, at `speed`.
    pub async fn start(speed: f64) -> Self {
        Self::over(&QUEUES, speed, 6).await
    }

    /// The bundled scripts spread over `queues`, `concurrency` calls at a
    /// time at `speed`, playing in a loop.
    pub async fn over(queues: &[&str], speed: f64, concurrency: usize) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let nats = NatsServer::start();
        let mut scripts = bundled_scripts();
        for (i, s) in scripts.iter_mut().enumerate() {
            s.queue_id = Some(queues[i % queues.len()].to_string());
        }
        let mut config = sim_config(scripts);
        config.speed = speed;
        config.repeat = true;
        config.concurrency = concurrency;
        let sim = start(config).await;
        let url = nats.url();
        Self { sim, url, nats, tmp }
    }

    /// Where the members' directories go.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// A worker on every one of [`QUEUES`] (see [`Member::worker`]).
    pub fn worker(&self, name: &str, mode: &str, ttl: &str) -> Member {
        Member::worker(self.root(), name, &self.url, mode, ttl, &self.sim)
    }

    /// A worker in auto mode at the raw threshold the pipeline tests use
    /// (0.55, credits as by default) instead of the calibrated one, for a
    /// test that needs pushes to keep coming within seconds: at the
    /// calibrated default (`auto_precision = 0.85`) a call may well go a
    /// minute without one.
    pub fn eager_worker(&self, name: &str, ttl: &str) -> Member {
        let config = self.root().join(name).join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.toml"), "[policy]\nauto_precision = 0.0\nauto = 0.55\n").unwrap();
        self.worker(name, "auto", ttl)
    }

    /// A headless reader console on the floor.
    pub fn console(&self, name: &str) -> Member {
        Member::start(
            self.root(),
            name,
            &["console", "--nats", &self.url, "--headless", "--exit-after", "300s"],
            &self.sim,
        )
    }
}

/// A floor process (worker or console): its stdout lines, and everything
/// read from them so far.
pub struct Member {
    pub name: String,
    process: ConsoleProcess,
    /// Everything read so far.
    pub seen: Vec<Value>,
}

impl Member {
    pub fn start(root: &Path, name: &str, args: &[&str], sim: &SimHandle) -> Self {
        super::warm_index();
        let dir = root.join(name);
        link_model(&dir);
        let mut command = sim_console(&dir, sim, "floor");
        command.args(args);
        let process = ConsoleProcess::spawn(name, command, dir.join("stderr"));
        Self { name: name.into(), process, seen: Vec::new() }
    }

    /// A worker on every one of [`QUEUES`] at the floor's `nats` address.
    pub fn worker(root: &Path, name: &str, nats: &str, mode: &str, ttl: &str, sim: &SimHandle) -> Self {
        let mut args =
            vec!["worker", "--nats", nats, "--mode", mode, "--lease-ttl", ttl, "--exit-after", "300s"];
        for q in QUEUES {
            args.extend(["--queue", q]);
        }
        Self::start(root, name, &args, sim)
    }

    /// Reads what has arrived (waiting up to `wait` for the first line).
    pub fn pump(&mut self, wait: Duration) {
        let Some(v) = self.process.next(wait) else { return };
        self.seen.push(v);
        while let Some(v) = self.process.try_next() {
            self.seen.push(v);
        }
    }

    pub fn events(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.seen.iter().filter(move |v| v["event"] == kind)
    }

    /// Conversations this member saw start.
    pub fn calls(&self) -> BTreeSet<String> {
        self.events("conversation_started")
            .filter_map(|v| v["conversation_id"].as_str().map(String::from))
            .collect()
    }

    /// Queues this member holds (acquired and not lost since).
    pub fn held(&self) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        for v in self.events("lease") {
            let q = v["queue"].as_str().unwrap_or_default().to_string();
            if v["state"] == "acquired" {
                held.insert(q);
            } else {
                held.remove(&q);
            }
        }
        held
    }

    /// Sends an operator command on its stdin.
    pub fn send(&mut self, command: &Value) {
        self.process.send(command);
    }

    pub fn kill9(self) {
        self.process.kill9();
    }
}

/// Pumps every member until `done` holds, or panics after `timeout`.
pub fn until(
    members: &mut [&mut Member],
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done(members) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for m in members.iter_mut() {
            m.pump(Duration::from_millis(20));
        }
    }
}

/// No article reached a call twice within the cooldown unless an operator
/// asked for it again.
pub fn no_repeat_within_cooldown(sim: &SimHandle) {
    for ((conv, article), times) in pushes_by_article(sim) {
        for pair in times.windows(2) {
            let gap = pair[1].0.saturating_sub(pair[0].0);
            assert!(gap >= 600_000 || pair[1].1, "{article} pushed to {conv} twice within the cooldown");
        }
    }
}
