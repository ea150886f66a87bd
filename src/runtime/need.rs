//! Need detection in the running pipeline: starts the judging thread when
//! a classifier fits the embedding model (else turns detection off, so the
//! engine searches on every utterance as before), and routes the engine's
//! [`Effect::JudgeNeed`](crate::engine::Effect) to it.

use tokio::sync::mpsc;

use crate::engine::{Msg, Policy};
use crate::kb::need::NeedClassifier;
use crate::kb::need::worker::{self, NeedHandle, NeedJob};
use crate::kb::{FastEmbedder, ModelSpec};

/// Starts need detection if the policy asks for it and a classifier fits
/// `model_hash`; otherwise clears `policy.need_detection` and says why.
pub(super) async fn start(
    policy: &mut Policy,
    model: &ModelSpec,
    model_hash: &str,
    tx: mpsc::Sender<Msg>,
) -> Option<NeedHandle> {
    if !policy.need_detection {
        return None;
    }
    let Some(classifier) = NeedClassifier::bundled_for(model_hash) else {
        tracing::warn!("no need classifier for this embedding model; every utterance will be searched");
        policy.need_detection = false;
        return None;
    };
    // One thread: judging one short utterance at a time gains nothing
    // from more, and the search worker keeps the other core.
    let spec = ModelSpec { threads: Some(1), ..model.clone() };
    let loaded = tokio::task::spawn_blocking(move || FastEmbedder::load(&spec)).await;
    match loaded {
        Ok(Ok(embedder)) => {
            tracing::info!(threshold = classifier.threshold, "need detection on");
            let sink = Box::new(move |a: worker::NeedAnswer| {
                tracing::debug!(utterance = %a.utterance_id, need = a.need, p = ?a.probability, "need judged");
                tx.blocking_send(Msg::NeedJudged {
                    conversation_id: a.conversation_id,
                    utterance_id: a.utterance_id,
                    need: a.need,
                })
                .is_ok()
            });
            Some(worker::spawn(Box::new(embedder), classifier, sink))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "need detection off: cannot load the model");
            policy.need_detection = false;
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "need detection off: the loader stopped");
            policy.need_detection = false;
            None
        }
    }
}

impl super::Runtime {
    /// Sends an utterance to be judged; without a judge it carries a need.
    pub(super) fn judge_need(&mut self, conversation_id: String, utterance_id: String, text: String) {
        let job = NeedJob { conversation_id, utterance_id, text };
        let unjudged = match &self.need {
            Some(h) if h.submit(job.clone()) => return,
            _ => job,
        };
        tracing::error!("need detection is gone; the utterance is searched");
        self.handle(Msg::NeedJudged {
            conversation_id: unjudged.conversation_id,
            utterance_id: unjudged.utterance_id,
            need: true,
        });
    }
}
