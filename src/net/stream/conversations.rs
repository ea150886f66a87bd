//! The conversation side of the stream manager: following a conversation
//! from discovery (subscribing its transcription topic on a channel with
//! room) through its utterances (deduplicated by `utteranceId`) to its end
//! (unsubscribing, remembering it so late events do not revive it).

use std::collections::{BTreeSet, HashSet};

use super::{Conversation, Fatal, Manager, RECENTLY_ENDED, Subscribe};
use crate::domain::{Speaker, StreamEvent, TranscriptEvent};
use crate::net::protocol::{self, ConversationPhase, TranscriptionBody};

impl Manager {
    pub(super) async fn on_conversation(&mut self, body: protocol::ConversationBody) -> Result<(), Fatal> {
        let Some(id) = body.id.clone().filter(|i| !i.is_empty()) else {
            return Ok(());
        };
        match body.phase() {
            ConversationPhase::Active { queue_id } => {
                if !self.conversations.contains_key(&id) && !self.ended.0.contains(&id) {
                    self.subscribe(&id).await?;
                    self.emit(StreamEvent::ConversationStarted { conversation_id: id, queue_id }).await;
                }
            }
            ConversationPhase::Ended => self.end(&id).await?,
            ConversationPhase::Pending => {}
        }
        Ok(())
    }

    /// Adds a conversation's transcription topic to a channel with room,
    /// opening a new channel when all are full.
    async fn subscribe(&mut self, id: &str) -> Result<(), Fatal> {
        let topic = protocol::transcription_topic(id);
        let index = match self.slots.iter().position(|s| s.topics.len() < self.config.max_topics) {
            Some(i) if self.slots[i].subscribe_on_open => {
                self.slots[i].topics.insert(topic);
                i
            }
            Some(i) => {
                let channel = self.slots[i].channel.id.clone();
                match self.rest.add_topics(&channel, std::slice::from_ref(&topic)).await {
                    Ok(()) => {}
                    Err(e) if e.is_permanent() => return Err(Fatal(e)),
                    Err(e) => tracing::warn!(error = %e, %topic, "subscribe failed; restored on reconnect"),
                }
                self.slots[i].topics.insert(topic);
                i
            }
            None => match self.open_slot(BTreeSet::from([topic]), Subscribe::OnOpen).await {
                Ok(slot) => {
                    self.slots.push(slot);
                    let i = self.slots.len() - 1;
                    self.connect(i);
                    i
                }
                Err(e) => return Err(Fatal(e)),
            },
        };
        self.conversations.insert(id.to_string(), Conversation { slot: index, finals: HashSet::new() });
        Ok(())
    }

    async fn end(&mut self, id: &str) -> Result<(), Fatal> {
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
        let topic = protocol::transcription_topic(id);
        if let Some(s) = self.slots.get_mut(conv.slot) {
            s.topics.remove(&topic);
            // PUT the remaining list: the Java SDK's way to drop one topic.
            let list: Vec<String> = s.topics.iter().cloned().collect();
            let channel = s.channel.id.clone();
            match self.rest.replace_topics(&channel, &list).await {
                Ok(()) => {}
                Err(e) if e.is_permanent() => return Err(Fatal(e)),
                Err(e) => tracing::warn!(error = %e, %topic, "unsubscribe failed"),
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
