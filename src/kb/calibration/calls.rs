//! Calibration on call windows: the searches a call makes (two final
//! customer utterances at a time) are labelled by the call's
//! `expected_articles`, and the probability that a window's best article is
//! one the call needs is fitted on what the call offers beyond one window's
//! score. A logistic model in three inputs:
//! `p = σ(a·score + v·votes + g·lead + b)`, where `votes` is how many earlier
//! searches of the call had the same best article (at most
//! [`MAX_VOTES`]) and `lead` is the best hit's score above the runner-up's.
//!
//! Questions asked on their own (`kb calibrate --queries`) score higher than
//! call windows, which mix the need with names, numbers and chat: a map
//! fitted on them called a window 82 % likely when it was right about half
//! the time. An article that keeps coming back as the customer goes on, and
//! one that stands clear of the runner-up, are far more often the right
//! one. Other inputs were compared by leave-one-call-out log-loss on the
//! calibration calls (BENCHMARKS.md, "Auto-push precision on calls"); these
//! two did best. Being additive in the logit, both come out as score
//! credits ([`CallFit::agreement`] per vote, [`CallFit::lead`] per unit of
//! lead): the engine lowers `auto` by them, so the policy stays a
//! threshold the operator can read.

use serde::{Deserialize, Serialize};

use super::{EPS, HoldoutFit, Method};

/// Earlier searches with the same best article counted at most.
pub const MAX_VOTES: u32 = 3;

/// One search of a labelled call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The best hit's decision score.
    pub score: f32,
    /// Earlier searches of the call whose best article was the same (capped).
    pub votes: u32,
    /// The best hit's score less the runner-up's (0 without one).
    pub lead: f32,
    /// The call needs that article.
    pub relevant: bool,
}

/// Counts each search's votes, given `(call, best article, score,
/// runner-up score, relevant)` in the order the searches ran.
pub fn windows<'a>(searches: impl IntoIterator<Item = (&'a str, &'a str, f32, f32, bool)>) -> Vec<Window> {
    let mut seen: std::collections::HashMap<(&str, &str), u32> = std::collections::HashMap::new();
    searches
        .into_iter()
        .map(|(call, best, score, runner_up, relevant)| {
            let n = seen.entry((call, best)).or_insert(0);
            let votes = (*n).min(MAX_VOTES);
            *n += 1;
            Window { score, votes, lead: (score - runner_up).max(0.0), relevant }
        })
        .collect()
}

/// The map fitted on call windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallFit {
    /// `p = σ(a·(score + credit) + b)`.
    pub platt: (f64, f64),
    /// Score credit per earlier search of the call with the same best
    /// article (policy `agreement_bonus`) ...
    pub agreement: f32,
    /// ... and per unit of the best hit's lead over the runner-up
    /// (`lead_weight`).
    pub lead: f32,
    /// Windows and calls fitted on.
    pub samples: usize,
    pub calls: usize,
    /// Held-out half: the score-only map against the one with the credits.
    pub holdout: Vec<HoldoutFit>,
}

impl CallFit {
    /// Fits the three-input logistic map on call windows, compares it on a
    /// held-out half with the score-only map, and keeps the three-input one
    /// refitted on all (it is the one the engine applies). `None` without
    /// both outcomes or with fewer than 8 windows.
    pub fn fit(samples: &[Window], calls: usize) -> Option<Self> {
        if samples.len() < 8 || samples.iter().all(|s| s.relevant) || samples.iter().all(|s| !s.relevant) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
        let (train, test): (Vec<_>, Vec<_>) = sorted.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let train: Vec<Window> = train.into_iter().map(|(_, s)| *s).collect();
        let test: Vec<Window> = test.into_iter().map(|(_, s)| *s).collect();
        let holdout = vec![fit_on(&test, logistic(&train, false)), fit_on(&test, logistic(&train, true))];
        let [a, v, g, b] = logistic(&sorted, true);
        if !([a, v, g, b].iter().all(|x| x.is_finite()) && a > 0.0) {
            return None;
        }
        Some(Self {
            platt: (a, b),
            agreement: (v / a) as f32,
            lead: (g / a) as f32,
            samples: samples.len(),
            calls,
            holdout,
        })
    }

    /// The lowest score (before credit) at least `p` likely to be right.
    pub fn threshold_for(&self, p: f64) -> Option<f32> {
        let (a, b) = self.platt;
        (a > 0.0 && p > 0.0 && p < 1.0).then(|| (((p / (1.0 - p)).ln() - b) / a) as f32)
    }

    /// The score credit a window's best article earns from the call.
    pub fn credit(&self, votes: u32, lead: f32) -> f32 {
        self.agreement * votes.min(MAX_VOTES) as f32 + self.lead * lead.max(0.0)
    }

    /// The probability that a window's best article is right.
    pub fn probability(&self, w: &Window) -> f32 {
        let (a, b) = self.platt;
        let z = a * f64::from(w.score + self.credit(w.votes, w.lead)) + b;
        (1.0 / (1.0 + (-z).exp())).clamp(EPS, 1.0 - EPS) as f32
    }
}

fn inputs(s: &Window, all: bool) -> [f64; 4] {
    let on = if all { 1.0 } else { 0.0 };
    [f64::from(s.score), on * f64::from(s.votes.min(MAX_VOTES)), on * f64::from(s.lead), 1.0]
}

/// Logistic regression of `relevant` on the inputs (score only unless
/// `all`) by Newton's method, with Platt's smoothed targets; `[a, v, g, b]`.
fn logistic(samples: &[Window], all: bool) -> [f64; 4] {
    let pos = samples.iter().filter(|s| s.relevant).count() as f64;
    let neg = samples.len() as f64 - pos;
    let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
    let mut w = [1.0f64, 0.0, 0.0, 0.0];
    for _ in 0..100 {
        let mut g = [0.0f64; 4];
        // A small ridge keeps an input that never varies solvable.
        let mut h = [[0.0f64; 4]; 4];
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = 1e-6;
        }
        for s in samples {
            let x = inputs(s, all);
            let z: f64 = x.iter().zip(&w).map(|(x, w)| x * w).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let t = if s.relevant { hi } else { lo };
            let q = p * (1.0 - p);
            for i in 0..4 {
                g[i] += (p - t) * x[i];
                for j in 0..4 {
                    h[i][j] += q * x[i] * x[j];
                }
            }
        }
        let Some(d) = solve(h, g) else { break };
        for i in 0..4 {
            w[i] -= d[i];
        }
        if d.iter().map(|v| v.abs()).sum::<f64>() < 1e-9 {
            break;
        }
    }
    w
}

/// Solves `h · x = g` by Gaussian elimination with partial pivoting;
/// `None` if singular. (Four unknowns: no linear-algebra crate needed.)
fn solve(mut h: [[f64; 4]; 4], mut g: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&a, &b| h[a][col].abs().total_cmp(&h[b][col].abs()))?;
        if h[pivot][col].abs() < 1e-15 {
            return None;
        }
        h.swap(col, pivot);
        g.swap(col, pivot);
        let (top, gc) = (h[col], g[col]);
        for (r, row) in h.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / top[col];
                for (x, t) in row.iter_mut().zip(top.iter()).skip(col) {
                    *x -= f * t;
                }
                g[r] -= f * gc;
            }
        }
    }
    Some([g[0] / h[0][0], g[1] / h[1][1], g[2] / h[2][2], g[3] / h[3][3]])
}

/// Log-loss and Brier score of a fitted map on held-out windows.
fn fit_on(test: &[Window], w: [f64; 4]) -> HoldoutFit {
    let n = test.len().max(1) as f64;
    let (mut ll, mut brier) = (0.0, 0.0);
    for s in test {
        let z: f64 = inputs(s, true).iter().zip(&w).map(|(x, w)| x * w).sum();
        let p = (1.0 / (1.0 + (-z).exp())).clamp(EPS, 1.0 - EPS);
        let y = if s.relevant { 1.0 } else { 0.0 };
        ll -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
        brier += (p - y) * (p - y);
    }
    let method = if w[1] == 0.0 && w[2] == 0.0 { Method::Platt } else { Method::PlattAgreement };
    HoldoutFit { method, log_loss: ll / n, brier: brier / n }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows where a best article seen before, or clear of the runner-up,
    /// is right far more often than another of the same score.
    fn samples() -> Vec<Window> {
        (0..600)
            .map(|i| {
                let score = (i % 100) as f32 / 100.0;
                let votes = (i / 7 % 3) as u32;
                let lead = (i / 11 % 5) as f32 * 0.05;
                let bar = ((i * 37) % 100) as f32 / 100.0;
                let relevant = score + 0.2 * votes as f32 + 1.0 * lead > bar + 0.2;
                Window { score, votes, lead, relevant }
            })
            .collect()
    }

    #[test]
    fn votes_and_lead_come_out_as_positive_score_credits() {
        let c = CallFit::fit(&samples(), 10).expect("fits");
        assert!(c.platt.0 > 0.0);
        assert!((0.1..0.35).contains(&c.agreement), "per vote {}", c.agreement);
        assert!((0.5..1.6).contains(&c.lead), "per unit of lead {}", c.lead);
        let w = |votes, lead| Window { score: 0.5, votes, lead, relevant: true };
        assert!(c.probability(&w(1, 0.0)) > c.probability(&w(0, 0.0)));
        assert!(c.probability(&w(0, 0.1)) > c.probability(&w(0, 0.0)));
        assert_eq!(c.credit(9, 0.0), c.credit(MAX_VOTES, 0.0), "votes are capped");
        // The held-out half prefers the map that knows about the call.
        assert!(c.holdout[1].log_loss < c.holdout[0].log_loss, "{:?}", c.holdout);
        let t = c.threshold_for(0.8).expect("reachable");
        let at = Window { score: t - c.credit(2, 0.05), votes: 2, lead: 0.05, relevant: true };
        assert!((c.probability(&at) - 0.8).abs() < 0.01);
        // Stored with a question map, its thresholds are the ones targets take.
        let q =
            super::super::Calibration::fit(&[(0.1, false), (0.2, true), (0.3, false), (0.4, true)]).unwrap();
        let both = super::super::Calibration { calls: Some(c.clone()), ..q.clone() };
        assert_eq!(both.threshold_for(0.8), c.threshold_for(0.8));
        assert_eq!(both.probability(0.3), q.probability(0.3), "the console keeps the question map");
    }

    #[test]
    fn a_calibration_sets_the_credits_only_with_a_calibrated_auto() {
        let q =
            super::super::Calibration::fit(&[(0.1, false), (0.2, true), (0.3, false), (0.4, true)]).unwrap();
        let fit = CallFit::fit(&samples(), 10).unwrap();
        let mut p = crate::engine::Policy { auto_precision: 0.7, agreement_bonus: 0.9, ..Default::default() };
        super::super::Calibration { calls: Some(fit.clone()), ..q.clone() }.apply_to(&mut p);
        assert_eq!((p.agreement_bonus, p.lead_weight), (fit.agreement, fit.lead));
        assert_eq!(Some(p.auto), fit.threshold_for(0.7));
        // A question map alone: no credit, whatever the config said.
        let mut p = crate::engine::Policy { auto_precision: 0.7, agreement_bonus: 0.9, ..Default::default() };
        q.apply_to(&mut p);
        assert_eq!((p.agreement_bonus, p.lead_weight), (0.0, 0.0));
        // A raw auto keeps the configured credits.
        let mut p = crate::engine::Policy { auto_precision: 0.0, agreement_bonus: 0.3, ..Default::default() };
        q.apply_to(&mut p);
        assert_eq!(p.agreement_bonus, 0.3);
    }

    #[test]
    fn votes_are_counted_per_call_and_article() {
        let w = windows([
            ("a", "x", 0.5, 0.4, true),
            ("b", "x", 0.5, 0.5, true),
            ("a", "y", 0.5, 0.6, false),
            ("a", "x", 0.5, 0.4, true),
        ]);
        assert_eq!(w.iter().map(|w| w.votes).collect::<Vec<_>>(), vec![0, 0, 0, 1]);
        assert!((w[0].lead - 0.1).abs() < 1e-6 && w[2].lead == 0.0);
        assert!(CallFit::fit(&w, 2).is_none(), "too few windows");
    }
}
