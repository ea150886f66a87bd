//! A real `nats-server` (the Debian package, JetStream on) for the floor
//! tests: on a free loopback port with its own store dir, stopped on drop,
//! and stoppable and restartable on the same port (an outage).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to say it is ready.
const READY: Duration = Duration::from_secs(20);

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a port it picks itself (`-p -1`).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("js");
        let (child, port) = spawn(&store, None);
        Self { child: Some(child), port, store, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage); its store stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = spawn(&self.store, Some(self.port));
        assert_eq!(port, self.port);
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs nats-server and waits for "Server is ready", reading the port it
/// listens on from its log.
fn spawn(store: &std::path::Path, port: Option<u16>) -> (Child, u16) {
    let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server runs (scripts/setup.sh installs it)");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // Keep draining after the start so the server never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + READY;
    let mut port = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("nats-server says it is ready in time");
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            port = rest.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        }
        if line.contains("Server is ready") {
            break;
        }
    }
    (child, port.expect("nats-server logs its client port"))
}
