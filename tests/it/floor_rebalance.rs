//! Rebalancing on a real nats-server with the real simulator and model: a
//! worker alone takes every queue; a second worker joins the busy floor
//! and gets a queue within a few TTLs. The giver stops following it before
//! it lets the lease go, the newcomer resumes its calls, and the agent sees
//! no suggestion twice. And the give-back's barrier: the ledger says
//! "synced" only once nothing waits in its local spool.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use agent_assist::engine::{ConversationRecord, Msg};
use agent_assist::floor::kv_ledger::{KvLedger, load_queue};
use agent_assist::floor::{Floor, NatsConfig};
use agent_assist::ledger::{Ledger, LedgerHandle};

use crate::nats_support::NatsServer;
use crate::support::floor::{Member, QUEUES, Rig, no_repeat_within_cooldown, until};

/// Index of the first `lease` line of `m` for `queue` in `state`.
fn lease_line(m: &Member, queue: &str, state: &str) -> Option<usize> {
    m.seen.iter().position(|v| v["event"] == "lease" && v["queue"] == queue && v["state"] == state)
}

/// Queue of every call a member saw start.
fn call_queues(m: &Member, into: &mut BTreeMap<String, String>) {
    for v in m.events("conversation_started") {
        if let (Some(c), Some(q)) = (v["conversation_id"].as_str(), v["queue_id"].as_str()) {
            into.insert(c.to_string(), q.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joining_a_busy_floor_gets_a_queue_without_a_duplicate_push() {
    let rig = Rig::start(6.0).await;
    let ttl = Duration::from_secs(2);
    let mut w0 = rig.worker("w0", "auto", "2s");
    {
        let mut all: Vec<&mut Member> = vec![&mut w0];
        until(&mut all, Duration::from_secs(90), "the lone worker holding every queue and pushing", |m| {
            m[0].held().len() == QUEUES.len() && m[0].events("push").any(|v| v["ok"] == true)
        });
    }

    let mut w1 = rig.worker("w1", "auto", "2s");
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1];
    // Its keeper starts once the runtime is up (the `floor_member` line).
    until(&mut all, Duration::from_secs(90), "the newcomer running", |m| {
        m[1].events("floor_member").count() > 0
    });
    let joined = Instant::now();
    let (mut released_at, mut acquired_at) = (None, None);
    until(&mut all, Duration::from_secs(60), "a queue moved to the newcomer", |m| {
        if released_at.is_none() && m[0].events("lease").any(|v| v["state"] == "released") {
            released_at = Some(Instant::now());
        }
        if acquired_at.is_none() && !m[1].held().is_empty() {
            acquired_at = Some(Instant::now());
        }
        let (h0, h1) = (m[0].held(), m[1].held());
        !h1.is_empty() && h0.len() + h1.len() == QUEUES.len() && h0.is_disjoint(&h1)
    });
    let moved_after = joined.elapsed();
    let (Some(released_at), Some(acquired_at)) = (released_at, acquired_at) else {
        panic!("no release line before the newcomer took a queue")
    };
    // Settling (one TTL), the giver's round, the newcomer's round, and
    // slack for a loaded machine.
    assert!(
        moved_after <= ttl * 3 + Duration::from_secs(3),
        "moved {moved_after:?} after the newcomer started"
    );
    let gap = acquired_at.saturating_duration_since(released_at);
    assert!(gap <= ttl / 3 + Duration::from_secs(2), "the queue sat free for {gap:?}");

    let moved = all[1].held();
    assert_eq!(all[0].held().len(), QUEUES.len() - moved.len());
    assert_eq!(moved.len(), 1, "one queue moves to a newcomer on a floor of three queues");
    let queue = moved.iter().next().cloned().unwrap_or_default();
    let released = all[0].events("lease").find(|v| v["state"] == "released").cloned().unwrap_or_default();
    assert_eq!(released["queue"], queue.as_str(), "{released}");
    assert_eq!(released["reason"], "rebalance", "{released}");
    let release_idx = lease_line(all[0], &queue, "released").unwrap_or_default();

    // The calls the giver had on the queue when it let go are resumed.
    let mut queues = BTreeMap::new();
    call_queues(all[0], &mut queues);
    let ended: BTreeSet<&str> = all[0].seen[..release_idx]
        .iter()
        .filter(|v| v["event"] == "conversation_ended")
        .filter_map(|v| v["conversation_id"].as_str())
        .collect();
    let live = queues.iter().filter(|(c, q)| **q == queue && !ended.contains(c.as_str())).count();
    let acquired = all[1].events("lease").find(|v| v["queue"] == queue.as_str()).cloned().unwrap_or_default();
    eprintln!(
        "{queue} moved {moved_after:?} after the newcomer started, {gap:?} free; {live} live calls; {acquired}"
    );
    if live > 0 {
        assert!(acquired["resumed"].as_u64().unwrap_or(0) >= 1, "{acquired}");
    }
    let decided_before: BTreeSet<String> = all[0].seen[..release_idx]
        .iter()
        .filter(|v| v["event"] == "decision")
        .filter_map(|v| v["suggestion_id"].as_str().map(String::from))
        .collect();

    // The floor goes on: new calls of the moved queue start on the
    // newcomer, and pushes keep arriving.
    let pushes = rig.sim.pushes().len();
    until(&mut all, Duration::from_secs(90), "new calls of the moved queue and more pushes", |m| {
        let i = lease_line(m[1], &queue, "acquired").unwrap_or(usize::MAX);
        let new_calls = m[1]
            .seen
            .iter()
            .skip(i)
            .filter(|v| v["event"] == "conversation_started" && v["queue_id"] == queue.as_str())
            .count();
        new_calls >= 2 && rig.sim.pushes().len() >= pushes + 3
    });

    // After the give-back the giver follows no call of the moved queue
    // (and no call without a queue: a late event of a handed-over call),
    // and pushes nothing for one.
    let mut queues = BTreeMap::new();
    call_queues(all[0], &mut queues);
    call_queues(all[1], &mut queues);
    for v in &all[0].seen[release_idx..] {
        let c = v["conversation_id"].as_str().unwrap_or_default();
        if v["event"] == "conversation_started" || v["event"] == "push" {
            assert_ne!(v["queue_id"], queue.as_str(), "the giver follows a call of the moved queue: {v}");
            assert_ne!(queues.get(c), Some(&queue), "the giver works on a call of the moved queue: {v}");
        }
    }
    // Every call is followed by one worker: no call starts on both.
    let both: Vec<String> = all[0].calls().intersection(&all[1].calls()).cloned().collect();
    for c in &both {
        // A call resumed by the newcomer was the giver's before the move.
        let giver_after = all[0].seen[release_idx..]
            .iter()
            .any(|v| v["event"] == "conversation_started" && v["conversation_id"] == c.as_str());
        assert!(!giver_after, "{c} followed by both workers after the move");
    }
    // What the giver had decided arrived once; no suggestion twice.
    for sid in &decided_before {
        until(&mut all, Duration::from_secs(30), "decided suggestions delivered", |_| {
            rig.sim.pushes().iter().any(|p| p.suggestion_id.as_deref() == Some(sid.as_str()))
        });
    }
    // Balanced: nothing moved back and forth.
    assert_eq!(all[0].events("lease").filter(|v| v["state"] != "acquired").count(), 1);
    assert_eq!(all[1].events("lease").filter(|v| v["state"] != "acquired").count(), 0);
    let stats = rig.sim.stats();
    assert_eq!(stats.duplicate_suggestions, 0, "{stats:?}");
    no_repeat_within_cooldown(&rig.sim);
    drop(all);
    drop(w1);
    drop(w0);
    rig.sim.stop().await;
}

fn record(id: &str) -> Box<ConversationRecord> {
    Box::new(ConversationRecord::new(id, Some("queue-a"), 1))
}

/// What the ledger answers to a sync (an unanswered sync is a failure).
async fn sync(ledger: &LedgerHandle) -> Result<(), String> {
    let (done, answer) = tokio::sync::oneshot::channel();
    ledger.sync(done);
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(r)) => r,
        _ => Err("no answer".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_synced_only_once_nothing_waits_in_its_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start();
    let cfg = NatsConfig::default();
    let (link, _links) = tokio::sync::mpsc::unbounded_channel();
    let client = agent_assist::floor::connect(&cfg, &nats.url(), "sync-test", link).await.unwrap();
    let floor = Floor::open(client.clone(), &cfg).await.unwrap();
    let buckets = floor.buckets(&cfg, Duration::from_secs(3600)).await.unwrap();
    let spool = Ledger::open(&tmp.path().join("spool.redb")).unwrap();
    let store = KvLedger::new(buckets.ledger.clone(), client, spool, None);
    let (tx, _rx) = tokio::sync::mpsc::channel::<Msg>(64);
    let ledger = agent_assist::ledger::spawn(Box::new(store), tx).unwrap();
    let ids = |recs: Vec<ConversationRecord>| recs.into_iter().map(|r| r.id).collect::<BTreeSet<_>>();

    // Online: what was recorded before the sync is in the bucket once it
    // answers.
    ledger.record(record("c1"));
    assert_eq!(sync(&ledger).await, Ok(()));
    assert_eq!(ids(load_queue(&buckets.ledger, "queue-a").await.unwrap()), BTreeSet::from(["c1".into()]));

    // Server gone: the record goes to the spool, and a sync says no.
    nats.stop();
    ledger.record(record("c2"));
    let refused = sync(&ledger).await;
    assert!(refused.is_err(), "synced with a record only in the spool");
    eprintln!("sync during the outage: {refused:?}");

    // Back: a sync succeeds once the spool is written, and then the next
    // owner reads both records.
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if sync(&ledger).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the ledger never synced after the server came back");
    }
    let both: BTreeSet<String> = ["c1".into(), "c2".into()].into();
    assert_eq!(ids(load_queue(&buckets.ledger, "queue-a").await.unwrap()), both);
    drop(ledger);
}
