//! Need detection: whether an utterance asks for something the knowledge
//! base could answer, or is small talk, a greeting, a yes or a thank-you, a
//! name spelled out or a number read out — which should start no search.
//!
//! The decision is a logistic regression over the sentence embedding the
//! KB already computes (the same model, so no second model is loaded for
//! it), fitted on labelled utterances ([`data`]) by `agent-assist kb need`
//! and shipped for the default model in `assets/need-classifier.json`. The
//! threshold is chosen on a validation slice of the training data so that
//! almost every utterance with a need still searches (missing a need costs
//! a suggestion; a needless search costs a few milliseconds), and the
//! held-out figures are stored beside the weights.
//!
//! Logistic regression is written here (about forty lines of gradient
//! descent) rather than taken from `linfa`, which would bring `ndarray` and
//! a BLAS choice for one dot product per utterance.

pub mod data;
pub mod verdict;

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KbError;

/// The classifier shipped for the default model.
const BUNDLED: &str = include_str!("../../assets/need-classifier.json");

/// A fitted need classifier, with what it was fitted for and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedClassifier {
    /// Fingerprint of the embedding model: weights for another model's
    /// vectors mean nothing, so a mismatch disables detection.
    pub model_hash: String,
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
    /// Probability that the utterance with this (unit) embedding carries a need.
    pub fn probability(&self, v: &[f32]) -> f32 {
        let z: f32 = self.weights.iter().zip(v).map(|(w, x)| w * x).sum::<f32>() + self.bias;
        sigmoid(z)
    }

    pub fn carries_need(&self, v: &[f32]) -> bool {
        self.probability(v) >= self.threshold
    }

    /// The bundled classifier, if it was fitted for this model.
    pub fn bundled_for(model_hash: &str) -> Option<Self> {
        serde_json::from_str::<Self>(BUNDLED).ok().filter(|c| c.model_hash == model_hash)
    }

    pub fn load(path: &Path) -> Result<Self, KbError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| KbError::Io { path: path.into(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| KbError::Record { at: super::Location::new(path, 1), message: e.to_string() })
    }

    pub fn save(&self, path: &Path) -> Result<(), KbError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| KbError::Embed(e.to_string()))?;
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

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits weights and bias by full-batch gradient descent (Adam) on the
/// class-balanced, L2-regularised log-loss: both classes weigh the same
/// whatever their counts, so the threshold, not the class mix, sets the
/// trade-off.
pub fn fit(examples: &[(Vec<f32>, bool)], epochs: usize, l2: f32) -> (Vec<f32>, f32) {
    let dim = examples.first().map_or(0, |(v, _)| v.len());
    let positives = examples.iter().filter(|(_, y)| *y).count().max(1) as f32;
    let negatives = examples.iter().filter(|(_, y)| !*y).count().max(1) as f32;
    let (wp, wn) = (0.5 / positives, 0.5 / negatives);
    let mut w = vec![0f32; dim + 1]; // last entry: bias
    let (mut m, mut s) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
    let (lr, b1, b2) = (0.05f32, 0.9f32, 0.999f32);
    for t in 1..=epochs {
        let mut grad = vec![0f32; dim + 1];
        for (v, y) in examples {
            let z: f32 = w[..dim].iter().zip(v).map(|(a, b)| a * b).sum::<f32>() + w[dim];
            let (target, weight) = if *y { (1.0, wp) } else { (0.0, wn) };
            let e = (sigmoid(z) - target) * weight;
            for (g, x) in grad.iter_mut().zip(v) {
                *g += e * x;
            }
            grad[dim] += e;
        }
        for (g, wi) in grad[..dim].iter_mut().zip(&w[..dim]) {
            *g += l2 * wi;
        }
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for i in 0..=dim {
            m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
            s[i] = b2 * s[i] + (1.0 - b2) * grad[i] * grad[i];
            w[i] -= lr * (m[i] / c1) / ((s[i] / c2).sqrt() + 1e-8);
        }
    }
    let bias = w.pop().unwrap_or(0.0);
    (w, bias)
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
        let (weights, bias) = fit(&ex, 300, 1e-4);
        let mut c = NeedClassifier {
            model_hash: "m".into(),
            weights,
            bias,
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
}
