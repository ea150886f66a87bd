//! What one pass of the knowledge-base worker sends through the model: the
//! distinct texts of its batch with the parts of them need detection reads
//! ([`Texts`]), and the vectors of texts run a moment before ([`Recent`]),
//! which a debounced search on an already-judged window takes instead of a
//! second model run.

use std::collections::HashMap;
use std::ops::Range;

use crate::kb::need;

/// Vectors of the texts most recently run, by text: a debounced search
/// finds its window here, run a moment before for the verdict on its
/// newest utterance. Sized for hundreds of calls each waiting out a
/// debounce; the embedder never changes under the worker, so entries stay
/// valid across index swaps.
pub(super) type Recent = lru::LruCache<String, Vec<f32>>;

const RECENT_TEXTS: usize = 1024;

pub(super) fn recent() -> Recent {
    lru::LruCache::new(std::num::NonZeroUsize::MIN.saturating_add(RECENT_TEXTS - 1))
}

/// Where a search's vector comes from.
pub(super) enum Source {
    Recent(Vec<f32>),
    Run(usize),
    /// Nothing to embed (a blank query).
    Empty,
}

/// The distinct texts of one model run, each with the parts to read in it.
#[derive(Default)]
pub(super) struct Texts {
    pub(super) texts: Vec<String>,
    pub(super) parts: Vec<Vec<Range<usize>>>,
    slots: HashMap<String, usize>,
}

impl Texts {
    pub(super) fn slot(&self, text: &str) -> Option<usize> {
        self.slots.get(text).copied()
    }

    /// The slot of `text` (trimmed; `None` if blank) and, when an utterance
    /// starting at byte `utterance` is to be judged in it, where the parts
    /// need detection reads ([`need::parts`]) begin in the slot's parts.
    pub(super) fn place(&mut self, text: &str, utterance: Option<usize>) -> Option<(usize, Option<usize>)> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let slot = *self.slots.entry(text.to_string()).or_insert_with(|| {
            self.texts.push(text.to_string());
            self.parts.push(Vec::new());
            self.texts.len() - 1
        });
        let k = utterance.map(|at| {
            let wanted = need::parts(text, at);
            let asked = &mut self.parts[slot];
            // Parts go in pairs ([`need::parts`]): look for this pair.
            match asked.chunks(wanted.len()).position(|w| w == wanted.as_slice()) {
                Some(pair) => pair * wanted.len(),
                None => {
                    let k = asked.len();
                    asked.extend(wanted);
                    k
                }
            }
        });
        Some((slot, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_and_the_verdict_on_its_end_share_one_text() {
        let mut t = Texts::default();
        let window = "my card was declined thanks a lot";
        // The search's window, then the verdict on its last words.
        assert_eq!(t.place(window, None), Some((0, None)));
        assert_eq!(t.place(window, Some(21)), Some((0, Some(0))));
        assert_eq!(t.parts[0], vec![21..window.len(), 0..21]);
        // Asked again: the same parts; another utterance: parts of its own.
        assert_eq!(t.place(&format!(" {window} "), Some(21)), Some((0, Some(0))));
        assert_eq!(t.place(window, Some(12)), Some((0, Some(2))));
        assert_eq!(t.place("thanks a lot", Some(0)), Some((1, Some(0))));
        assert_eq!(t.place("  ", Some(0)), None);
        assert_eq!(t.texts.len(), 2);
    }
}
