//! Retrieval evaluation on a labelled query set: top-1 accuracy, recall@k,
//! MRR@k, and single-query latency measured the way the live path runs
//! (each query embedded and searched alone).

use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::store::Retriever;
use super::{KbError, Location};

/// One line of a queries file.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledQuery {
    pub query: String,
    pub expected: Vec<String>,
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
    pub k: usize,
    pub top1: f64,
    pub recall_at_k: f64,
    pub mrr_at_k: f64,
    pub latency_ms: LatencyMs,
    /// Expected ids that are not in the knowledge base (labelling mistakes).
    pub unknown_ids: Vec<String>,
    pub misses: Vec<Miss>,
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
    for q in queries {
        for id in &q.expected {
            if retriever.kb.article(id).is_none() && !unknown.contains(id) {
                unknown.push(id.clone());
            }
        }
        let t = Instant::now();
        let hits = retriever.query(&q.query, k)?;
        let micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        hist.saturating_record(micros);
        let rank = hits.iter().position(|h| q.expected.contains(&h.article_id));
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
    let n = queries.len() as f64;
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(EvalReport {
        queries: queries.len(),
        k,
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
    })
}
