//! The push client: sends ranked articles to a conversation's agent.
//!
//! The contract is the original design's (`POST {base}/api/v2/agent-assist/
//! interactions/{conversationId}/results`, 204 on success), which real
//! Genesys Cloud does not offer, so the URL is a template in config. Every
//! result carries `metadata.suggestion_id`; a retry of a request that timed
//! out but had in fact arrived repeats that id, so the receiver can record
//! the suggestion once. Retries follow [`super::policy`], with a bound.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::TokenSource;
use super::policy::{RateHints, Verdict, backoff_delay, classify};
use super::{Backoff, NetError};
use crate::domain::{PushAttempt, PushOutcome, PushRequest, Sink};

/// The push endpoint of the original design; `{base}` and
/// `{conversationId}` are filled in.
pub const DEFAULT_URL_TEMPLATE: &str = "{base}/api/v2/agent-assist/interactions/{conversationId}/results";

/// How pushes are sent.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub url_template: String,
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// `metadata.source` in every result.
    pub source: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            url_template: DEFAULT_URL_TEMPLATE.into(),
            max_attempts: 5,
            backoff: Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(8) },
            source: "agent-assist".into(),
        }
    }
}

/// Sends pushes over the shared HTTP client and token.
#[derive(Clone)]
pub struct PushClient {
    http: reqwest::Client,
    auth: Arc<TokenSource>,
    base: String,
    config: PushConfig,
}

impl PushClient {
    pub fn new(http: reqwest::Client, auth: Arc<TokenSource>, api_base: &str, config: PushConfig) -> Self {
        Self { http, auth, base: api_base.trim_end_matches('/').to_string(), config }
    }

    /// The URL a conversation's pushes go to, the id percent-encoded as one
    /// path segment; `None` for an id no URL path can carry (`.`, `..`, empty).
    pub fn url_for(&self, conversation_id: &str) -> Option<String> {
        let id = super::path_segment(conversation_id)?;
        Some(self.config.url_template.replace("{base}", &self.base).replace("{conversationId}", &id))
    }

    /// The JSON body of a push.
    pub fn body(&self, req: &PushRequest) -> Value {
        let results: Vec<Value> = req
            .items
            .iter()
            .map(|i| {
                json!({
                    "id": i.article_id,
                    "name": i.title,
                    "content": i.content,
                    "type": "article",
                    "confidence": f64::from(i.score).clamp(0.0, 1.0),
                    "metadata": {
                        "source": self.config.source,
                        "similarity_score": i.score,
                        "suggestion_id": req.suggestion_id,
                        "decided_by": if req.operator { "operator" } else { "auto" },
                    }
                })
            })
            .collect();
        json!({ "results": results })
    }

    /// Pushes with retries; reports each failed attempt as it happens and
    /// returns the outcome. Never panics and never gives up silently.
    pub async fn push(
        &self,
        req: &PushRequest,
        on_attempt: &mut (dyn FnMut(PushAttempt) + Send),
    ) -> PushOutcome {
        let body = self.body(req);
        let Some(url) = self.url_for(&req.conversation_id) else {
            let error = format!("conversation id `{}` cannot be used in a URL", req.conversation_id);
            return PushOutcome::of(req, Sink::Webhook, None, 0, 0, Some(error));
        };
        self.send(reqwest::Method::POST, &url, &body, req, Sink::Webhook, on_attempt).await
    }

    /// Sends one JSON request for a sink with the push's retry policy
    /// (429 waits, 5xx and connection errors back off, a 401 refreshes the
    /// token once, a 403 names the missing permission; bounded attempts).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Value,
        req: &PushRequest,
        sink: Sink,
        on_attempt: &mut (dyn FnMut(PushAttempt) + Send),
    ) -> PushOutcome {
        let started = Instant::now();
        let max = self.config.max_attempts.max(1);
        let finish = |attempts: u32, status: Option<u16>, error: Option<String>| {
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            PushOutcome::of(req, sink, status, attempts, latency_ms, error)
        };
        let mut token = match self.auth.token().await {
            Ok(t) => t,
            Err(e) => return finish(0, None, Some(e.to_string())),
        };
        // `sent` counts HTTP requests; `budget` counts those charged against
        // `max_attempts` (a token refresh is not charged).
        let (mut sent, mut budget, mut refreshed) = (0u32, 0u32, false);
        loop {
            sent += 1;
            budget += 1;
            let answer = self
                .http
                .request(method.clone(), url)
                .header(reqwest::header::AUTHORIZATION, token.header())
                .json(body)
                .send()
                .await;
            let (status, verdict) = match answer {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
                    };
                    let hints = RateHints::parse(
                        header("retry-after").as_deref(),
                        header("inin-ratelimit-reset").as_deref(),
                    );
                    let text = resp.text().await.unwrap_or_default();
                    (
                        Some(code),
                        classify(code, hints, &text, budget, refreshed, &self.config.backoff, rand::random()),
                    )
                }
                Err(e) => {
                    let reason = NetError::from(e).to_string();
                    let after = backoff_delay(&self.config.backoff, budget, rand::random());
                    (None, Verdict::Retry { after, reason })
                }
            };
            match verdict {
                Verdict::Done => return finish(sent, status, None),
                Verdict::Fail { message } | Verdict::Forbidden { message } => {
                    return finish(sent, status, Some(message));
                }
                Verdict::RefreshToken => {
                    refreshed = true;
                    budget -= 1;
                    on_attempt(attempt(req, sink, sent, status, Some(0), "401, refreshing the token"));
                    match self.auth.refresh_after_401(&token).await {
                        Ok(t) => token = t,
                        Err(e) => return finish(sent, status, Some(e.to_string())),
                    }
                }
                Verdict::Retry { after, reason } => {
                    if budget >= max {
                        return finish(
                            sent,
                            status,
                            Some(format!("gave up after {sent} attempts: {reason}")),
                        );
                    }
                    let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                    on_attempt(attempt(req, sink, sent, status, Some(ms), &reason));
                    tokio::time::sleep(after).await;
                }
            }
        }
    }
    /// The API base URL (for the other REST sinks).
    pub fn base(&self) -> &str {
        &self.base
    }
}

fn attempt(
    req: &PushRequest,
    sink: Sink,
    attempt: u32,
    status: Option<u16>,
    retry_in_ms: Option<u64>,
    reason: &str,
) -> PushAttempt {
    PushAttempt {
        suggestion_id: req.suggestion_id.clone(),
        sink,
        attempt,
        status,
        retry_in_ms,
        reason: reason.to_string(),
    }
}
