//! The REST calls the stream makes (notification channels and
//! subscriptions, and the analytics query that catches up after a gap) over
//! one pooled HTTP client, with the shared token and one refresh-and-retry
//! on 401.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;

use super::auth::TokenSource;
use super::catchup::DetailsPage;
use super::policy::{missing_permissions, server_message};
use super::protocol::{Channel, Topic, TopicListing};
use super::{NetError, redact};

/// Builds the one HTTP client a process uses: pooled, with timeouts.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, NetError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("agent-assist/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NetError::Protocol { message: redact(&e.to_string()) })
}

/// REST access to the org's API.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    auth: Arc<TokenSource>,
}

impl Rest {
    pub fn new(http: reqwest::Client, api_base: &str, auth: Arc<TokenSource>) -> Self {
        Self { http, base: api_base.trim_end_matches('/').to_string(), auth }
    }

    pub fn auth(&self) -> &Arc<TokenSource> {
        &self.auth
    }

    /// Sends an authorised request; on a 401, refreshes the token once and
    /// retries once. Returns the status and body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(u16, String), NetError> {
        let url = format!("{}{path}", self.base);
        let mut token = self.auth.token().await?;
        for retried in [false, true] {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::AUTHORIZATION, token.header());
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            match status {
                200..=299 => return Ok((status, text)),
                401 if !retried => token = self.auth.refresh_after_401(&token).await?,
                401 => {
                    return Err(NetError::Unauthorized { message: server_message(&text) });
                }
                403 => {
                    let perms = missing_permissions(&text);
                    let message = if perms.is_empty() {
                        format!("{method} {path}: {}", server_message(&text))
                    } else {
                        format!("{method} {path} needs permission {}", perms.join(", "))
                    };
                    return Err(NetError::Forbidden { message });
                }
                _ => {
                    return Err(NetError::Status { status, message: server_message(&text) });
                }
            }
        }
        Err(NetError::Unauthorized { message: "token refresh did not help".into() })
    }

    /// `POST /api/v2/notifications/channels`.
    pub async fn create_channel(&self) -> Result<Channel, NetError> {
        let (_, body) = self.call(Method::POST, "/api/v2/notifications/channels", None::<&()>).await?;
        serde_json::from_str(&body).map_err(|e| NetError::Protocol { message: format!("channel: {e}") })
    }

    /// `HEAD /api/v2/notifications/channels/{id}`: whether it still exists.
    pub async fn channel_exists(&self, channel: &str) -> Result<bool, NetError> {
        match self.call(Method::HEAD, &format!("/api/v2/notifications/channels/{channel}"), None::<&()>).await
        {
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
        let path = format!("/api/v2/notifications/channels/{channel}/subscriptions?ignoreErrors=false");
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
        let path = format!("/api/v2/notifications/channels/{channel}/subscriptions");
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
