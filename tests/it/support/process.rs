//! The console binary as a child process driven like a script drives it:
//! arguments and environment given by the test, operator commands on a
//! piped stdin, stdout's JSON lines read on a thread into a channel,
//! stderr to a file (shown when the process exits unexpectedly). The
//! restart tests' headless console and the floor tests' members are both
//! one of these.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use agent_assist::sim::SimHandle;
use serde_json::Value;

use super::console_process;

/// The console binary against `sim`, with its directories under `dir` and
/// client credentials named after `client` (`<client>-test`,
/// `<client>-secret`); the caller adds the arguments.
pub fn sim_console(dir: &Path, sim: &SimHandle, client: &str) -> Command {
    let mut c = console_process(dir);
    c.env("GENESYS_API_BASE", &sim.base_url)
        .env("GENESYS_CLIENT_ID", format!("{client}-test"))
        .env("GENESYS_CLIENT_SECRET", format!("{client}-secret"));
    c
}

/// A running console process, its stdout lines arriving on a channel.
/// Dropping it kills the process.
pub struct ConsoleProcess {
    /// What the process is called in a panic message.
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    stderr: PathBuf,
}

impl ConsoleProcess {
    /// Spawns `command` with stdin and stdout piped and stderr written to
    /// `stderr`.
    pub fn spawn(name: &str, mut command: Command, stderr: PathBuf) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).expect("every stdout line is JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self { name: name.into(), child, stdin, lines, stderr }
    }

    /// The next line, or `None` after `timeout`; panics with the process's
    /// stderr if it exited.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        match self.lines.recv_timeout(timeout) {
            Ok(v) => Some(v),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{} exited: {}", self.name, std::fs::read_to_string(&self.stderr).unwrap_or_default())
            }
        }
    }

    /// A line that has already arrived, without waiting.
    pub fn try_next(&self) -> Option<Value> {
        self.lines.try_recv().ok()
    }

    /// Writes one operator command to the process's stdin.
    pub fn send(&mut self, command: &Value) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{command}");
            let _ = s.flush();
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM and asserts it exited cleanly.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
