//! The transcript stream in the `notifications` dialect: the real Genesys
//! Cloud Notifications API.
//!
//! One task owns the channels and their topic lists. It subscribes over REST
//! to the discovery topics (queues, users), subscribes each active
//! conversation's transcription topic and drops it when the conversation
//! ends, keeps at most `max_topics` per channel (opening another channel
//! beyond that), rotates a channel before it expires, and reconnects dropped
//! sockets with backoff and jitter, restoring subscriptions. Once every
//! socket is live (at start and after each gap) it catches up on calls it
//! did not see start or end ([`super::catchup`]). Every state change goes
//! out as a [`StreamEvent`]. Socket lifetimes run in
//! [`super::socket`] tasks that report back here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::protocol::{self, Frame};
use super::rest::Rest;
use super::socket::{SocketConfig, SocketEnd, SocketEvent};
use super::{Backoff, NetError, policy};
use crate::domain::{ConnectionState, StreamEvent};

/// Ended conversation ids remembered, to ignore their late events.
const RECENTLY_ENDED: usize = 10_000;

mod channels;
mod conversations;

/// What to listen to and how patiently.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Queue ids whose conversations are followed.
    pub queues: Vec<String>,
    /// User ids whose conversations are followed.
    pub users: Vec<String>,
    pub socket: SocketConfig,
    pub backoff: Backoff,
    /// Genesys allows 1,000 topics per channel.
    pub max_topics: usize,
    /// Open a replacement channel this long before one expires.
    pub rotate_before: Duration,
    /// Wait before asking again when a catch-up query failed (not refused).
    pub catch_up_retry: Duration,
    /// Follow Copilot's third-party-action suggestions of each call too.
    pub copilot: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            users: Vec::new(),
            socket: SocketConfig::default(),
            backoff: Backoff::default(),
            max_topics: 1000,
            rotate_before: Duration::from_secs(3600),
            catch_up_retry: Duration::from_secs(30),
            copilot: false,
        }
    }
}

/// What the stream's owner can ask of it while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCommand {
    /// Stop following a conversation the engine ended (it went idle):
    /// drop its topic and ignore its late events, as for a reported end.
    Unfollow { conversation_id: String },
}

/// Stops the stream task when dropped or cancelled.
pub struct StreamHandle {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    /// Commands to the stream task; never blocks.
    pub commands: mpsc::UnboundedSender<StreamCommand>,
}

impl StreamHandle {
    /// Asks the stream to stop following a conversation.
    pub fn unfollow(&self, conversation_id: &str) {
        let cmd = StreamCommand::Unfollow { conversation_id: conversation_id.to_string() };
        if self.commands.send(cmd).is_err() {
            tracing::debug!("stream already stopped; unfollow dropped");
        }
    }

    /// Stops the stream and waits for its task to finish.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Starts the notifications stream; events go to `out`.
pub fn spawn_stream(rest: Rest, config: StreamConfig, out: mpsc::Sender<StreamEvent>) -> StreamHandle {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let (tx, rx) = mpsc::channel(256);
        let mut m = Manager::new(rest, config, out, tx);
        m.run(rx, commands_rx, token).await;
        m.shutdown();
    });
    StreamHandle { cancel, task, commands }
}

struct Slot {
    channel: protocol::Channel,
    expires: Option<SystemTime>,
    topics: BTreeSet<String>,
    epoch: u64,
    socket: Option<tokio::task::JoinHandle<()>>,
    live: bool,
    attempt: u32,
    /// When a dropped socket is due to reconnect.
    retry_at: Option<Instant>,
    /// A channel being opened to replace this one before it expires.
    successor: Option<Box<Slot>>,
    /// When to put the topic list again after a subscription change failed
    /// on a live socket (no reconnect would repair it), and how often it
    /// has failed.
    resync: Option<(Instant, u32)>,
    /// Topics go on the channel once its socket is open: events for a topic
    /// subscribed before anyone listens are lost (the simulator starts a
    /// call's clock at subscription, and a real call keeps talking).
    subscribe_on_open: bool,
}

/// When a new channel's topics are subscribed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Subscribe {
    /// Before its socket connects: the first channel (a missing permission
    /// shows at once) and a rotation's successor (the old channel still
    /// delivers meanwhile).
    Now,
    /// Once its socket is open, so nothing is sent to a channel nobody
    /// listens on yet.
    OnOpen,
}

struct Conversation {
    slot: usize,
    /// Final utterances already passed on; later copies are duplicates.
    finals: HashSet<String>,
}

struct Manager {
    rest: Rest,
    config: StreamConfig,
    out: mpsc::Sender<StreamEvent>,
    sockets_tx: mpsc::Sender<SocketEvent>,
    slots: Vec<Slot>,
    conversations: HashMap<String, Conversation>,
    /// Recently ended conversations: late events for them are ignored
    /// rather than starting them again. Bounded.
    ended: (HashSet<String>, std::collections::VecDeque<String>),
    next_epoch: u64,
    state: ConnectionState,
    /// Catch up on conversations in progress once every socket is live:
    /// true at start and after any socket dropped.
    catch_up_due: bool,
    /// False once the org refused the analytics query (no permission).
    catch_up_allowed: bool,
    /// When to try a catch-up again after its query failed.
    catch_up_retry_at: Option<Instant>,
}

/// A failure the manager cannot work around: reported, then the stream stops.
struct Fatal(NetError);

impl Manager {
    fn new(
        rest: Rest,
        config: StreamConfig,
        out: mpsc::Sender<StreamEvent>,
        tx: mpsc::Sender<SocketEvent>,
    ) -> Self {
        Self {
            rest,
            config,
            out,
            sockets_tx: tx,
            slots: Vec::new(),
            conversations: HashMap::new(),
            ended: (HashSet::new(), std::collections::VecDeque::new()),
            next_epoch: 0,
            catch_up_due: true,
            catch_up_allowed: true,
            catch_up_retry_at: None,
            state: ConnectionState::Connecting,
        }
    }

    async fn emit(&self, ev: StreamEvent) {
        let _ = self.out.send(ev).await;
    }

    async fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state.clone();
            self.emit(StreamEvent::Connection(state)).await;
        }
    }

    fn discovery_topics(&self) -> Vec<String> {
        let q = self.config.queues.iter().map(|q| format!("v2.routing.queues.{q}.conversations"));
        let u = self.config.users.iter().map(|u| format!("v2.users.{u}.conversations"));
        q.chain(u).collect()
    }

    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<SocketEvent>,
        mut commands: mpsc::UnboundedReceiver<StreamCommand>,
        cancel: CancellationToken,
    ) {
        self.emit(StreamEvent::Connection(ConnectionState::Connecting)).await;
        // Open the first channel, retrying until it works or cannot.
        let mut attempt = 0;
        loop {
            let topics = self.discovery_topics().into_iter().collect();
            match self.open_slot(topics, Subscribe::Now).await {
                Ok(slot) => {
                    self.slots.push(slot);
                    self.connect(0);
                    break;
                }
                Err(e) if e.is_permanent() => return self.fail(e).await,
                Err(e) => {
                    attempt += 1;
                    let delay = policy::backoff_delay(&self.config.backoff, attempt, rand::random());
                    self.reconnecting(attempt, delay, e.to_string()).await;
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        // Channel expiry is checked once a second; reconnects when due.
        let mut next_check = Instant::now() + Duration::from_secs(1);
        loop {
            let wake = self
                .slots
                .iter()
                .flat_map(|s| [s.retry_at, s.resync.map(|r| r.0)])
                .flatten()
                .chain([next_check])
                .min()
                .unwrap_or(next_check);
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_socket(ev).await,
                    None => return,
                },
                Some(cmd) = commands.recv() => match cmd {
                    StreamCommand::Unfollow { conversation_id } => {
                        tracing::info!(conversation = %conversation_id, "unfollowing an idle conversation");
                        self.end(&conversation_id).await
                    }
                },
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= next_check {
                        next_check = Instant::now() + Duration::from_secs(1);
                    }
                    self.on_tick().await
                }
            };
            if let Err(Fatal(e)) = result {
                return self.fail(e).await;
            }
        }
    }

    async fn fail(&mut self, e: NetError) {
        tracing::error!(error = %e, "transcript stream stopped");
        self.set_state(ConnectionState::Failed { reason: e.to_string() }).await;
    }

    async fn reconnecting(&mut self, attempt: u32, delay: Duration, reason: String) {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(attempt, delay_ms, %reason, "transcript stream reconnecting");
        self.set_state(ConnectionState::Reconnecting { attempt, delay_ms, reason }).await;
    }

    fn shutdown(&mut self) {
        for s in &mut self.slots {
            if let Some(h) = s.socket.take() {
                h.abort();
            }
            if let Some(h) = s.successor.as_mut().and_then(|n| n.socket.take()) {
                h.abort();
            }
        }
    }

    async fn on_socket(&mut self, ev: SocketEvent) -> Result<(), Fatal> {
        match ev {
            SocketEvent::Opened { slot, epoch } => {
                if self.promote_successor(slot, epoch) {
                    tracing::info!(slot, "rotated to a new notification channel");
                }
                if !self.is_current(slot, epoch) {
                    return Ok(());
                }
                if self.slots[slot].subscribe_on_open {
                    self.subscribe_open_slot(slot).await?;
                }
                let s = &mut self.slots[slot];
                // A failed subscription above has dropped the socket again.
                if s.socket.is_some() {
                    s.live = true;
                    s.attempt = 0;
                }
                if self.slots.iter().all(|s| s.live) {
                    self.set_state(ConnectionState::Live).await;
                    if std::mem::take(&mut self.catch_up_due) {
                        self.catch_up().await?;
                    }
                }
            }
            SocketEvent::Frame { slot, epoch, frame } => {
                if self.is_current(slot, epoch) || self.is_successor(slot, epoch) {
                    self.on_frame(slot, frame).await?;
                }
            }
            SocketEvent::Discarded { reason, .. } => self.emit(StreamEvent::Discarded { reason }).await,
            SocketEvent::Closed { slot, epoch, ended } => {
                if self.is_current(slot, epoch) {
                    self.on_closed(slot, ended).await?;
                }
            }
        }
        Ok(())
    }

    fn is_current(&self, slot: usize, epoch: u64) -> bool {
        self.slots.get(slot).is_some_and(|s| s.epoch == epoch)
    }

    fn is_successor(&self, slot: usize, epoch: u64) -> bool {
        self.slots.get(slot).and_then(|s| s.successor.as_ref()).is_some_and(|n| n.epoch == epoch)
    }

    async fn on_frame(&mut self, slot: usize, frame: Frame) -> Result<(), Fatal> {
        match frame {
            Frame::Heartbeat | Frame::Pong => self.emit(StreamEvent::Heartbeat).await,
            Frame::Conversation(body) => self.on_conversation(body).await?,
            Frame::Transcription(body) => self.on_transcription(slot, body).await?,
            Frame::System { topic, message } => {
                tracing::warn!(%topic, message = message.as_deref().unwrap_or(""), "system message");
                if topic.starts_with("v2.system.no_longer_subscribed")
                    || topic.starts_with("v2.system.token_revoked")
                {
                    // Treat as a lost socket: reconnect re-checks the channel and topics.
                    self.on_closed(slot, SocketEnd::Lost(topic)).await?;
                }
            }
            Frame::SocketClosing => {}
            Frame::CopilotSuggestion { conversation_id, suggestion_id, state } => {
                // Only a fresh suggestion waits for an answer; later states
                // (accepted, dismissed) are the agent's business.
                if state.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("suggested")) {
                    self.emit(StreamEvent::CopilotRequest { conversation_id, suggestion_id }).await;
                }
            }
            Frame::TutorialTranscript { .. } | Frame::Unknown { .. } => {
                tracing::debug!("ignored a frame on an unused topic");
            }
        }
        Ok(())
    }
}
