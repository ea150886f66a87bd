//! `agent-assist console --headless` as a process: JSON lines on stdout,
//! SIGTERM ends it cleanly with nothing lost, and configuration problems are
//! one clear line on stderr.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use std::time::Duration;

use agent_assist::audit::read_log;
use serde_json::Value;

use crate::support::net::{sim_config, start};
use crate::support::{bundled_scripts, console_process as console, link_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_prints_json_lines_and_sigterm_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());

    let mut config = sim_config(bundled_scripts().into_iter().take(4).collect());
    config.speed = 20.0;
    config.repeat = true;
    let sim = start(config).await;
    let mut child = console(tmp.path())
        .args(["--log-level", "debug", "console", "--headless", "--mode", "auto", "--queue", &sim.queue_id])
        .args(["--exit-after", "120s"])
        .env("GENESYS_API_BASE", &sim.base_url)
        .env("GENESYS_CLIENT_ID", "cli-test")
        .env("GENESYS_CLIENT_SECRET", "cli-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    // Read lines until a push has gone through, then ask it to stop.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines: Vec<Value> = Vec::new();
        let mut signalled = false;
        for line in BufReader::new(stdout).lines() {
            let v: Value = serde_json::from_str(&line.unwrap()).expect("every stdout line is JSON");
            if v["event"] == "push" && !signalled {
                Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
                signalled = true;
            }
            lines.push(v);
        }
        lines
    });
    let lines = tokio::time::timeout(Duration::from_secs(120), lines)
        .await
        .expect("console exits after SIGTERM")
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    for l in &lines {
        assert!(l["event"].is_string() && l["ts"].is_string(), "{l}");
    }
    assert!(!lines.iter().any(|l| l.to_string().contains("cli-secret")), "secret on stdout");
    let log_file = std::fs::read_to_string(tmp.path().join("data/logs/agent-assist.log")).unwrap();
    assert!(
        log_file.contains("runtime started") && !log_file.contains("cli-secret"),
        "secret in the log file"
    );
    // The audit log holds everything stdout did (plus searches), flushed.
    let log = read_log(std::path::Path::new(summary["audit_log"].as_str().unwrap())).unwrap();
    assert_eq!(log.last().unwrap()["event"], "summary");
    let pushes = |v: &[Value]| v.iter().filter(|l| l["event"] == "push").count();
    assert_eq!(pushes(&log), pushes(&lines));
    assert!(pushes(&lines) >= 1);
    // Every push the simulator recorded is in the log.
    assert_eq!(
        sim.stats().pushes_recorded as usize,
        log.iter().filter(|l| l["event"] == "push" && l["ok"] == true).count()
    );
    sim.stop().await;
}

#[test]
fn missing_credentials_and_bad_config_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = console(tmp.path()).args(["console", "--headless", "--queue", "q"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.contains("GENESYS_CLIENT_ID"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[policy]\npush = \"high\"\n").unwrap();
    let out = console(tmp.path())
        .args(["--config", cfg.to_str().unwrap(), "console", "--headless"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bad.toml") && err.contains("push"), "{err}");
}
