//! `agent-assist console --nats URL --headless`: a reader of the floor. It
//! replays the stream's recent history, then prints every event as it
//! arrives (the workers' JSON lines, with `queue` added from the subject),
//! takes operator commands on stdin (the headless console's format) and
//! sends each by request/reply to the worker that owns the call, printing
//! the reply. It never pushes anything itself. While the server is
//! unreachable it says `{"event":"floor_link","state":"down"}`, and `up`
//! once it is back; the reader resumes after the last event it printed.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::Result;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::replay::Replay;
use super::{Floor, Link, subject};
use crate::config::Config;
use crate::engine::Command;

/// How long a command waits for its owner's answer.
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// Pause before the reader starts again after an error.
const RESUME_AFTER: Duration = Duration::from_millis(300);

/// What a console is asked to show.
pub struct ConsolePlan {
    pub url: String,
    /// Only these queues' calls (all when empty).
    pub queues: Vec<String>,
    pub exit_after: Option<Duration>,
}

use super::model::{Answer, StreamItem as Event};

/// Runs the headless floor console until a signal or `exit_after`.
pub async fn run_headless(config: &Config, plan: ConsolePlan) -> Result<ExitCode> {
    let id = super::member_id("console");
    let (link_tx, mut links) = mpsc::unbounded_channel();
    let client = super::connect(&config.nats, &plan.url, &id, link_tx).await?;
    let floor = Floor::open(client, &config.nats).await?;
    let (events_tx, mut events) = mpsc::channel::<Event>(4096);
    let reader = tokio::spawn(read_stream(floor.clone(), plan.queues.clone(), events_tx));
    let (out_tx, mut replies) = mpsc::unbounded_channel::<Value>();
    let mut commands = crate::cmd::console::spawn_stdin_commands();
    let mut stdin_open = true;
    let mut view = FloorView::default();
    let mut out = std::io::stdout().lock();
    print(&mut out, &json!({ "event": "floor_member", "role": "console", "id": id, "queues": plan.queues }));
    let stop = crate::app::stop_requested(plan.exit_after);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(link) = links.recv() => {
                let state = if link == Link::Up { "up" } else { "down" };
                print(&mut out, &json!({ "event": "floor_link", "state": state }));
            }
            Some(ev) = events.recv() => {
                view.learn(&ev);
                let mut body = ev.body;
                if let (Value::Object(map), Some(q)) = (&mut body, ev.queue) {
                    map.entry("queue").or_insert(Value::String(q));
                }
                print(&mut out, &body);
            }
            Some(reply) = replies.recv() => print(&mut out, &reply),
            line = commands.recv(), if stdin_open => match line {
                Some(Ok(cmd)) => {
                    let targets = view.targets(&cmd, &plan.queues);
                    if targets.is_empty() {
                        print(&mut out, &json!({ "event": "command_error", "message": "no worker is known to own that call (not seen on the floor yet)" }));
                    }
                    for queue in targets {
                        tokio::spawn(request(floor.clone(), queue, cmd.clone(), out_tx.clone()));
                    }
                }
                Some(Err(message)) => print(&mut out, &json!({ "event": "command_error", "message": message })),
                None => stdin_open = false,
            },
        }
    }
    reader.abort();
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, v: &Value) {
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Sends a command to a queue's owner and reports the answer.
async fn request(floor: Floor, queue: String, cmd: Command, out: mpsc::UnboundedSender<Value>) {
    let line = match ask(&floor, &queue, &cmd).await {
        Answer::Reply(reply) => {
            json!({ "event": "command_reply", "queue": queue, "command": cmd, "reply": reply })
        }
        Answer::NoResponders => {
            json!({ "event": "command_error", "queue": queue, "command": cmd, "message": "no worker answered: no responders" })
        }
        Answer::TimedOut => {
            json!({ "event": "command_error", "queue": queue, "command": cmd, "message": "no worker answered in time" })
        }
        Answer::Failed(e) => {
            json!({ "event": "command_error", "queue": queue, "command": cmd, "message": format!("no worker answered: {e}") })
        }
    };
    let _ = out.send(line);
}

/// Sends a command to the owner of `queue` by request/reply.
pub(super) async fn ask(floor: &Floor, queue: &str, cmd: &Command) -> Answer {
    use async_nats::RequestErrorKind;
    let payload = serde_json::to_vec(cmd).unwrap_or_default();
    let subject = subject::command(&floor.prefix, queue);
    match tokio::time::timeout(REPLY_WAIT, floor.client.request(subject, payload.into())).await {
        Ok(Ok(msg)) => Answer::Reply(
            serde_json::from_slice(&msg.payload)
                .unwrap_or_else(|e| json!({ "ok": false, "error": format!("unreadable reply: {e}") })),
        ),
        Ok(Err(e)) => match e.kind() {
            RequestErrorKind::NoResponders => Answer::NoResponders,
            RequestErrorKind::TimedOut => Answer::TimedOut,
            _ => Answer::Failed(e.to_string()),
        },
        Err(_) => Answer::TimedOut,
    }
}

/// What the console has learnt from the stream: where each call and
/// suggestion lives, to address commands.
#[derive(Default)]
struct FloorView {
    queue_of: HashMap<String, String>,
    conversation_of: HashMap<String, String>,
    queues: BTreeSet<String>,
    /// Queue → the worker last heard publishing on it.
    owner_of: HashMap<String, String>,
}

impl FloorView {
    fn learn(&mut self, ev: &Event) {
        if let (Some(q), Some(c)) = (&ev.queue, &ev.conversation) {
            self.queue_of.insert(c.clone(), q.clone());
            self.queues.insert(q.clone());
        }
        if let (Some(q), Some(w)) = (&ev.queue, &ev.owner) {
            self.owner_of.insert(q.clone(), w.clone());
        }
        if let (Some(s), Some(c)) = (ev.body.get("suggestion_id").and_then(Value::as_str), &ev.conversation) {
            self.conversation_of.insert(s.to_string(), c.clone());
        }
    }

    /// The queues whose owners must get `cmd`.
    fn targets(&self, cmd: &Command, chosen: &[String]) -> Vec<String> {
        let by_conversation = |c: &str| self.queue_of.get(c).cloned().into_iter().collect::<Vec<_>>();
        let by_suggestion =
            |s: &str| self.conversation_of.get(s).map(|c| by_conversation(c)).unwrap_or_default();
        // Once per worker: a worker holding two queues must not move a
        // threshold twice.
        let everywhere = || {
            let mut all: BTreeSet<String> = self.queues.clone();
            all.extend(chosen.iter().cloned());
            let mut owners = BTreeSet::new();
            all.into_iter()
                .filter(|q| self.owner_of.get(q).is_none_or(|w| owners.insert(w.clone())))
                .collect::<Vec<_>>()
        };
        match cmd {
            Command::Approve { suggestion }
            | Command::Edit { suggestion, .. }
            | Command::Reject { suggestion }
            | Command::Retry { suggestion } => by_suggestion(suggestion),
            Command::ApproveAll { conversation } | Command::PushArticle { conversation, .. } => {
                by_conversation(conversation)
            }
            Command::SetMode { conversation: Some(c), .. }
            | Command::SetPaused { conversation: Some(c), .. } => by_conversation(c),
            Command::SetMode { conversation: None, .. }
            | Command::SetPaused { conversation: None, .. }
            | Command::Adjust { .. } => everywhere(),
        }
    }
}

/// Reads the stream from its oldest event on, resuming after the last one
/// read whenever the consumer fails (an outage).
pub(super) async fn read_stream(floor: Floor, queues: Vec<String>, out: mpsc::Sender<Event>) {
    let filter = match queues.as_slice() {
        [one] => format!("{}.v1.{}.*.*", floor.prefix, subject::token(one)),
        _ => subject::all_events(&floor.prefix),
    };
    let mut replay = Replay::new(floor, filter, "console", RESUME_AFTER);
    loop {
        let m = replay.next().await;
        let Some((queue, conversation, _kind)) = subject::parse_event(&m.subject) else { continue };
        if !queues.is_empty() && queue.as_ref().is_some_and(|q| !queues.contains(q)) {
            continue;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&m.payload) else {
            tracing::warn!(subject = %m.subject, "floor console: event is not JSON; skipped");
            continue;
        };
        // The bus names each message `<worker>-<seq>`: who published it.
        let owner = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .and_then(|id| id.as_str().rsplit_once('-').map(|(w, _)| w.to_string()));
        if out.send(Event { queue, conversation, owner, body }).await.is_err() {
            return;
        }
    }
}
