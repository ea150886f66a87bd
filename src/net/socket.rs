//! One WebSocket connection lifetime: connect, decode frames, keep alive,
//! report, exit. Reconnecting is the caller's business (it knows about
//! channels, tokens and backoff); this task only says why it ended.
//!
//! Keep-alive follows Genesys's guidance: any frame counts as a sign of
//! life; after `ping_after` of silence the client sends `{"message":"ping"}`
//! (tutorial dialect: nothing, the server's heartbeats are echoed instead),
//! and if nothing at all arrives within `pong_timeout` after that, the
//! connection is declared dead.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::auth::{AccessToken, TokenSource};
use super::protocol::{self, DecodeError, Frame};
use super::{Backoff, Dialect, NetError, error_chain, policy, redact};

/// Keep-alive and size limits of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketConfig {
    pub connect_timeout: Duration,
    pub ping_after: Duration,
    pub pong_timeout: Duration,
    /// Largest WebSocket message accepted at all; larger ones end the
    /// connection. Frames over [`protocol::MAX_FRAME_BYTES`] but under this
    /// are skipped and the stream goes on.
    pub max_message_bytes: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // Genesys sends a heartbeat about every 30 s.
            ping_after: Duration::from_secs(45),
            pong_timeout: Duration::from_secs(15),
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a connection reports, tagged with its slot and generation so the
/// owner can ignore reports from connections it has replaced.
#[derive(Debug)]
pub enum SocketEvent {
    Opened { slot: usize, epoch: u64 },
    Frame { slot: usize, epoch: u64, frame: Frame },
    Discarded { slot: usize, epoch: u64, reason: String },
    Closed { slot: usize, epoch: u64, ended: SocketEnd },
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEnd {
    /// The server announced maintenance (`v2.system.socket_closing`).
    ServerClosing,
    /// The handshake was refused with 401: the token needs refreshing.
    Unauthorized,
    /// Anything else: connect failure, drop, silence, close frame.
    Lost(String),
}

/// When and why to reconnect after a socket ended: the one mapping both
/// dialects use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    pub delay: Duration,
    pub reason: String,
}

/// Decides the reconnect after `ended`, counting failures in `attempt`.
/// Maintenance reconnects at once without counting; a refused token is
/// refreshed (the first time at once, then with backoff, so a server that
/// keeps refusing is not hammered); anything else backs off. A failed
/// refresh that retrying can fix (network, 5xx, 429) backs off too; only a
/// permanent one (`invalid_client`, 401/403 from the login service) is
/// returned as an error, for the caller to report as failed.
pub async fn plan_reconnect(
    ended: SocketEnd,
    attempt: &mut u32,
    backoff: &Backoff,
    auth: &TokenSource,
    rejected: Option<&AccessToken>,
) -> Result<Reconnect, NetError> {
    let backed_off = |attempt: u32| policy::backoff_delay(backoff, attempt, rand::random());
    match ended {
        SocketEnd::ServerClosing => {
            Ok(Reconnect { delay: Duration::ZERO, reason: "server is closing the socket".into() })
        }
        SocketEnd::Unauthorized => {
            *attempt += 1;
            let refreshed = match rejected {
                Some(t) => auth.refresh_after_401(t).await,
                None => match auth.token().await {
                    Ok(t) => auth.refresh_after_401(&t).await,
                    Err(e) => Err(e),
                },
            };
            match refreshed {
                Ok(_) => {
                    let delay = if *attempt <= 1 { Duration::ZERO } else { backed_off(*attempt) };
                    Ok(Reconnect { delay, reason: "socket refused the token".into() })
                }
                Err(e) if e.is_permanent() => Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "token refresh failed; will retry");
                    Ok(Reconnect {
                        delay: backed_off(*attempt),
                        reason: format!("token refresh failed: {e}"),
                    })
                }
            }
        }
        SocketEnd::Lost(reason) => {
            *attempt += 1;
            Ok(Reconnect { delay: backed_off(*attempt), reason })
        }
    }
}

/// What to connect to and how to talk.
#[derive(Debug, Clone)]
pub struct SocketTarget {
    pub url: String,
    pub dialect: Dialect,
    pub slot: usize,
    pub epoch: u64,
}

/// Runs one connection to its end on a new task; abort the handle to stop it.
pub fn spawn_socket(
    target: SocketTarget,
    config: SocketConfig,
    tx: mpsc::Sender<SocketEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (slot, epoch) = (target.slot, target.epoch);
        let ended = run(&target, config, &tx).await;
        if let SocketEnd::Lost(reason) = &ended {
            tracing::info!(slot, epoch, %reason, "socket closed");
        }
        let _ = tx.send(SocketEvent::Closed { slot, epoch, ended }).await;
    })
}

async fn run(target: &SocketTarget, config: SocketConfig, tx: &mpsc::Sender<SocketEvent>) -> SocketEnd {
    let (slot, epoch) = (target.slot, target.epoch);
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    let connect = tokio_tungstenite::connect_async_with_config(target.url.as_str(), Some(ws_config), false);
    let mut ws = match tokio::time::timeout(config.connect_timeout, connect).await {
        Err(_) => return SocketEnd::Lost("connect timed out".into()),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) if resp.status().as_u16() == 401 => {
            return SocketEnd::Unauthorized;
        }
        Ok(Err(e)) => return SocketEnd::Lost(redact(&error_chain(&e))),
        Ok(Ok((ws, _))) => ws,
    };
    if target.dialect == Dialect::Tutorial
        && let Err(e) = ws.send(Message::text(protocol::TUTORIAL_SUBSCRIBE)).await
    {
        return SocketEnd::Lost(redact(&error_chain(&e)));
    }
    if tx.send(SocketEvent::Opened { slot, epoch }).await.is_err() {
        return SocketEnd::Lost("owner gone".into());
    }
    let decode: fn(&str) -> Result<Frame, DecodeError> = match target.dialect {
        Dialect::Notifications => protocol::decode_notification,
        Dialect::Tutorial => protocol::decode_tutorial,
    };
    let mut last_heard = Instant::now();
    let mut pinged_at: Option<Instant> = None;
    let mut check = tokio::time::interval((config.ping_after / 4).max(Duration::from_millis(10)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    None => return SocketEnd::Lost("server closed the connection".into()),
                    Some(Err(e)) => return SocketEnd::Lost(redact(&error_chain(&e))),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                        return SocketEnd::Lost(format!("server closed the connection {why}").trim().to_string());
                    }
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => {
                        last_heard = Instant::now();
                        pinged_at = None;
                        let reason = format!("binary frame of {} bytes", b.len());
                        let _ = tx.send(SocketEvent::Discarded { slot, epoch, reason }).await;
                        continue;
                    }
                    // RFC 6455 pings are answered by tungstenite itself.
                    Some(Ok(_)) => continue,
                };
                last_heard = Instant::now();
                pinged_at = None;
                match decode(text.as_str()) {
                    Ok(Frame::SocketClosing) => return SocketEnd::ServerClosing,
                    Ok(Frame::Heartbeat) if target.dialect == Dialect::Tutorial => {
                        // The tutorial server expects its heartbeat echoed.
                        if let Err(e) = ws.send(Message::text(protocol::TUTORIAL_HEARTBEAT)).await {
                            return SocketEnd::Lost(redact(&error_chain(&e)));
                        }
                        if tx.send(SocketEvent::Frame { slot, epoch, frame: Frame::Heartbeat }).await.is_err() {
                            return SocketEnd::Lost("owner gone".into());
                        }
                    }
                    Ok(frame) => {
                        if tx.send(SocketEvent::Frame { slot, epoch, frame }).await.is_err() {
                            return SocketEnd::Lost("owner gone".into());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(slot, error = %e, "discarded a frame");
                        let _ = tx.send(SocketEvent::Discarded { slot, epoch, reason: e.to_string() }).await;
                    }
                }
            }
            _ = check.tick() => {
                let quiet = last_heard.elapsed();
                match pinged_at {
                    Some(at) if at.elapsed() >= config.pong_timeout => {
                        return SocketEnd::Lost(format!("no heartbeat or pong for {:.1} s", quiet.as_secs_f64()));
                    }
                    None if quiet >= config.ping_after => {
                        pinged_at = Some(Instant::now());
                        // The tutorial dialect has no ping; its heartbeat echo stands in.
                        let ping = match target.dialect {
                            Dialect::Notifications => protocol::PING,
                            Dialect::Tutorial => protocol::TUTORIAL_HEARTBEAT,
                        };
                        if let Err(e) = ws.send(Message::text(ping)).await {
                            return SocketEnd::Lost(redact(&error_chain(&e)));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
