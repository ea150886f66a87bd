//! OAuth client credentials with a shared token cache.
//!
//! Real Genesys: `POST https://login.{region}/oauth/token` with HTTP Basic
//! credentials and `grant_type=client_credentials`. Tutorial dialect: `POST
//! {base}/oauth/token` with the credentials in the form body. The token is
//! refreshed at 80% of `expires_in`; the cache sits behind an async mutex
//! held across the fetch, so however many tasks ask at once, one request
//! goes out and the rest get its result. A 401 elsewhere calls
//! [`TokenSource::refresh_after_401`], which refreshes only if nobody already
//! replaced the rejected token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use super::policy::server_message;
use super::{Dialect, Endpoint, NetError, Secret};

/// A bearer token and which fetch produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: Secret,
    /// Increases with every fetch; tells a stale token from a fresh one.
    pub generation: u64,
}

impl AccessToken {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.value.expose())
    }
}

/// What the status bar shows about the token (never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenInfo {
    pub expires_at: Option<SystemTime>,
    pub fetched: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    /// Seconds; read as a float so a fractional, negative or huge value is
    /// handled here rather than failing the whole response.
    expires_in: Option<f64>,
}

/// The lifetime a token response claims: Genesys's default 24 h when the
/// server is silent, at least a second, and at most [`MAX_TOKEN_LIFETIME`]
/// (a larger claim would only postpone the refresh past anything useful).
fn lifetime(expires_in: Option<f64>) -> Duration {
    let secs = expires_in.filter(|s| !s.is_nan()).unwrap_or(86_400.0);
    crate::duration::from_secs_f64(secs.max(1.0)).unwrap_or(MAX_TOKEN_LIFETIME).min(MAX_TOKEN_LIFETIME)
}

/// The longest token lifetime believed: a year.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// The shared token cache. Cheap to clone behind an `Arc`.
pub struct TokenSource {
    http: reqwest::Client,
    endpoint: Endpoint,
    cache: Mutex<Option<Cached>>,
    generation: AtomicU64,
    info: watch::Sender<TokenInfo>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, endpoint: Endpoint) -> Arc<Self> {
        Arc::new(Self {
            http,
            endpoint,
            cache: Mutex::new(None),
            generation: AtomicU64::new(0),
            info: watch::channel(TokenInfo::default()).0,
        })
    }

    /// Token expiry and fetch count, for display.
    pub fn watch(&self) -> watch::Receiver<TokenInfo> {
        self.info.subscribe()
    }

    /// The cached token, fetching a new one if there is none or it is past
    /// 80% of its lifetime.
    pub async fn token(&self) -> Result<AccessToken, NetError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// After a 401 with `rejected`: fetch a new token unless another task
    /// already did, in which case that one is returned.
    pub async fn refresh_after_401(&self, rejected: &AccessToken) -> Result<AccessToken, NetError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| c.token.generation > rejected.generation) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self) -> Result<Cached, NetError> {
        let e = &self.endpoint;
        let request = match e.dialect {
            Dialect::Notifications => {
                let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    e.client_id,
                    e.client_secret.expose()
                ));
                self.http
                    .post(format!("{}/oauth/token", e.login_base.trim_end_matches('/')))
                    .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
                    .form(&[("grant_type", "client_credentials")])
            }
            // The original design's form: credentials and scope in the body.
            Dialect::Tutorial => {
                self.http.post(format!("{}/oauth/token", e.api_base.trim_end_matches('/'))).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", e.client_id.as_str()),
                    ("client_secret", e.client_secret.expose()),
                    ("scope", "interaction:read agentassist:write"),
                ])
            }
        };
        let started = Instant::now();
        let resp = request.send().await.map_err(|err| match NetError::from(err) {
            NetError::Connect { message, .. } => {
                NetError::Connect { what: "the login service".into(), message }
            }
            other => other,
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(NetError::from)?;
        if !(200..300).contains(&status) {
            return Err(NetError::Auth { status, message: server_message(&body) });
        }
        let parsed: TokenResponse = serde_json::from_str(&body)
            .map_err(|_| NetError::Protocol { message: "token response is not JSON".into() })?;
        let value = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| NetError::Protocol { message: "token response has no access_token".into() })?;
        let lifetime = lifetime(parsed.expires_in);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.info.send_replace(TokenInfo {
            expires_at: SystemTime::now().checked_add(lifetime),
            fetched: generation,
        });
        tracing::info!(expires_in_s = lifetime.as_secs(), generation, "obtained access token");
        Ok(Cached {
            token: AccessToken { value: Secret::new(value), generation },
            refresh_at: crate::duration::deadline(started, crate::duration::scale(lifetime, 0.8)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_expires_in_gives_a_usable_lifetime() {
        assert_eq!(lifetime(Some(3600.0)), Duration::from_secs(3600));
        assert_eq!(lifetime(None), Duration::from_secs(86_400));
        assert_eq!(lifetime(Some(-5.0)), Duration::from_secs(1));
        assert_eq!(lifetime(Some(f64::NAN)), Duration::from_secs(86_400));
        for huge in [1e20, 1.8e19, f64::INFINITY] {
            assert_eq!(lifetime(Some(huge)), MAX_TOKEN_LIFETIME);
        }
        let parsed: TokenResponse =
            serde_json::from_str(r#"{"access_token":"t","expires_in":18446744073709551615}"#).unwrap();
        let start = Instant::now();
        let _ = crate::duration::deadline(start, crate::duration::scale(lifetime(parsed.expires_in), 0.8));
    }
}
