//! One utterance's need verdict: the job the engine asks for and the
//! answer it gets back.
//!
//! The verdicts are given on the knowledge-base worker ([`crate::kb::worker`]),
//! from the same model run as the searches queued beside them. An utterance
//! is judged as the model reads it at the end of its call's search window
//! (its own word pieces pooled out of the window's run,
//! [`crate::kb::embed::parts`]): the window is embedded for the search
//! anyway, so the verdict costs no model run of its own, and the same
//! reading is used wherever a verdict is given (live, `bench replay`,
//! `kb need`), so it does not depend on what shared the batch.

use std::ops::Range;

use super::NeedClassifier;
use crate::kb::{Embedder, KbError};

/// One utterance to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedJob {
    pub conversation_id: String,
    pub utterance_id: String,
    pub text: String,
    /// The call's search window holding the utterance at its end; an
    /// utterance read alone when the window does not end with it.
    pub context: String,
}

impl NeedJob {
    /// The text to run and the byte offset where the utterance starts in
    /// it: the window when it ends with the whole utterance (at a word
    /// boundary), else the utterance alone.
    pub fn reading(&self) -> (&str, usize) {
        let (context, text) = (self.context.trim(), self.text.trim());
        match context.strip_suffix(text) {
            Some(before) if before.is_empty() || before.ends_with(char::is_whitespace) => {
                (context, before.len())
            }
            _ => (text, 0),
        }
    }

    /// The utterance on its own and the parts to read in it: what is run
    /// when the model cut the window before the utterance's end, so its
    /// reading gave no features.
    pub fn alone(&self) -> (String, Vec<Range<usize>>) {
        let text = self.text.trim();
        (text.to_string(), super::parts(text, 0))
    }
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

/// What the classifier weighs for a job ([`super::features`]), read as
/// [`NeedJob::reading`] says: out of its window's run, or out of its own
/// ([`NeedJob::alone`]) when the model cut the window before its end. The
/// knowledge-base worker follows the same rule for a batch of jobs.
pub fn read(embedder: &mut dyn Embedder, job: &NeedJob) -> Result<Vec<f32>, KbError> {
    let (text, at) = job.reading();
    let mut features = |text: String, parts: Vec<Range<usize>>| -> Result<Option<Vec<f32>>, KbError> {
        let mut reads = embedder.read_parts(&[text], &[parts])?;
        Ok(reads.pop().and_then(|r| super::features(&r.parts)))
    };
    if let Some(f) = features(text.to_string(), super::parts(text, at))? {
        return Ok(f);
    }
    let (text, parts) = job.alone();
    features(text, parts)?.ok_or(KbError::EmptyQuery)
}

/// Reads one utterance and judges it.
pub fn judge(embedder: &mut dyn Embedder, classifier: &NeedClassifier, job: NeedJob) -> NeedAnswer {
    let vector = read(embedder, &job).ok();
    verdict(classifier, job, vector.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str, context: &str) -> NeedJob {
        NeedJob {
            conversation_id: "c".into(),
            utterance_id: "u".into(),
            text: text.into(),
            context: context.into(),
        }
    }

    #[test]
    fn an_utterance_is_read_at_the_end_of_its_window() {
        assert_eq!(
            job("thanks a lot", "my card was declined thanks a lot").reading(),
            ("my card was declined thanks a lot", 21)
        );
        assert_eq!(job(" thanks a lot ", "thanks a lot").reading(), ("thanks a lot", 0));
        // Not at the end, or not at a word boundary: read alone.
        assert_eq!(job("a lot", "thanks a lot more").reading(), ("a lot", 0));
        assert_eq!(job("ot", "thanks a lot").reading(), ("ot", 0));
        assert_eq!(job("card", "").reading(), ("card", 0));
    }
}
