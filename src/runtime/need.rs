//! Need detection in the running pipeline: picks the classifier for the
//! embedding model (or turns detection off, so the engine searches on every
//! utterance as before) and routes the engine's
//! [`Effect::JudgeNeed`](crate::engine::Effect) to the knowledge-base
//! worker, which judges from the same model run as its searches.

use std::path::Path;

use crate::engine::{Msg, Policy};
use crate::kb::need::NeedClassifier;
use crate::kb::need::verdict::NeedJob;

/// The classifier for the model in `model_dir` (`model_hash`) if the policy
/// asks for need detection; otherwise (or when none fits) clears
/// `policy.need_detection` and says why in the log. A classifier installed
/// for the model that does not fit it turns detection off rather than
/// stopping the pipeline: every utterance is searched, as without one.
pub(super) fn classifier(policy: &mut Policy, model_hash: &str, model_dir: &Path) -> Option<NeedClassifier> {
    if !policy.need_detection {
        return None;
    }
    let why = match NeedClassifier::for_model(model_hash, model_dir) {
        Ok(Some(classifier)) => {
            tracing::info!(threshold = classifier.threshold, "need detection on");
            return Some(classifier);
        }
        Ok(None) => "no need classifier for this embedding model (fit one with `agent-assist kb need \
                     --data DIR --install`)"
            .to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(%why, "need detection off; every utterance will be searched");
    policy.need_detection = false;
    None
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
