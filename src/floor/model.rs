//! The floor dashboard's state, and its one owner: a mirror engine fed from
//! the stream ([`crate::engine::mirror`]), which the dashboard draws as it
//! draws a local engine, plus what only a floor has ([`FloorInfo`]: the
//! link, which worker owns which call and queue). It also decides where an
//! operator command goes (the owner of the call's queue) and words the
//! owner's answer for the status line. No IO here: the dashboard loop
//! reads the stream and sends the requests, so all of this is unit-tested
//! without NATS.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::engine::{ArticleRef, Command, Engine, Policy, Record};
use crate::kb::store::StoredArticle;
use crate::ui::state::{FloorInfo, short_worker};

#[cfg(test)]
mod tests;

/// One event read from the stream.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// From the subject.
    pub queue: Option<String>,
    pub conversation: Option<String>,
    /// The publishing worker (from the message id the bus gives it).
    pub owner: Option<String>,
    pub body: Value,
}

/// How a command's owner answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Reply(Value),
    /// Nobody listens on the queue's command subject.
    NoResponders,
    TimedOut,
    Failed(String),
}

/// The floor console's state. See the module docs.
pub struct FloorModel {
    engine: Engine,
    pub info: FloorInfo,
    catalog: Arc<Vec<StoredArticle>>,
    by_id: HashMap<String, usize>,
    /// Conversation → queue, from the subjects (a call's start event may
    /// have aged out of the stream).
    queue_of: HashMap<String, String>,
    /// The queues the console was asked to show (all when empty).
    chosen: Vec<String>,
}

impl FloorModel {
    /// A model over `catalog` (the console's copy of the KB, for titles,
    /// passages and the palette; may be empty), with the console's policy
    /// and sinks until the workers report theirs.
    pub fn new(
        policy: Policy,
        sinks: &[crate::domain::Sink],
        catalog: Vec<StoredArticle>,
        chosen: Vec<String>,
    ) -> Self {
        let mut engine = Engine::new(policy, "floor-console");
        engine.set_sinks(sinks);
        let by_id = catalog.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        Self {
            engine,
            info: FloorInfo::default(),
            catalog: Arc::new(catalog),
            by_id,
            queue_of: HashMap::new(),
            chosen,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn catalog(&self) -> &Arc<Vec<StoredArticle>> {
        &self.catalog
    }

    /// Applies one stream event read at `now` (`wall` on the wall clock).
    pub fn apply(&mut self, item: StreamItem, now: Instant, wall: SystemTime) {
        let at = event_instant(&item.body, now, wall);
        if let Some(w) = &item.owner {
            let seen = self.info.workers.entry(w.clone()).or_insert(at);
            *seen = (*seen).max(at);
        }
        match item.body.get("event").and_then(Value::as_str).unwrap_or_default() {
            "lease" => self.on_lease(&item),
            "metrics" => self.on_metrics(&item.body),
            // The workers' own lines about themselves.
            "floor_member" | "floor_link" | "summary" | "command_error" | "command_reply" => {}
            _ => self.on_record(item, at),
        }
    }

    fn on_record(&mut self, item: StreamItem, at: Instant) {
        let record = match serde_json::from_value::<Record>(item.body) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "floor console: an event it does not show");
                return;
            }
        };
        if let Some(c) = &item.conversation {
            if let Some(q) = &item.queue {
                self.queue_of.insert(c.clone(), q.clone());
                // A call first heard of mid-way (its start aged out of the
                // stream) still gets its queue.
                if self.engine.conversation(c).is_none()
                    && !matches!(record, Record::ConversationStarted { .. })
                {
                    let start =
                        Record::ConversationStarted { conversation_id: c.clone(), queue_id: Some(q.clone()) };
                    self.observe(start, at);
                }
            }
            if let Some(w) = &item.owner {
                self.info.owners.insert(c.clone(), w.clone());
            }
        }
        let record = match record {
            Record::ConversationStarted { conversation_id, queue_id } => {
                Record::ConversationStarted { conversation_id, queue_id: queue_id.or(item.queue) }
            }
            other => other,
        };
        self.observe(record, at);
    }

    fn observe(&mut self, record: Record, at: Instant) {
        let (catalog, by_id) = (&self.catalog, &self.by_id);
        let lookup = |id: &str| {
            by_id.get(id).and_then(|&i| catalog.get(i)).map(|a| ArticleRef {
                id: a.id.clone(),
                title: a.title.clone(),
                content: a.content.clone(),
            })
        };
        self.engine.observe(record, at, &lookup);
    }

    fn on_lease(&mut self, item: &StreamItem) {
        let (Some(queue), Some(owner)) = (item.body.get("queue").and_then(Value::as_str), &item.owner) else {
            return;
        };
        match item.body.get("state").and_then(Value::as_str) {
            Some("acquired") => {
                self.info.queue_owners.insert(queue.to_string(), owner.clone());
            }
            Some("lost") if self.info.queue_owners.get(queue) == Some(owner) => {
                self.info.queue_owners.remove(queue);
            }
            _ => {}
        }
    }

    /// A worker's metrics name the queues it holds now.
    fn on_metrics(&mut self, body: &Value) {
        let Some(worker) = body.get("worker").and_then(Value::as_str) else { return };
        let held: BTreeSet<&str> = body
            .get("queues")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        self.info.queue_owners.retain(|q, w| w != worker || held.contains(q.as_str()));
        for q in held {
            self.info.queue_owners.insert(q.to_string(), worker.to_string());
        }
    }

    /// The floor link went up or down.
    pub fn set_link(&mut self, up: bool, now: Instant) {
        if self.info.link_since.is_some() && self.info.link_up == up {
            return;
        }
        let was_known = self.info.link_since.is_some();
        self.info.link_up = up;
        self.info.link_since = Some(now);
        if !up {
            self.engine.tell(now, "floor link down: reconnecting to NATS; commands cannot be sent".into());
        } else if was_known {
            self.engine.tell(now, "floor link up again: catching up on the stream".into());
        }
    }

    /// Time passed: forget calls long ended.
    pub fn tick(&mut self, now: Instant) {
        self.engine.prune(now);
        let live: BTreeSet<String> = self.engine.conversations().map(|c| c.id.clone()).collect();
        self.info.owners.retain(|c, _| live.contains(c));
        self.queue_of.retain(|c, _| live.contains(c));
    }

    /// Says something on the status line.
    pub fn tell(&mut self, now: Instant, text: String) {
        self.engine.tell(now, text);
    }

    /// The queues whose owners must get `cmd`, or why it cannot be sent.
    /// A command for every call goes once to each worker (a worker holding
    /// two queues must not move a threshold twice).
    pub fn route(&self, cmd: &Command) -> Result<Vec<String>, String> {
        let queue_of_call = |cid: &str| {
            self.engine
                .conversation(cid)
                .and_then(|c| c.queue_id.clone())
                .or_else(|| self.queue_of.get(cid).cloned())
                .map(|q| vec![q])
                .ok_or_else(|| format!("no queue known for call {cid}: its owner cannot be found"))
        };
        match cmd {
            Command::Approve { suggestion }
            | Command::Edit { suggestion, .. }
            | Command::Reject { suggestion }
            | Command::Retry { suggestion } => {
                let cid = self
                    .engine
                    .conversations()
                    .find(|c| c.suggestions.iter().any(|s| &s.id == suggestion))
                    .map(|c| c.id.clone())
                    .ok_or_else(|| format!("suggestion {suggestion} is not on this console"))?;
                queue_of_call(&cid)
            }
            Command::ApproveAll { conversation }
            | Command::PushArticle { conversation, .. }
            | Command::SetMode { conversation: Some(conversation), .. }
            | Command::SetPaused { conversation: Some(conversation), .. } => queue_of_call(conversation),
            Command::SetMode { conversation: None, .. }
            | Command::SetPaused { conversation: None, .. }
            | Command::Adjust { .. } => {
                let mut queues: BTreeSet<String> = self.info.queue_owners.keys().cloned().collect();
                queues.extend(self.queue_of.values().cloned());
                queues.extend(self.chosen.iter().cloned());
                let mut owners_done = BTreeSet::new();
                let targets: Vec<String> = queues
                    .into_iter()
                    .filter(|q| match self.info.queue_owners.get(q) {
                        Some(w) => owners_done.insert(w.clone()),
                        None => true,
                    })
                    .collect();
                if targets.is_empty() {
                    return Err("no worker is known on the floor yet".into());
                }
                Ok(targets)
            }
        }
    }
}

/// When an event happened, on this process's clock: its `ts` (the worker's
/// wall clock) as an age before `now`; `now` when it has none or is ahead.
fn event_instant(body: &Value, now: Instant, wall: SystemTime) -> Instant {
    let ts = body.get("ts").and_then(Value::as_str).and_then(|t| humantime::parse_rfc3339(t).ok());
    let age = ts.and_then(|t| wall.duration_since(t).ok()).unwrap_or(Duration::ZERO);
    now.checked_sub(age).unwrap_or(now)
}

/// The verb an outcome line starts with.
pub fn verb(cmd: &Command) -> &'static str {
    match cmd {
        Command::Approve { .. } => "approve",
        Command::ApproveAll { .. } => "approve all",
        Command::Edit { .. } => "edit and send",
        Command::Reject { .. } => "reject",
        Command::Retry { .. } => "retry",
        Command::PushArticle { .. } => "push article",
        Command::SetMode { .. } => "mode",
        Command::SetPaused { .. } => "pause",
        Command::Adjust { .. } => "adjust",
    }
}

/// The status line for a command's answer: accepted, refused (and why),
/// no owner, or no answer in time.
pub fn outcome(cmd: &Command, queue: &str, answer: &Answer) -> String {
    let v = verb(cmd);
    let reply = match answer {
        Answer::Reply(r) => r,
        Answer::NoResponders => return format!("✖ {v}: no worker owns queue {queue} now"),
        Answer::TimedOut => return format!("✖ {v}: the owner of queue {queue} did not answer in time"),
        Answer::Failed(e) => return format!("✖ {v}: not sent ({e})"),
    };
    let worker = reply.get("worker").and_then(Value::as_str).map_or("?", short_worker);
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        let error = reply.get("error").and_then(Value::as_str).unwrap_or("no reason given");
        return format!("✖ {v} refused by {worker}: {error}");
    }
    let records: Vec<Record> = reply
        .get("outcome")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect();
    if let Some(message) = records.iter().find_map(|r| match r {
        Record::Refused { message } => Some(message),
        _ => None,
    }) {
        return format!("✖ {v} refused by {worker}: {message}");
    }
    let state = reply.get("suggestion_state").and_then(Value::as_str);
    let setting = records.iter().find_map(|r| match r {
        Record::Setting { knob, value } => Some(format!("{knob} = {value}")),
        _ => None,
    });
    match cmd {
        Command::Approve { .. } | Command::Edit { .. } | Command::Retry { .. } => match state {
            Some("sending") => format!("✔ {v} accepted by {worker}: sending"),
            Some(s) => format!("✖ {v} refused by {worker}: the suggestion is {s}"),
            None => format!("✖ {v} refused by {worker}: it does not know that suggestion"),
        },
        Command::Reject { .. } => {
            if records.iter().any(|r| matches!(r, Record::Decision { .. })) {
                format!("✔ reject accepted by {worker}")
            } else {
                format!("✖ reject refused by {worker}: the suggestion is {}", state.unwrap_or("gone"))
            }
        }
        Command::PushArticle { .. } => {
            if records.iter().any(|r| matches!(r, Record::Suggestion { .. })) {
                format!("✔ {v} accepted by {worker}: sending")
            } else {
                format!("✖ {v} refused by {worker}: the call has ended or is not followed")
            }
        }
        Command::ApproveAll { .. } => format!("✔ {v} accepted by {worker}"),
        Command::SetMode { .. } | Command::SetPaused { .. } | Command::Adjust { .. } => match setting {
            Some(s) => format!("✔ {s} on {worker}"),
            None => format!("✖ {v} refused by {worker}: the call is not followed there"),
        },
    }
}
