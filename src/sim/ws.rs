//! The simulator's WebSockets: the notifications streaming socket at a
//! channel's `connectUri`, and the tutorial dialect's socket. Each
//! connection has one task that sends queued events (applying the socket
//! faults), heartbeats, and answers pings.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::api::{error, token_valid};
use super::fault::Fault;
use super::state::{Outbound, Shared};
use crate::net::Dialect;

const HEARTBEAT: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
const PONG: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;
const SOCKET_CLOSING: &str = r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"This socket is closing for maintenance; reconnect within a minute."},"metadata":{"CorrelationId":"sim"}}"#;
const TUTORIAL_HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;
/// How long a socket lives after announcing `socket_closing`.
const CLOSING_GRACE: Duration = Duration::from_secs(60);

/// A 503 for any socket while a simulated outage lasts.
fn refuse_during_outage(sim: &Shared) -> Option<Response> {
    sim.outage
        .load(std::sync::atomic::Ordering::SeqCst)
        .then(|| error(StatusCode::SERVICE_UNAVAILABLE, "service.unavailable", "simulated outage"))
}

/// `GET /channels/{id}`: the streaming socket of a notification channel.
pub async fn channel_socket(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = refuse_during_outage(&sim) {
        return refused;
    }
    let exists = sim.lock().channels.get(&id).is_some_and(|c| c.expires > std::time::SystemTime::now());
    if !exists {
        return error(StatusCode::NOT_FOUND, "not.found", "channel not found");
    }
    upgrade.on_upgrade(move |socket| async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = sim.next_conn_id();
        let replaced = sim.lock().channels.get_mut(&id).and_then(|c| c.conn.replace((conn, tx)));
        if let Some((_, old)) = replaced {
            // One connection per channel: the newer one wins.
            let _ = old.send(Outbound::Replaced);
        }
        Shared::bump(&sim.counters.ws_connections);
        sim.changed.notify_waiters();
        serve(&sim, socket, rx, Dialect::Notifications).await;
        if let Some(c) = sim.lock().channels.get_mut(&id)
            && c.conn.as_ref().is_some_and(|(n, _)| *n == conn)
        {
            c.conn = None;
        }
        sim.changed.notify_waiters();
    })
}

#[derive(Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

/// `GET /api/v2/interactions/events/websocket?access_token=...`: the tutorial socket.
pub async fn tutorial_socket(
    State(sim): State<Arc<Shared>>,
    Query(q): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = refuse_during_outage(&sim) {
        return refused;
    }
    if !q.access_token.as_deref().is_some_and(|t| token_valid(&sim, t)) {
        Shared::bump(&sim.counters.served_401);
        return error(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials.");
    }
    upgrade.on_upgrade(move |mut socket| async move {
        Shared::bump(&sim.counters.ws_connections);
        // Nothing is sent until the client subscribes.
        let subscribed = loop {
            match socket.recv().await {
                Some(Ok(Message::Text(t)))
                    if t.contains("interaction:transcript") && t.contains("subscribe") =>
                {
                    break true;
                }
                Some(Ok(_)) => {}
                _ => break false,
            }
        };
        if !subscribed {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = sim.next_conn_id();
        sim.lock().tutorial.insert(conn, tx);
        sim.changed.notify_waiters();
        serve(&sim, socket, rx, Dialect::Tutorial).await;
        sim.lock().tutorial.remove(&conn);
        sim.changed.notify_waiters();
    })
}

/// Malformed frames, in turn: broken JSON, an unknown topic, a 2 MiB frame,
/// a binary frame, a known topic with the wrong body shape.
fn malformed(n: u64) -> Message {
    match n % 5 {
        0 => Message::text(r#"{"topicName":"v2.conversations.broken"#),
        1 => Message::text(
            r#"{"topicName":"v2.users.sim-agent.presence","eventBody":{"presenceDefinition":{"systemPresence":"Available"}}}"#,
        ),
        2 => Message::text(format!(
            r#"{{"topicName":"v2.sim.padding","eventBody":{{"pad":"{}"}}}}"#,
            "x".repeat(2 * 1024 * 1024)
        )),
        3 => Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()),
        _ => Message::text(
            r#"{"topicName":"v2.conversations.sim.transcription","eventBody":{"transcripts":"not-a-list"}}"#,
        ),
    }
}

async fn serve(sim: &Shared, socket: WebSocket, mut rx: mpsc::UnboundedReceiver<Outbound>, dialect: Dialect) {
    let (mut sink, mut stream) = socket.split();
    let opened = Instant::now();
    let heartbeat_stop = sim.faults.iter().find_map(|f| match f.fault {
        Fault::HeartbeatStop { after } => Some((f, after)),
        _ => None,
    });
    let mut stop_counted = false;
    let mut silenced = || match heartbeat_stop {
        Some((f, after)) if opened.elapsed() >= after => {
            if !stop_counted {
                stop_counted = true;
                f.injected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            true
        }
        _ => false,
    };
    let mut beat = tokio::time::interval(sim.settings.heartbeat.max(Duration::from_millis(10)));
    beat.tick().await;
    let mut closing_at: Option<Instant> = None;
    loop {
        let deadline = closing_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            out = rx.recv() => {
                let frame = match out {
                    Some(Outbound::Event(f)) => f,
                    Some(Outbound::Replaced) | None => {
                        let _ = sink.send(Message::Close(None)).await;
                        return;
                    }
                };
                // A silenced (zombie) connection swallows everything.
                if silenced() {
                    continue;
                }
                if sink.send(Message::text(frame.clone())).await.is_err() {
                    return;
                }
                Shared::bump(&sim.counters.frames_sent);
                for f in &sim.faults {
                    let extra = match f.fault {
                        Fault::SocketClosing { every } if dialect == Dialect::Notifications && f.fires(every) => {
                            closing_at.get_or_insert(Instant::now() + CLOSING_GRACE);
                            Some(Message::text(SOCKET_CLOSING))
                        }
                        Fault::WsMalformed { every } if f.fires(every) => {
                            Some(malformed(f.injected.load(std::sync::atomic::Ordering::Relaxed)))
                        }
                        Fault::WsDuplicate { every } if frame.contains("transcript") && f.fires(every) => {
                            Some(Message::text(frame.clone()))
                        }
                        // Drop without a close frame, as a broken network would.
                        Fault::WsDrop { every } if f.fires(every) => return,
                        _ => None,
                    };
                    if let Some(m) = extra
                        && sink.send(m).await.is_err()
                    {
                        return;
                    }
                }
            }
            _ = beat.tick() => {
                if !silenced() {
                    let hb = if dialect == Dialect::Notifications { HEARTBEAT } else { TUTORIAL_HEARTBEAT };
                    if sink.send(Message::text(hb)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                let _ = sink.send(Message::Close(None)).await;
                return;
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let is_ping = t.contains(r#""message":"ping""#) || t.contains(r#""message": "ping""#);
                    if dialect == Dialect::Notifications && is_ping && !silenced() {
                        Shared::bump(&sim.counters.pings_answered);
                        if sink.send(Message::text(PONG)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
