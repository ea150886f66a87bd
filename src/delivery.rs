//! The delivery layer: between the engine, which decides *what* to deliver,
//! and the sinks, which know *how*. Each [`PushRequest`] fans out to its
//! sinks; every sink reports its own attempts and outcome as messages
//! (`Msg::PushAttempted`, `Msg::PushDone` with the sink named), so the push
//! log, the audit log and the headless stream show each sink separately.
//!
//! - `widget`: the conversation's live feed in the built-in agent widget
//!   (delivered = in the feed; an agent page acknowledging it is reported
//!   separately, as `Msg::Agent`).
//! - `webhook`: the original design's push contract.
//! - `genesys-attributes`: participant attributes on the customer.
//! - `genesys-copilot`: the answer to a Copilot third-party-action request.
//!
//! The REST sinks share the push's retry policy; every request carries the
//! suggestion id, which stays the same across retries and restarts.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::domain::{PushAttempt, PushOutcome, PushRequest, Sink};
use crate::engine::Msg;
use crate::net::push::PushClient;
use crate::net::sinks;

/// A live feed of suggestions per conversation (the agent widget).
pub trait LiveFeed: Send + Sync + 'static {
    /// Puts the suggestion in its conversation's feed; idempotent by
    /// suggestion id. Errors say why it could not.
    fn publish(&self, req: &PushRequest) -> Result<(), String>;
}

/// The widget is the `widget` sink's feed: a suggestion is delivered once
/// it is in the call's feed (pages showing the call are sent it at once;
/// their acknowledgements come back separately), or, on a floor, once it is
/// handed to the floor's stream that feeds every worker's widget.
impl LiveFeed for crate::widget::FeedOut {
    fn publish(&self, req: &PushRequest) -> Result<(), String> {
        use crate::widget::{FeedEvent, WidgetSuggestion};
        let item = req.items.first().ok_or("nothing to show")?;
        let suggestion = WidgetSuggestion {
            conversation_id: req.conversation_id.clone(),
            suggestion_id: req.suggestion_id.clone(),
            article_id: item.article_id.clone(),
            title: item.title.clone(),
            score: item.score,
            probability: req.probability,
            text: item.content.clone(),
            url: req.url.clone(),
            state: "sent".into(),
        };
        crate::widget::FeedOut::publish(self, FeedEvent::Suggestion(suggestion))
    }
}

impl LiveFeed for crate::widget::WidgetHub {
    fn publish(&self, req: &PushRequest) -> Result<(), String> {
        LiveFeed::publish(&crate::widget::FeedOut::Hub(self.clone()), req)
    }
}

/// Fans pushes out to the sinks.
#[derive(Clone)]
pub struct Delivery {
    client: PushClient,
    attributes_prefix: String,
    feed: Option<Arc<dyn LiveFeed>>,
}

impl Delivery {
    pub fn new(client: PushClient, attributes_prefix: &str, feed: Option<Arc<dyn LiveFeed>>) -> Self {
        Self { client, attributes_prefix: attributes_prefix.to_string(), feed }
    }

    /// Starts one delivery task per sink; each reports on `tx`.
    pub fn deliver(&self, req: PushRequest, tasks: &mut JoinSet<()>, tx: &mpsc::Sender<Msg>) {
        let req = Arc::new(req);
        for sink in req.sinks.clone() {
            let (this, req, tx) = (self.clone(), req.clone(), tx.clone());
            tasks.spawn(async move {
                let attempts = tx.clone();
                let mut report = move |a: PushAttempt| {
                    // Attempt reports are for display; never wait for room.
                    if attempts.try_send(Msg::PushAttempted(a)).is_err() {
                        tracing::debug!("push attempt report dropped: channel full");
                    }
                };
                // Whatever happens inside, the engine hears how the push
                // ended: a lost outcome would leave it `sending` for good.
                let pushed = std::panic::AssertUnwindSafe(this.to_sink(sink, &req, &mut report));
                let outcome = futures_util::FutureExt::catch_unwind(pushed).await.unwrap_or_else(|_| {
                    tracing::error!(suggestion = %req.suggestion_id, %sink, "delivery task panicked");
                    let error = Some("internal error while delivering (see the log)".to_string());
                    outcome(&req, sink, None, 0, Instant::now(), error)
                });
                let _ = tx.send(Msg::PushDone(outcome)).await;
            });
        }
    }

    async fn to_sink(
        &self,
        sink: Sink,
        req: &PushRequest,
        report: &mut (dyn FnMut(PushAttempt) + Send),
    ) -> PushOutcome {
        let fail = |error: String| outcome(req, sink, None, 0, Instant::now(), Some(error));
        let base = self.client.base().to_string();
        match sink {
            Sink::Widget => {
                let started = Instant::now();
                let result = match &self.feed {
                    Some(feed) => feed.publish(req),
                    None => Err("the agent widget is not running".into()),
                };
                outcome(req, sink, None, 1, started, result.err())
            }
            Sink::Webhook => self.client.push(req, report).await,
            Sink::GenesysAttributes => match sinks::attributes_url(&base, req) {
                Ok(url) => {
                    let body = sinks::attributes_body(&self.attributes_prefix, req);
                    self.client.send(reqwest::Method::PATCH, &url, &body, req, sink, report).await
                }
                Err(e) => fail(e),
            },
            Sink::GenesysCopilot => match sinks::copilot_url(&base, req) {
                Ok(url) => {
                    let body = sinks::copilot_body(req);
                    self.client.send(reqwest::Method::PATCH, &url, &body, req, sink, report).await
                }
                Err(e) => fail(e),
            },
        }
    }
}

fn outcome(
    req: &PushRequest,
    sink: Sink,
    status: Option<u16>,
    attempts: u32,
    started: Instant,
    error: Option<String>,
) -> PushOutcome {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    PushOutcome::of(req, sink, status, attempts, latency_ms, error)
}
