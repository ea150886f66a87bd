//! The ledger's records in floor mode: one KV entry per conversation in the
//! floor's ledger bucket, keyed `<queue>.<conversation>` (tokens from
//! [`super::subject`]), so the worker that takes a queue over reads that
//! queue's calls and resumes them ([`load_queue`]).
//!
//! Record, then act, holds here too: the writer thread releases a push only
//! once its record is written. While the server is unreachable the records
//! go to a local spool (a redb ledger in the data dir) instead, so the
//! worker goes on assisting its calls; the spool is written to the bucket,
//! before anything newer, as soon as the server answers again. What sits in
//! the spool of a worker that dies during an outage is not seen by the
//! worker that takes over (that call may then see a suggestion again).
//!
//! Synced: before a queue is given back to the floor (rebalancing), the
//! writer thread is asked to [`LedgerStore::sync`], which succeeds only
//! once the spool is empty, so the next owner reads every record.
//!
//! Fenced: records are written only for queues whose lease was confirmed
//! lately ([`Fence`]). A lease unconfirmed too long fails the write (so the
//! ledger holds every push until it is confirmed again); the records of a
//! queue this worker no longer holds are left to its new owner.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::lease::{Fence, Standing};
use super::subject::{NONE, token};
use crate::engine::ConversationRecord;
use crate::ledger::{Ledger, LedgerError, LedgerStore};

/// After a failed write, how long records go straight to the spool before
/// the bucket is tried again (so pushes are not held up by timeouts).
const OFFLINE_FOR: Duration = Duration::from_secs(1);

/// The key of a conversation's record.
pub fn key(queue: Option<&str>, conversation: &str) -> String {
    format!("{}.{}", queue.map_or_else(|| NONE.to_string(), token), token(conversation))
}

/// The KV-backed store the ledger's writer thread owns.
pub struct KvLedger {
    kv: kv::Store,
    client: async_nats::Client,
    rt: tokio::runtime::Handle,
    spool: Ledger,
    spooled: bool,
    offline_until: Option<Instant>,
    /// The worker's leases and how long one may go unconfirmed before
    /// writes for its queue fail; `None` writes everything (a runtime that
    /// follows a queue without a lease, as `bench load` does).
    fence: Option<(Fence, Duration)>,
}

impl KvLedger {
    /// `spool` is this worker's local fallback file; records left in it by
    /// an earlier run are written to the bucket first.
    pub fn new(
        kv: kv::Store,
        client: async_nats::Client,
        spool: Ledger,
        fence: Option<(Fence, Duration)>,
    ) -> Self {
        let rt = tokio::runtime::Handle::current();
        Self { kv, client, rt, spool, spooled: true, offline_until: None, fence }
    }

    /// The records this worker may write: none if a queue's lease is
    /// unconfirmed too long, and never those of a queue it does not hold.
    fn fenced<'a>(
        &self,
        records: &[&'a ConversationRecord],
    ) -> Result<Vec<&'a ConversationRecord>, LedgerError> {
        let Some((fence, after)) = &self.fence else { return Ok(records.to_vec()) };
        let mut mine = Vec::with_capacity(records.len());
        for &rec in records {
            // A call with no queue is under no lease.
            let Some(queue) = rec.queue_id.as_deref() else {
                mine.push(rec);
                continue;
            };
            match fence.standing(queue, *after) {
                Standing::Confirmed => mine.push(rec),
                Standing::Unconfirmed(age) => {
                    return Err(LedgerError::Fenced { queue: queue.to_string(), seconds: age.as_secs() });
                }
                Standing::NotHeld => {
                    tracing::info!(
                        queue,
                        conversation = rec.id,
                        "floor ledger: not this worker's queue; record left to its owner"
                    );
                }
            }
        }
        Ok(mine)
    }

    fn err(&self, message: impl ToString) -> LedgerError {
        LedgerError::Io { path: format!("nats kv {}", self.kv.name).into(), message: message.to_string() }
    }

    /// Writes records to the bucket (blocking this thread, not the runtime).
    fn put_all(&self, records: &[&ConversationRecord]) -> Result<(), LedgerError> {
        let mut puts = Vec::with_capacity(records.len());
        for rec in records {
            let bytes = serde_json::to_vec(rec).map_err(|e| self.err(e))?;
            let k = key(rec.queue_id.as_deref(), &rec.id);
            let kv = self.kv.clone();
            puts.push(async move { kv.put(k, bytes.into()).await });
        }
        let results = self
            .rt
            .block_on(async {
                tokio::time::timeout(super::JS_TIMEOUT, futures_util::future::join_all(puts)).await
            })
            .map_err(|_| self.err("no answer from the NATS server"))?;
        for r in results {
            r.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn flush_spool(&mut self) -> Result<(), LedgerError> {
        let held = self.spool.load(0)?;
        // A queue lost while offline is its new owner's: its spooled
        // records must not overwrite what that owner has written since.
        let mine = self.fenced(&held.iter().collect::<Vec<_>>())?;
        if !mine.is_empty() {
            self.put_all(&mine)?;
            tracing::info!(records = mine.len(), "floor ledger: spooled records written to the bucket");
        }
        self.spool.clear()?;
        self.spooled = false;
        Ok(())
    }

    fn online(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
            && self.offline_until.is_none_or(|t| Instant::now() >= t)
    }
}

impl LedgerStore for KvLedger {
    fn write_records(&mut self, records: &[&ConversationRecord]) -> Result<(), LedgerError> {
        let records = &self.fenced(records)?;
        if records.is_empty() {
            return Ok(());
        }
        if self.online() {
            let direct =
                if self.spooled { self.flush_spool() } else { Ok(()) }.and_then(|()| self.put_all(records));
            match direct {
                Ok(()) => {
                    self.offline_until = None;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "floor ledger: bucket unreachable; spooling locally");
                    self.offline_until = Some(Instant::now() + OFFLINE_FOR);
                }
            }
        }
        self.spool.write(records.iter().copied())?;
        self.spooled = true;
        Ok(())
    }

    /// Nothing may be left in the spool: a queue given back is handed on
    /// only once its new owner can read every record of it.
    fn sync(&mut self) -> Result<(), LedgerError> {
        if !self.spooled {
            return Ok(());
        }
        if !self.online() {
            return Err(self.err("records wait in the local spool; the server is not answering"));
        }
        self.flush_spool().inspect_err(|_| {
            self.offline_until = Some(Instant::now() + OFFLINE_FOR);
        })
    }
}

/// The records of one queue's calls, for the worker taking it over.
pub async fn load_queue(kv: &kv::Store, queue: &str) -> Result<Vec<ConversationRecord>, String> {
    let prefix = format!("{}.", token(queue));
    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
    let mut mine = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| e.to_string())?;
        if k.starts_with(&prefix) {
            mine.push(k);
        }
    }
    let mut out = Vec::with_capacity(mine.len());
    for k in mine {
        let Some(bytes) = kv.get(k.clone()).await.map_err(|e| e.to_string())? else { continue };
        match serde_json::from_slice::<ConversationRecord>(&bytes) {
            Ok(rec) => out.push(rec),
            // One bad record must not stop the others from being resumed.
            Err(e) => tracing::error!(key = k, error = %e, "floor ledger: record does not parse; skipped"),
        }
    }
    Ok(out)
}
