//! Floor mode: many workers and consoles on one NATS JetStream server (or
//! cluster). Workers run the headless pipeline for the queues they hold a
//! lease on ([`lease`]), publish every event to one stream ([`bus`]), keep
//! the ledger's records in a KV bucket ([`kv_ledger`]) so another worker can
//! take a queue over, and answer operator commands by request/reply
//! ([`worker`]). Consoles only read the stream and send commands
//! ([`console`]). Every worker serves every call's agent widget page, fed
//! from the stream ([`widget`]); both read it through [`replay`]. None of
//! this is used in the single-process mode.
//!
//! On the server: a stream `<PREFIX>_EVENTS` on `<prefix>.v1.*.*.*`
//! (age-limited), a KV bucket `<PREFIX>_leases` (max age = lease TTL) and a
//! KV bucket `<PREFIX>_ledger` (max age = ledger retention). The first
//! worker makes them with its settings; the others use them as they are.

pub mod bus;
pub mod config;
pub mod console;
pub mod dashboard;
pub mod kv_ledger;
pub mod lease;
pub mod model;
pub mod replay;
pub mod subject;
pub mod widget;
pub mod worker;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::sync::mpsc;

pub use config::NatsConfig;

/// How long a JetStream request (publish ack, KV write) may take before it
/// counts as failed: short, so an outage is noticed quickly.
const JS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the floor cannot be joined.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error("no NATS server given: pass --nats URL or set nats.url")]
    NoUrl,
    #[error("cannot reach the NATS server at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS credentials file {path}: {message}")]
    Creds { path: std::path::PathBuf, message: String },
    #[error("NATS JetStream ({what}): {message} (is the server started with -js?)")]
    JetStream { what: &'static str, message: String },
    #[error("floor mode needs the `notifications` dialect (queues decide who follows a call)")]
    Dialect,
}

/// The connection's link state, as a console or worker shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Down,
}

/// A connection to the floor and its JetStream objects.
#[derive(Clone)]
pub struct Floor {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub prefix: String,
    pub events_stream: String,
}

/// A worker's KV buckets.
pub struct Buckets {
    pub leases: kv::Store,
    pub ledger: kv::Store,
}

/// Connects with the configured credentials and TLS; link changes go to
/// `link`. The client reconnects by itself, forever.
pub async fn connect(
    cfg: &NatsConfig,
    url: &str,
    name: &str,
    link: mpsc::UnboundedSender<Link>,
) -> Result<async_nats::Client, FloorError> {
    if url.trim().is_empty() {
        return Err(FloorError::NoUrl);
    }
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(JS_TIMEOUT))
        .retry_on_initial_connect()
        // Reconnect quickly after an outage: the floor is on a LAN.
        .reconnect_delay_callback(|attempts| Duration::from_millis((100 * attempts as u64).min(1_000)))
        .event_callback(move |ev| {
            let link = link.clone();
            async move {
                match ev {
                    async_nats::Event::Connected => {
                        let _ = link.send(Link::Up);
                    }
                    async_nats::Event::Disconnected => {
                        let _ = link.send(Link::Down);
                    }
                    // Server messages can name the account, never a secret.
                    other => tracing::info!(event = %other, "nats"),
                }
            }
        });
    if !cfg.user.is_empty() {
        opts = opts.user_and_password(cfg.user.clone(), cfg.password.expose().to_string());
    }
    if !cfg.token.is_empty() {
        opts = opts.token(cfg.token.expose().to_string());
    }
    if let Some(path) = &cfg.creds_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| FloorError::Creds { path: path.clone(), message: e.to_string() })?;
    }
    if let Some(ca) = &cfg.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    } else if cfg.tls_required {
        opts = opts.require_tls(true);
    }
    // With retry_on_initial_connect the first connection is made in the
    // background; wait for it a while so a wrong URL is reported.
    // A cluster is given as a comma-separated list; the client fails over.
    let servers: Vec<&str> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| FloorError::Connect { url: redact(url), message: e.to_string() })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() >= deadline {
            return Err(FloorError::Connect { url: redact(url), message: "no answer within 10 s".into() });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client)
}

/// A URL without any `user:password@` part, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.rsplit_once('@').map_or_else(|| url.to_string(), |(_, h)| format!("***@{h}")),
    }
}

impl Floor {
    /// Creates (or opens) the events stream.
    pub async fn open(client: async_nats::Client, cfg: &NatsConfig) -> Result<Self, FloorError> {
        let js = jetstream::ContextBuilder::new().timeout(JS_TIMEOUT).build(client.clone());
        let err =
            |what| move |e: &dyn std::fmt::Display| FloorError::JetStream { what, message: e.to_string() };
        let upper = cfg.prefix.to_ascii_uppercase();
        let events_stream = format!("{upper}_EVENTS");
        let made = js
            .get_or_create_stream(stream::Config {
                name: events_stream.clone(),
                subjects: vec![subject::all_events(&cfg.prefix)],
                max_age: cfg.events_max_age(),
                storage: stream::StorageType::File,
                // Retried publishes carry the same message id.
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await;
        if let Err(e) = made {
            // Made at the same moment by a member with other settings.
            js.get_stream(&events_stream).await.map_err(|_| err("events stream")(&e))?;
        }
        Ok(Self { client, js, prefix: cfg.prefix.clone(), events_stream })
    }

    /// Creates (or opens) the lease and ledger buckets: workers only, so
    /// the lease TTL is always a worker's (the first one's).
    pub async fn buckets(&self, cfg: &NatsConfig, ledger_retention: Duration) -> Result<Buckets, FloorError> {
        let upper = cfg.prefix.to_ascii_uppercase();
        let leases =
            open_bucket(&self.js, format!("{upper}_leases"), cfg.lease_ttl(), "lease bucket").await?;
        let ledger =
            open_bucket(&self.js, format!("{upper}_ledger"), ledger_retention, "ledger bucket").await?;
        Ok(Buckets { leases, ledger })
    }
}

async fn open_bucket(
    js: &jetstream::Context,
    bucket: String,
    max_age: Duration,
    what: &'static str,
) -> Result<kv::Store, FloorError> {
    let err = |e: &dyn std::fmt::Display| FloorError::JetStream { what, message: e.to_string() };
    // The first member on the floor makes the bucket with its settings;
    // the others use it as it is.
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    // The bucket's stream is made here rather than by `create_key_value`,
    // which first reads the account info in a shape the 2.9 servers (the
    // Debian package) do not send. The settings are the KV convention's.
    let made = js
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await;
    match (made, js.get_key_value(&bucket).await) {
        (_, Ok(store)) => Ok(store),
        // Made by another member at the same moment, or truly failed.
        (Err(e), Err(_)) => Err(err(&e)),
        (Ok(_), Err(e)) => Err(err(&e)),
    }
}

/// A name for this process on the floor: host, pid and a random suffix.
pub fn member_id(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "host".to_string() } else { host };
    format!("{role}-{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}
