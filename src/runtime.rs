//! The runtime: the one owner of state. It holds the engine and connects it
//! to the world: the knowledge-base worker thread, the transcript stream,
//! push tasks and the audit writer. Everything talks to it through one
//! bounded `Msg` channel; it runs the engine's effects without ever awaiting
//! a send to a worker (searches go on an unbounded queue the worker drains
//! latest-first, pushes are spawned, audit records are queued).
//!
//! Frontends (headless JSON lines, the TUI) drive it with [`Runtime::next`]
//! and [`Runtime::handle`], and read the engine for display.
//!
//! This file owns the state and the loop: waiting for the next message,
//! handing it to the engine, carrying out the effects, and shutting down.
//! Start-up and its options are in [`start`]; floor mode's queue handling
//! in [`floor`]; the agent widget's wiring in [`widget`]; need detection in
//! [`need`]. Knowledge-base edits are picked up while it runs ([`kb_live`]).

mod floor;
mod kb_live;
mod need;
mod start;
mod widget;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::audit::AuditHandle;
use crate::delivery::Delivery;
use crate::domain::StreamEvent;
use crate::engine::{Effect, Engine, Msg, Summary};
use crate::kb::KbError;
use crate::kb::need::verdict::NeedJob;
use crate::kb::store::StoredArticle;
use crate::kb::worker::{KbHandle, SearchJob};
use crate::ledger::{LedgerError, LedgerHandle};
use crate::net::NetError;
use crate::net::auth::TokenInfo;
use crate::net::stream::StreamHandle;
use crate::widget::{FeedEvent, FeedOut, WidgetHub, WidgetServer};

pub use start::{FloorHooks, Options, new_run_id, unix_ms};
pub use widget::{FloorWidget, agent_event};

/// Capacity of the message channel: workers wait when it is full.
const CHANNEL: usize = 4096;
/// Longest wait between ticks (eviction, idle timeouts, the status bar).
const TICK: Duration = Duration::from_millis(250);
/// How long shutdown waits for pushes in flight to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error(transparent)]
    Sync(#[from] crate::kb::genesys::SyncError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot open the audit log {path}: {source}")]
    Audit { path: std::path::PathBuf, source: std::io::Error },
    #[error("no queues to follow: pass --queue ID or set genesys.queues (or genesys.users)")]
    NoQueues,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Widget(#[from] crate::widget::WidgetError),
}

/// The running pipeline.
pub struct Runtime {
    engine: Engine,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    kb: KbHandle,
    /// Live reload: watcher, periodic sync and the rebuild thread.
    kb_live: kb_live::KbLive,
    catalog: Arc<Vec<StoredArticle>>,
    /// Transcript streams by queue (`""`: the one over the configured
    /// queues; in floor mode one per held queue).
    streams: std::collections::BTreeMap<String, StreamHandle>,
    new_stream: start::StreamFactory,
    forwarder: tokio::task::JoinHandle<()>,
    delivery: Delivery,
    pushes: JoinSet<()>,
    ledger: Option<LedgerHandle>,
    /// The agent widget, when the `widget` sink is on: its feed and server.
    widget: Option<(WidgetHub, WidgetServer)>,
    /// Where feed events for the widget go (its hub, or the floor).
    feed_out: Option<FeedOut>,
    audit: AuditHandle,
    token: watch::Receiver<TokenInfo>,
    run_id: String,
    /// Queues let go of and their calls, whose stream events still in the
    /// channel are dropped (floor mode).
    handed: floor::Handed,
    /// When the engine last had a tick: ticks are due every [`TICK`] even
    /// while messages keep arriving (heartbeats alone can come faster).
    last_tick: Instant,
}

impl Runtime {
    /// The next thing that happened: a message, a token refresh, or a tick
    /// when a debounce deadline (or the tick interval) comes round.
    pub async fn next(&mut self) -> Msg {
        // Steady traffic must not starve the timers (idle calls, eviction).
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            return Msg::Tick;
        }
        let deadline = self
            .engine
            .next_deadline()
            .map_or(TICK, |d| d.saturating_duration_since(Instant::now()).min(TICK));
        tokio::select! {
            msg = self.rx.recv() => msg.unwrap_or(Msg::Tick),
            Ok(()) = self.token.changed() => {
                let info = *self.token.borrow_and_update();
                let secs = info.expires_at.and_then(|t| t.duration_since(SystemTime::now()).ok()).map_or(0, |d| d.as_secs());
                Msg::Stream(StreamEvent::TokenRefreshed { expires_in_s: secs })
            }
            () = tokio::time::sleep(deadline) => {
                self.last_tick = Instant::now();
                Msg::Tick
            }
        }
    }

    /// Gives a message to the engine and carries out its effects.
    pub fn handle(&mut self, msg: Msg) {
        if self.handed.is_stale(&msg) {
            return;
        }
        // Who is on a call decides who may open its widget page.
        if let (Msg::Stream(StreamEvent::Participants { conversation_id, participants }), Some(out)) =
            (&msg, &self.feed_out)
        {
            let _ = out.publish(FeedEvent::participants(conversation_id, participants));
        }
        if let Msg::KbReloaded(r) = &msg {
            kb_live::on_reloaded(r, &self.engine, &self.kb_live, &mut self.catalog, self.feed_out.as_ref());
        }
        let effects = self.engine.handle(msg, Instant::now());
        for e in effects {
            self.run(e);
        }
        while self.pushes.try_join_next().is_some() {}
    }

    /// Handles everything already queued (up to a bound), without waiting.
    pub fn drain_ready(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Ok(msg) = self.rx.try_recv() else { break };
            self.handle(msg);
            n += 1;
        }
        n
    }

    fn run(&mut self, effect: Effect) {
        match effect {
            Effect::JudgeNeed { conversation_id, utterance_id, text, context } => {
                self.judge_need(NeedJob { conversation_id, utterance_id, text, context });
            }
            Effect::Search { request, conversation_id, query, k } => {
                if !self.kb.submit(SearchJob { request, conversation_id, query, k }) {
                    tracing::error!("knowledge-base worker is gone; search dropped");
                }
            }
            // Record, then act: the ledger releases the push once the
            // decision behind it is committed.
            Effect::Push(req) => match &self.ledger {
                Some(l) => l.hold(req),
                None => self.handle(Msg::Durable { pushes: vec![req], commit: None }),
            },
            Effect::Persist(rec) => {
                if let Some(l) = &self.ledger {
                    l.record(rec);
                }
            }
            Effect::Deliver(req) => self.delivery.deliver(req, &mut self.pushes, &self.tx),
            Effect::Unfollow { conversation_id } => {
                for s in self.streams.values() {
                    s.unfollow(&conversation_id);
                }
            }
            Effect::Record(r) => {
                if let (crate::engine::Record::ConversationEnded { conversation_id }, Some(out)) =
                    (&r, &self.feed_out)
                {
                    let _ = out.publish(FeedEvent::Ended { conversation_id: conversation_id.clone() });
                }
                self.audit.record(r);
            }
        }
    }

    /// The agent widget's address, when it is served.
    pub fn widget_url(&self) -> Option<&str> {
        self.widget.as_ref().map(|(_, s)| s.url.as_str())
    }

    /// The agent widget page of one call, when the widget is served.
    pub fn widget_page(&self, conversation_id: &str) -> Option<String> {
        self.widget.as_ref().map(|(_, s)| s.page_url(conversation_id))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Every article in the knowledge base (for the manual-push palette).
    pub fn catalog(&self) -> &Arc<Vec<StoredArticle>> {
        &self.catalog
    }

    /// Messages waiting in the channel.
    pub fn queue_depth(&self) -> usize {
        self.rx.len()
    }

    pub fn token_info(&self) -> TokenInfo {
        *self.token.borrow()
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Writes a ready-made JSON line to the audit log and headless output.
    pub fn note(&self, line: serde_json::Value) {
        self.audit.json(line);
    }

    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    /// Stops the stream, lets pushes in flight finish (recording their
    /// outcomes), writes the summary, and flushes the audit log.
    pub async fn shutdown(mut self) -> Summary {
        for s in self.streams.values() {
            s.cancel.cancel();
        }
        let give_up = tokio::time::Instant::now() + DRAIN;
        while !self.pushes.is_empty() {
            tokio::select! {
                Some(msg) = self.rx.recv() => self.handle(msg),
                _ = self.pushes.join_next() => {}
                () = tokio::time::sleep_until(give_up) => {
                    tracing::warn!(left = self.pushes.len(), "shutting down with pushes still in flight");
                    break;
                }
            }
        }
        self.drain_ready(usize::MAX);
        let summary = self.engine.metrics().summary();
        let mut line = serde_json::to_value(&summary).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut line {
            map.insert("event".into(), "summary".into());
            map.insert("audit_log".into(), self.audit.path().display().to_string().into());
        }
        self.audit.json(line);
        for (_, s) in std::mem::take(&mut self.streams) {
            let _ = s.task.await;
        }
        self.forwarder.abort();
        if let Some(l) = self.ledger.take() {
            l.close();
        }
        if let Some((_, server)) = self.widget.take() {
            server.stop().await;
        }
        if let Err(e) = self.audit.close() {
            tracing::error!(error = %e, "audit log could not be flushed");
        }
        self.kb_live.stop();
        self.kb.stop();
        summary
    }
}
