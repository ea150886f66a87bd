//! Rebalancing: a worker above its fair share gives one queue back per
//! keeper round while a ready worker is below it. The decisions are pure
//! functions of what the keeper read from the bucket ([`give_back`],
//! [`may_take`]); the give-back itself ([`Keeper::rebalance`]) goes
//! unfollow → ledger synced → lease deleted, so the next owner reads every
//! record and the giver sends nothing more for the queue.

use std::collections::BTreeMap;

use async_nats::jetstream::kv;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Keeper, LeaseEvent, READY, lease_key};

/// Queues per live worker, rounded up (at least 1).
pub fn fair_share(queues: usize, live: usize) -> usize {
    queues.div_ceil(live.max(1)).max(1)
}

/// Which of `held` (in the keeper's order) to give back this round: one,
/// and only while holding more than `share` (so never below it) and some
/// other ready worker holds fewer (`others`: their lease counts).
pub fn give_back(held: &[String], share: usize, others: &[usize]) -> Option<String> {
    if held.len() <= share || !others.iter().any(|&n| n < share) {
        return None;
    }
    held.last().cloned()
}

/// Whether to try taking a free queue: below the share and not a queue
/// given back lately (so two workers do not pass it back and forth), or
/// orphaned (free for two TTLs: anyone takes it).
pub fn may_take(held: usize, share: usize, given_back_lately: bool, orphaned: bool) -> bool {
    orphaned || (held < share && !given_back_lately)
}

/// What the bucket says about the floor this round.
#[derive(Debug, Default)]
pub struct Survey {
    /// Live worker → whether it has settled (takes queues now).
    pub live: BTreeMap<String, bool>,
    /// Queue lease holder → how many it holds.
    pub counts: BTreeMap<String, usize>,
}

impl Survey {
    /// Reads every presence and lease key (a failed read counts nothing,
    /// which makes the share every queue and gives nothing back).
    pub async fn read(kv: &kv::Store) -> Self {
        let mut s = Self::default();
        for k in super::key_names(kv).await.unwrap_or_default() {
            let (presence, lease) = (k.starts_with("w."), k.starts_with("q."));
            if !presence && !lease {
                continue;
            }
            let Ok(Some(v)) = kv.get(k.clone()).await else { continue };
            if presence {
                // The owner's id is in the key; the value says whether it settled.
                let owner = k.strip_prefix("w.").and_then(super::super::subject::id).unwrap_or_default();
                s.live.insert(owner, v.as_ref() == READY.as_bytes());
            } else {
                *s.counts.entry(String::from_utf8_lossy(&v).into_owned()).or_default() += 1;
            }
        }
        s
    }

    /// The lease counts of the other settled workers.
    pub fn others_ready(&self, me: &str) -> Vec<usize> {
        self.live
            .iter()
            .filter(|(w, ready)| **ready && w.as_str() != me)
            .map(|(w, _)| self.counts.get(w).copied().unwrap_or(0))
            .collect()
    }
}

impl Keeper {
    /// Gives one queue back if this worker is above its share while a
    /// settled worker is below it, or goes on with a give-back postponed
    /// in an earlier round.
    pub(super) async fn rebalance(&mut self, survey: &Survey, share: usize, out: &mpsc::Sender<LeaseEvent>) {
        let queue = match self.releasing.clone() {
            Some(q) => q,
            None => {
                let held: Vec<String> = self.held.keys().cloned().collect();
                let Some(q) = give_back(&held, share, &survey.others_ready(&self.owner)) else { return };
                tracing::info!(queue = q, share, held = held.len(), "floor: giving a queue back (rebalance)");
                self.releasing = Some(q.clone());
                q
            }
        };
        let Some(&rev) = self.held.get(&queue) else {
            // Lost meanwhile: its new owner has it.
            self.releasing = None;
            return;
        };
        // The worker stops following it (nothing of its calls is sent from
        // there again) and asks its ledger for every record in the bucket.
        let (done, synced) = oneshot::channel();
        if out.send(LeaseEvent::Releasing { queue: queue.clone(), synced: done }).await.is_err() {
            return;
        }
        match tokio::time::timeout(self.ttl / 3, synced).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(
                    queue,
                    error = e,
                    "floor: queue's records not all in the bucket; give-back postponed"
                );
                return;
            }
            _ => {
                tracing::warn!(queue, "floor: ledger did not answer in time; give-back postponed");
                return;
            }
        }
        // Nothing more is recorded for it here; then the lease goes.
        self.fence.forget(&queue);
        match self.kv.delete_expect_revision(lease_key(&queue), Some(rev)).await {
            Ok(()) => {
                tracing::info!(queue, "floor: lease released (rebalance)");
                self.held.remove(&queue);
                self.releasing = None;
                self.given_back.insert(queue.clone(), Instant::now());
                let _ = out.send(LeaseEvent::Released(queue)).await;
            }
            // Tried again next round (its renewal confirms the fence again).
            Err(e) => tracing::warn!(queue, error = %e, "floor: lease not released; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("q{i}")).collect()
    }

    #[test]
    fn the_share_is_queues_per_live_worker_rounded_up() {
        assert_eq!(fair_share(3, 1), 3);
        assert_eq!(fair_share(3, 2), 2);
        assert_eq!(fair_share(3, 3), 1);
        assert_eq!(fair_share(3, 5), 1);
        assert_eq!(fair_share(3, 0), 3, "no worker read: as if alone");
    }

    #[test]
    fn a_worker_above_its_share_gives_one_back_to_a_newcomer() {
        // Three queues, a second worker joins: share 2, one moves.
        assert_eq!(give_back(&qs(3), fair_share(3, 2), &[0]), Some("q2".into()));
        // Then 2 against 1: balanced, nothing moves (never below the share).
        assert_eq!(give_back(&qs(2), fair_share(3, 2), &[1]), None);
        // Three workers: one per round until each has one.
        assert_eq!(give_back(&qs(3), 1, &[0, 0]), Some("q2".into()));
        assert_eq!(give_back(&qs(2), 1, &[1, 0]), Some("q1".into()));
        assert_eq!(give_back(&qs(1), 1, &[1, 1]), None);
    }

    #[test]
    fn nothing_is_given_back_without_someone_below_the_share() {
        // Above the share (a worker died and its queue was orphaned), but
        // the others are at it: keeping it is better than moving it.
        assert_eq!(give_back(&qs(2), 1, &[1, 1]), None);
        assert_eq!(give_back(&qs(3), 3, &[]), None, "alone");
        assert_eq!(give_back(&[], 1, &[0]), None);
    }

    #[test]
    fn a_queue_given_back_is_not_taken_again_unless_orphaned() {
        assert!(may_take(0, 2, false, false));
        assert!(!may_take(2, 2, false, false), "at the share");
        assert!(!may_take(1, 2, true, false), "given back lately");
        assert!(may_take(2, 2, true, true), "orphaned: anyone takes it");
    }

    #[test]
    fn the_survey_counts_only_settled_others_and_zero_for_holding_nothing() {
        let mut s = Survey::default();
        s.live.insert("me".into(), true);
        s.live.insert("new".into(), true);
        s.live.insert("starting".into(), false);
        s.counts.insert("me".into(), 3);
        // A dead worker's unexpired leases count for nobody live.
        s.counts.insert("gone".into(), 1);
        assert_eq!(s.others_ready("me"), vec![0]);
    }
}
