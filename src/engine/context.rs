//! Call context: what a call's earlier searches said about each article,
//! and the re-ranking of a new search's hits by it.
//!
//! One window of customer speech (two utterances) is a noisy query: a name,
//! an order number or a side remark lands it near a neighbouring article,
//! and siblings (a double charge and a cancellation, a dead hub and a hub
//! offline) score within a hair of each other. The call as a whole is much
//! less ambiguous: the article the customer needs keeps coming back among
//! the best hits search after search. So each search leaves evidence — the
//! scores of its best [`CONTEXT_HITS`] articles, added to what earlier
//! searches left and decaying by `context_decay` per search — and the next
//! search's hits are ranked by their own score plus `context_weight` times
//! that evidence. The search asks the KB for `context_pool` hits so that an
//! article the call keeps returning to can rise from below the top few.
//!
//! Measured on the 75 calibration calls (BENCHMARKS.md, "Call context"):
//! the best article is one the call needs in 44 % of searches without it
//! and 62 % with it (weight 0.2, decay 0.95, pool 10); weights 0.2–0.5 and
//! decays 0.9–1.0 all land within two points of that. Results that came
//! back stale feed the evidence too (see `search`).

use std::collections::HashMap;

use crate::domain::Hit;

/// How many of a search's best hits leave evidence.
pub const CONTEXT_HITS: usize = 3;

/// Evidence per article from a call's earlier searches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext {
    evidence: HashMap<String, f32>,
}

impl CallContext {
    /// The evidence earlier searches left for `article`.
    pub fn evidence(&self, article: &str) -> f32 {
        self.evidence.get(article).copied().unwrap_or(0.0)
    }

    /// Takes a search's hits in the KB's order: re-ranks them by own score
    /// plus `weight` × the evidence earlier searches left (each hit's
    /// `context` says its credit), then adds this search's evidence,
    /// decaying the old by `decay`. A weight of 0 leaves the order alone
    /// and sets no credit.
    pub fn rerank(&mut self, hits: &mut [Hit], weight: f32, decay: f32) {
        if weight > 0.0 {
            for h in hits.iter_mut() {
                let credit = weight * self.evidence(&h.article_id);
                h.context = (credit > 0.0).then_some(credit);
            }
        }
        let fresh: Vec<(String, f32)> =
            hits.iter().take(CONTEXT_HITS).map(|h| (h.article_id.clone(), h.score.max(0.0))).collect();
        if weight > 0.0 {
            // Stable: equal totals keep the KB's order.
            hits.sort_by(|a, b| b.ranked_score().total_cmp(&a.ranked_score()));
        }
        for e in self.evidence.values_mut() {
            *e *= decay;
        }
        // Faded evidence is dropped so a long call's map stays small.
        self.evidence.retain(|_, e| *e > 1e-3);
        for (article, score) in fresh {
            *self.evidence.entry(article).or_insert(0.0) += score;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(article: &str, score: f32) -> Hit {
        Hit { article_id: article.into(), score, ..Hit::default() }
    }

    fn order(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.article_id.as_str()).collect()
    }

    #[test]
    fn an_article_the_call_keeps_returning_to_outranks_a_one_off_sibling() {
        let mut c = CallContext::default();
        let mut first = vec![hit("double-charge", 0.60), hit("refund", 0.50), hit("phishing", 0.45)];
        c.rerank(&mut first, 0.2, 0.95);
        assert_eq!(order(&first), ["double-charge", "refund", "phishing"], "nothing to go on yet");
        assert!(first.iter().all(|h| h.context.is_none()));
        let mut next = vec![hit("cancel", 0.50), hit("double-charge", 0.45), hit("refund", 0.30)];
        c.rerank(&mut next, 0.2, 0.95);
        // 0.45 + 0.2 × 0.60 = 0.57 beats 0.50 with no evidence.
        assert_eq!(order(&next), ["double-charge", "cancel", "refund"]);
        let credit = next[0].context.expect("credited");
        assert!((credit - 0.2 * 0.60).abs() < 1e-6, "{credit}");
        assert_eq!(next[1].context, None);
        assert!((next[2].context.unwrap() - 0.2 * 0.50).abs() < 1e-6);
        // This search's own order (cancel first) is what it leaves behind.
        assert!((c.evidence("cancel") - 0.50).abs() < 1e-6);
        assert!((c.evidence("double-charge") - (0.60 * 0.95 + 0.45)).abs() < 1e-6);
    }

    #[test]
    fn evidence_decays_per_search_and_comes_from_the_best_three_only() {
        let mut c = CallContext::default();
        let mut hits = vec![hit("a", 0.5), hit("b", 0.4), hit("c", 0.3), hit("d", 0.9)];
        c.rerank(&mut hits, 0.0, 0.5);
        assert_eq!(order(&hits), ["a", "b", "c", "d"], "weight 0 keeps the order");
        assert_eq!((c.evidence("a"), c.evidence("d")), (0.5, 0.0));
        let mut none: Vec<Hit> = Vec::new();
        c.rerank(&mut none, 0.2, 0.5);
        assert_eq!(c.evidence("a"), 0.25);
        let mut negative = vec![hit("e", -0.2)];
        c.rerank(&mut negative, 0.2, 0.5);
        assert_eq!(c.evidence("e"), 0.0, "a negative score leaves no evidence");
    }
}
