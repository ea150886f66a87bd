//! Floor mode on a real nats-server with the real simulator: workers share
//! the simulator's queues by lease (each call followed by exactly one), two
//! reader consoles see every call and each other's approvals, a worker
//! killed with -9 has its queues and calls taken over without a duplicate
//! push, and a NATS outage neither stops the assisting nor loses events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use agent_assist::sim::SimHandle;
use serde_json::{Value, json};

use crate::nats_support::NatsServer;
use crate::support::net::{sim_config, start};
use crate::support::process::{ConsoleProcess, sim_console};
use crate::support::{bundled_scripts, link_model};

pub const QUEUES: [&str; 3] = ["queue-a", "queue-b", "queue-c"];

/// A floor process (worker or console): its stdout lines, and everything
/// read from them so far.
pub struct Member {
    pub name: String,
    process: ConsoleProcess,
    /// Everything read so far.
    pub seen: Vec<Value>,
}

impl Member {
    pub fn start(root: &Path, name: &str, args: &[&str], sim: &SimHandle) -> Self {
        crate::support::warm_index();
        let dir = root.join(name);
        link_model(&dir);
        let mut command = sim_console(&dir, sim, "floor");
        command.args(args);
        let process = ConsoleProcess::spawn(name, command, dir.join("stderr"));
        Self { name: name.into(), process, seen: Vec::new() }
    }

    pub fn worker(root: &Path, name: &str, nats: &str, mode: &str, ttl: &str, sim: &SimHandle) -> Self {
        let mut args =
            vec!["worker", "--nats", nats, "--mode", mode, "--lease-ttl", ttl, "--exit-after", "300s"];
        for q in QUEUES {
            args.extend(["--queue", q]);
        }
        Self::start(root, name, &args, sim)
    }

    fn console(root: &Path, name: &str, nats: &str, sim: &SimHandle) -> Self {
        Self::start(root, name, &["console", "--nats", nats, "--headless", "--exit-after", "300s"], sim)
    }

    /// Reads what has arrived (waiting up to `wait` for the first line).
    pub fn pump(&mut self, wait: Duration) {
        let Some(v) = self.process.next(wait) else { return };
        self.seen.push(v);
        while let Some(v) = self.process.try_next() {
            self.seen.push(v);
        }
    }

    pub fn events(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.seen.iter().filter(move |v| v["event"] == kind)
    }

    /// Conversations this member saw start.
    pub fn calls(&self) -> BTreeSet<String> {
        self.events("conversation_started")
            .filter_map(|v| v["conversation_id"].as_str().map(String::from))
            .collect()
    }

    /// Queues this member holds (acquired and not lost since).
    pub fn held(&self) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        for v in self.events("lease") {
            let q = v["queue"].as_str().unwrap_or_default().to_string();
            if v["state"] == "acquired" {
                held.insert(q);
            } else {
                held.remove(&q);
            }
        }
        held
    }

    fn send(&mut self, command: &Value) {
        self.process.send(command);
    }

    pub fn kill9(self) {
        self.process.kill9();
    }
}

/// Pumps every member until `done` holds, or panics after `timeout`.
pub fn until(
    members: &mut [&mut Member],
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done(members) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for m in members.iter_mut() {
            m.pump(Duration::from_millis(20));
        }
    }
}

/// The bundled scripts spread over three queues, playing in a loop.
pub async fn floor_sim(speed: f64) -> SimHandle {
    let mut scripts = bundled_scripts();
    for (i, s) in scripts.iter_mut().enumerate() {
        s.queue_id = Some(QUEUES[i % QUEUES.len()].to_string());
    }
    let mut config = sim_config(scripts);
    config.speed = speed;
    config.repeat = true;
    config.concurrency = 6;
    start(config).await
}

/// Pushes by (conversation, article): arrival times and whether an
/// operator asked for them.
fn pushes_by_article(sim: &SimHandle) -> BTreeMap<(String, String), Vec<(u64, bool)>> {
    let mut out: BTreeMap<(String, String), Vec<(u64, bool)>> = BTreeMap::new();
    for p in sim.pushes() {
        let r = &p.body["results"][0];
        let article = r["id"].as_str().unwrap_or_default().to_string();
        let operator = r["metadata"]["decided_by"] == "operator";
        out.entry((p.conversation_id.clone(), article)).or_default().push((p.received_ms, operator));
    }
    out
}

pub(crate) fn no_repeat_within_cooldown(sim: &SimHandle) {
    for ((conv, article), times) in pushes_by_article(sim) {
        for pair in times.windows(2) {
            let gap = pair[1].0.saturating_sub(pair[0].0);
            assert!(gap >= 600_000 || pair[1].1, "{article} pushed to {conv} twice within the cooldown");
        }
    }
}

fn push_count(sim: &SimHandle, suggestion: &str) -> usize {
    sim.pushes().iter().filter(|p| p.suggestion_id.as_deref() == Some(suggestion)).count()
}

/// Approves queued suggestions from `console` until one is decided; returns
/// its id and the reply.
fn approve_one(all: &mut [&mut Member], console: usize, timeout: Duration) -> (String, Value) {
    let deadline = Instant::now() + timeout;
    let mut tried: BTreeSet<String> = BTreeSet::new();
    loop {
        assert!(Instant::now() < deadline, "no suggestion could be approved");
        let pick = all[console]
            .events("suggestion")
            .filter(|v| v["state"] == "queued")
            .filter_map(|v| v["suggestion_id"].as_str().map(String::from))
            .filter(|s| !tried.contains(s))
            .last();
        let Some(sid) = pick else {
            for m in all.iter_mut() {
                m.pump(Duration::from_millis(20));
            }
            continue;
        };
        tried.insert(sid.clone());
        all[console].send(&json!({ "command": "approve", "suggestion": sid }));
        let mut reply = None;
        until(all, Duration::from_secs(20), "a command reply", |m| {
            reply = m[console]
                .seen
                .iter()
                .rfind(|v| {
                    (v["event"] == "command_reply" || v["event"] == "command_error")
                        && v["command"]["suggestion"] == sid
                })
                .cloned();
            reply.is_some()
        });
        let reply = reply.unwrap_or_default();
        // Approved: the owner says it is being sent (or already sent).
        if matches!(reply["reply"]["suggestion_state"].as_str(), Some("sending" | "pushed")) {
            return (sid, reply);
        }
        eprintln!("approval of {sid} not taken: {reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_split_the_queues_and_two_consoles_see_every_call_and_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let sim = floor_sim(6.0).await;
    let url = nats.url();
    // Workers count each other for one TTL before taking queues: 5 s, so
    // processes started slowly on a loaded machine still see each other.
    let mut w0 = Member::worker(tmp.path(), "w0", &url, "manual", "5s", &sim);
    let mut w1 = Member::worker(tmp.path(), "w1", &url, "manual", "5s", &sim);
    let mut w2 = Member::worker(tmp.path(), "w2", &url, "manual", "5s", &sim);
    let mut c1 = Member::console(tmp.path(), "c1", &url, &sim);
    let mut c2 = Member::console(tmp.path(), "c2", &url, &sim);
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1, &mut w2, &mut c1, &mut c2];

    // Each queue is held by exactly one worker.
    until(&mut all, Duration::from_secs(90), "every queue held once", |m| {
        let held: Vec<String> = m[..3].iter().flat_map(|w| w.held()).collect();
        let distinct: BTreeSet<&String> = held.iter().collect();
        held.len() == QUEUES.len() && distinct.len() == QUEUES.len()
    });
    // Spread: one queue each.
    for w in &all[..3] {
        assert_eq!(w.held().len(), 1, "{} holds {:?}", w.name, w.held());
    }
    // Calls on every queue, each on both consoles.
    until(&mut all, Duration::from_secs(90), "calls seen by both consoles", |m| {
        let calls: BTreeSet<String> = m[..3].iter().flat_map(|w| w.calls()).collect();
        calls.len() >= 6 && m[3].calls().is_superset(&calls) && m[4].calls().is_superset(&calls)
    });
    // Exactly one worker follows each call, and only calls of its queues.
    for i in 0..3 {
        let held = all[i].held();
        for v in all[i].events("conversation_started") {
            let q = v["queue_id"].as_str().unwrap_or_default();
            assert!(held.contains(q), "{} follows a call of {q}, not its queue", all[i].name);
        }
        for j in i + 1..3 {
            let both: Vec<_> = all[i].calls().intersection(&all[j].calls()).cloned().collect();
            assert!(both.is_empty(), "{} and {} both follow {both:?}", all[i].name, all[j].name);
        }
    }

    // An approval in one console reaches the owner, shows in the other
    // console, and is delivered once even if the other approves it too.
    let (sid, reply) = approve_one(&mut all, 3, Duration::from_secs(90));
    assert_eq!(reply["reply"]["ok"], true, "{reply}");
    until(&mut all, Duration::from_secs(30), "the decision on the other console", |m| {
        m[4].events("decision").any(|v| v["suggestion_id"] == sid.as_str() && v["by"] == "operator")
    });
    all[4].send(&json!({ "command": "approve", "suggestion": sid }));
    until(&mut all, Duration::from_secs(30), "the push and the second reply", |m| {
        push_count(&sim, &sid) >= 1
            && m[4]
                .seen
                .iter()
                .any(|v| v["event"] == "command_reply" && v["command"]["suggestion"] == sid.as_str())
            && m[4].events("push").any(|v| v["suggestion_id"] == sid.as_str())
    });
    assert_eq!(push_count(&sim, &sid), 1, "{sid} delivered more than once");
    assert_eq!(sim.stats().duplicate_suggestions, 0);
    drop(all);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_queues_and_calls_move_without_a_duplicate_push() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let sim = floor_sim(6.0).await;
    let url = nats.url();
    let ttl = Duration::from_secs(2);
    let mut w0 = Member::worker(tmp.path(), "w0", &url, "auto", "2s", &sim);
    let mut w1 = Member::worker(tmp.path(), "w1", &url, "auto", "2s", &sim);
    let mut w2 = Member::worker(tmp.path(), "w2", &url, "auto", "2s", &sim);
    let mut c1 = Member::console(tmp.path(), "c1", &url, &sim);
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1, &mut w2, &mut c1];
    until(&mut all, Duration::from_secs(90), "every queue held once", |m| {
        m[..3].iter().map(|w| w.held().len()).sum::<usize>() == QUEUES.len()
    });
    // The victim: a worker holding a queue, once it has pushed on a call
    // that is still going.
    let mut victim = None;
    until(&mut all, Duration::from_secs(90), "a push on a live call", |m| {
        victim = (0..3).find(|&i| {
            let ended: BTreeSet<&str> =
                m[i].events("conversation_ended").filter_map(|v| v["conversation_id"].as_str()).collect();
            m[i].events("push")
                .any(|v| v["ok"] == true && !ended.contains(v["conversation_id"].as_str().unwrap_or("")))
        });
        victim.is_some()
    });
    let victim = victim.unwrap_or_default();
    let queues = all[victim].held();
    let approved_before: BTreeSet<String> = all[victim]
        .events("decision")
        .filter_map(|v| v["suggestion_id"].as_str().map(String::from))
        .collect();
    drop(all);
    let mut workers = vec![w0, w1, w2];
    let killed = workers.remove(victim);
    killed.kill9();
    let t0 = Instant::now();
    let mut all: Vec<&mut Member> = workers.iter_mut().chain([&mut c1]).collect();
    until(&mut all, Duration::from_secs(30), "the victim's queues taken over", |m| {
        let held: BTreeSet<String> = m[..2].iter().flat_map(|w| w.held()).collect();
        queues.is_subset(&held)
    });
    let moved_after = t0.elapsed();
    // Within the TTL after the last renewal, plus one renewal period of
    // the taker, plus slack for a loaded machine.
    assert!(moved_after <= ttl + ttl / 3 + Duration::from_secs(2), "queues moved after {moved_after:?}");
    let resumed: u64 = all[..2]
        .iter()
        .flat_map(|w| w.events("lease"))
        .filter(|v| v["state"] == "acquired" && queues.contains(v["queue"].as_str().unwrap_or("")))
        .filter_map(|v| v["resumed"].as_u64())
        .sum();
    assert!(resumed >= 1, "the taker resumed no call of the dead worker");
    eprintln!("queues {queues:?} moved {moved_after:?} after kill -9; {resumed} calls resumed");
    // Let the taken-over calls go on and be assisted.
    let pushes = sim.pushes().len();
    until(&mut all, Duration::from_secs(60), "more pushes after the take-over", |_| {
        sim.pushes().len() >= pushes + 3
    });
    // Everything the dead worker had decided arrived, once.
    for sid in &approved_before {
        until(&mut all, Duration::from_secs(30), "decided suggestions delivered", |_| {
            push_count(&sim, sid) >= 1
        });
        assert_eq!(push_count(&sim, sid), 1, "{sid}");
    }
    let stats = sim.stats();
    assert_eq!(stats.duplicate_suggestions, 0, "{stats:?}");
    no_repeat_within_cooldown(&sim);
    drop(all);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_does_not_stop_assisting_and_the_floor_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start();
    let sim = floor_sim(6.0).await;
    let url = nats.url();
    let mut w0 = Member::worker(tmp.path(), "w0", &url, "auto", "10s", &sim);
    let mut w1 = Member::worker(tmp.path(), "w1", &url, "auto", "10s", &sim);
    let mut c1 = Member::console(tmp.path(), "c1", &url, &sim);
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1, &mut c1];
    until(&mut all, Duration::from_secs(90), "queues held and a push", |m| {
        m[..2].iter().map(|w| w.held().len()).sum::<usize>() == QUEUES.len()
            && m[2].events("push").count() >= 1
    });
    let link = |m: &Member| m.events("floor_link").last().and_then(|v| v["state"].as_str().map(String::from));

    nats.stop();
    let before: BTreeSet<String> = sim.pushes().iter().filter_map(|p| p.suggestion_id.clone()).collect();
    until(&mut all, Duration::from_secs(30), "floor link down everywhere", |m| {
        m.iter().all(|x| link(x).as_deref() == Some("down"))
    });
    // The workers go on assisting: pushes reach the simulator.
    until(&mut all, Duration::from_secs(60), "pushes during the outage", |_| {
        sim.pushes().len() >= before.len() + 2
    });
    let during: BTreeSet<String> =
        sim.pushes().iter().filter_map(|p| p.suggestion_id.clone()).filter(|s| !before.contains(s)).collect();
    assert!(all[2].events("floor_link").last().is_some_and(|v| v["state"] == "down"));
    eprintln!("{} pushes while the server was down", during.len());

    nats.restart();
    until(&mut all, Duration::from_secs(30), "floor link up everywhere", |m| {
        m.iter().all(|x| link(x).as_deref() == Some("up"))
    });
    // What was pushed while the server was away reaches the console.
    until(&mut all, Duration::from_secs(60), "the console caught up", |m| {
        let seen: BTreeSet<&str> = m[2].events("push").filter_map(|v| v["suggestion_id"].as_str()).collect();
        during.iter().all(|s| seen.contains(s.as_str()))
    });
    // Nothing was dropped from the bounded buffer.
    until(&mut all, Duration::from_secs(30), "metrics after the outage", |m| {
        m[..2].iter().all(|w| w.events("metrics").last().is_some_and(|v| v["bus_backlog"] == 0))
    });
    for w in &all[..2] {
        let last = w.events("metrics").last().cloned().unwrap_or_default();
        assert_eq!(last["bus_dropped"], 0, "{last}");
    }
    assert_eq!(sim.stats().duplicate_suggestions, 0);
    drop(all);
    sim.stop().await;
}

/// A worker cut off from a server the others still reach: its leases
/// expire and another worker takes its queues. It must stop sending before
/// that (it cannot tell this from a server outage, so it goes on for two
/// thirds of the TTL), hand the calls over when it is back, and not write
/// over the new owner's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_floor_stops_sending_before_its_queues_move() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let partition = crate::nats_support::Partition::start(nats.port);
    let sim = floor_sim(6.0).await;
    let mut w0 = Member::worker(tmp.path(), "w0", &partition.url(), "auto", "3s", &sim);
    let mut w1 = Member::worker(tmp.path(), "w1", &nats.url(), "auto", "3s", &sim);
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1];
    until(&mut all, Duration::from_secs(90), "queues split and a push from the worker to cut off", |m| {
        m[0].held().len() + m[1].held().len() == QUEUES.len()
            && !m[0].held().is_empty()
            && m[0].events("push").any(|v| v["ok"] == true)
    });
    let cut_off = all[0].held();

    partition.cut();
    until(&mut all, Duration::from_secs(30), "the cut-off worker fencing itself", |m| {
        m[0].events("ledger")
            .any(|v| v["ok"] == false && v["message"].as_str().is_some_and(|s| s.contains("lease")))
    });
    let sent_when_fenced = all[0].events("push").filter(|v| v["ok"] == true).count();
    until(&mut all, Duration::from_secs(30), "the other worker taking every queue", |m| {
        m[1].held().len() == QUEUES.len()
    });
    let pushes = sim.pushes().len();
    until(&mut all, Duration::from_secs(60), "pushes from the new owner", |_| {
        sim.pushes().len() >= pushes + 3
    });
    assert_eq!(
        all[0].events("push").filter(|v| v["ok"] == true).count(),
        sent_when_fenced,
        "the cut-off worker went on sending after it fenced itself"
    );

    partition.mend();
    // Every queue it held is handed over (with rebalancing on, it may then
    // be given one back: it is below its share again).
    until(&mut all, Duration::from_secs(60), "the cut-off worker handing its queues over", |m| {
        cut_off.iter().all(|q| m[0].events("lease").any(|v| v["queue"] == q.as_str() && v["state"] == "lost"))
            && m[0].events("ledger").last().is_some_and(|v| v["ok"] == true)
    });
    assert_eq!(sim.stats().duplicate_suggestions, 0);
    drop(all);
    sim.stop().await;
}
