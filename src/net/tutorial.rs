//! The transcript stream in the `tutorial` dialect: the original design
//! document's contract. Token from `{base}/oauth/token`, WebSocket at
//! `{base}/api/v2/interactions/events/websocket?access_token=...`, a
//! `{"subscribe":["interaction:transcript"]}` message, cumulative transcript
//! events, and heartbeats echoed back. Reconnects with backoff, jitter and
//! a fresh token, like the notifications stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::auth::TokenSource;
use super::cumulative::Cumulative;
use super::protocol::Frame;
use super::socket::{Reconnect, SocketConfig, SocketEvent, SocketTarget, plan_reconnect, spawn_socket};
use super::stream::{StreamCommand, StreamHandle};
use super::{Backoff, Dialect, policy};
use crate::domain::{ConnectionState, StreamEvent};

/// An interaction with no event for this long is forgotten: the dialect has
/// no end-of-call signal, and memory must stay bounded.
const IDLE_FORGET: Duration = Duration::from_secs(30 * 60);

/// The tutorial WebSocket URL for an API base (`http` becomes `ws`); the
/// token is form-encoded, so whatever the server issued stays one value.
pub fn websocket_url(api_base: &str, token: &str) -> String {
    let base = api_base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    let query =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("access_token", token).finish();
    format!("{ws}/api/v2/interactions/events/websocket?{query}")
}

/// Starts the tutorial-dialect stream; events go to `out`.
pub fn spawn_tutorial(
    auth: Arc<TokenSource>,
    api_base: String,
    socket: SocketConfig,
    backoff: Backoff,
    out: mpsc::Sender<StreamEvent>,
) -> StreamHandle {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        tokio::select! {
            () = token.cancelled() => {}
            () = run(auth, api_base, socket, backoff, out, commands_rx) => {}
        }
    });
    StreamHandle { cancel, task, commands }
}

async fn run(
    auth: Arc<TokenSource>,
    api_base: String,
    socket: SocketConfig,
    backoff: Backoff,
    out: mpsc::Sender<StreamEvent>,
    mut commands: mpsc::UnboundedReceiver<StreamCommand>,
) {
    let emit = |ev| {
        let out = out.clone();
        async move {
            let _ = out.send(ev).await;
        }
    };
    emit(StreamEvent::Connection(ConnectionState::Connecting)).await;
    let mut cumulative = Cumulative::default();
    let mut last_seen: HashMap<String, Instant> = HashMap::new();
    let (tx, mut rx) = mpsc::channel(256);
    let (mut attempt, mut epoch) = (0u32, 0u64);
    loop {
        let delay;
        let reason;
        match auth.token().await {
            Err(e) if e.is_permanent() => {
                tracing::error!(error = %e, "tutorial stream stopped");
                emit(StreamEvent::Connection(ConnectionState::Failed { reason: e.to_string() })).await;
                return;
            }
            Err(e) => {
                attempt += 1;
                delay = policy::backoff_delay(&backoff, attempt, rand::random());
                reason = e.to_string();
            }
            Ok(token) => {
                epoch += 1;
                let url = websocket_url(&api_base, token.value.expose());
                let target = SocketTarget { url, dialect: Dialect::Tutorial, slot: 0, epoch };
                let handle = spawn_socket(target, socket, tx.clone());
                let ended = loop {
                    let ev = tokio::select! {
                        ev = rx.recv() => ev,
                        Some(cmd) = commands.recv() => {
                            // No topics here: forgetting the call is unfollowing it.
                            let StreamCommand::Unfollow { conversation_id: id } = cmd;
                            cumulative.forget(&id);
                            last_seen.remove(&id);
                            continue;
                        }
                    };
                    let Some(ev) = ev else { return };
                    match ev {
                        SocketEvent::Opened { epoch: g, .. } if g == epoch => {
                            attempt = 0;
                            emit(StreamEvent::Connection(ConnectionState::Live)).await;
                        }
                        SocketEvent::Frame { epoch: g, frame, .. } if g == epoch => match frame {
                            Frame::Heartbeat => emit(StreamEvent::Heartbeat).await,
                            Frame::TutorialTranscript { id, transcript } => {
                                if last_seen.insert(id.clone(), Instant::now()).is_none() {
                                    emit(StreamEvent::ConversationStarted {
                                        conversation_id: id.clone(),
                                        queue_id: None,
                                    })
                                    .await;
                                }
                                for e in cumulative.update(&id, &transcript) {
                                    emit(StreamEvent::Transcript(e)).await;
                                }
                                forget_idle(&mut cumulative, &mut last_seen);
                            }
                            _ => tracing::debug!("ignored a frame of an unused type"),
                        },
                        SocketEvent::Discarded { epoch: g, reason, .. } if g == epoch => {
                            emit(StreamEvent::Discarded { reason }).await;
                        }
                        SocketEvent::Closed { epoch: g, ended, .. } if g == epoch => break ended,
                        _ => {}
                    }
                };
                handle.abort();
                match plan_reconnect(ended, &mut attempt, &backoff, &auth, Some(&token)).await {
                    Ok(Reconnect { delay: d, reason: r }) => (delay, reason) = (d, r),
                    Err(e) => {
                        tracing::error!(error = %e, "tutorial stream stopped");
                        emit(StreamEvent::Connection(ConnectionState::Failed { reason: e.to_string() }))
                            .await;
                        return;
                    }
                }
            }
        }
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(attempt, delay_ms, %reason, "tutorial stream reconnecting");
        let state = ConnectionState::Reconnecting { attempt: attempt.max(1), delay_ms, reason };
        emit(StreamEvent::Connection(state)).await;
        tokio::time::sleep(delay).await;
    }
}

fn forget_idle(cumulative: &mut Cumulative, last_seen: &mut HashMap<String, Instant>) {
    last_seen.retain(|id, at| {
        let keep = at.elapsed() < IDLE_FORGET;
        if !keep {
            cumulative.forget(id);
        }
        keep
    });
}
