//! A dashboard in a real terminal: the binary inside a detached tmux
//! session, driven with send-keys and read with capture-pane, and the
//! polling that waits on what the screen (or anything else) shows.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::installed_model;

/// A detached tmux session, killed when dropped.
pub struct Session(String);

impl Session {
    /// Runs the shell line `command` in a new session `name` of
    /// `width`×`height` cells.
    pub fn start(name: String, width: u16, height: u16, command: &str) -> Self {
        let (width, height) = (width.to_string(), height.to_string());
        let started = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", &width, "-y", &height, command])
            .status()
            .expect("tmux is installed (scripts/setup.sh)");
        assert!(started.success());
        Self(name)
    }

    pub fn capture(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux").args(["send-keys", "-t", &self.0]).args(keys).status().unwrap();
        assert!(status.success());
    }

    pub fn alive(&self) -> bool {
        Command::new("tmux").args(["has-session", "-t", &self.0]).status().is_ok_and(|s| s.success())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

/// A shell line that runs the binary with `args`, its config and data
/// under `dir`, the shared KB cache, the installed ONNX Runtime and `env`
/// on top; then the shell sleeps, so the session (and what the terminal
/// was left showing) outlives the program.
pub fn shell_line(dir: &Path, env: &[(&str, &str)], args: &str) -> String {
    let mut line = format!(
        "env AGENT_ASSIST_CONFIG_DIR={} AGENT_ASSIST_DATA_DIR={} AGENT_ASSIST_CACHE_DIR={} ORT_DYLIB_PATH={}",
        dir.join("config").display(),
        dir.join("data").display(),
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("kb-cache").display(),
        installed_model().ort_library.display(),
    );
    for (k, v) in env {
        line.push_str(&format!(" {k}={v}"));
    }
    line.push_str(&format!(" {} {args}; sleep 30", env!("CARGO_BIN_EXE_agent-assist")));
    line
}

/// Polls `f` until it returns `Some`, or panics with the screen after `timeout`.
pub async fn wait_for<T>(
    s: &Session,
    timeout: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
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

/// [`wait_for`] on what the screen shows.
pub async fn wait_for_screen<T>(
    s: &Session,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&str) -> Option<T>,
) -> T {
    wait_for(s, timeout, what, async || f(&s.capture())).await
}
