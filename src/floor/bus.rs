//! The worker's publisher: every headless event (the same JSON objects the
//! headless console prints, searches included) goes to the floor's stream
//! on `<prefix>.v1.<queue>.<conversation>.<kind>`.
//!
//! The runtime never waits for it: the audit writer hands events over with
//! a non-blocking `try_send` into a bounded buffer (`nats.publish_buffer`);
//! when the buffer is full (a long outage) newer events are dropped and
//! counted. A task publishes in batches and waits for JetStream's acks; a
//! batch that fails is sent again after a pause, with the same message ids
//! so the stream's duplicate window drops what had arrived after all.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use serde_json::Value;
use tokio::sync::mpsc;

use super::subject;

/// Events published per batch.
const BATCH: usize = 256;
/// Pause after a failed batch (grows to [`MAX_PAUSE`]).
const PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(1);

enum Item {
    Event(Value),
    /// A conversation's queue, learned other than from its start event
    /// (a call taken over from another worker).
    Queue {
        conversation: String,
        queue: String,
    },
}

/// Counters, readable while the bus runs.
#[derive(Debug, Default)]
pub struct BusStats {
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

/// The sending side of the publisher.
#[derive(Clone)]
pub struct Bus {
    tx: mpsc::Sender<Item>,
    pub stats: Arc<BusStats>,
}

impl Bus {
    /// Starts the publishing task.
    pub fn spawn(
        js: jetstream::Context,
        prefix: String,
        owner: String,
        capacity: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity);
        let stats = Arc::new(BusStats::default());
        let task = tokio::spawn(publish_loop(js, prefix, owner, rx, stats.clone()));
        (Self { tx, stats }, task)
    }

    /// A hook for the audit writer: queues each event, never blocks.
    pub fn tap(&self) -> Box<dyn FnMut(&Value) + Send> {
        let bus = self.clone();
        Box::new(move |v: &Value| bus.offer(Item::Event(v.clone())))
    }

    /// Publishes one event (from the worker itself, e.g. metrics).
    pub fn publish(&self, v: Value) {
        self.offer(Item::Event(v));
    }

    /// Publishes one event if the buffer has room; false if it was dropped.
    pub fn try_publish(&self, v: Value) -> bool {
        let sent = self.tx.try_send(Item::Event(v)).is_ok();
        if !sent {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Tells the bus which queue a conversation is on.
    pub fn note_queue(&self, conversation: &str, queue: &str) {
        self.offer(Item::Queue { conversation: conversation.into(), queue: queue.into() });
    }

    fn offer(&self, item: Item) {
        if self.tx.try_send(item).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events waiting to be published.
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

struct Pending {
    subject: String,
    id: String,
    payload: bytes::Bytes,
}

async fn publish_loop(
    js: jetstream::Context,
    prefix: String,
    owner: String,
    mut rx: mpsc::Receiver<Item>,
    stats: Arc<BusStats>,
) {
    let mut queues: HashMap<String, String> = HashMap::new();
    let mut seq: u64 = 0;
    let mut items = Vec::with_capacity(BATCH);
    loop {
        items.clear();
        if rx.recv_many(&mut items, BATCH).await == 0 {
            break;
        }
        let mut batch = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item {
                Item::Queue { conversation, queue } => {
                    queues.insert(conversation, queue);
                }
                Item::Event(v) => {
                    let conversation = v.get("conversation_id").and_then(Value::as_str).map(str::to_string);
                    let kind = v.get("event").and_then(Value::as_str).unwrap_or("other").to_string();
                    if let (Some(c), Some(q)) = (&conversation, v.get("queue_id").and_then(Value::as_str)) {
                        queues.insert(c.clone(), q.to_string());
                    }
                    let queue = conversation.as_ref().and_then(|c| queues.get(c)).cloned();
                    if kind == "conversation_ended"
                        && let Some(c) = &conversation
                    {
                        queues.remove(c);
                    }
                    seq += 1;
                    batch.push(Pending {
                        subject: subject::event(&prefix, queue.as_deref(), conversation.as_deref(), &kind),
                        id: format!("{owner}-{seq}"),
                        payload: bytes::Bytes::from(v.to_string()),
                    });
                }
            }
        }
        let mut pause = PAUSE;
        while !batch.is_empty() {
            match send(&js, &batch).await {
                Ok(()) => {
                    stats.published.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                }
                Err(e) => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, events = batch.len(), "floor: publish failed; will retry");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }
}

/// Publishes a batch and waits for every ack.
async fn send(js: &jetstream::Context, batch: &[Pending]) -> Result<(), String> {
    let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(batch.len());
    for p in batch {
        let msg = jetstream::message::PublishMessage::build().payload(p.payload.clone()).message_id(&p.id);
        let sent = tokio::time::timeout(super::JS_TIMEOUT, js.send_publish(p.subject.clone(), msg))
            .await
            .map_err(|_| "publish timed out".to_string())?;
        acks.push(sent.map_err(|e| e.to_string())?);
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
