//! BM25 over the same chunks the dense index holds, so product names, error
//! codes and plan names that embeddings blur still count.
//!
//! Written here rather than taken from a crate: `tantivy` is a whole search
//! engine (segments, a directory, a schema, many dependencies) for what is an
//! in-memory index of at most a few hundred thousand short chunks, rebuilt
//! from the cached chunk texts in milliseconds at load; the `bm25` crate's
//! search engine hashes tokens and does not say which query terms matched a
//! document, which the matches pane needs to explain a hit, and its default
//! tokenizer pulls in a cache crate, stemmers and stop-word lists. What is
//! needed is an inverted index and the Okapi formula (k1 = 1.2, b = 0.75,
//! the non-negative IDF of Lucene), which fit in this file.

use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Terms shown when explaining a hit.
pub const EXPLAINED_TERMS: usize = 6;

/// Lower-cased alphanumeric runs, with a light plural folding ("cards" →
/// "card", "batteries" → "battery") so singular and plural match. Codes like
/// "e42" or "4k" stay whole. Apostrophes split words ("that's" → "that",
/// "s"): keeping contractions whole was measured a little worse on the
/// CLINC dev set (top-1 0.901 against 0.904; BENCHMARKS.md).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| fold(&t.to_lowercase()))
        .collect()
}

fn fold(t: &str) -> String {
    let n = t.chars().count();
    if n > 4 && t.ends_with("ies") {
        return format!("{}y", &t[..t.len() - 3]);
    }
    if n > 3 && t.ends_with('s') && !t.ends_with("ss") && !t.ends_with("us") {
        return t[..t.len() - 1].to_string();
    }
    t.to_string()
}

/// An inverted index over documents identified by their position.
#[derive(Debug, Default)]
pub struct Bm25 {
    postings: HashMap<String, Vec<(u32, u16)>>,
    doc_len: Vec<u32>,
    avg_len: f32,
}

impl Bm25 {
    /// Indexes `docs` in order; document `i` is `docs[i]`.
    pub fn build<'a>(docs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u16)>> = HashMap::new();
        let mut doc_len = Vec::new();
        for (i, text) in docs.into_iter().enumerate() {
            let doc = u32::try_from(i).unwrap_or(u32::MAX);
            let toks = tokens(text);
            doc_len.push(u32::try_from(toks.len()).unwrap_or(u32::MAX));
            let mut tf: HashMap<String, u16> = HashMap::new();
            for t in toks {
                let e = tf.entry(t).or_default();
                *e = e.saturating_add(1);
            }
            for (t, n) in tf {
                postings.entry(t).or_default().push((doc, n));
            }
        }
        let total: u64 = doc_len.iter().map(|&l| u64::from(l)).sum();
        let avg_len = if doc_len.is_empty() { 1.0 } else { (total as f32 / doc_len.len() as f32).max(1.0) };
        Self { postings, doc_len, avg_len }
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    fn idf(&self, df: usize) -> f32 {
        let n = self.doc_len.len() as f32;
        let df = df as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The best BM25 score any document could reach for `query`: every
    /// distinct term matched with a saturated term frequency. Terms the index
    /// has never seen count at the rarest weight, so a query that is mostly
    /// unknown words normalises low.
    pub fn max_score(&self, query: &str) -> f32 {
        let mut terms = tokens(query);
        terms.sort();
        terms.dedup();
        terms.iter().map(|t| self.idf(self.postings.get(t).map_or(0, Vec::len)) * (K1 + 1.0)).sum()
    }

    /// The `n` best documents for `query` with their BM25 scores, best first;
    /// documents sharing no term with the query are left out.
    pub fn search(&self, query: &str, n: usize) -> Vec<(usize, f32)> {
        let mut terms = tokens(query);
        terms.sort();
        terms.dedup();
        // A dense accumulator: common words touch thousands of documents,
        // and indexing a vector beats hashing each of them.
        let mut scores = vec![0f32; self.doc_len.len()];
        let mut touched: Vec<u32> = Vec::new();
        for t in &terms {
            let Some(list) = self.postings.get(t) else { continue };
            let idf = self.idf(list.len());
            for &(doc, tf) in list {
                let Some(slot) = scores.get_mut(doc as usize) else { continue };
                let len = self.doc_len[doc as usize] as f32;
                let tf = f32::from(tf);
                if *slot == 0.0 {
                    touched.push(doc);
                }
                *slot += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
            }
        }
        let mut out: Vec<(usize, f32)> =
            touched.into_iter().map(|d| (d as usize, scores[d as usize])).collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if out.len() > n && n > 0 {
            out.select_nth_unstable_by(n - 1, by_score);
            out.truncate(n);
        }
        out.sort_by(by_score);
        out.truncate(n);
        out
    }

    /// The query's terms that occur in `doc_text`, the rarest in the index
    /// first, at most [`EXPLAINED_TERMS`], for explaining a hit. A term in
    /// more than half the documents ("the", "and") adds almost nothing to
    /// the score and would bury the ones that did: it is left out, by the
    /// index's own counts rather than a stop-word list. So is a lone letter
    /// (the "s" of "that's", the "t" of "isn't"), which explains nothing.
    pub fn matched_terms(&self, query: &str, doc_text: &str) -> Vec<String> {
        let doc: std::collections::HashSet<String> = tokens(doc_text).into_iter().collect();
        let mut out: Vec<(usize, String)> = Vec::new();
        for t in tokens(query) {
            let letter = t.chars().count() == 1 && t.chars().all(char::is_alphabetic);
            if !letter && doc.contains(&t) && !out.iter().any(|(_, o)| *o == t) {
                let df = self.postings.get(&t).map_or(0, Vec::len);
                if df * 2 <= self.len() {
                    out.push((df, t));
                }
            }
        }
        // Stable: equally rare terms keep the query's order.
        out.sort_by_key(|(df, _)| *df);
        out.into_iter().take(EXPLAINED_TERMS).map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fold_case_punctuation_and_plurals() {
        assert_eq!(
            tokens("Error E42: Batteries, cards & 4K!"),
            vec!["error", "e42", "battery", "card", "4k"]
        );
        assert_eq!(tokens("glass bus"), vec!["glass", "bus"]);
    }

    #[test]
    fn rare_terms_outweigh_common_ones_and_misses_are_left_out() {
        let docs = ["the router shows error e42", "the router is fine", "the app crashes", "unrelated words"];
        let idx = Bm25::build(docs.iter().copied());
        let hits = idx.search("router error e42", 10);
        assert_eq!(hits[0].0, 0);
        assert_eq!(hits.len(), 2, "only documents sharing a term: {hits:?}");
        assert!(hits[0].1 > hits[1].1);
        assert!(idx.search("nothing matches", 10).is_empty());
        let best = idx.max_score("router error e42");
        assert!(hits[0].1 < best && best > 0.0);
    }

    #[test]
    fn shorter_documents_win_at_equal_term_frequency() {
        let docs = ["refund policy", "refund policy and many other words about shipping and returns"];
        let idx = Bm25::build(docs.iter().copied());
        let hits = idx.search("refund", 2);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn matched_terms_are_the_shared_ones_rarest_first_without_common_words() {
        let docs = [
            "Error code E42 means the battery is flat",
            "The error light blinks when the hub is offline",
            "Reset the hub and the app",
            "The app shows the battery level",
        ];
        let index = Bm25::build(docs);
        // "e42" is in one document of four, "error" in two, "the" in all.
        assert_eq!(index.matched_terms("My E42 error, the error again", docs[0]), vec!["e42", "error"]);
        // Equally rare terms keep the query's order.
        assert_eq!(index.matched_terms("app hub reset", docs[2]), vec!["reset", "app", "hub"]);
        // A lone letter is a fragment ("level's"), not a term to show.
        assert_eq!(index.matched_terms("the level's s", "the level s"), vec!["level"]);
        // No more than the cap.
        let words: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
        let many = Bm25::build([words.join(" ").as_str(), "x", "y"]);
        assert_eq!(many.matched_terms(&words.join(" "), &words.join(" ")).len(), EXPLAINED_TERMS);
    }
}
