//! Retrieval evaluation on a labelled query set: top-1 accuracy, recall@k,
//! MRR@k (over the answerable queries), abstention (how well the decision
//! score tells answerable queries from `"expected": []` ones), and
//! single-query latency measured the way the live path runs (each query
//! embedded and searched alone).

use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::abstention::{self, Abstention, Scored};
use super::rank;
use super::store::Retriever;
use super::{KbError, Location};

/// One line of a queries file. An empty `expected` marks a query nothing in
/// the KB answers: the right behaviour is to suggest nothing.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledQuery {
    pub query: String,
    pub expected: Vec<String>,
}

/// One query's outcome, for `--per-query` and for calibration.
#[derive(Debug, Clone, Serialize)]
pub struct QueryScore {
    pub query: String,
    pub answerable: bool,
    /// The top article is one of the expected ones.
    pub correct: bool,
    pub top: Option<String>,
    /// The decision score (what thresholds apply to).
    pub score: f32,
    /// The top hit's cosine, and its BM25 share of the query's term weight.
    pub dense: Option<f32>,
    pub bm25n: f32,
    pub margin: f32,
    pub density: f32,
}

/// A query whose expected articles were not in the top k.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub query: String,
    pub expected: Vec<String>,
    pub got: Vec<String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub queries: usize,
    /// Queries with expected articles; top-1, recall and MRR are over these.
    pub answerable: usize,
    pub k: usize,
    /// How dense and BM25 rankings were fused.
    pub fusion: rank::Fusion,
    pub top1: f64,
    pub recall_at_k: f64,
    pub mrr_at_k: f64,
    pub latency_ms: LatencyMs,
    /// Expected ids that are not in the knowledge base (labelling mistakes).
    pub unknown_ids: Vec<String>,
    pub misses: Vec<Miss>,
    /// Present when the set has unanswerable queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abstention: Option<Abstention>,
    /// Every query's scores, with `--per-query`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_query: Vec<QueryScore>,
}

/// Reads a JSON Lines queries file; errors name the line.
pub fn load_queries(path: &Path) -> Result<Vec<LabelledQuery>, KbError> {
    let bytes = std::fs::read(path).map_err(|source| KbError::Io { path: path.into(), source })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| KbError::NotUtf8 {
        at: Location::new(path, bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location::new(path, i + 1);
        let q: LabelledQuery = serde_json::from_str(line)
            .map_err(|e| KbError::Record { at: at.clone(), message: e.to_string() })?;
        if q.query.trim().is_empty() {
            return Err(KbError::Record { at, message: "empty `query`".into() });
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(KbError::Record { at: Location::new(path, 1), message: "no queries in file".into() });
    }
    Ok(out)
}

/// Runs every query alone through the retriever and scores the rankings.
pub fn evaluate(
    retriever: &mut Retriever,
    queries: &[LabelledQuery],
    k: usize,
) -> Result<EvalReport, KbError> {
    let k = k.max(1);
    // Warm up once so the first query does not carry one-off set-up costs.
    retriever.query(&queries[0].query, k)?;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| KbError::Index(e.to_string()))?;
    let (mut top1, mut found, mut rr) = (0usize, 0usize, 0f64);
    let mut misses = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut per_query = Vec::with_capacity(queries.len());
    let mut candidates: Vec<(String, Vec<f32>)> = Vec::new();
    for q in queries {
        for id in &q.expected {
            if retriever.kb.article(id).is_none() && !unknown.contains(id) {
                unknown.push(id.clone());
            }
        }
        let t = Instant::now();
        let ranked = retriever.query_ranked(&q.query, k)?;
        let micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        hist.saturating_record(micros);
        let hits = &ranked.hits;
        let answerable = !q.expected.is_empty();
        let rank = hits.iter().position(|h| q.expected.contains(&h.article_id));
        if answerable {
            match rank {
                Some(r) => {
                    found += 1;
                    rr += 1.0 / (r + 1) as f64;
                    if r == 0 {
                        top1 += 1;
                    }
                }
                None => misses.push(Miss {
                    query: q.query.clone(),
                    expected: q.expected.clone(),
                    got: hits.iter().map(|h| h.article_id.clone()).collect(),
                }),
            }
        }
        let sig = ranked.signals;
        let top_score = hits.first().map_or(-1.0, |h| h.score);
        let cosine = hits.first().map_or(-1.0, |h| h.dense.unwrap_or(h.score));
        for (i, (name, v)) in rank::decision_candidates(cosine, &sig).into_iter().enumerate() {
            if candidates.len() <= i {
                candidates.push((name.to_string(), Vec::new()));
            }
            candidates[i].1.push(v);
        }
        per_query.push(QueryScore {
            query: q.query.clone(),
            answerable,
            correct: rank == Some(0),
            top: hits.first().map(|h| h.article_id.clone()),
            score: top_score,
            dense: hits.first().map(|h| h.dense.unwrap_or(h.score)),
            bm25n: sig.bm25n,
            margin: cosine - sig.runner_up,
            density: sig.density,
        });
    }
    let answerable = queries.iter().filter(|q| !q.expected.is_empty()).count();
    let n = answerable.max(1) as f64;
    let ms = |v: u64| v as f64 / 1000.0;
    let scored: Vec<Scored> = per_query
        .iter()
        .map(|p| Scored { score: p.score, answerable: p.answerable, correct: p.correct })
        .collect();
    Ok(EvalReport {
        queries: queries.len(),
        answerable,
        k,
        fusion: retriever.kb.fusion,
        top1: top1 as f64 / n,
        recall_at_k: found as f64 / n,
        mrr_at_k: rr / n,
        latency_ms: LatencyMs {
            p50: ms(hist.value_at_quantile(0.5)),
            p99: ms(hist.value_at_quantile(0.99)),
            max: ms(hist.max()),
        },
        unknown_ids: unknown,
        misses,
        abstention: abstention::abstention(&scored, &candidates),
        per_query,
    })
}
