//! Need detection in the running pipeline: picks the classifier for the
//! embedding model (or turns detection off, so the engine searches on every
//! utterance as before) and routes the engine's
//! [`Effect::JudgeNeed`](crate::engine::Effect) to the knowledge-base
//! worker, which judges from the same model run as its searches.

use crate::engine::{Msg, Policy};
use crate::kb::need::NeedClassifier;
use crate::kb::need::verdict::NeedJob;

/// The classifier for `model_hash` if the policy asks for need detection;
/// otherwise (or when none fits) clears `policy.need_detection` and says why.
pub(super) fn classifier(policy: &mut Policy, model_hash: &str) -> Option<NeedClassifier> {
    if !policy.need_detection {
        return None;
    }
    let Some(classifier) = NeedClassifier::bundled_for(model_hash) else {
        tracing::warn!("no need classifier for this embedding model; every utterance will be searched");
        policy.need_detection = false;
        return None;
    };
    tracing::info!(threshold = classifier.threshold, "need detection on");
    Some(classifier)
}

impl super::Runtime {
    /// Sends an utterance to be judged; if the worker is gone it carries a
    /// need (a search too many is cheaper than a suggestion missed).
    pub(super) fn judge_need(&mut self, job: NeedJob) {
        if self.kb.judge(job.clone()) {
            return;
        }
        tracing::error!("knowledge-base worker is gone; the utterance is searched");
        self.handle(Msg::NeedJudged {
            conversation_id: job.conversation_id,
            utterance_id: job.utterance_id,
            need: true,
        });
    }
}
