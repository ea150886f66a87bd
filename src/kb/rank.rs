//! Hybrid ranking: fuses the dense (cosine) and the BM25 chunk rankings into
//! one article ranking, and computes each hit's score. Pure: chunk-level
//! results in, article candidates out.
//!
//! Two fusions are offered and were measured on the same data
//! (BENCHMARKS.md): reciprocal-rank fusion, which uses only ranks, and a
//! weighted score, `(1 - w) * cosine + w * bm25n`, where `bm25n` is the BM25
//! score over the best score any document could reach for this query (the
//! share of the query's term weight a chunk matches, in 0..=1), so the fused
//! score stays on the cosine's scale and can carry thresholds.

use serde::{Deserialize, Serialize};

/// How dense and lexical rankings are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fusion {
    /// Cosine only (the original stack).
    Dense,
    /// Reciprocal-rank fusion with constant `k`; the score is the cosine.
    Rrf { k: f32 },
    /// `(1 - weight) * cosine + weight * bm25n`, ranked and scored by it.
    Weighted { weight: f32 },
}

impl Default for Fusion {
    /// Reciprocal-rank fusion: the best top-1 on the development set (0.903
    /// against 0.894 for the best weighted fusion, 0.884 dense only), and
    /// with the shipped calibration its thresholds are set as precisions.
    fn default() -> Self {
        Self::Rrf { k: 60.0 }
    }
}

/// The BM25 share in the weighted fusion (measured: BENCHMARKS.md).
pub const DEFAULT_WEIGHT: f32 = 0.1;

impl std::str::FromStr for Fusion {
    type Err = String;
    /// `dense`, `rrf`, `rrf:60`, `weighted`, `weighted:0.2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once(':').map_or((s, None), |(a, b)| (a, Some(b)));
        let num = |default: f32| -> Result<f32, String> {
            arg.map_or(Ok(default), |a| a.trim().parse::<f32>().map_err(|e| format!("`{a}`: {e}")))
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "dense" => Ok(Self::Dense),
            "rrf" => Ok(Self::Rrf { k: num(60.0)?.max(1.0) }),
            "weighted" => {
                let w = num(DEFAULT_WEIGHT)?;
                if (0.0..=1.0).contains(&w) {
                    Ok(Self::Weighted { weight: w })
                } else {
                    Err(format!("fusion weight must be within 0..=1, not {w}"))
                }
            }
            other => Err(format!("unknown fusion `{other}` (expected dense, rrf[:k] or weighted[:w])")),
        }
    }
}

/// One chunk in a ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkScore {
    pub chunk: usize,
    pub article: u32,
    pub score: f32,
}

/// One article after fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub article: u32,
    /// The chunk to show: the best dense chunk, else the best BM25 one.
    pub chunk: usize,
    /// Best cosine among the article's fetched chunks; for an article only
    /// BM25 found, the lowest fetched cosine (an upper bound on its own).
    pub dense: f32,
    /// Best BM25 score of its chunks (0 when none matched a term).
    pub bm25: f32,
    /// `bm25` over the query's best possible BM25 score, in 0..=1.
    pub bm25n: f32,
    /// The score the hit is ranked by and that thresholds apply to.
    pub score: f32,
}

/// Fuses chunk rankings (each best first) into article candidates, best
/// first. `bm25_max` is the best BM25 score possible for the query.
pub fn fuse(dense: &[ChunkScore], lexical: &[ChunkScore], bm25_max: f32, fusion: Fusion) -> Vec<Candidate> {
    // The lowest fetched cosine (the list may be in expansion order).
    let floor = dense.iter().map(|c| c.score).reduce(f32::min).unwrap_or(0.0);
    // Article order of first appearance gives each list's article ranks.
    let mut out: Vec<Candidate> = Vec::new();
    let mut dense_rank: Vec<usize> = Vec::new();
    let mut lex_rank: Vec<Option<usize>> = Vec::new();
    for c in dense {
        if out.iter().all(|x| x.article != c.article) {
            dense_rank.push(out.len());
            lex_rank.push(None);
            out.push(Candidate {
                article: c.article,
                chunk: c.chunk,
                dense: c.score,
                bm25: 0.0,
                bm25n: 0.0,
                score: 0.0,
            });
        }
    }
    let mut seen_lex = 0usize;
    if fusion != Fusion::Dense {
        for c in lexical {
            match out.iter().position(|x| x.article == c.article) {
                Some(i) => {
                    if lex_rank[i].is_none() {
                        lex_rank[i] = Some(seen_lex);
                        seen_lex += 1;
                        out[i].bm25 = c.score;
                    }
                }
                None => {
                    dense_rank.push(usize::MAX);
                    lex_rank.push(Some(seen_lex));
                    seen_lex += 1;
                    out.push(Candidate {
                        article: c.article,
                        chunk: c.chunk,
                        dense: floor,
                        bm25: c.score,
                        bm25n: 0.0,
                        score: 0.0,
                    });
                }
            }
        }
    }
    let norm = if bm25_max > 0.0 { bm25_max } else { 1.0 };
    let mut keyed: Vec<(f32, Candidate)> = out
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.bm25n = (c.bm25 / norm).clamp(0.0, 1.0);
            let key = match fusion {
                Fusion::Dense => {
                    c.score = c.dense;
                    c.dense
                }
                Fusion::Rrf { k } => {
                    c.score = c.dense;
                    let r = |rank: Option<usize>| rank.map_or(0.0, |r| 1.0 / (k + r as f32 + 1.0));
                    let d = (dense_rank[i] != usize::MAX).then_some(dense_rank[i]);
                    r(d) + r(lex_rank[i])
                }
                Fusion::Weighted { weight } => {
                    c.score = (1.0 - weight) * c.dense + weight * c.bm25n;
                    c.score
                }
            };
            (key, c)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, c)| c).collect()
}

/// Chunks whose mean vector expands the query ([`expand`]).
pub const EXPANSION_NEIGHBOURS: usize = 10;
/// How much the neighbours' mean counts beside the query itself.
pub const EXPANSION_WEIGHT: f32 = 1.0;

/// Reorders a dense chunk ranking (best first) by the expanded query: each
/// chunk by `query·v + weight · mean(best neighbours)·v`, where `vectors[i]`
/// is `dense[i]`'s unit vector. Scores stay the plain cosines, which
/// thresholds and the decision score use; only the order changes.
///
/// Why: when many short records answer alike (intent sets), the nearest
/// record is often a lone look-alike from a neighbouring topic, while the
/// neighbourhood as a whole points at the right one. Expanding the query
/// with its neighbours' mean (average query expansion) lifts CLINC dev
/// top-1 from 0.899 to 0.904 (BENCHMARKS.md, "Query expansion").
/// Reordering only the fetched chunks finds the same top as a second
/// search would, without one.
///
/// Only when the best `neighbours` chunks are all of different articles:
/// in a KB of long articles the neighbours are a few articles' passages,
/// their mean is one article's, and expanding towards it cost the sample
/// KB three points of top-1 (0.862 → 0.830) in the same measurement.
pub fn expand(
    dense: &mut Vec<ChunkScore>,
    vectors: &[Vec<f32>],
    query: &[f32],
    neighbours: usize,
    weight: f32,
) {
    let n = neighbours.min(vectors.len());
    if vectors.len() != dense.len() || !expands(dense, n) {
        return;
    }
    let mut centre = vec![0.0f32; query.len()];
    for v in &vectors[..n] {
        for (c, x) in centre.iter_mut().zip(v) {
            *c += x / n as f32;
        }
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut keyed: Vec<(f32, ChunkScore)> =
        dense.iter().zip(vectors).map(|(c, v)| (c.score + weight * dot(&centre, v), *c)).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    *dense = keyed.into_iter().map(|(_, c)| c).collect();
}

/// Whether [`expand`] would reorder: the best `n` chunks are `n` different
/// articles (checked before fetching any vector).
pub fn expands(dense: &[ChunkScore], n: usize) -> bool {
    if n == 0 || dense.len() < n {
        return false;
    }
    let mut articles: Vec<u32> = dense[..n].iter().map(|c| c.article).collect();
    articles.sort_unstable();
    articles.dedup();
    articles.len() == n
}

/// The query-level signals a decision score may use besides a hit's own
/// score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// The best other hit's score (0 when there is none).
    pub runner_up: f32,
    /// Mean cosine of the best five chunks (how dense the neighbourhood is).
    pub density: f32,
    /// The same over the best three, and the best ten.
    pub density3: f32,
    pub density10: f32,
    /// The best hit's BM25 share of the query's term weight.
    pub bm25n: f32,
}

/// Candidate decision scores for a hit scoring `score`, by name; `kb eval`
/// reports the AUROC of each (BENCHMARKS.md has the figures).
pub fn decision_candidates(score: f32, s: &Signals) -> [(&'static str, f32); 9] {
    let margin = score - s.runner_up;
    [
        ("score", score),
        ("margin", margin),
        ("score+margin", score + 0.5 * margin),
        ("density", s.density),
        ("density3", s.density3),
        ("density10", s.density10),
        ("score+density", 0.5 * (score + s.density)),
        ("score+bm25", score + 0.1 * s.bm25n),
        ("density+bm25", s.density + 0.1 * s.bm25n),
    ]
}

/// The decision score a hit is thresholded on, chosen among
/// [`decision_candidates`] by AUROC on the development set: the density of
/// the query's neighbourhood (mean cosine of the best ten chunks) plus a
/// tenth of the BM25 agreement (0.977 against 0.962 for the top cosine;
/// the margin to the runner-up is useless when many records answer alike,
/// 0.50). A hit whose own cosine `dense` is below the top hit's (`top`)
/// loses the difference, so lower-ranked hits score lower.
pub fn decision(dense: f32, top: f32, s: &Signals) -> f32 {
    (s.density10 + 0.1 * s.bm25n - (top - dense).max(0.0)).clamp(-1.0, 1.0)
}

/// Why a hybrid hit ranks where it does: its cosine, BM25 score and the
/// query terms its chunk contains (`None` for a dense-only hit).
pub fn explain(h: &crate::domain::Hit) -> Option<String> {
    let dense = h.dense?;
    let mut s = format!("cosine {dense:.3}  bm25 {:.2}", h.bm25.unwrap_or(0.0));
    if let Some(p) = h.probability {
        s = format!("{:.0}% likely  {s}", p * 100.0);
    }
    if let Some(c) = h.context {
        s.push_str(&format!("  call context +{c:.2}"));
    }
    if !h.terms.is_empty() {
        s.push_str(&format!("  terms: {}", h.terms.join(" ")));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(chunk: usize, article: u32, score: f32) -> ChunkScore {
        ChunkScore { chunk, article, score }
    }

    #[test]
    fn dense_fusion_keeps_the_cosine_order_one_per_article() {
        let dense = [cs(0, 1, 0.8), cs(1, 1, 0.7), cs(2, 2, 0.6)];
        let out = fuse(&dense, &[cs(2, 2, 9.0)], 10.0, Fusion::Dense);
        assert_eq!(out.iter().map(|c| c.article).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(out[0].score, 0.8);
    }

    #[test]
    fn a_strong_lexical_match_lifts_an_article_in_both_fusions() {
        let dense = [cs(0, 1, 0.62), cs(1, 2, 0.60), cs(2, 3, 0.40)];
        let lexical = [cs(1, 2, 8.0)];
        for fusion in [Fusion::Rrf { k: 60.0 }, Fusion::Weighted { weight: 0.3 }] {
            let out = fuse(&dense, &lexical, 10.0, fusion);
            assert_eq!(out[0].article, 2, "{fusion:?}: {out:?}");
            assert!((out[0].bm25n - 0.8).abs() < 1e-6);
        }
    }

    #[test]
    fn articles_only_bm25_found_are_added_with_the_cosine_floor() {
        let out =
            fuse(&[cs(0, 1, 0.5), cs(1, 2, 0.3)], &[cs(7, 9, 4.0)], 4.0, Fusion::Weighted { weight: 0.5 });
        let c = out.iter().find(|c| c.article == 9).expect("added");
        assert_eq!((c.chunk, c.dense, c.bm25n), (7, 0.3, 1.0));
        assert!((c.score - 0.65).abs() < 1e-6);
    }

    #[test]
    fn expansion_follows_the_neighbourhood_not_a_lone_look_alike() {
        // Chunk 0 is nearest but alone; chunks 1..=3 sit together, and the
        // query leans their way.
        let lone = vec![1.0, 0.0];
        let group = vec![0.0, 1.0];
        let q = [0.75f32, 0.66];
        let mut dense = vec![cs(0, 0, 0.75), cs(1, 1, 0.66), cs(2, 2, 0.66), cs(3, 3, 0.66)];
        let vectors = vec![lone, group.clone(), group.clone(), group];
        expand(&mut dense, &vectors, &q, 4, 1.0);
        assert_eq!(dense[0].article, 1, "{dense:?}");
        assert_eq!(dense[3].article, 0);
        // Scores stay the cosines; nothing to expand with leaves the order.
        assert_eq!(dense[3].score, 0.75);
        let mut same = vec![cs(0, 0, 0.9), cs(1, 1, 0.5)];
        expand(&mut same, &[], &q, 4, 1.0);
        assert_eq!(same[0].article, 0);
        // Neighbours that are passages of one article leave the order.
        let mut passages = vec![cs(0, 0, 0.75), cs(1, 1, 0.66), cs(2, 1, 0.66), cs(3, 1, 0.66)];
        expand(&mut passages, &vectors, &q, 4, 1.0);
        assert_eq!(passages[0].chunk, 0);
    }

    #[test]
    fn fusion_parses_with_and_without_arguments() {
        assert_eq!("dense".parse::<Fusion>(), Ok(Fusion::Dense));
        assert_eq!("rrf:30".parse::<Fusion>(), Ok(Fusion::Rrf { k: 30.0 }));
        assert_eq!("weighted:0.2".parse::<Fusion>(), Ok(Fusion::Weighted { weight: 0.2 }));
        assert!("weighted:2".parse::<Fusion>().is_err());
        assert!("magic".parse::<Fusion>().is_err());
    }
}
