//! What `bench e2e` found, judged by each script's `expected_articles`:
//! the share of searches whose best article is relevant, and the precision
//! of automatic pushes (the share of auto-sent suggestions whose article is
//! one the call needs), read back from the run's audit log.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// How relevant the searches and the automatic pushes were.
#[derive(Debug, Clone, Serialize)]
pub struct Relevance {
    /// Share of searches whose best article is one the call needs.
    pub top1_share: f64,
    /// Calls where at least one search's best article was relevant.
    pub calls_covered: usize,
    pub calls_labelled: usize,
    /// Suggestions sent automatically, and those whose article the call needs.
    pub auto_pushes: usize,
    pub auto_relevant: usize,
    /// `auto_relevant / auto_pushes` (0 without pushes).
    pub auto_precision: f64,
    /// Calls that got at least one relevant automatic push.
    pub calls_with_relevant_push: usize,
    /// The automatic pushes the call did not need: (call, article sent).
    pub auto_misses: Vec<(String, String)>,
    /// Labelled calls that got no relevant automatic push.
    pub calls_without_relevant_push: Vec<String>,
}

/// Scores the audit log's searches and auto decisions against the labels.
pub fn relevance(audit: &[serde_json::Value], expected: &BTreeMap<String, Vec<String>>) -> Relevance {
    let wanted = |call: &str, article: &str| {
        expected.get(call).filter(|w| !w.is_empty()).map(|w| w.iter().any(|a| a == article))
    };
    let (mut hits, mut judged) = (0usize, 0usize);
    let mut covered = BTreeSet::new();
    let (mut pushes, mut relevant) = (0usize, 0usize);
    let mut pushed_right = BTreeSet::new();
    let mut misses = Vec::new();
    for v in audit {
        let call = v["conversation_id"].as_str().unwrap_or_default();
        if v["event"] == "search" && v["stale"] == false {
            let Some(best) = v["results"][0]["article_id"].as_str() else { continue };
            let Some(right) = wanted(call, best) else { continue };
            judged += 1;
            if right {
                hits += 1;
                covered.insert(call.to_string());
            }
        } else if v["event"] == "decision" && v["by"] == "auto" && v["action"] == "send" {
            let Some(right) = wanted(call, v["article_id"].as_str().unwrap_or_default()) else { continue };
            pushes += 1;
            if right {
                relevant += 1;
                pushed_right.insert(call.to_string());
            } else {
                misses.push((call.to_string(), v["article_id"].as_str().unwrap_or_default().to_string()));
            }
        }
    }
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Relevance {
        top1_share: share(hits, judged),
        calls_covered: covered.len(),
        calls_labelled: expected.values().filter(|w| !w.is_empty()).count(),
        auto_pushes: pushes,
        auto_relevant: relevant,
        auto_precision: share(relevant, pushes),
        calls_with_relevant_push: pushed_right.len(),
        auto_misses: misses,
        calls_without_relevant_push: expected
            .iter()
            .filter(|(call, w)| !w.is_empty() && !pushed_right.contains(*call))
            .map(|(call, _)| call.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn searches_and_auto_pushes_are_scored_against_the_labels() {
        let expected = BTreeMap::from([("a".to_string(), vec!["x".to_string()]), ("b".to_string(), vec![])]);
        let log = vec![
            json!({"event":"search","conversation_id":"a","stale":false,"results":[{"article_id":"x"}]}),
            json!({"event":"search","conversation_id":"a","stale":false,"results":[{"article_id":"y"}]}),
            json!({"event":"search","conversation_id":"a","stale":true,"results":[{"article_id":"y"}]}),
            json!({"event":"search","conversation_id":"b","stale":false,"results":[{"article_id":"y"}]}),
            json!({"event":"decision","conversation_id":"a","by":"auto","action":"send","article_id":"x"}),
            json!({"event":"decision","conversation_id":"a","by":"auto","action":"send","article_id":"z"}),
            json!({"event":"decision","conversation_id":"a","by":"operator","action":"send","article_id":"z"}),
        ];
        let r = relevance(&log, &expected);
        assert_eq!((r.calls_covered, r.calls_labelled), (1, 1));
        assert!((r.top1_share - 0.5).abs() < 1e-9);
        assert_eq!((r.auto_pushes, r.auto_relevant, r.calls_with_relevant_push), (2, 1, 1));
        assert!((r.auto_precision - 0.5).abs() < 1e-9);
        assert_eq!(r.auto_misses, vec![("a".to_string(), "z".to_string())]);
        assert!(r.calls_without_relevant_push.is_empty(), "b is not labelled");
    }
}
