//! The retriever: the embedding model and a loaded knowledge base
//! together, text in and hits out, one query or a batch, with each hit's
//! probability from the KB's calibration when it has one.

use std::ops::Range;

use super::{BuildProgress, BuildReport, KbOptions, KnowledgeBase, Ranked, open};
use crate::kb::calibration::{self, Calibration};
use crate::kb::embed::FastEmbedder;
use crate::kb::{Embedder, Hit, KbError, Read};
use crate::paths::AppPaths;

/// The embedder and the KB together: text in, hits out.
pub struct Retriever {
    pub kb: KnowledgeBase,
    pub embedder: Box<dyn Embedder>,
    /// Maps scores to probabilities when the KB has been calibrated.
    pub calibration: Option<Calibration>,
}

impl Retriever {
    /// Loads the real model, then loads or builds the KB.
    pub fn open(
        opts: &KbOptions,
        paths: &AppPaths,
        progress: &mut dyn FnMut(BuildProgress),
    ) -> Result<(Self, BuildReport), KbError> {
        let mut embedder = FastEmbedder::load(&opts.model)?;
        let (kb, report) = open(opts, paths, &mut embedder, progress)?;
        let calibration = calibration::for_kb(&kb);
        Ok((Self { kb, embedder: Box::new(embedder), calibration }, report))
    }

    /// Sets each hit's probability from the calibration, if there is one.
    fn calibrate(&self, hits: &mut [Hit]) {
        if let Some(c) = &self.calibration {
            for h in hits {
                h.probability = Some(c.probability(h.score));
            }
        }
    }

    /// Embeds several queries in one batch (sorted by length, so padding
    /// stays small) and searches each; one result per query, in order.
    pub fn query_many(
        &mut self,
        queries: &[(String, usize)],
    ) -> Result<Vec<Result<Vec<Hit>, KbError>>, KbError> {
        let texts: Vec<String> =
            queries.iter().map(|(q, _)| q.trim().to_string()).filter(|q| !q.is_empty()).collect();
        let vectors = self.embedder.embed_many(&texts, &mut |_| {})?;
        let dim = self.embedder.dimension();
        let mut next = vectors.chunks(dim.max(1));
        Ok(queries
            .iter()
            .map(|(q, k)| {
                if q.trim().is_empty() {
                    return Err(KbError::EmptyQuery);
                }
                let v = next.next().ok_or_else(|| KbError::Embed("batch returned too few vectors".into()))?;
                self.answer(q, v, *k)
            })
            .collect())
    }

    /// Embeds texts in one batch: `dimension` floats per text, in order.
    pub fn embed_texts(&mut self, texts: &[String]) -> Result<Vec<f32>, KbError> {
        self.embedder.embed_many(texts, &mut |_| {})
    }

    /// Embeds a few texts and reads parts of them in context
    /// ([`Embedder::read_parts`]).
    pub fn read_texts(
        &mut self,
        texts: &[String],
        parts: &[Vec<Range<usize>>],
    ) -> Result<Vec<Read>, KbError> {
        self.embedder.read_parts(texts, parts)
    }

    /// The embedding model's output size.
    pub fn dimension(&self) -> usize {
        self.embedder.dimension()
    }

    /// Searches a query already embedded as `vector`.
    pub fn answer(&mut self, query: &str, vector: &[f32], k: usize) -> Result<Vec<Hit>, KbError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(KbError::EmptyQuery);
        }
        let mut hits = self.kb.search_text(query, vector, k)?.hits;
        self.calibrate(&mut hits);
        Ok(hits)
    }

    /// Embeds one query and searches it.
    pub fn query(&mut self, text: &str, k: usize) -> Result<Vec<Hit>, KbError> {
        Ok(self.query_ranked(text, k)?.hits)
    }

    /// Embeds one query and searches it, with the query-level signals.
    pub fn query_ranked(&mut self, text: &str, k: usize) -> Result<Ranked, KbError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KbError::EmptyQuery);
        }
        let v = self.embedder.embed_one(text)?;
        let mut ranked = self.kb.search_text(text, &v, k)?;
        self.calibrate(&mut ranked.hits);
        Ok(ranked)
    }
}
