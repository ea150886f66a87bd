//! The channel side of the stream manager: opening a notification channel
//! and its socket, subscribing a new channel once its socket is open,
//! reconnecting a dropped one (same channel if it still exists, otherwise a
//! new one with the same topics), putting a channel's topic list again when
//! a subscription change failed on a live socket, and make-before-break
//! rotation before a channel expires.

use std::collections::BTreeSet;
use std::time::SystemTime;

use tokio::time::Instant;

use super::{Fatal, Manager, Slot, Subscribe};
use crate::domain::StreamEvent;
use crate::net::socket::{Reconnect, SocketEnd, SocketTarget, plan_reconnect, spawn_socket};
use crate::net::{Dialect, NetError, policy};

/// Failed attempts in a row at putting a channel's topic list before the
/// operator is told.
const RESYNC_WARN_AFTER: u32 = 3;

impl Manager {
    /// Creates a channel for `topics`, subscribing them now or, with
    /// `Subscribe::OnOpen`, once its socket is open.
    pub(super) async fn open_slot(
        &mut self,
        topics: BTreeSet<String>,
        when: Subscribe,
    ) -> Result<Slot, NetError> {
        let channel = self.rest.create_channel().await?;
        let expires = channel.expires.as_deref().and_then(|e| humantime::parse_rfc3339_weak(e).ok());
        if when == Subscribe::Now {
            let list: Vec<String> = topics.iter().cloned().collect();
            self.rest.replace_topics(&channel.id, &list).await?;
        }
        tracing::info!(channel = %channel.id, topics = topics.len(), "opened notification channel");
        self.next_epoch += 1;
        Ok(Slot {
            channel,
            expires,
            topics,
            epoch: self.next_epoch,
            socket: None,
            live: false,
            attempt: 0,
            retry_at: None,
            successor: None,
            resync: None,
            subscribe_on_open: when == Subscribe::OnOpen,
        })
    }

    /// A slot for `topics` whose channel could not be created yet: the
    /// reconnect loop opens it (no channel id means nothing to reuse).
    pub(super) fn unopened_slot(&mut self, topics: BTreeSet<String>) -> Slot {
        self.next_epoch += 1;
        Slot {
            channel: crate::net::protocol::Channel {
                id: String::new(),
                connect_uri: String::new(),
                expires: None,
            },
            expires: None,
            topics,
            epoch: self.next_epoch,
            socket: None,
            live: false,
            attempt: 0,
            retry_at: None,
            successor: None,
            resync: None,
            subscribe_on_open: true,
        }
    }

    /// Schedules slot `i`'s next reconnect with backoff and reports why.
    pub(super) async fn retry_later(&mut self, i: usize, reason: String) {
        let slot = &mut self.slots[i];
        slot.attempt += 1;
        let delay = policy::backoff_delay(&self.config.backoff, slot.attempt, rand::random());
        slot.retry_at = Some(Instant::now() + delay);
        let attempt = slot.attempt;
        self.reconnecting(attempt, delay, reason).await;
    }

    /// Schedules slot `i`'s whole topic list to be put again, with backoff,
    /// after adding or dropping a topic failed while its socket stays up:
    /// otherwise a call's transcripts would be lost until some reconnect.
    /// The operator is told once it has failed [`RESYNC_WARN_AFTER`] times
    /// in a row, since the calls on that channel are then going unheard.
    pub(super) async fn resync_later(&mut self, i: usize, error: &NetError) {
        let slot = &mut self.slots[i];
        let attempt = slot.resync.map_or(1, |(_, n)| n + 1);
        let delay = policy::backoff_delay(&self.config.backoff, attempt, rand::random());
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(%error, channel_slot = i, attempt, delay_ms, "subscription change failed; will put the topic list again");
        slot.resync = Some((Instant::now() + delay, attempt));
        if attempt == RESYNC_WARN_AFTER {
            let message = format!(
                "subscribing calls' transcripts failed {attempt} times ({error}); their words are not \
                 arriving yet; still retrying"
            );
            self.emit(StreamEvent::Warning { message }).await;
        }
    }

    /// Puts slot `i`'s topic list again (see [`Self::resync_later`]).
    pub(super) async fn resync(&mut self, i: usize) -> Result<(), Fatal> {
        let s = &self.slots[i];
        // A reconnect, or the subscription on open, puts the whole list anyway.
        if !s.live || s.subscribe_on_open || s.channel.id.is_empty() {
            self.slots[i].resync = None;
            return Ok(());
        }
        let (id, list): (String, Vec<String>) = (s.channel.id.clone(), s.topics.iter().cloned().collect());
        match self.rest.replace_topics(&id, &list).await {
            Ok(()) => {
                tracing::info!(channel_slot = i, topics = list.len(), "topic list put again");
                let failed = self.slots[i].resync.take().map_or(0, |(_, n)| n);
                if failed >= RESYNC_WARN_AFTER {
                    let message = "calls' transcripts are subscribed again".to_string();
                    self.emit(StreamEvent::Warning { message }).await;
                }
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(Fatal(e)),
            Err(e) => {
                self.resync_later(i, &e).await;
                Ok(())
            }
        }
    }

    pub(super) fn target(&self, slot: &Slot, index: usize) -> SocketTarget {
        SocketTarget {
            url: slot.channel.connect_uri.clone(),
            dialect: Dialect::Notifications,
            slot: index,
            epoch: slot.epoch,
        }
    }

    pub(super) fn connect(&mut self, index: usize) {
        let target = self.target(&self.slots[index], index);
        let handle = spawn_socket(target, self.config.socket, self.sockets_tx.clone());
        let slot = &mut self.slots[index];
        if let Some(old) = slot.socket.replace(handle) {
            old.abort();
        }
        slot.retry_at = None;
    }

    /// Subscribes a freshly opened channel's topics; if that fails the
    /// socket is dropped and the usual reconnect retries it.
    pub(super) async fn subscribe_open_slot(&mut self, slot: usize) -> Result<(), Fatal> {
        let s = &self.slots[slot];
        let (id, all): (String, Vec<String>) = (s.channel.id.clone(), s.topics.iter().cloned().collect());
        match self.rest.replace_topics(&id, &all).await {
            Ok(()) => {
                self.slots[slot].subscribe_on_open = false;
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(Fatal(e)),
            Err(e) => {
                if let Some(h) = self.slots[slot].socket.take() {
                    h.abort();
                }
                self.on_closed(slot, SocketEnd::Lost(format!("subscribing the new channel failed: {e}")))
                    .await
            }
        }
    }

    /// Make-before-break rotation: once the successor's socket is open, it
    /// replaces the old channel, whose socket is closed. If the old channel's
    /// topics changed while the new one opened, the new one is marked to
    /// subscribe the current list now that it is open. Returns whether this
    /// was a successor opening.
    pub(super) fn promote_successor(&mut self, slot: usize, epoch: u64) -> bool {
        let Some(s) = self.slots.get_mut(slot) else { return false };
        if s.successor.as_ref().is_none_or(|n| n.epoch != epoch) {
            return false;
        }
        let Some(next) = s.successor.take() else { return false };
        let old = std::mem::replace(s, *next);
        if let Some(h) = old.socket {
            h.abort();
        }
        s.subscribe_on_open = old.topics != s.topics;
        s.topics = old.topics;
        true
    }

    /// Reconnects a dropped slot: reuse the channel if it still exists
    /// (restoring its topics), otherwise open a new one with the same topics.
    pub(super) async fn reconnect(&mut self, i: usize) -> Result<(), Fatal> {
        let topics: Vec<String> = self.slots[i].topics.iter().cloned().collect();
        let id = self.slots[i].channel.id.clone();
        // A slot whose channel was never created has nothing to reuse.
        let reusable = !id.is_empty() && self.slots[i].expires.is_none_or(|e| e > SystemTime::now());
        let result = async {
            if reusable && self.rest.channel_exists(&id).await? {
                self.rest.replace_topics(&id, &topics).await?;
                Ok(None)
            } else {
                let topics = self.slots[i].topics.clone();
                self.open_slot(topics, Subscribe::OnOpen).await.map(Some)
            }
        }
        .await;
        match result {
            Ok(new_slot) => {
                if let Some(mut s) = new_slot {
                    s.attempt = self.slots[i].attempt;
                    self.slots[i] = s;
                }
                // The whole list is on the channel again.
                self.slots[i].resync = None;
                self.connect(i);
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(Fatal(e)),
            Err(e) => {
                self.retry_later(i, e.to_string()).await;
                Ok(())
            }
        }
    }

    pub(super) async fn maybe_rotate(&mut self, i: usize) -> Result<(), Fatal> {
        let s = &self.slots[i];
        let due = s.expires.is_some_and(|e| {
            e.duration_since(SystemTime::now()).unwrap_or_default() <= self.config.rotate_before
        });
        if !due || s.successor.is_some() || !s.live {
            return Ok(());
        }
        let topics = s.topics.clone();
        match self.open_slot(topics, Subscribe::Now).await {
            Ok(next) => {
                let target = self.target(&next, i);
                let mut next = Box::new(next);
                next.socket = Some(spawn_socket(target, self.config.socket, self.sockets_tx.clone()));
                self.slots[i].successor = Some(next);
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(Fatal(e)),
            Err(e) => {
                tracing::warn!(error = %e, "channel rotation failed; will retry");
                Ok(())
            }
        }
    }

    pub(super) async fn on_closed(&mut self, index: usize, ended: SocketEnd) -> Result<(), Fatal> {
        self.catch_up_due = true;
        let slot = &mut self.slots[index];
        slot.live = false;
        slot.socket = None;
        let mut attempt = slot.attempt;
        let plan = plan_reconnect(ended, &mut attempt, &self.config.backoff, self.rest.auth(), None).await;
        self.slots[index].attempt = attempt;
        let Reconnect { delay, reason } = plan.map_err(Fatal)?;
        let attempt = attempt.max(1);
        self.slots[index].retry_at = Some(Instant::now() + delay);
        self.reconnecting(attempt, delay, reason).await;
        Ok(())
    }

    /// Reconnects, resubscribes and rotates whatever is due.
    pub(super) async fn on_tick(&mut self) -> Result<(), Fatal> {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if self.slots[i].retry_at.is_some_and(|t| t <= now) {
                self.reconnect(i).await?;
            }
            if self.slots[i].resync.is_some_and(|(t, _)| t <= now) {
                self.resync(i).await?;
            }
            self.maybe_rotate(i).await?;
        }
        if self.catch_up_retry_at.is_some_and(|t| t <= now) && self.slots.iter().all(|s| s.live) {
            self.catch_up_retry_at = None;
            self.catch_up().await?;
        }
        Ok(())
    }
}
