//! Calibration: a monotone map from the decision score to the probability
//! that the top article is right, fitted on a labelled query set (with
//! `"expected": []` queries, which are never right), so thresholds can be
//! set as target precisions and the console can say "87% likely".
//!
//! Two maps are fitted and compared on a held-out half (log-loss and Brier
//! score): isotonic regression (pool-adjacent-violators; no shape assumed,
//! but steps where data is thin) and Platt scaling (a logistic curve in the
//! score; smooth, two parameters, but wrong if the true curve is not
//! logistic). The one with the lower held-out log-loss is refitted on all
//! the data and kept; `kb calibrate` prints both figures.

mod calls;

use std::path::Path;

pub use calls::{CallFit, MAX_VOTES, Window, windows};
use serde::{Deserialize, Serialize};

use super::KbError;

/// The file a calibration is stored in, inside the index's cache directory.
pub const FILE: &str = "calibration.json";
/// Probabilities are kept away from 0 and 1 (log-loss stays finite, and no
/// score is ever certain).
const EPS: f64 = 1e-3;

/// Which map was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Isotonic,
    Platt,
    /// Platt scaling in the score, the votes of earlier searches and the
    /// lead over the runner-up (fitted on call windows, [`calls`]).
    PlattAgreement,
}

/// A fitted map, with what it was fitted for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: Method,
    /// Isotonic knots `(score, probability)`, scores ascending.
    pub knots: Vec<(f32, f32)>,
    /// Platt parameters: `p = 1 / (1 + exp(-(a * score + b)))`.
    pub platt: (f64, f64),
    /// Queries fitted on.
    pub samples: usize,
    /// The index it belongs to: scores from another index or model mean
    /// something else, so a mismatch disables the calibration.
    pub source_hash: String,
    pub model_hash: String,
    /// The fusion the scores came from (its `Debug` form).
    pub fusion: String,
    /// Held-out comparison of the two maps.
    pub holdout: Vec<HoldoutFit>,
    /// The map fitted on call windows (`kb calibrate --calls`), when there
    /// is one: its thresholds are the ones the policy's precision targets
    /// take, while [`Calibration::probability`] stays the single-question
    /// map the console shows beside a hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallFit>,
}

/// How one map did on the held-out half.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldoutFit {
    pub method: Method,
    pub log_loss: f64,
    pub brier: f64,
}

impl Calibration {
    /// Fits both maps on `(score, correct)` pairs, compares them on a
    /// held-out half (every other sample in score order, so both halves
    /// cover the whole range), and keeps the better one refitted on all.
    pub fn fit(samples: &[(f32, bool)]) -> Option<Self> {
        if samples.len() < 4 || samples.iter().all(|s| s.1) || samples.iter().all(|s| !s.1) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (train, test): (Vec<_>, Vec<_>) = sorted.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let train: Vec<(f32, bool)> = train.into_iter().map(|(_, s)| *s).collect();
        let test: Vec<(f32, bool)> = test.into_iter().map(|(_, s)| *s).collect();
        let iso = isotonic(&train);
        let platt = platt(&train);
        let holdout = vec![
            score_fit(Method::Isotonic, &test, |s| interpolate(&iso, s)),
            score_fit(Method::Platt, &test, |s| sigmoid(platt, s)),
        ];
        let method =
            if holdout[0].log_loss <= holdout[1].log_loss { Method::Isotonic } else { Method::Platt };
        Some(Self {
            method,
            knots: isotonic(&sorted),
            platt: platt_fit_or(&sorted, platt),
            samples: samples.len(),
            source_hash: String::new(),
            model_hash: String::new(),
            fusion: String::new(),
            holdout,
            calls: None,
        })
    }

    /// The probability that a hit scoring `score` is right.
    pub fn probability(&self, score: f32) -> f32 {
        let p = match self.method {
            Method::Isotonic => interpolate(&self.knots, score),
            Method::Platt | Method::PlattAgreement => sigmoid(self.platt, score),
        };
        p.clamp(EPS, 1.0 - EPS) as f32
    }

    /// The lowest score whose probability reaches `p`, if any does: pushing
    /// only at or above it keeps every push at least that likely. With a
    /// call-window fit, its threshold (for a best article without credit).
    pub fn threshold_for(&self, p: f64) -> Option<f32> {
        if let Some(c) = &self.calls {
            return c.threshold_for(p);
        }
        self.question_threshold_for(p)
    }

    /// [`Self::threshold_for`] of the single-question map.
    pub fn question_threshold_for(&self, p: f64) -> Option<f32> {
        match self.method {
            Method::Platt | Method::PlattAgreement => {
                let (a, b) = self.platt;
                (a > 0.0 && p > 0.0 && p < 1.0).then(|| (((p / (1.0 - p)).ln() - b) / a) as f32)
            }
            Method::Isotonic => {
                let i = self.knots.iter().position(|&(_, q)| f64::from(q) >= p)?;
                if i == 0 {
                    return Some(self.knots[0].0);
                }
                let (s0, p0) = self.knots[i - 1];
                let (s1, p1) = self.knots[i];
                let t = (p - f64::from(p0)) / f64::from(p1 - p0).max(1e-9);
                Some(s0 + (s1 - s0) * t as f32)
            }
        }
    }

    /// Applies this calibration to a policy: the precision targets become
    /// thresholds ([`Self::threshold_for`]), and when `auto` is set by its
    /// target, auto mode's credits become the call-window fit's — or none
    /// without one, since credits fitted against another map would mean
    /// nothing against this one. A raw `auto` keeps the configured
    /// credits. Returns what changed, for the log.
    pub fn apply_to(&self, policy: &mut crate::engine::Policy) -> Vec<String> {
        let mut notes = policy.apply_precision_targets(|p| self.threshold_for(p));
        let (per_vote, per_lead) = self.calls.as_ref().map_or((0.0, 0.0), |c| (c.agreement, c.lead));
        if policy.auto_precision > 0.0 && (policy.agreement_bonus, policy.lead_weight) != (per_vote, per_lead)
        {
            (policy.agreement_bonus, policy.lead_weight) = (per_vote, per_lead);
            notes.push(format!("auto credit {per_vote:.3} per earlier best, {per_lead:.3} per unit of lead"));
        }
        notes
    }

    /// Reads a stored calibration; `None` when there is none or it does not parse.
    pub fn load(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(FILE)).ok()?).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<(), KbError> {
        let path = dir.join(FILE);
        let text = serde_json::to_vec_pretty(self).map_err(|e| KbError::Index(e.to_string()))?;
        std::fs::write(&path, text).map_err(|source| KbError::Io { path, source })
    }
}

/// The calibration fitted for the sample KB (`kb calibrate` on
/// tests/fixtures/kb_queries.jsonl), used when that KB has none of its own.
const BUNDLED: &str = include_str!("../../assets/calibration-sample-kb.json");

/// The calibration that applies to a loaded KB: its own (written by `kb
/// calibrate` into its cache directory), else the bundled one for the sample
/// KB; either only if fitted on this very index, model and fusion.
pub fn for_kb(kb: &super::KnowledgeBase) -> Option<Calibration> {
    let fits = |c: &Calibration| {
        c.source_hash == kb.manifest.source_hash
            && c.model_hash == kb.manifest.model_hash
            && c.fusion == format!("{:?}", kb.fusion)
    };
    let own = Calibration::load(&kb.dir).filter(fits);
    own.or_else(|| serde_json::from_str::<Calibration>(BUNDLED).ok().filter(fits))
}

fn score_fit(method: Method, test: &[(f32, bool)], f: impl Fn(f32) -> f64) -> HoldoutFit {
    let n = test.len().max(1) as f64;
    let (mut ll, mut brier) = (0.0, 0.0);
    for &(s, y) in test {
        let p = f(s).clamp(EPS, 1.0 - EPS);
        let y = if y { 1.0 } else { 0.0 };
        ll -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
        brier += (p - y) * (p - y);
    }
    HoldoutFit { method, log_loss: ll / n, brier: brier / n }
}

/// Pool-adjacent-violators on samples sorted by score; one knot per block
/// at its mean score.
fn isotonic(sorted: &[(f32, bool)]) -> Vec<(f32, f32)> {
    // (sum of scores, sum of labels, count)
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for &(s, y) in sorted {
        blocks.push((f64::from(s), if y { 1.0 } else { 0.0 }, 1.0));
        while blocks.len() >= 2 {
            let (a, b) = (blocks[blocks.len() - 2], blocks[blocks.len() - 1]);
            if a.1 / a.2 < b.1 / b.2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
        }
    }
    blocks.iter().map(|&(s, y, n)| ((s / n) as f32, (y / n) as f32)).collect()
}

/// Linear interpolation between knots, flat beyond the ends.
fn interpolate(knots: &[(f32, f32)], s: f32) -> f64 {
    let Some(first) = knots.first() else { return 0.5 };
    if s <= first.0 {
        return f64::from(first.1);
    }
    for w in knots.windows(2) {
        let ((s0, p0), (s1, p1)) = (w[0], w[1]);
        if s <= s1 {
            let t = if s1 > s0 { (s - s0) / (s1 - s0) } else { 1.0 };
            return f64::from(p0 + (p1 - p0) * t);
        }
    }
    knots.last().map_or(0.5, |k| f64::from(k.1))
}

fn sigmoid((a, b): (f64, f64), s: f32) -> f64 {
    1.0 / (1.0 + (-(a * f64::from(s) + b)).exp())
}

/// Logistic regression of the label on the score by Newton's method, with
/// Platt's smoothed targets so separable data does not diverge.
fn platt(samples: &[(f32, bool)]) -> (f64, f64) {
    let pos = samples.iter().filter(|s| s.1).count() as f64;
    let neg = samples.len() as f64 - pos;
    let hi = (pos + 1.0) / (pos + 2.0);
    let lo = 1.0 / (neg + 2.0);
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for &(s, y) in samples {
            let x = f64::from(s);
            let p = sigmoid((a, b), s);
            let t = if y { hi } else { lo };
            let w = p * (1.0 - p);
            ga += (p - t) * x;
            gb += p - t;
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    (a, b)
}

fn platt_fit_or(all: &[(f32, bool)], fallback: (f64, f64)) -> (f64, f64) {
    let p = platt(all);
    if p.0.is_finite() && p.1.is_finite() { p } else { fallback }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores 0..1 where the chance of being right rises with the score.
    fn samples() -> Vec<(f32, bool)> {
        (0..200).map(|i| (i as f32 / 200.0, (i * 37 % 100) < i / 2)).collect()
    }

    #[test]
    fn isotonic_is_monotone_and_pools_violators() {
        let k = isotonic(&[(0.1, true), (0.2, false), (0.3, true), (0.4, true)]);
        assert!(k.windows(2).all(|w| w[0].1 <= w[1].1), "{k:?}");
        assert_eq!(k[0], (0.15, 0.5));
    }

    #[test]
    fn both_maps_rise_with_the_score_and_thresholds_invert_them() {
        let c = Calibration::fit(&samples()).expect("fits");
        assert_eq!(c.holdout.len(), 2);
        assert!(c.platt.0 > 0.0);
        for method in [Method::Isotonic, Method::Platt] {
            let c = Calibration { method, ..c.clone() };
            assert!(c.probability(0.9) > c.probability(0.1), "{method:?}");
            let t = c.threshold_for(0.5).expect("reachable");
            assert!((c.probability(t) - 0.5).abs() < 0.02, "{method:?}: p({t}) = {}", c.probability(t));
        }
    }

    #[test]
    fn a_set_without_both_outcomes_cannot_be_fitted() {
        assert!(Calibration::fit(&[(0.1, true), (0.2, true), (0.3, true), (0.4, true)]).is_none());
        assert!(Calibration::fit(&[(0.1, true)]).is_none());
    }
}
