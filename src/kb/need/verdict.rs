//! One utterance's need verdict: the job the engine asks for and the
//! answer it gets back.
//!
//! The verdicts are given on the knowledge-base worker ([`crate::kb::worker`]),
//! from the same model run as the searches queued beside them: an utterance
//! is embedded once per batch whatever asks for it, and no second copy of
//! the model competes with the searches for the two cores.

use super::NeedClassifier;
use crate::kb::Embedder;

/// One utterance to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedJob {
    pub conversation_id: String,
    pub utterance_id: String,
    pub text: String,
}

/// The judgement of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedAnswer {
    pub conversation_id: String,
    pub utterance_id: String,
    pub need: bool,
    /// Probability of a need; `None` when the embedding failed (the
    /// utterance is then taken to carry a need: a search too many is
    /// cheaper than a suggestion missed).
    pub probability: Option<f32>,
}

/// The verdict on a job from its embedding, if there is one.
pub fn verdict(classifier: &NeedClassifier, job: NeedJob, vector: Option<&[f32]>) -> NeedAnswer {
    let probability = vector.map(|v| classifier.probability(v));
    NeedAnswer {
        conversation_id: job.conversation_id,
        utterance_id: job.utterance_id,
        need: probability.is_none_or(|p| p >= classifier.threshold),
        probability,
    }
}

/// Embeds one text and judges it.
pub fn judge(embedder: &mut dyn Embedder, classifier: &NeedClassifier, job: NeedJob) -> NeedAnswer {
    let vector = embedder.embed_one(&job.text).ok();
    verdict(classifier, job, vector.as_deref())
}
