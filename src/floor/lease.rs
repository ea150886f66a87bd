//! Queue ownership: one lease per queue in a KV bucket whose max age is the
//! lease TTL. A worker takes a free queue with `create` (fails when someone
//! holds it) and renews it every third of the TTL with `update` against the
//! revision it last wrote (compare-and-set), so two workers can never both
//! believe they hold it after a renewal. A dead worker's lease simply
//! expires and another worker's `create` succeeds.
//!
//! Spreading queues: each worker also keeps a presence key; a worker takes
//! free queues only up to its fair share (queues / live workers, rounded
//! up), unless a queue has stayed free for two TTLs (then anyone takes it).
//! A worker waits one TTL after joining before it takes anything, so that
//! workers started together all count each other; it tries the queues in
//! an order of its own, so they do not all race for the same one.
//! While the server is unreachable a holder keeps its queues: nobody else
//! can take them, and the calls must go on being assisted.
//!
//! Rebalancing ([`rebalance`], `nats.rebalance`): a presence key says
//! `settling` until its worker takes queues, then `ready` (a giver waits
//! for `ready`, so what it gives is taken at once, not after the
//! newcomer's settling). Each round a
//! worker holding more than its share, while a ready worker holds fewer,
//! gives ONE queue back, never going below its share; a queue it gave back
//! it does not take again for two TTLs (unless orphaned), so two workers do
//! not pass it back and forth. The keeper task owns the leases and the
//! worker's loop owns the runtime, so the give-back is a handshake: the
//! keeper sends [`LeaseEvent::Releasing`] with a oneshot; the loop stops
//! following the queue (the same path as a lost lease: its calls are
//! handed over and no held push of theirs is sent) and asks the ledger's
//! writer to answer on the oneshot once every record before it is in the
//! bucket, spool included. Only on `Ok` does the keeper drop the fence and
//! delete the lease with its revision; on an error or no answer within a
//! third of the TTL it keeps (and renews) the lease and tries the sync
//! again next round: the engine has forgotten the calls, so following the
//! queue again from the bucket would miss what is still spooled. The
//! newcomer, ready and below its share, takes the free queue at its next
//! round (within a third of the TTL), reads the records and resumes the
//! calls; a third worker at its share leaves it. Stream events of the
//! queue already on their way to the giver are dropped there
//! (`runtime::floor::Handed`).
//!
//! Fencing: "the server is down" and "this worker is cut off from a server
//! the others still reach" look the same from here, and in the second case
//! another worker takes the queue once the lease expires. So the keeper
//! records when each lease was last confirmed ([`Fence`]); past two thirds
//! of the TTL without a confirmation the ledger refuses to record for that
//! queue, which holds every push and pauses auto-sending (the ledger's
//! failure path) until the lease is confirmed again or found taken.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::subject::token;
use crate::ledger::Synced;

pub mod rebalance;

/// A presence value: the worker has settled and takes queues.
const READY: &str = "ready";
/// A presence value: the worker is counting the others before taking any.
const SETTLING: &str = "settling";

/// A change in what this worker holds.
#[derive(Debug)]
pub enum LeaseEvent {
    Acquired(String),
    Lost(String),
    /// Being given back (rebalancing): stop following it, and answer on
    /// `synced` once the ledger has every record of it in the bucket
    /// ([`crate::runtime::Runtime::sync_ledger`]). Sent again each round
    /// until that succeeds.
    Releasing {
        queue: String,
        synced: Synced,
    },
    /// Given back: the lease is deleted, another worker takes it.
    Released(String),
}

/// How the keeper works.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub ttl: Duration,
    /// Give queues back to workers below their share (`nats.rebalance`).
    pub rebalance: bool,
}

/// When each held lease was last confirmed by the server; shared by the
/// keeper (which writes it) and the ledger (which checks it before
/// recording anything for a queue).
#[derive(Debug, Clone, Default)]
pub struct Fence(Arc<Mutex<HashMap<String, std::time::Instant>>>);

/// Where this worker stands on a queue, for recording its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Confirmed recently enough: record and deliver.
    Confirmed,
    /// Held, but not confirmed for this long: another worker may own it.
    Unconfirmed(Duration),
    /// Not held (lost or given back): its calls are another worker's.
    NotHeld,
}

impl Fence {
    fn confirm(&self, queue: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(queue.to_string(), std::time::Instant::now());
        }
    }

    fn forget(&self, queue: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(queue);
        }
    }

    /// This worker's standing on `queue`, fenced past `max_age`.
    pub fn standing(&self, queue: &str, max_age: Duration) -> Standing {
        let Ok(m) = self.0.lock() else { return Standing::NotHeld };
        match m.get(queue) {
            None => Standing::NotHeld,
            Some(at) if at.elapsed() <= max_age => Standing::Confirmed,
            Some(at) => Standing::Unconfirmed(at.elapsed()),
        }
    }
}

/// How long a lease may go unconfirmed before this worker stops recording
/// (and so delivering) for its queue: two thirds of the TTL, so one missed
/// renewal is tolerated and the server-side expiry is still a third away.
pub fn fence_after(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

fn lease_key(queue: &str) -> String {
    format!("q.{}", token(queue))
}

fn presence_key(owner: &str) -> String {
    format!("w.{}", token(owner))
}

/// The lease keeper's state.
struct Keeper {
    kv: kv::Store,
    owner: String,
    ttl: Duration,
    queues: Vec<String>,
    /// Held queue → revision of our last write.
    held: BTreeMap<String, u64>,
    /// When each queue was first seen free.
    free_since: HashMap<String, Instant>,
    presence: Option<u64>,
    fence: Fence,
    rebalance: bool,
    /// The queue being given back, once the give-back has started.
    releasing: Option<String>,
    /// Queues given back, and when (not taken again for two TTLs).
    given_back: HashMap<String, Instant>,
}

/// Registers this worker's presence now, so others count it while it
/// starts.
pub async fn announce(kv: &kv::Store, owner: &str) {
    if let Err(e) = kv.put(presence_key(owner), Bytes::from_static(SETTLING.as_bytes())).await {
        tracing::warn!(error = %e, "floor: cannot announce this worker yet");
    }
}

/// Starts the keeper: it keeps leases on `queues` until cancelled and
/// releases them on the way out; events go to `out`.
pub fn spawn(
    kv: kv::Store,
    owner: String,
    policy: Policy,
    queues: Vec<String>,
    fence: Fence,
    out: mpsc::Sender<LeaseEvent>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let ttl = policy.ttl;
    tokio::spawn(async move {
        let mut k = Keeper {
            kv,
            owner,
            ttl,
            queues,
            held: BTreeMap::new(),
            free_since: HashMap::new(),
            presence: None,
            fence,
            rebalance: policy.rebalance,
            releasing: None,
            given_back: HashMap::new(),
        };
        // Each worker its own order of queues to try.
        let turn = k.owner.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        if !k.queues.is_empty() {
            let n = turn % k.queues.len();
            k.queues.rotate_left(n);
        }
        let settle_until = Instant::now() + ttl;
        let mut every = tokio::time::interval(ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = every.tick() => {
                    if Instant::now() < settle_until {
                        k.renew_presence(SETTLING).await;
                    } else {
                        k.round(&out).await;
                    }
                }
            }
        }
        k.release_all().await;
    })
}

impl Keeper {
    async fn round(&mut self, out: &mpsc::Sender<LeaseEvent>) {
        self.renew_presence(READY).await;
        self.renew(out).await;
        let survey = rebalance::Survey::read(&self.kv).await;
        tracing::debug!(workers = survey.live.len(), "floor: live workers");
        let share = rebalance::fair_share(self.queues.len(), survey.live.len());
        if self.rebalance {
            self.rebalance(&survey, share, out).await;
        }
        self.take_free(share, out).await;
    }

    /// Renews every held lease; reports those taken by another worker.
    async fn renew(&mut self, out: &mpsc::Sender<LeaseEvent>) {
        let held: Vec<(String, u64)> = self.held.iter().map(|(q, r)| (q.clone(), *r)).collect();
        for (queue, rev) in held {
            match self.kv.update(lease_key(&queue), self.value(), rev).await {
                Ok(r) => {
                    self.fence.confirm(&queue);
                    self.held.insert(queue, r);
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // Expired (we could not renew in time) or taken.
                    match self.kv.create(lease_key(&queue), self.value()).await {
                        Ok(r) => {
                            tracing::warn!(queue, "floor: lease had expired; taken again");
                            self.fence.confirm(&queue);
                            self.held.insert(queue, r);
                        }
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                            tracing::warn!(queue, "floor: lease taken by another worker");
                            self.fence.forget(&queue);
                            self.held.remove(&queue);
                            let _ = out.send(LeaseEvent::Lost(queue)).await;
                        }
                        Err(e) => tracing::warn!(queue, error = %e, "floor: lease renewal failed"),
                    }
                }
                // Unreachable: keep following; nobody else can take it.
                Err(e) => tracing::warn!(queue, error = %e, "floor: lease renewal failed"),
            }
        }
    }

    /// Takes free queues up to the share, and orphaned ones whatever the
    /// share.
    async fn take_free(&mut self, share: usize, out: &mpsc::Sender<LeaseEvent>) {
        let now = Instant::now();
        let cool = self.ttl * 2;
        self.given_back.retain(|_, at| now.duration_since(*at) < cool);
        for queue in self.queues.clone() {
            if self.held.contains_key(&queue) {
                continue;
            }
            let free = match self.kv.entry(lease_key(&queue)).await {
                Ok(Some(e)) => !matches!(e.operation, kv::Operation::Put),
                Ok(None) => true,
                Err(_) => continue,
            };
            if !free {
                self.free_since.remove(&queue);
                continue;
            }
            let since = *self.free_since.entry(queue.clone()).or_insert(now);
            let orphaned = now.duration_since(since) >= self.ttl * 2;
            let lately = self.given_back.contains_key(&queue);
            if !rebalance::may_take(self.held.len(), share, lately, orphaned) {
                continue;
            }
            match self.kv.create(lease_key(&queue), self.value()).await {
                Ok(r) => {
                    tracing::info!(queue, "floor: lease acquired");
                    self.fence.confirm(&queue);
                    self.held.insert(queue.clone(), r);
                    self.free_since.remove(&queue);
                    let _ = out.send(LeaseEvent::Acquired(queue)).await;
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => tracing::debug!(queue, error = %e, "floor: lease not taken"),
            }
        }
    }

    fn value(&self) -> Bytes {
        Bytes::from(self.owner.clone())
    }

    async fn renew_presence(&mut self, state: &'static str) {
        match self.kv.put(presence_key(&self.owner), Bytes::from_static(state.as_bytes())).await {
            Ok(r) => self.presence = Some(r),
            Err(e) => tracing::debug!(error = %e, "floor: presence not renewed"),
        }
    }

    /// Gives every lease back (clean shutdown), so others need not wait
    /// for the TTL.
    async fn release_all(&mut self) {
        for (queue, rev) in std::mem::take(&mut self.held) {
            self.fence.forget(&queue);
            if let Err(e) = self.kv.delete_expect_revision(lease_key(&queue), Some(rev)).await {
                tracing::warn!(queue, error = %e, "floor: lease not released (it will expire)");
            }
        }
        if let Some(rev) = self.presence {
            let _ = self.kv.delete_expect_revision(presence_key(&self.owner), Some(rev)).await;
        }
    }
}

/// Who holds each queue's lease now (for consoles and tests).
pub async fn holders(kv: &kv::Store) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for k in key_names(kv).await.unwrap_or_default() {
        let Some(t) = k.strip_prefix("q.") else { continue };
        let Some(queue) = super::subject::id(t) else { continue };
        if let Ok(Some(v)) = kv.get(k.clone()).await {
            out.insert(queue, String::from_utf8_lossy(&v).into_owned());
        }
    }
    out
}

/// Every key in the bucket now; `None` when they cannot be listed.
pub(super) async fn key_names(kv: &kv::Store) -> Option<Vec<String>> {
    let mut keys = kv.keys().await.ok()?;
    let mut names = Vec::new();
    while let Some(Ok(k)) = keys.next().await {
        names.push(k);
    }
    Some(names)
}
