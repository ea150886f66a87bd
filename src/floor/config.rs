//! `[nats]`: where the floor's NATS server is, how to authenticate to it,
//! and the floor's timings (lease TTL, event retention, publish buffer)
//! and whether queues are rebalanced onto workers that join later.
//! Nothing here is used in the single-process mode.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::net::Secret;

/// `[nats]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`--nats` overrides it).
    pub url: String,
    /// User and password authentication (both or neither).
    pub user: String,
    pub password: Secret,
    /// Token authentication.
    pub token: Secret,
    /// An nkey/JWT credentials file (`.creds`).
    pub creds_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust; turns TLS on.
    pub tls_ca: Option<PathBuf>,
    /// Require TLS even without a CA file (system roots).
    pub tls_required: bool,
    /// How long a queue's lease lives without renewal, in milliseconds;
    /// a dead worker's queues move after about this long.
    pub lease_ttl_ms: u64,
    /// How long the floor's events stay in the stream, in seconds.
    pub events_max_age_s: u64,
    /// Events a worker keeps while the server is unreachable; beyond
    /// this, newer events are dropped (and counted).
    pub publish_buffer: usize,
    /// Prefix of the stream and buckets' names, to run several floors on
    /// one server.
    pub prefix: String,
    /// A worker above its fair share gives queues back to a worker that
    /// joined later (one per lease round); `false` leaves queues where they
    /// are until their worker stops.
    pub rebalance: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            user: String::new(),
            password: Secret::default(),
            token: Secret::default(),
            creds_file: None,
            tls_ca: None,
            tls_required: false,
            lease_ttl_ms: 10_000,
            events_max_age_s: 3_600,
            publish_buffer: 50_000,
            prefix: "aa".into(),
            rebalance: true,
        }
    }
}

impl NatsConfig {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    pub fn events_max_age(&self) -> Duration {
        Duration::from_secs(self.events_max_age_s)
    }

    /// Checks the section; the message names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("nats.{k}"), m.to_string()));
        if self.lease_ttl_ms < 500 {
            return bad("lease_ttl_ms", "must be at least 500 (a lease is renewed every third of it)");
        }
        if self.events_max_age_s == 0 {
            return bad("events_max_age_s", "must be at least 1");
        }
        if self.publish_buffer == 0 {
            return bad("publish_buffer", "must be at least 1");
        }
        if self.user.is_empty() != self.password.is_empty() {
            return bad("user", "give both `user` and `password`, or neither");
        }
        if self.prefix.is_empty() || !self.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return bad("prefix", "must be letters, digits or `_`");
        }
        Ok(())
    }
}
