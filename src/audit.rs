//! The audit log: every transcript line, search, suggestion, decision, edit,
//! push attempt and outcome as JSON Lines in the data dir, so any push can be
//! explained after the call. A background thread does the writing (and the
//! headless console's stdout), so the runtime loop never blocks on disk or a
//! slow pipe; it flushes whenever its queue runs dry, fsyncs what it wrote
//! at least once a second, and flushes and fsyncs on shutdown, so nothing
//! accepted is lost on a clean exit or SIGTERM, and at most the last second
//! on a power cut.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::engine::Record;

/// Longest time a written line waits for an fsync.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What the writer is asked to write.
enum Line {
    Record(SystemTime, Record),
    /// A ready-made JSON object (the summary), for both sinks.
    Json(SystemTime, Value),
}

/// The sending side of the writer thread.
pub struct AuditHandle {
    tx: Option<mpsc::Sender<Line>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    path: PathBuf,
}

/// A hook that sees every line written (floor mode publishes them).
pub type Tap = Box<dyn FnMut(&Value) + Send>;

/// Opens (appending) the audit file and starts the writer. `stdout`, when
/// given, receives every record except searches (the headless console);
/// `tap`, when given, every line.
pub fn spawn_audit(
    path: &Path,
    stdout: Option<Box<dyn Write + Send>>,
    tap: Option<Tap>,
) -> std::io::Result<AuditHandle> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || write_loop(&rx, file, stdout, tap))?;
    Ok(AuditHandle { tx: Some(tx), thread: Some(thread), path: path.to_path_buf() })
}

/// One JSON line: `ts` (RFC 3339, UTC) followed by the record's fields.
pub fn to_json(at: SystemTime, record: &Record) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    stamp(&mut v, at);
    v
}

fn stamp(v: &mut Value, at: SystemTime) {
    if let Value::Object(map) = v {
        let mut stamped = serde_json::Map::new();
        stamped.insert("ts".into(), Value::String(humantime::format_rfc3339_millis(at).to_string()));
        stamped.extend(std::mem::take(map));
        *map = stamped;
    }
}

fn write_loop(
    rx: &mpsc::Receiver<Line>,
    file: File,
    stdout: Option<Box<dyn Write + Send>>,
    mut tap: Option<Tap>,
) -> std::io::Result<()> {
    let mut file = BufWriter::new(file);
    let mut out = stdout.map(BufWriter::new);
    // When the oldest write not yet fsynced was made.
    let mut unsynced: Option<Instant> = None;
    loop {
        let wait = unsynced.map_or(SYNC_EVERY, |t| SYNC_EVERY.saturating_sub(t.elapsed()));
        let first = match rx.recv_timeout(wait) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if unsynced.take().is_some() {
                    file.get_ref().sync_data()?;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut next = Some(first);
        while let Some(line) = next {
            let (value, to_stdout) = match line {
                Line::Record(at, record) => {
                    let quiet = matches!(record, Record::Search { .. });
                    (to_json(at, &record), !quiet)
                }
                Line::Json(at, mut v) => {
                    stamp(&mut v, at);
                    (v, true)
                }
            };
            if let Some(t) = tap.as_mut() {
                t(&value);
            }
            let text = value.to_string();
            writeln!(file, "{text}")?;
            if to_stdout && let Some(o) = out.as_mut() {
                // A closed stdout (a pipe whose reader left) must not stop the audit log.
                if writeln!(o, "{text}").is_err() {
                    out = None;
                }
            }
            next = rx.try_recv().ok();
        }
        // The queue ran dry: hand everything to the OS.
        file.flush()?;
        if let Some(o) = out.as_mut() {
            let _ = o.flush();
        }
        let since = *unsynced.get_or_insert_with(Instant::now);
        if since.elapsed() >= SYNC_EVERY {
            file.get_ref().sync_data()?;
            unsynced = None;
        }
    }
    file.flush()?;
    if let Some(mut o) = out {
        let _ = o.flush();
    }
    file.get_ref().sync_data()
}

impl AuditHandle {
    /// Queues a record; never blocks.
    pub fn record(&self, record: Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Line::Record(SystemTime::now(), record));
        }
    }

    /// Queues a ready-made JSON object (e.g. the summary).
    pub fn json(&self, value: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Line::Json(SystemTime::now(), value));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes out everything queued, flushes, and stops the thread.
    pub fn close(mut self) -> std::io::Result<()> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("audit writer panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for AuditHandle {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an audit log back, one JSON value per line, skipping blank lines.
pub fn read_log(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}
