//! Need detection: whether an utterance asks for something the knowledge
//! base could answer, or is small talk, a greeting, a yes or a thank-you, a
//! name spelled out or a number read out — which should start no search.
//!
//! The decision is a small network ([`mlp`]) over the utterance as the KB's
//! own embedding model reads it at the end of its call's search window, and
//! the speech before it in that window ([`parts`], [`features`]): the window
//! is embedded for the search anyway, so a verdict costs no model run of its
//! own. It is fitted on labelled utterances ([`data`]) by `agent-assist kb
//! need` and shipped for the default model in `assets/need-classifier.json`.
//! The threshold is chosen on a validation slice of the training data so
//! that almost every utterance with a need still searches (missing a need
//! costs a suggestion; a needless search costs a few milliseconds), and the
//! held-out figures are stored beside the weights.

pub mod data;
pub mod mlp;
pub mod verdict;

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KbError;

/// The classifier shipped for the default model.
const BUNDLED: &str = include_str!("../../assets/need-classifier.json");

/// The file, in a model's directory, of a classifier fitted for that model
/// (`kb need --install`): any model can have need detection, not only the
/// default one the bundled classifier fits.
pub const INSTALLED_FILE: &str = "need-classifier.json";

/// A fitted need classifier, with what it was fitted for and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedClassifier {
    /// Fingerprint of the embedding model: weights for another model's
    /// vectors mean nothing, so a mismatch disables detection.
    pub model_hash: String,
    /// The hidden layer ([`mlp`]); empty for a logistic model over the
    /// features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<mlp::Unit>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Probability of a need below which an utterance is judged needless.
    pub threshold: f32,
    /// What it was fitted on, for the record.
    pub trained_on: String,
    /// Held-out figures at `threshold`.
    pub heldout: Vec<NeedScores>,
}

/// Precision and recall of "carries a need" on one labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedScores {
    pub set: String,
    pub utterances: usize,
    pub with_need: usize,
    /// Of those judged to carry a need, the share that do.
    pub precision: f64,
    /// Of those that carry a need, the share judged so (the share that
    /// still search).
    pub recall: f64,
    /// Of the needless ones, the share judged needless (searches saved).
    pub needless_caught: f64,
}

impl NeedClassifier {
    /// Probability that the utterance read as these [`features`] carries a need.
    pub fn probability(&self, v: &[f32]) -> f32 {
        mlp::sigmoid(mlp::logit(&self.hidden, &self.weights, self.bias, v))
    }

    pub fn carries_need(&self, v: &[f32]) -> bool {
        self.probability(v) >= self.threshold
    }

    /// The bundled classifier, if it was fitted for this model.
    pub fn bundled_for(model_hash: &str) -> Option<Self> {
        serde_json::from_str::<Self>(BUNDLED).ok().filter(|c| c.model_hash == model_hash)
    }

    /// The classifier for the model in `model_dir`: the one `kb need
    /// --install` fitted for it and put beside its files, or else the
    /// bundled one if it fits. `None`: no classifier fits; an error: the
    /// installed one cannot be read or was fitted for other vectors.
    pub fn for_model(model_hash: &str, model_dir: &Path) -> Result<Option<Self>, KbError> {
        let path = model_dir.join(INSTALLED_FILE);
        if !path.exists() {
            return Ok(Self::bundled_for(model_hash));
        }
        let c = Self::load(&path)?;
        if c.model_hash != model_hash {
            return Err(KbError::NeedClassifierModel { path });
        }
        Ok(Some(c))
    }

    pub fn load(path: &Path) -> Result<Self, KbError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| KbError::Io { path: path.into(), source })?;
        let bad = |message: String| KbError::Record { at: super::Location::new(path, 1), message };
        let c: Self = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        c.check_shape().map_err(|m| bad(format!("not a usable need classifier: {m}")))?;
        Ok(c)
    }

    /// Whether the weights fit together: a file cut short or edited by
    /// hand would otherwise give every utterance a meaningless verdict.
    fn check_shape(&self) -> Result<(), String> {
        let width = self.hidden.first().map_or(self.weights.len(), |u| u.weights.len());
        if width == 0 {
            return Err("it has no weights".into());
        }
        if self.hidden.iter().any(|u| u.weights.len() != width) {
            return Err("its hidden units read features of different lengths".into());
        }
        if !self.hidden.is_empty() && self.weights.len() != self.hidden.len() {
            return Err(format!(
                "{} output weights for {} hidden units",
                self.weights.len(),
                self.hidden.len()
            ));
        }
        let numbers = self.hidden.iter().flat_map(|u| u.weights.iter().chain([&u.bias]));
        if !numbers.chain(&self.weights).chain([&self.bias]).all(|x| x.is_finite()) {
            return Err("a weight is not a finite number".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not a probability", self.threshold));
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), KbError> {
        // Compact: the hidden layer holds tens of thousands of weights.
        let text = serde_json::to_string(self).map_err(|e| KbError::Embed(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|source| KbError::Io { path: path.into(), source })
    }

    /// Scores the classifier on labelled vectors.
    pub fn score(&self, set: &str, examples: &[(Vec<f32>, bool)]) -> NeedScores {
        let (mut tp, mut fp, mut fneg, mut tn) = (0usize, 0usize, 0usize, 0usize);
        for (v, need) in examples {
            match (self.carries_need(v), *need) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                (false, false) => tn += 1,
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        NeedScores {
            set: set.to_string(),
            utterances: examples.len(),
            with_need: tp + fneg,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fneg),
            needless_caught: ratio(tn, tn + fp),
        }
    }
}

/// The parts of a window the classifier reads for an utterance starting at
/// byte `at` of `text`: the utterance, then what came before it (empty
/// when it is alone).
pub fn parts(text: &str, at: usize) -> Vec<std::ops::Range<usize>> {
    vec![at..text.len(), 0..at]
}

/// What the classifier weighs, from the [`parts`] as read: the utterance's
/// vector and the vector of the speech before it (zeros when alone), side by
/// side. Reading the utterance inside its window colours it with what came
/// before; seeing that context too lets the weights take the colour back
/// out. `None` when the utterance was not read.
pub fn features(read: &[Option<Vec<f32>>]) -> Option<Vec<f32>> {
    let utterance = read.first()?.as_ref()?;
    let mut out = utterance.clone();
    match read.get(1).and_then(Option::as_ref) {
        Some(before) if before.len() == utterance.len() => out.extend_from_slice(before),
        _ => out.resize(utterance.len() * 2, 0.0),
    }
    Some(out)
}

/// The highest threshold at which at least `recall` of the utterances with
/// a need (by their probabilities) are still judged to carry one.
pub fn threshold_for_recall(probabilities_with_need: &mut [f32], recall: f64) -> f32 {
    if probabilities_with_need.is_empty() {
        return 0.5;
    }
    probabilities_with_need.sort_by(|a, b| a.total_cmp(b));
    let n = probabilities_with_need.len();
    let allowed_misses = ((1.0 - recall.clamp(0.0, 1.0)) * n as f64).floor() as usize;
    probabilities_with_need[allowed_misses.min(n - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Vec<(Vec<f32>, bool)> {
        // Needs point one way, small talk the other, with some spread.
        (0..200)
            .map(|i| {
                let j = (i % 10) as f32 / 20.0;
                if i % 4 == 0 { (vec![-1.0 + j, 0.3 - j], false) } else { (vec![1.0 - j, 0.2 + j], true) }
            })
            .collect()
    }

    #[test]
    fn a_separable_set_is_learned_and_scored() {
        let ex = toy();
        let t = mlp::Training { units: 4, epochs: 300, l2: 1e-4, learning_rate: 0.01, seed: 3 };
        let fitted = mlp::fit(&ex, t);
        let mut c = NeedClassifier {
            model_hash: "m".into(),
            hidden: fitted.hidden,
            weights: fitted.weights,
            bias: fitted.bias,
            threshold: 0.5,
            trained_on: "toy".into(),
            heldout: vec![],
        };
        let mut p: Vec<f32> = ex.iter().filter(|(_, y)| *y).map(|(v, _)| c.probability(v)).collect();
        c.threshold = threshold_for_recall(&mut p, 1.0);
        let s = c.score("toy", &ex);
        assert_eq!((s.utterances, s.with_need), (200, 150));
        assert!((s.recall - 1.0).abs() < 1e-9, "{s:?}");
        assert!(s.precision > 0.99 && s.needless_caught > 0.99, "{s:?}");
    }

    #[test]
    fn the_threshold_keeps_the_asked_recall() {
        let mut p: Vec<f32> = (1..=100).map(|i| i as f32 / 100.0).collect();
        // 95% recall may miss 5 of 100: the threshold is the 6th lowest.
        assert!((threshold_for_recall(&mut p, 0.95) - 0.06).abs() < 1e-6);
        assert!((threshold_for_recall(&mut p, 1.0) - 0.01).abs() < 1e-6);
    }

    #[test]
    fn a_classifier_for_another_model_is_not_used() {
        assert!(NeedClassifier::bundled_for("not-a-model").is_none());
    }

    #[test]
    fn a_classifier_installed_beside_a_model_is_found_and_must_fit_it() {
        let dir = tempfile::tempdir().unwrap();
        let bundled: NeedClassifier = serde_json::from_str(BUNDLED).unwrap();
        // Nothing installed: the bundled one, for the model it fits only.
        assert_eq!(
            NeedClassifier::for_model(&bundled.model_hash, dir.path()).unwrap(),
            Some(bundled.clone())
        );
        assert_eq!(NeedClassifier::for_model("other-model", dir.path()).unwrap(), None);
        // Installed for another model: found, fitted for it.
        let other = NeedClassifier { model_hash: "other-model".into(), threshold: 0.25, ..bundled.clone() };
        other.save(&dir.path().join(INSTALLED_FILE)).unwrap();
        assert_eq!(NeedClassifier::for_model("other-model", dir.path()).unwrap(), Some(other));
        // ...and not taken for a model it was not fitted for.
        let e = NeedClassifier::for_model(&bundled.model_hash, dir.path()).unwrap_err();
        assert!(matches!(e, KbError::NeedClassifierModel { .. }), "{e}");
        assert!(e.to_string().contains("kb need --data DIR --install"), "{e}");
        // A damaged file is named.
        std::fs::write(dir.path().join(INSTALLED_FILE), "{ not json").unwrap();
        let e = NeedClassifier::for_model("other-model", dir.path()).unwrap_err();
        assert!(e.to_string().contains(INSTALLED_FILE), "{e}");
    }

    #[test]
    fn weights_that_do_not_fit_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INSTALLED_FILE);
        let good: NeedClassifier = serde_json::from_str(BUNDLED).unwrap();
        assert_eq!(good.check_shape(), Ok(()));
        let mut short_unit = good.clone();
        short_unit.hidden[1].weights.truncate(10);
        let mut one_weight_lost = good.clone();
        one_weight_lost.weights.pop();
        let mut threshold = good.clone();
        threshold.threshold = 1.5;
        for (bad, says) in
            [(short_unit, "different lengths"), (one_weight_lost, "output weights"), (threshold, "threshold")]
        {
            bad.save(&path).unwrap();
            let e = NeedClassifier::for_model(&good.model_hash, dir.path()).unwrap_err().to_string();
            assert!(e.contains(INSTALLED_FILE) && e.contains(says), "{e}");
        }
    }
}
