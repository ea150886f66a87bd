//! Reading the floor's events stream: an ordered (ephemeral) consumer from
//! the oldest event the stream keeps, made again after the last event read
//! whenever it fails (an outage), so a reader sees every kept event once.
//! The floor console and every worker's widget feed read through it.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use futures_util::StreamExt;

use super::Floor;

/// One reader of the stream's events on one subject filter.
pub struct Replay {
    floor: Floor,
    filter: String,
    /// Who reads, for the log.
    reader: &'static str,
    /// Pause before the consumer is made again after a failure.
    resume_after: Duration,
    /// The stream sequence of the last event read (0: none yet).
    last: u64,
    messages: Option<pull::Ordered>,
}

impl Replay {
    pub fn new(floor: Floor, filter: String, reader: &'static str, resume_after: Duration) -> Self {
        Self { floor, filter, reader, resume_after, last: 0, messages: None }
    }

    /// The next event; waits (and resumes across outages) until there is
    /// one.
    pub async fn next(&mut self) -> jetstream::Message {
        loop {
            let error = match self.messages.as_mut() {
                None => match open(&self.floor, &self.filter, self.last).await {
                    Ok(messages) => {
                        self.messages = Some(messages);
                        continue;
                    }
                    Err(e) => e,
                },
                Some(messages) => match messages.next().await {
                    Some(Ok(m)) => {
                        if let Ok(info) = m.info() {
                            self.last = info.stream_sequence;
                        }
                        return m;
                    }
                    Some(Err(e)) => e.to_string(),
                    None => "the consumer ended".into(),
                },
            };
            self.messages = None;
            tracing::debug!(
                reader = self.reader,
                error,
                last = self.last,
                "floor: stream reader stopped; resuming"
            );
            tokio::time::sleep(self.resume_after).await;
        }
    }
}

/// An ordered consumer on `filter` starting after `last` (from the oldest
/// kept event when nothing was read yet). Free of [`Replay`] because the
/// consumer it holds is not `Sync`, so `&Replay` may not live across an
/// await in a spawned task.
async fn open(floor: &Floor, filter: &str, last: u64) -> Result<pull::Ordered, String> {
    let stream = floor.js.get_stream(&floor.events_stream).await.map_err(|e| e.to_string())?;
    let deliver_policy = if last == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence { start_sequence: last + 1 }
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}
