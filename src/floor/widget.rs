//! The agent widget on a floor: any worker serves any call's page.
//!
//! - The owner of a call publishes what its widget would show (a
//!   [`FeedEvent`]: agents, suggestions, updates, the end) to the stream
//!   as `<prefix>.v1.<queue>.<conversation>.widget` ([`feed_out`]).
//! - Every worker's hub is fed from the stream ([`spawn_feed`]) with the
//!   stream's sequence as the event number and an epoch from the stream's
//!   creation time, so all hubs hold the same feeds under the same SSE ids
//!   and a page resumes with `Last-Event-ID` on whichever worker it reaches.
//! - A page's acknowledgements and feedback go by request/reply to
//!   `<prefix>.v1.agent.<conversation>` ([`spawn_signals`]); only the worker
//!   that owns the call answers and hands them to its engine, so they are
//!   recorded once, in the owner's audit log and ledger, whichever worker
//!   served the page, and after a failover by the new owner.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::Bus;
use super::replay::Replay;
use super::{Floor, FloorError, subject};
use crate::widget::{AgentSignal, FeedEvent, FloorFeedFn, WidgetHub};

/// The event kind (last subject token) of feed events.
pub const KIND: &str = "widget";
/// Pause before the feed reader starts again after a failure (an outage).
const RESUME_AFTER: Duration = Duration::from_millis(500);
/// Longest pause between tries to reach a call's owner.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Forwarded signal ids an owner remembers, to answer a retry once.
const SEEN_SIGNALS: usize = 4096;

/// A page's signal on its way to the call's owner; `id` makes a retry
/// after a lost reply harmless.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    pub id: String,
    pub signal: AgentSignal,
}

/// The floor's shared event-id epoch: from the stream's creation time, the
/// same on every worker; a stream made again gives a new one, and pages
/// holding ids of the old one start over.
pub async fn epoch(floor: &Floor) -> Result<u32, FloorError> {
    let stream = floor
        .js
        .get_stream(&floor.events_stream)
        .await
        .map_err(|e| FloorError::JetStream { what: "events stream", message: e.to_string() })?;
    let nanos = stream.cached_info().created.unix_timestamp_nanos().unsigned_abs();
    // Folded to the hub's 32 bits; collisions only matter across streams.
    Ok((nanos ^ (nanos >> 32) ^ (nanos >> 64)) as u32)
}

/// The runtime's way out for feed events: onto the bus (never blocks).
pub fn feed_out(bus: Bus) -> FloorFeedFn {
    Arc::new(move |ev: FeedEvent| {
        let v = json!({ "event": KIND, "conversation_id": ev.conversation_id(), "feed": ev });
        if bus.try_publish(v) {
            Ok(())
        } else {
            Err("the floor's publish buffer is full; the widget event was dropped".into())
        }
    })
}

/// Feeds `hub` from the stream's widget events, from the oldest kept on,
/// resuming after the last one read whenever the consumer fails.
pub fn spawn_feed(floor: Floor, hub: WidgetHub, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    let filter = subject::all_widget(&floor.prefix);
    let mut replay = Replay::new(floor, filter, "widget feed", RESUME_AFTER);
    tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                () = cancel.cancelled() => return,
                m = replay.next() => m,
            };
            let Ok(seq) = m.info().map(|i| i.stream_sequence) else { continue };
            let ev = serde_json::from_slice::<Value>(&m.payload)
                .ok()
                .and_then(|mut v| v.get_mut("feed").map(Value::take))
                .and_then(|f| serde_json::from_value::<FeedEvent>(f).ok());
            match ev {
                Some(ev) => {
                    hub.publish_at(ev, seq);
                }
                None => tracing::warn!(subject = %m.subject, "floor widget: not a feed event; skipped"),
            }
        }
    })
}

/// Sends this worker's pages' signals to each call's owner, retrying
/// (the call may be between owners) for up to `give_up`.
pub fn spawn_signals(
    client: async_nats::Client,
    prefix: String,
    member: String,
    mut signals: mpsc::Receiver<AgentSignal>,
    give_up: Duration,
) -> tokio::task::JoinHandle<()> {
    let seq = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Some(signal) = signals.recv().await {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let (conversation, what) = match &signal {
                AgentSignal::Acknowledged { conversation_id, .. } => {
                    (conversation_id.clone(), "acknowledgement")
                }
                AgentSignal::Feedback { conversation_id, .. } => (conversation_id.clone(), "feedback"),
            };
            let body = Forwarded { id: format!("{member}-{n}"), signal };
            let Ok(payload) = serde_json::to_vec(&body) else { continue };
            let (client, to) = (client.clone(), subject::agent(&prefix, &conversation));
            // One task per signal: a call between owners must not hold up
            // the others'.
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + give_up;
                let mut pause = Duration::from_millis(50);
                loop {
                    match client.request(to.clone(), payload.clone().into()).await {
                        Ok(reply)
                            if serde_json::from_slice::<Value>(&reply.payload)
                                .is_ok_and(|v| v["ok"] == true) =>
                        {
                            return;
                        }
                        Ok(_) | Err(_) if tokio::time::Instant::now() >= deadline => {
                            tracing::warn!(
                                conversation,
                                what,
                                "floor widget: no owner took a page's signal; dropped"
                            );
                            return;
                        }
                        _ => {}
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            });
        }
    })
}

/// The signal ids an owner has handled lately.
#[derive(Default)]
pub struct SeenSignals {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenSignals {
    /// True the first time an id is offered.
    pub fn first(&mut self, id: &str) -> bool {
        if !self.set.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > SEEN_SIGNALS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// The owner's answer to a forwarded signal, or `None` when this worker
/// does not own the call (its owner answers).
pub fn on_signal(
    rt: &mut crate::runtime::Runtime,
    seen: &mut SeenSignals,
    worker: &str,
    payload: &[u8],
) -> Option<Value> {
    let f: Forwarded = match serde_json::from_slice(payload) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "floor widget: a forwarded signal is not readable");
            return None;
        }
    };
    let conversation = match &f.signal {
        AgentSignal::Acknowledged { conversation_id, .. } | AgentSignal::Feedback { conversation_id, .. } => {
            conversation_id.clone()
        }
    };
    if !rt.owns_call(&conversation) {
        return None;
    }
    if seen.first(&f.id) {
        rt.agent_signal(f.signal);
    }
    Some(json!({ "ok": true, "worker": worker }))
}
