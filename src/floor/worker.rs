//! `agent-assist worker`: the headless pipeline as a member of a floor. It
//! follows only the queues whose lease it holds, publishes every event to
//! the floor's stream, keeps the ledger in the floor's KV bucket, resumes
//! calls of queues it takes over, and answers operator commands for its
//! queues by request/reply. Its stdout carries the same JSON lines as the
//! headless console, plus `lease`, `floor_link` and `metrics` lines.

use std::process::ExitCode;
use std::time::Duration;

use async_nats::Subject;
use color_eyre::eyre::Result;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::Bus;
use super::kv_ledger::{KvLedger, load_queue};
use super::lease::{self, LeaseEvent};
use super::{Buckets, Floor, FloorError, Link, subject, widget};
use crate::config::Config;
use crate::engine::Command;
use crate::ledger::Ledger;
use crate::net::Dialect;
use crate::paths::AppPaths;
use crate::runtime::{FloorHooks, FloorWidget, Options, Runtime};

/// How often a worker publishes its metrics.
const METRICS_EVERY: Duration = Duration::from_secs(5);
/// How long shutdown waits for the last events to be published.
const FLUSH: Duration = Duration::from_secs(5);

/// What a worker is asked to do.
pub struct WorkerPlan {
    pub url: String,
    pub queues: Vec<String>,
    pub exit_after: Option<Duration>,
}

/// Runs a worker until a signal or `exit_after`.
pub async fn run(config: &Config, paths: &AppPaths, plan: WorkerPlan) -> Result<ExitCode> {
    if config.genesys.dialect != Dialect::Notifications {
        return Err(FloorError::Dialect.into());
    }
    if plan.queues.is_empty() {
        return Err(crate::runtime::RuntimeError::NoQueues.into());
    }
    let owner = super::member_id("worker");
    let (link_tx, mut links) = mpsc::unbounded_channel();
    let client = super::connect(&config.nats, &plan.url, &owner, link_tx).await?;
    let floor = Floor::open(client, &config.nats).await?;
    let buckets = floor.buckets(&config.nats, config.ledger.retention()).await?;
    // Counted by the others before this worker is ready to take queues.
    lease::announce(&buckets.leases, &owner).await;
    let (bus, bus_task) =
        Bus::spawn(floor.js.clone(), floor.prefix.clone(), owner.clone(), config.nats.publish_buffer);
    let spool = Ledger::open(&paths.ledger_file().with_file_name("floor-spool.redb"))?;
    let fence = lease::Fence::default();
    let ttl = config.nats.lease_ttl();
    let ledger = KvLedger::new(
        buckets.ledger.clone(),
        floor.client.clone(),
        spool,
        Some((fence.clone(), lease::fence_after(ttl))),
    );
    let (signals_tx, signals) = mpsc::channel(256);
    let hooks = FloorHooks {
        ledger: Box::new(ledger),
        tap: bus.tap(),
        widget: Some(FloorWidget {
            epoch: widget::epoch(&floor).await?,
            out: widget::feed_out(bus.clone()),
            signals: signals_tx,
        }),
    };
    let opts =
        Options { headless_out: Some(Box::new(std::io::stdout())), floor: Some(hooks), ..Options::default() };
    let mut rt = Runtime::start(config, paths, opts).await?;
    rt.note(json!({ "event": "floor_member", "role": "worker", "id": owner, "queues": plan.queues }));
    tracing::info!(id = owner, queues = ?plan.queues, "floor worker started");

    let (lease_tx, mut leases) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    // The widget: this worker's pages show every call of the floor, and
    // what agents do there goes to each call's owner.
    let feed = rt.widget_hub().map(|hub| widget::spawn_feed(floor.clone(), hub.clone(), cancel.clone()));
    let forwarder = widget::spawn_signals(
        floor.client.clone(),
        floor.prefix.clone(),
        owner.clone(),
        signals,
        config.nats.lease_ttl() * 2 + Duration::from_secs(5),
    );
    let mut agent_signals = floor.client.subscribe(subject::all_agent(&floor.prefix)).await?;
    let mut seen = widget::SeenSignals::default();
    let keeper = lease::spawn(
        buckets.leases.clone(),
        owner.clone(),
        lease::Policy { ttl, rebalance: config.nats.rebalance },
        plan.queues.clone(),
        fence,
        lease_tx,
        cancel.clone(),
    );
    let mut commands = floor.client.subscribe(subject::all_commands(&floor.prefix)).await?;
    let mut metrics = tokio::time::interval(METRICS_EVERY);
    let stop = crate::app::stop_requested(plan.exit_after);
    tokio::pin!(stop);
    let mut failed = false;
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(ev) = leases.recv() => on_lease(&mut rt, &buckets, &bus, ev).await,
            Some(msg) = commands.next() => on_command(&mut rt, &floor, &owner, msg).await,
            Some(msg) = agent_signals.next() => {
                if let (Some(reply), Some(answer)) =
                    (msg.reply.clone(), widget::on_signal(&mut rt, &mut seen, &owner, &msg.payload))
                {
                    send_reply(&floor, reply, &answer).await;
                }
            }
            Some(link) = links.recv() => {
                let state = if link == Link::Up { "up" } else { "down" };
                rt.note(json!({ "event": "floor_link", "state": state }));
            }
            _ = metrics.tick() => {
                let mut m = serde_json::to_value(rt.engine().metrics().summary()).unwrap_or_default();
                if let Value::Object(map) = &mut m {
                    map.insert("event".into(), "metrics".into());
                    map.insert("worker".into(), owner.clone().into());
                    map.insert("queues".into(), rt.followed_queues().into());
                    map.insert("bus_published".into(), bus.stats.published.load(std::sync::atomic::Ordering::Relaxed).into());
                    map.insert("bus_dropped".into(), bus.stats.dropped.load(std::sync::atomic::Ordering::Relaxed).into());
                    map.insert("bus_backlog".into(), bus.backlog().into());
                }
                rt.note(m);
            }
            msg = rt.next() => if crate::cmd::console::pump(&mut rt, msg) {
                failed = true;
                break;
            },
        }
    }
    // Records first (the ledger flushes in shutdown), then the leases, so
    // the next owner reads everything this worker decided.
    rt.shutdown().await;
    cancel.cancel();
    forwarder.abort();
    if let Some(f) = feed {
        let _ = f.await;
    }
    let _ = keeper.await;
    drop(bus);
    if tokio::time::timeout(FLUSH, bus_task).await.is_err() {
        tracing::warn!("floor: events still unpublished at exit");
    }
    let _ = floor.client.flush().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn on_lease(rt: &mut Runtime, buckets: &Buckets, bus: &Bus, ev: LeaseEvent) {
    match ev {
        LeaseEvent::Acquired(queue) => {
            // The calls another worker was assisting on this queue.
            let records = match load_queue(&buckets.ledger, &queue).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(queue, error = %e, "floor: cannot read the queue's records");
                    Vec::new()
                }
            };
            let live = records.iter().filter(|r| r.ended_ms.is_none()).count();
            for r in &records {
                bus.note_queue(&r.id, &queue);
            }
            rt.note(json!({ "event": "lease", "queue": queue, "state": "acquired", "resumed": live }));
            rt.resume(records);
            rt.follow_queue(&queue);
        }
        LeaseEvent::Lost(queue) => {
            rt.unfollow_queue(&queue);
            rt.note(json!({ "event": "lease", "queue": queue, "state": "lost" }));
        }
        // Given back: nothing of its calls is sent from here after this;
        // the keeper deletes the lease once the ledger says every record
        // is in the bucket (it asks again if not).
        LeaseEvent::Releasing { queue, synced } => {
            if rt.followed_queues().contains(&queue) {
                tracing::info!(queue, "floor: giving the queue back; its calls are handed over");
                rt.unfollow_queue(&queue);
            }
            rt.sync_ledger(synced);
        }
        LeaseEvent::Released(queue) => {
            tracing::info!(queue, "floor: queue given back to the floor (rebalance)");
            rt.note(json!({ "event": "lease", "queue": queue, "state": "released", "reason": "rebalance" }));
        }
    }
}

/// Answers a command addressed to one of this worker's queues; stays
/// silent for the others (their owners answer).
async fn on_command(rt: &mut Runtime, floor: &Floor, owner: &str, msg: async_nats::Message) {
    let Some(reply) = msg.reply.clone() else { return };
    let Some(queue) = msg.subject.rsplit('.').next().and_then(subject::id) else { return };
    if !rt.followed_queues().contains(&queue) {
        return;
    }
    let answer = match serde_json::from_slice::<Command>(&msg.payload) {
        Ok(cmd) => {
            let target = match &cmd {
                Command::Approve { suggestion }
                | Command::Edit { suggestion, .. }
                | Command::Reject { suggestion }
                | Command::Retry { suggestion } => Some(suggestion.clone()),
                _ => None,
            };
            let outcome: Vec<Value> =
                rt.command(cmd).iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
            // The decision itself is reported once it is durable (record,
            // then act); the reply says where the suggestion stands now.
            let state = target.and_then(|id| {
                rt.engine()
                    .conversations()
                    .flat_map(|c| c.suggestions.iter())
                    .find(|s| s.id == id)
                    .map(|s| s.state.name())
            });
            json!({ "ok": true, "worker": owner, "queue": queue, "outcome": outcome, "suggestion_state": state })
        }
        Err(e) => {
            json!({ "ok": false, "worker": owner, "queue": queue, "error": format!("command not understood: {e}") })
        }
    };
    send_reply(floor, reply, &answer).await;
}

async fn send_reply(floor: &Floor, reply: Subject, answer: &Value) {
    if let Err(e) = floor.client.publish(reply, answer.to_string().into()).await {
        tracing::warn!(error = %e, "floor: command reply not sent");
    }
}
