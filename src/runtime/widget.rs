//! The runtime's agent widget: its hub and server when the `widget` sink is
//! on, where the pipeline's feed events go ([`FeedOut`]), and what agents'
//! pages send back. In the single process the hub is fed directly and page
//! signals go to the engine; on a floor ([`FloorWidget`]) feed events go to
//! the floor's stream (every worker's hub is fed from it) and page signals
//! to the floor, which hands them to the call's owner.

use tokio::sync::mpsc;

use super::RuntimeError;
use crate::config::Config;
use crate::engine::{AgentEvent, Feedback, Msg};
use crate::widget::{AgentSignal, FeedOut, FeedbackKind, FloorFeedFn, WidgetHub, WidgetServer};

/// What floor mode changes in the widget.
pub struct FloorWidget {
    /// Event-id epoch shared by the floor (from the stream), so a page can
    /// resume on any worker.
    pub epoch: u32,
    /// Where feed events go (the floor's stream).
    pub out: FloorFeedFn,
    /// Where this worker's pages' signals go (to be sent to the owner).
    pub signals: mpsc::Sender<AgentSignal>,
}

/// The widget's hub and server, and where feed events go.
pub(super) type Started = (Option<(WidgetHub, WidgetServer)>, Option<FeedOut>);

/// Starts the widget when the `widget` sink is on.
pub(super) async fn start(
    config: &Config,
    tx: &mpsc::Sender<Msg>,
    floor: Option<FloorWidget>,
) -> Result<Started, RuntimeError> {
    if !config.delivery.sinks.contains(&crate::domain::Sink::Widget) {
        return Ok((None, None));
    }
    let wcfg = config.widget()?;
    let (hub, server, out) = match floor {
        Some(f) => {
            let hub = WidgetHub::with_epoch(&wcfg, f.epoch);
            let server = crate::widget::serve(wcfg, hub.clone(), f.signals).await?;
            (hub, server, FeedOut::Floor(f.out))
        }
        None => {
            let hub = WidgetHub::new(&wcfg);
            let (signals_tx, mut signals) = mpsc::channel::<AgentSignal>(256);
            let server = crate::widget::serve(wcfg, hub.clone(), signals_tx).await?;
            let forward = tx.clone();
            tokio::spawn(async move {
                while let Some(signal) = signals.recv().await {
                    if forward.send(Msg::Agent(agent_event(signal))).await.is_err() {
                        break;
                    }
                }
            });
            (hub.clone(), server, FeedOut::Hub(hub))
        }
    };
    tracing::info!(url = %server.url, "agent widget listening");
    Ok((Some((hub, server)), Some(out)))
}

/// The engine's message for what an agent's page did.
pub fn agent_event(s: AgentSignal) -> AgentEvent {
    match s {
        AgentSignal::Acknowledged { conversation_id, suggestion_id, user_id } => {
            AgentEvent::Acknowledged { conversation_id, suggestion_id, user_id }
        }
        AgentSignal::Feedback { conversation_id, suggestion_id, kind, user_id } => {
            let feedback = match kind {
                FeedbackKind::Useful => Feedback::Useful,
                FeedbackKind::NotUseful => Feedback::NotUseful,
                FeedbackKind::Copied => Feedback::Copied,
            };
            AgentEvent::Feedback { conversation_id, suggestion_id, feedback, user_id }
        }
    }
}
