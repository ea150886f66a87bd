//! The conversation side of the stream manager: following a conversation
//! from discovery (subscribing its transcription topic on a channel with
//! room) through its utterances (deduplicated by `utteranceId`) to its end
//! (unsubscribing, remembering it so late events do not revive it); and
//! catching up on conversations whose start it did not see.

use std::collections::HashSet;
use std::time::SystemTime;

use super::{Conversation, Fatal, Manager, RECENTLY_ENDED, Subscribe};
use crate::domain::{Speaker, StreamEvent, TranscriptEvent};
use crate::net::protocol::{self, ConversationPhase, TranscriptionBody};
use crate::net::{NetError, catchup};

impl Manager {
    pub(super) async fn on_conversation(&mut self, body: protocol::ConversationBody) -> Result<(), Fatal> {
        let Some(id) = body.id.clone().filter(|i| !i.is_empty()) else {
            return Ok(());
        };
        match body.phase() {
            ConversationPhase::Active { queue_id } => {
                if self.ended.0.contains(&id) {
                    return Ok(());
                }
                if !self.conversations.contains_key(&id) {
                    self.subscribe(&id).await?;
                    let started = StreamEvent::ConversationStarted { conversation_id: id.clone(), queue_id };
                    self.emit(started).await;
                }
                // Every event that lists participants, since they change
                // (transfers, consults); consumers keep the latest list.
                let participants = body.participants();
                if !participants.is_empty() {
                    self.emit(StreamEvent::Participants { conversation_id: id, participants }).await;
                }
            }
            ConversationPhase::Ended => self.end(&id).await?,
            ConversationPhase::Pending => {}
        }
        Ok(())
    }

    /// Follows every conversation in progress on the followed queues and
    /// users that the stream has not seen start (see [`catchup`]). Only a
    /// refused token stops the stream; a missing permission turns catch-up
    /// off with one warning; other failures are retried after
    /// `catch_up_retry`.
    pub(super) async fn catch_up(&mut self) -> Result<(), Fatal> {
        if !self.catch_up_allowed || (self.config.queues.is_empty() && self.config.users.is_empty()) {
            return Ok(());
        }
        let now = SystemTime::now();
        let mut found = Vec::new();
        for page in 1..=catchup::MAX_PAGES {
            let query = catchup::query(&self.config.queues, &self.config.users, now, page);
            match self.rest.conversation_details(&query).await {
                Ok(p) => {
                    found.extend(catchup::active(&p).map(|(id, q)| (id.to_string(), q.map(String::from))));
                    if !catchup::has_more(&p, page) {
                        break;
                    }
                }
                Err(NetError::Forbidden { message: why }) => {
                    self.catch_up_allowed = false;
                    // Short enough for the status line: the permission is what matters.
                    let why = why
                        .split_once("needs permission")
                        .map_or(why.clone(), |(_, p)| format!("needs permission{p}"));
                    let message = format!("calls already in progress are not caught up: {why}");
                    tracing::warn!(%message);
                    self.emit(StreamEvent::Warning { message }).await;
                    return Ok(());
                }
                Err(e) if e.is_permanent() => return Err(Fatal(e)),
                Err(e) => {
                    let retry = self.config.catch_up_retry;
                    tracing::warn!(error = %e, retry_s = retry.as_secs_f64(), "catch-up query failed; will retry");
                    self.catch_up_retry_at = Some(tokio::time::Instant::now() + retry);
                    break;
                }
            }
        }
        self.end_finished_calls(now).await?;
        let mut caught = 0;
        for (id, queue_id) in found {
            if !self.conversations.contains_key(&id) && !self.ended.0.contains(&id) {
                self.subscribe(&id).await?;
                self.emit(StreamEvent::ConversationStarted { conversation_id: id, queue_id }).await;
                caught += 1;
            }
        }
        if caught > 0 {
            tracing::info!(caught, "caught up on conversations already in progress");
        }
        Ok(())
    }

    /// Ends the followed conversations that analytics reports ended (their
    /// end event may have been lost in a gap). Best effort: a failed query
    /// leaves them to the engine's idle timeout.
    async fn end_finished_calls(&mut self, now: SystemTime) -> Result<(), Fatal> {
        let followed: Vec<String> = self.conversations.keys().cloned().collect();
        for ids in followed.chunks(catchup::IDS_PER_QUERY) {
            match self.rest.conversation_details(&catchup::status_query(ids, now)).await {
                Ok(page) => {
                    let over: Vec<String> = catchup::ended(&page).map(String::from).collect();
                    for id in over.iter().filter(|id| ids.contains(id)) {
                        tracing::info!(conversation = %id, "conversation ended while the stream was down");
                        self.end(id).await?;
                    }
                }
                Err(e) if e.is_permanent() && !matches!(e, NetError::Forbidden { .. }) => {
                    return Err(Fatal(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not check followed conversations for ends");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A followed conversation's topics: its transcription, and Copilot's
    /// third-party-action suggestions when that sink is on.
    fn conversation_topics(&self, id: &str) -> Vec<String> {
        let mut topics = vec![protocol::transcription_topic(id)];
        if self.config.copilot {
            topics.push(protocol::copilot_topic(id));
        }
        topics
    }

    /// Adds a conversation's topics to a channel with room, opening a new
    /// channel when all are full.
    async fn subscribe(&mut self, id: &str) -> Result<(), Fatal> {
        let topics = self.conversation_topics(id);
        let room = self.config.max_topics.saturating_sub(topics.len());
        let index = match self.slots.iter().position(|s| s.topics.len() <= room) {
            Some(i) if self.slots[i].subscribe_on_open => {
                self.slots[i].topics.extend(topics);
                i
            }
            Some(i) => {
                let channel = self.slots[i].channel.id.clone();
                let result = self.rest.add_topics(&channel, &topics).await;
                self.slots[i].topics.extend(topics);
                match result {
                    Ok(()) => {}
                    Err(e) if e.is_permanent() => return Err(Fatal(e)),
                    Err(e) => self.resync_later(i, &e).await,
                }
                i
            }
            None => match self.open_slot(topics.iter().cloned().collect(), Subscribe::OnOpen).await {
                Ok(slot) => {
                    self.slots.push(slot);
                    let i = self.slots.len() - 1;
                    self.connect(i);
                    i
                }
                Err(e) if e.is_permanent() => return Err(Fatal(e)),
                Err(e) => {
                    // Not fatal: the topic waits on a channel still to be
                    // opened, which the reconnect loop retries with backoff.
                    let slot = self.unopened_slot(topics.into_iter().collect());
                    self.slots.push(slot);
                    let i = self.slots.len() - 1;
                    self.retry_later(i, format!("opening another channel failed: {e}")).await;
                    i
                }
            },
        };
        self.conversations.insert(id.to_string(), Conversation { slot: index, finals: HashSet::new() });
        // One line per call start and end, so the log shows a run progressing.
        tracing::info!(conversation = %id, channel_slot = index, "following conversation");
        Ok(())
    }

    /// Stops following a conversation: drops its topic and remembers it as
    /// ended so late events do not revive it.
    pub(super) async fn end(&mut self, id: &str) -> Result<(), Fatal> {
        let Some(conv) = self.conversations.remove(id) else {
            return Ok(());
        };
        if self.ended.0.insert(id.to_string()) {
            self.ended.1.push_back(id.to_string());
            if self.ended.1.len() > RECENTLY_ENDED
                && let Some(old) = self.ended.1.pop_front()
            {
                self.ended.0.remove(&old);
            }
        }
        tracing::info!(conversation = %id, "conversation ended; topics dropped");
        let topics = self.conversation_topics(id);
        if let Some(s) = self.slots.get_mut(conv.slot) {
            for t in &topics {
                s.topics.remove(t);
            }
            // A channel not yet subscribed gets its whole (new) list on open.
            if s.subscribe_on_open {
                self.emit(StreamEvent::ConversationEnded { conversation_id: id.to_string() }).await;
                return Ok(());
            }
            // PUT the remaining list: the Java SDK's way to drop one topic.
            let list: Vec<String> = s.topics.iter().cloned().collect();
            let channel = s.channel.id.clone();
            match self.rest.replace_topics(&channel, &list).await {
                Ok(()) => {}
                Err(e) if e.is_permanent() => return Err(Fatal(e)),
                // The ended call's late events are ignored meanwhile; the
                // channel's topic count is what the retry restores.
                Err(e) => self.resync_later(conv.slot, &e).await,
            }
        }
        self.emit(StreamEvent::ConversationEnded { conversation_id: id.to_string() }).await;
        Ok(())
    }

    pub(super) async fn on_transcription(
        &mut self,
        slot: usize,
        body: TranscriptionBody,
    ) -> Result<(), Fatal> {
        let Some(id) = body.conversation_id.clone().filter(|i| !i.is_empty()) else {
            self.emit(StreamEvent::Discarded { reason: "transcription event without conversationId".into() })
                .await;
            return Ok(());
        };
        if self.ended.0.contains(&id) {
            return Ok(());
        }
        let conv = self
            .conversations
            .entry(id.clone())
            .or_insert_with(|| Conversation { slot, finals: HashSet::new() });
        let mut events = Vec::new();
        for (n, r) in body.transcripts.iter().flatten().enumerate() {
            let Some(text) = protocol::result_text(r) else {
                continue;
            };
            let offset_ms = r.alternatives.as_ref().and_then(|a| a.first()).and_then(|a| a.offset_ms);
            // Without an utteranceId, the offset identifies the utterance.
            let utterance_id = r.utterance_id.clone().unwrap_or_else(|| {
                format!("{id}@{}", offset_ms.map_or_else(|| n.to_string(), |o| o.to_string()))
            });
            let is_final = r.is_final != Some(false);
            if conv.finals.contains(&utterance_id) {
                continue;
            }
            if is_final {
                conv.finals.insert(utterance_id.clone());
            }
            events.push(TranscriptEvent {
                conversation_id: id.clone(),
                utterance_id,
                speaker: Speaker::from_channel(r.channel.as_deref()),
                text,
                is_final,
                offset_ms,
            });
        }
        for e in events {
            self.emit(StreamEvent::Transcript(e)).await;
        }
        if protocol::session_ended(&body) {
            self.end(&id).await?;
        }
        Ok(())
    }
}
