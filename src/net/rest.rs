//! The REST calls the stream makes (notification channels and
//! subscriptions, and the analytics query that catches up after a gap) over
//! one pooled HTTP client, with the shared token, one refresh-and-retry on
//! 401, and the push's retry classification for 429 and 5xx, bounded.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;

use super::auth::TokenSource;
use super::catchup::DetailsPage;
use super::policy::{RateHints, Verdict, backoff_delay, classify, missing_permissions, server_message};
use super::protocol::{Channel, Topic, TopicListing};
use super::{Backoff, NetError, path_segment, redact};

/// A server-given id as a path segment, or a protocol error.
fn segment(id: &str) -> Result<String, NetError> {
    path_segment(id)
        .ok_or_else(|| NetError::Protocol { message: format!("`{id}` cannot be used as an id in a URL") })
}

/// Builds the one HTTP client a process uses: pooled, with timeouts.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, NetError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("agent-assist/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NetError::Protocol { message: redact(&e.to_string()) })
}

/// How REST calls retry a 429, a 5xx or a refused connection: the push's
/// classification ([`classify`]) with a smaller bound, since the stream
/// waits for these calls and has its own reconnect loop behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestRetry {
    /// Requests per call at most (a token refresh is not counted).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// A longer `Retry-After` fails the call (as a transient error) rather
    /// than stalling the stream.
    pub max_wait: Duration,
}

impl Default for RestRetry {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(4) },
            max_wait: Duration::from_secs(30),
        }
    }
}

/// REST access to the org's API.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    auth: Arc<TokenSource>,
    retry: RestRetry,
}

impl Rest {
    pub fn new(http: reqwest::Client, api_base: &str, auth: Arc<TokenSource>) -> Self {
        Self { http, base: api_base.trim_end_matches('/').to_string(), auth, retry: RestRetry::default() }
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RestRetry) -> Self {
        self.retry = retry;
        self
    }

    pub fn auth(&self) -> &Arc<TokenSource> {
        &self.auth
    }

    /// Sends an authorised request. A 401 refreshes the token once; a 429
    /// waits for `Retry-After` (or backs off), a 5xx or a refused
    /// connection backs off, up to `max_attempts`. Returns the status and
    /// body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(u16, String), NetError> {
        let url = format!("{}{path}", self.base);
        let mut token = self.auth.token().await?;
        let (mut attempt, mut refreshed) = (0u32, false);
        let max = self.retry.max_attempts.max(1);
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::AUTHORIZATION, token.header());
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let err = NetError::from(e);
                    // A timeout may have reached the server: not repeated here.
                    if attempt >= max || !matches!(err, NetError::Connect { .. }) {
                        return Err(err);
                    }
                    let after = backoff_delay(&self.retry.backoff, attempt, rand::random());
                    tracing::warn!(%method, path, attempt, error = %err, "REST call failed; retrying");
                    tokio::time::sleep(after).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let header =
                |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let hints =
                RateHints::parse(header("retry-after").as_deref(), header("inin-ratelimit-reset").as_deref());
            let text = resp.text().await.unwrap_or_default();
            match classify(status, hints, &text, attempt, refreshed, &self.retry.backoff, rand::random()) {
                Verdict::Done => return Ok((status, text)),
                Verdict::RefreshToken => {
                    refreshed = true;
                    attempt -= 1;
                    token = self.auth.refresh_after_401(&token).await?;
                }
                Verdict::Retry { after, reason } if attempt < max && after <= self.retry.max_wait => {
                    let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                    tracing::warn!(%method, path, attempt, after_ms, %reason, "REST call refused; retrying");
                    tokio::time::sleep(after).await;
                }
                Verdict::Retry { .. } => {
                    return Err(NetError::Status { status, message: server_message(&text) });
                }
                Verdict::Forbidden { .. } => {
                    let perms = missing_permissions(&text);
                    let message = if perms.is_empty() {
                        format!("{method} {path}: {}", server_message(&text))
                    } else {
                        format!("{method} {path} needs permission {}", perms.join(", "))
                    };
                    return Err(NetError::Forbidden { message });
                }
                Verdict::Fail { .. } if status == 401 => {
                    return Err(NetError::Unauthorized { message: server_message(&text) });
                }
                Verdict::Fail { .. } => {
                    return Err(NetError::Status { status, message: server_message(&text) });
                }
            }
        }
    }

    /// `POST /api/v2/notifications/channels`.
    pub async fn create_channel(&self) -> Result<Channel, NetError> {
        let (_, body) = self.call(Method::POST, "/api/v2/notifications/channels", None::<&()>).await?;
        serde_json::from_str(&body).map_err(|e| NetError::Protocol { message: format!("channel: {e}") })
    }

    /// `HEAD /api/v2/notifications/channels/{id}`: whether it still exists.
    pub async fn channel_exists(&self, channel: &str) -> Result<bool, NetError> {
        let path = format!("/api/v2/notifications/channels/{}", segment(channel)?);
        match self.call(Method::HEAD, &path, None::<&()>).await {
            Ok(_) => Ok(true),
            Err(NetError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST .../subscriptions`: adds topics to the channel's list.
    pub async fn add_topics(&self, channel: &str, topics: &[String]) -> Result<(), NetError> {
        self.topics(Method::POST, channel, topics).await
    }

    /// `PUT .../subscriptions`: replaces the channel's whole list.
    pub async fn replace_topics(&self, channel: &str, topics: &[String]) -> Result<(), NetError> {
        self.topics(Method::PUT, channel, topics).await
    }

    async fn topics(&self, method: Method, channel: &str, topics: &[String]) -> Result<(), NetError> {
        let body: Vec<Topic> = topics.iter().map(Topic::new).collect();
        let path =
            format!("/api/v2/notifications/channels/{}/subscriptions?ignoreErrors=false", segment(channel)?);
        let (_, text) = self.call(method, &path, Some(body.as_slice())).await?;
        // With ignoreErrors=false a refusal is an HTTP error, but be strict
        // about topics reported as rejected too.
        if let Ok(listing) = serde_json::from_str::<TopicListing>(&text)
            && let Some(t) = listing.entities.iter().find(|t| t.state.as_deref() == Some("Rejected"))
        {
            let perms = t.missing_permissions.clone().unwrap_or_default().join(", ");
            return Err(NetError::Forbidden {
                message: format!(
                    "subscription to {} rejected: {} {perms}",
                    t.id,
                    t.rejection_reason.as_deref().unwrap_or("")
                ),
            });
        }
        Ok(())
    }

    /// `GET .../subscriptions`.
    pub async fn list_topics(&self, channel: &str) -> Result<Vec<Topic>, NetError> {
        let path = format!("/api/v2/notifications/channels/{}/subscriptions", segment(channel)?);
        let (_, text) = self.call(Method::GET, &path, None::<&()>).await?;
        let listing: TopicListing = serde_json::from_str(&text)
            .map_err(|e| NetError::Protocol { message: format!("subscriptions: {e}") })?;
        Ok(listing.entities)
    }

    /// `POST /api/v2/analytics/conversations/details/query`: one page.
    pub async fn conversation_details(&self, query: &serde_json::Value) -> Result<DetailsPage, NetError> {
        let path = "/api/v2/analytics/conversations/details/query";
        let (_, text) = self.call(Method::POST, path, Some(query)).await?;
        serde_json::from_str(&text)
            .map_err(|e| NetError::Protocol { message: format!("conversation details: {e}") })
    }
}
