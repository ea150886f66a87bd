//! The ledger: the durable memory of what was suggested, decided and
//! delivered, so a restart neither repeats nor loses anything.
//!
//! It is a [redb] file in the data dir holding one record per conversation
//! ([`ConversationRecord`], JSON). redb was chosen over SQLite because it is
//! pure Rust (no C build beside FAISS), its commits are crash-safe
//! copy-on-write transactions (a kill -9 leaves the last commit intact), it
//! takes an exclusive file lock (one process per ledger, for free), and a
//! key → record table is all this needs.
//!
//! A writer thread owns the file. The runtime hands it records and the
//! pushes that depend on them, in order; it commits everything waiting in
//! one transaction (group commit) and only then releases those pushes
//! ([`Msg::Durable`]). A failed commit releases nothing: the pushes come
//! back as [`Msg::LedgerFailed`], and the thread retries the records every
//! second until a commit succeeds ([`Msg::LedgerRecovered`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc;

use crate::domain::PushRequest;
use crate::engine::{ConversationRecord, Msg};

const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations_v1");
/// How often a failing ledger tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Why the ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "the ledger {path} is in use by another agent-assist process; stop it first \
         (two processes on one ledger would push the same suggestions twice)"
    )]
    Locked { path: PathBuf },
    #[error(
        "the ledger {path} is damaged ({message}); move it aside with `mv '{path}' '{path}.damaged'` \
         and start again (suggestion history then starts empty)"
    )]
    Damaged { path: PathBuf, message: String },
    #[error("ledger {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(
        "the lease on queue {queue} was last confirmed {seconds} s ago; another worker may own it \
         now, so nothing is recorded or sent for it until the lease is confirmed"
    )]
    Fenced { queue: String, seconds: u64 },
}

/// The open ledger file.
pub struct Ledger {
    /// `None` after a failed write: redb refuses every operation after an
    /// I/O error until the file is opened again, which the next write does.
    db: Option<Database>,
    path: PathBuf,
}

impl Ledger {
    /// Opens (or creates) the ledger, taking its lock.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let mut ledger = Self { db: Some(Self::open_db(path)?), path: path.to_path_buf() };
        // Make sure the table exists, so a first read needs no write.
        ledger.write(&[])?;
        Ok(ledger)
    }

    fn open_db(path: &Path) -> Result<Database, LedgerError> {
        let io = |message: String| LedgerError::Io { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
        }
        Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => LedgerError::Locked { path: path.to_path_buf() },
            // A file that is not a ledger at all reads as invalid data.
            redb::DatabaseError::Storage(redb::StorageError::Io(e))
                if e.kind() != std::io::ErrorKind::InvalidData =>
            {
                io(e.to_string())
            }
            other => LedgerError::Damaged { path: path.to_path_buf(), message: other.to_string() },
        })
    }

    fn db(&mut self) -> Result<&Database, LedgerError> {
        if self.db.is_none() {
            self.db = Some(Self::open_db(&self.path)?);
        }
        self.db.as_ref().ok_or_else(|| self.io("ledger not open"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn damaged(&self, message: impl ToString) -> LedgerError {
        LedgerError::Damaged { path: self.path.clone(), message: message.to_string() }
    }

    /// Every record, after deleting those of calls that ended before
    /// `prune_before_ms` (retention).
    pub fn load(&mut self, prune_before_ms: u64) -> Result<Vec<ConversationRecord>, LedgerError> {
        let mut out = Vec::new();
        let mut stale = Vec::new();
        {
            let txn = self.db()?.begin_read().map_err(|e| self.damaged(e))?;
            let table = txn.open_table(CONVERSATIONS).map_err(|e| self.damaged(e))?;
            for row in table.iter().map_err(|e| self.damaged(e))? {
                let (k, v) = row.map_err(|e| self.damaged(e))?;
                let rec: ConversationRecord = serde_json::from_slice(v.value())
                    .map_err(|e| self.damaged(format!("record `{}` does not parse: {e}", k.value())))?;
                if rec.ended_before(prune_before_ms) {
                    stale.push(rec.id);
                } else {
                    out.push(rec);
                }
            }
        }
        if !stale.is_empty() {
            let txn = self.db()?.begin_write().map_err(|e| self.io(e))?;
            {
                let mut table = txn.open_table(CONVERSATIONS).map_err(|e| self.io(e))?;
                for id in &stale {
                    table.remove(id.as_str()).map_err(|e| self.io(e))?;
                }
            }
            txn.commit().map_err(|e| self.io(e))?;
            tracing::info!(pruned = stale.len(), "ledger: pruned calls past retention");
        }
        Ok(out)
    }

    fn io(&self, e: impl ToString) -> LedgerError {
        LedgerError::Io { path: self.path.clone(), message: e.to_string() }
    }

    /// Writes records in one durable transaction. After a failure the file
    /// is opened afresh on the next call.
    pub fn write<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a ConversationRecord>,
    ) -> Result<(), LedgerError> {
        let result = self.try_write(records);
        if result.is_err() {
            self.db = None;
        }
        result
    }

    fn try_write<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a ConversationRecord>,
    ) -> Result<(), LedgerError> {
        let txn = self.db()?.begin_write().map_err(|e| self.io(e))?;
        {
            let mut table = txn.open_table(CONVERSATIONS).map_err(|e| self.io(e))?;
            for rec in records {
                let bytes = serde_json::to_vec(rec).map_err(|e| self.io(e))?;
                table.insert(rec.id.as_str(), bytes.as_slice()).map_err(|e| self.io(e))?;
            }
        }
        txn.commit().map_err(|e| self.io(e))
    }
}

/// Where the ledger's records are committed: the redb file here, or (in
/// floor mode) the floor's KV bucket. The writer thread owns one.
pub trait LedgerStore: Send {
    /// Commits records durably, all or nothing as far as the caller knows.
    fn write_records(&mut self, records: &[&ConversationRecord]) -> Result<(), LedgerError>;

    /// Makes sure everything committed so far is where other processes
    /// read it (floor mode: nothing left in the local spool). A local file
    /// has nothing more to do.
    fn sync(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }
}

impl LedgerStore for Ledger {
    fn write_records(&mut self, records: &[&ConversationRecord]) -> Result<(), LedgerError> {
        self.write(records.iter().copied())
    }
}

impl Ledger {
    /// Deletes every record (a spool that was handed on).
    pub fn clear(&mut self) -> Result<(), LedgerError> {
        let txn = self.db()?.begin_write().map_err(|e| self.io(e))?;
        txn.delete_table(CONVERSATIONS).map_err(|e| self.io(e))?;
        txn.commit().map_err(|e| self.io(e))?;
        self.write(&[])
    }
}

/// What the writer thread is given, in effect order.
enum Job {
    Record(Box<ConversationRecord>),
    /// Release this push once everything before it is committed.
    Hold(PushRequest),
    /// Answer once everything before it is committed and synced
    /// ([`LedgerStore::sync`]): a queue given back is handed on only then.
    Sync(Synced),
}

/// The answer to [`LedgerHandle::sync`]: `Err` says why not everything is
/// in shared storage yet.
pub type Synced = tokio::sync::oneshot::Sender<Result<(), String>>;

/// The sending side of the writer thread.
pub struct LedgerHandle {
    tx: Option<std_mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl LedgerHandle {
    pub fn record(&self, rec: Box<ConversationRecord>) {
        self.send(Job::Record(rec));
    }

    pub fn hold(&self, req: PushRequest) {
        self.send(Job::Hold(req));
    }

    /// Answers on `done` once every record handed in before is committed
    /// and synced.
    pub fn sync(&self, done: Synced) {
        self.send(Job::Sync(done));
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.tx
            && tx.send(job).is_err()
        {
            tracing::error!("ledger writer is gone");
        }
    }

    /// Commits what is waiting and stops the thread.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LedgerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the writer thread; its answers go on the runtime's channel.
pub fn spawn(ledger: Box<dyn LedgerStore>, out: mpsc::Sender<Msg>) -> std::io::Result<LedgerHandle> {
    let (tx, rx) = std_mpsc::channel::<Job>();
    let thread = std::thread::Builder::new().name("ledger-writer".into()).spawn(move || {
        let mut ledger = ledger;
        write_loop(&mut ledger, &rx, &out);
    })?;
    Ok(LedgerHandle { tx: Some(tx), thread: Some(thread) })
}

fn write_loop(ledger: &mut Box<dyn LedgerStore>, rx: &std_mpsc::Receiver<Job>, out: &mpsc::Sender<Msg>) {
    // Latest record per conversation not yet committed.
    let mut records: BTreeMap<String, Box<ConversationRecord>> = BTreeMap::new();
    let mut held: Vec<PushRequest> = Vec::new();
    let mut syncs: Vec<Synced> = Vec::new();
    let mut failing = false;
    let mut open = true;
    while open || !records.is_empty() {
        let first = if failing || !open {
            match rx.recv_timeout(RETRY) {
                Ok(job) => Some(job),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        } else {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => {
                    open = false;
                    None
                }
            }
        };
        let mut take = |job: Job| match job {
            Job::Record(r) => {
                records.insert(r.id.clone(), r);
            }
            Job::Hold(p) => held.push(p),
            Job::Sync(s) => syncs.push(s),
        };
        if let Some(job) = first {
            take(job);
        }
        while let Ok(job) = rx.try_recv() {
            take(job);
        }
        if records.is_empty() && held.is_empty() {
            if !syncs.is_empty() {
                let answer = if failing {
                    Err("the ledger is failing".to_string())
                } else {
                    ledger.sync().map_err(|e| e.to_string())
                };
                answer_syncs(&mut syncs, &answer);
            }
            continue;
        }
        let batch: Vec<&ConversationRecord> = records.values().map(AsRef::as_ref).collect();
        let started = Instant::now();
        match ledger.write_records(&batch) {
            Ok(()) => {
                let commit = Some(started.elapsed());
                records.clear();
                if failing {
                    failing = false;
                    let _ = out.blocking_send(Msg::LedgerRecovered);
                }
                if !held.is_empty() {
                    let _ = out.blocking_send(Msg::Durable { pushes: std::mem::take(&mut held), commit });
                }
                if !syncs.is_empty() {
                    let answer = ledger.sync().map_err(|e| e.to_string());
                    answer_syncs(&mut syncs, &answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger commit failed");
                answer_syncs(&mut syncs, &Err(e.to_string()));
                if !held.is_empty() || !failing {
                    let _ = out.blocking_send(Msg::LedgerFailed {
                        error: e.to_string(),
                        held: std::mem::take(&mut held),
                    });
                }
                failing = true;
                if !open {
                    // Shutting down and the disk still refuses: say so and stop.
                    tracing::error!(lost = records.len(), "ledger: records could not be saved at shutdown");
                    break;
                }
            }
        }
    }
}

fn answer_syncs(syncs: &mut Vec<Synced>, answer: &Result<(), String>) {
    for s in syncs.drain(..) {
        // The asker may have given up waiting; nothing to do then.
        let _ = s.send(answer.clone());
    }
}

#[cfg(test)]
mod tests;
