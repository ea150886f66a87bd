//! Measures how well a decision score separates queries the KB answers from
//! queries it does not (`"expected": []`): AUROC, and the operating points
//! at a given out-of-scope push rate. Pure functions over scored queries.

use serde::Serialize;

/// One evaluated query: its decision score, whether the KB answers it, and
/// whether the top article is one of the expected ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f32,
    pub answerable: bool,
    pub correct: bool,
}

/// What pushing everything above a threshold does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// Share of out-of-scope queries pushed (the target rate).
    pub oos_push_rate: f64,
    /// Pushed when the score is strictly above this.
    pub threshold: f32,
    /// Share of answerable queries pushed.
    pub answerable_pushed: f64,
    /// Share of pushes whose top article is expected.
    pub precision: f64,
}

/// The abstention block of `kb eval`.
#[derive(Debug, Clone, Serialize)]
pub struct Abstention {
    pub answerable: usize,
    pub unanswerable: usize,
    /// Probability that an answerable query outscores an unanswerable one.
    pub auroc: f64,
    pub at: Vec<OperatingPoint>,
    /// AUROC of each candidate decision score, for choosing one.
    pub candidates: Vec<(String, f64)>,
}

/// AUROC of `positive` scores against `negative` ones (ties count half);
/// `None` when either side is empty.
pub fn auroc(positive: &[f32], negative: &[f32]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() {
        return None;
    }
    let mut neg = negative.to_vec();
    neg.sort_by(f32::total_cmp);
    let mut wins = 0.0f64;
    for &p in positive {
        let below = neg.partition_point(|&n| n < p);
        let ties = neg[below..].partition_point(|&n| n <= p);
        wins += below as f64 + 0.5 * ties as f64;
    }
    Some(wins / (positive.len() as f64 * negative.len() as f64))
}

/// The operating point where at most `rate` of the unanswerable queries
/// score above the threshold; `None` without unanswerable queries.
pub fn at_oos_rate(scored: &[Scored], rate: f64) -> Option<OperatingPoint> {
    let mut oos: Vec<f32> = scored.iter().filter(|s| !s.answerable).map(|s| s.score).collect();
    if oos.is_empty() {
        return None;
    }
    oos.sort_by(|a, b| b.total_cmp(a));
    let allowed = ((rate * oos.len() as f64).floor() as usize).min(oos.len() - 1);
    let threshold = oos[allowed];
    let pushed: Vec<&Scored> = scored.iter().filter(|s| s.score > threshold).collect();
    let answerable = scored.iter().filter(|s| s.answerable).count();
    let pushed_answerable = pushed.iter().filter(|s| s.answerable).count();
    let correct = pushed.iter().filter(|s| s.correct).count();
    Some(OperatingPoint {
        oos_push_rate: rate,
        threshold,
        answerable_pushed: ratio(pushed_answerable, answerable),
        precision: if pushed.is_empty() { 1.0 } else { ratio(correct, pushed.len()) },
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The abstention block; `None` when the set has no unanswerable query.
/// `candidates` holds, per candidate decision score, its name and one score
/// per query in `scored`'s order.
pub fn abstention(scored: &[Scored], candidates: &[(String, Vec<f32>)]) -> Option<Abstention> {
    let split = |scores: &mut dyn Iterator<Item = (f32, bool)>| {
        let (mut p, mut n) = (Vec::new(), Vec::new());
        for (s, answerable) in scores {
            if answerable { p.push(s) } else { n.push(s) }
        }
        (p, n)
    };
    let (p, n) = split(&mut scored.iter().map(|s| (s.score, s.answerable)));
    let auroc = auroc(&p, &n)?;
    let candidates = candidates
        .iter()
        .filter_map(|(name, scores)| {
            let (p, n) = split(&mut scores.iter().zip(scored).map(|(&s, q)| (s, q.answerable)));
            Some((name.clone(), super::abstention::auroc(&p, &n)?))
        })
        .collect();
    Some(Abstention {
        answerable: p.len(),
        unanswerable: n.len(),
        auroc,
        at: [0.10, 0.05].iter().filter_map(|&r| at_oos_rate(scored, r)).collect(),
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_is_one_for_perfect_separation_and_half_for_ties() {
        assert_eq!(auroc(&[0.9, 0.8], &[0.1, 0.2]), Some(1.0));
        assert_eq!(auroc(&[0.1], &[0.9]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[0.5]), Some(0.5));
        assert_eq!(auroc(&[0.6, 0.4], &[0.5]), Some(0.5));
        assert_eq!(auroc(&[], &[0.5]), None);
    }

    fn q(score: f32, answerable: bool, correct: bool) -> Scored {
        Scored { score, answerable, correct }
    }

    #[test]
    fn operating_point_holds_the_oos_rate_and_counts_precision() {
        // 10 unanswerable at 0.0..0.9, answerable at 0.95 (right) and 0.85 (wrong) and 0.5.
        let mut s: Vec<Scored> = (0..10).map(|i| q(i as f32 / 10.0, false, false)).collect();
        s.extend([q(0.95, true, true), q(0.85, true, false), q(0.5, true, true)]);
        let p = at_oos_rate(&s, 0.10).unwrap();
        // One unanswerable (0.9) may pass: threshold is the second highest, 0.8.
        assert_eq!(p.threshold, 0.8);
        assert!((p.answerable_pushed - 2.0 / 3.0).abs() < 1e-9);
        // Pushed: 0.95 right, 0.85 wrong, 0.9 unanswerable.
        assert!((p.precision - 1.0 / 3.0).abs() < 1e-9);
        let p = at_oos_rate(&s, 0.0).unwrap();
        assert_eq!(p.threshold, 0.9);
        assert!((p.precision - 1.0).abs() < 1e-9);
        assert!(at_oos_rate(&[q(0.5, true, true)], 0.1).is_none());
    }

    #[test]
    fn abstention_reports_candidates_and_needs_unanswerable_queries() {
        let s = [q(0.9, true, true), q(0.2, false, false)];
        let a = abstention(&s, &[("flipped".into(), vec![0.1, 0.8])]).unwrap();
        assert_eq!((a.auroc, a.candidates[0].1), (1.0, 0.0));
        assert_eq!(a.at.len(), 2);
        assert!(abstention(&s[..1], &[]).is_none());
    }
}
