//! The hybrid search of a loaded knowledge base: the dense FAISS ranking and
//! the BM25 ranking over the same chunks, fused ([`super::super::rank`]),
//! one hit per article with what explains it, plus the query-level signals
//! the decision score is made from.

use super::KnowledgeBase;
use crate::kb::bm25::Bm25;
use crate::kb::chunk::Chunk;
use crate::kb::rank::{self, ChunkScore, Signals};
use crate::kb::{Hit, KbError};

/// Dense chunk cosines kept as query-level signals.
pub const SIGNAL_CHUNKS: usize = 10;

/// A search's hits and the signals about the query as a whole.
#[derive(Debug, Clone, Default)]
pub struct Ranked {
    pub hits: Vec<Hit>,
    pub signals: Signals,
}

/// Query-level signals from the best chunk cosines (best first) and the best
/// hit's BM25 share.
pub fn signals(top_chunks: &[f32], runner_up: f32, bm25n: f32) -> Signals {
    let mean = |n: usize| {
        let top = &top_chunks[..top_chunks.len().min(n)];
        if top.is_empty() { 0.0 } else { top.iter().sum::<f32>() / top.len() as f32 }
    };
    Signals { runner_up, density: mean(5), density3: mean(3), density10: mean(SIGNAL_CHUNKS), bm25n }
}

/// The BM25 index over the chunks' embedded texts.
pub fn lexical_index(titles: &[&str], chunks: &[Chunk]) -> Bm25 {
    let texts: Vec<String> =
        chunks.iter().map(|c| c.embed_text(titles.get(c.article as usize).copied().unwrap_or(""))).collect();
    Bm25::build(texts.iter().map(String::as_str))
}

impl KnowledgeBase {
    /// The `k` best articles for a query given as text and as its unit
    /// vector, by the KB's fusion; each hit says its cosine, BM25 score and
    /// matched terms.
    pub fn search_text(&mut self, text: &str, query: &[f32], k: usize) -> Result<Ranked, KbError> {
        if query.len() != self.index.dimension() {
            return Err(KbError::DimensionMismatch { model: query.len(), index: self.index.dimension() });
        }
        let total = self.index.len();
        if k == 0 || total == 0 {
            return Ok(Ranked::default());
        }
        // Several chunks of one article can crowd the top; fetch more chunks
        // than articles wanted, and widen until k articles or all chunks.
        let mut fetch = (k * 4).max(k + 8).max(40).min(total);
        let mut dense = loop {
            let raw = self.index.search(query, fetch)?;
            let dense: Vec<ChunkScore> = raw
                .iter()
                .filter_map(|&(label, score)| {
                    let chunk = usize::try_from(label).ok()?;
                    let article = self.chunks.get(chunk)?.article;
                    Some(ChunkScore { chunk, article, score })
                })
                .collect();
            let mut articles: Vec<u32> = dense.iter().map(|c| c.article).collect();
            articles.sort_unstable();
            articles.dedup();
            if articles.len() >= k || fetch >= total {
                break dense;
            }
            fetch = (fetch * 4).min(total);
        };
        let lexical: Vec<ChunkScore> = self
            .bm25
            .search(text, fetch)
            .into_iter()
            .filter_map(|(chunk, score)| {
                Some(ChunkScore { chunk, article: self.chunks.get(chunk)?.article, score })
            })
            .collect();
        // Signals come from the plain cosines, before any reordering.
        let top_chunks: Vec<f32> = dense.iter().take(SIGNAL_CHUNKS).map(|c| c.score).collect();
        if matches!(self.fusion, rank::Fusion::Rrf { .. })
            && rank::expands(&dense, rank::EXPANSION_NEIGHBOURS.min(dense.len()))
        {
            let vectors = dense
                .iter()
                .map(|c| self.index.reconstruct(c.chunk as u64))
                .collect::<Result<Vec<_>, _>>()?;
            rank::expand(&mut dense, &vectors, query, rank::EXPANSION_NEIGHBOURS, rank::EXPANSION_WEIGHT);
        }
        let candidates = rank::fuse(&dense, &lexical, self.bm25.max_score(text), self.fusion);
        let mut hits = Vec::with_capacity(k);
        for c in candidates.iter().take(k) {
            let (Some(chunk), Some(a)) = (self.chunks.get(c.chunk), self.articles.get(c.article as usize))
            else {
                continue;
            };
            // A title match shows the article's opening passage.
            let passage = if chunk.title_only {
                self.first_passage.get(c.article as usize).and_then(|&i| self.chunks.get(i)).unwrap_or(chunk)
            } else {
                chunk
            };
            let hybrid = self.fusion != rank::Fusion::Dense;
            hits.push(Hit {
                article_id: a.id.clone(),
                title: a.title.clone(),
                url: a.url.clone(),
                score: c.score,
                chunk: passage.ordinal,
                text: passage.text.clone(),
                dense: hybrid.then_some(c.dense),
                bm25: hybrid.then_some(c.bm25),
                terms: if hybrid {
                    self.bm25.matched_terms(text, &chunk.embed_text(&a.title))
                } else {
                    Vec::new()
                },
                probability: None,
                context: None,
            });
        }
        let runner_up = candidates.get(1).map_or(0.0, |c| c.dense);
        let signals = signals(&top_chunks, runner_up, candidates.first().map_or(0.0, |c| c.bm25n));
        if self.fusion != rank::Fusion::Dense {
            // Hybrid hits are thresholded on the decision score, never
            // rising down the list; `dense` keeps the cosine.
            // Measured against the top hit's own cosine, so the top hit's
            // decision score is exactly the query's.
            let best = hits.first().and_then(|h| h.dense).unwrap_or(0.0);
            let mut ceiling = f32::INFINITY;
            for h in &mut hits {
                let d = rank::decision(h.dense.unwrap_or(h.score), best, &signals).min(ceiling);
                h.score = d;
                ceiling = d;
            }
        }
        Ok(Ranked { hits, signals })
    }
}
