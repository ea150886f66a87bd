//! How an index build cuts its texts into model calls: sorted by length,
//! then batches that fill a budget of padded word pieces, so short records
//! go in large batches and long chunks in small ones.
//!
//! A batch costs about its padded size (texts × the longest text's word
//! pieces): a fixed count wastes work on padding when lengths vary and
//! leaves short texts with a per-call overhead that a bigger batch would
//! amortise. Measured in BENCHMARKS.md ("Knowledge base: build…").
//!
//! The live worker embeds a call's short new utterance (for its need
//! verdict) beside the call's long search window in one call; padded
//! together the utterance costs as much as the window. So a batch is also
//! cut where joining the next text would make it mostly padding
//! ([`MAX_PADDED_OVER_REAL`]).

use std::ops::Range;

/// How to cut sorted texts into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// A fixed number of texts per call, whatever their length.
    Fixed(usize),
    /// As many texts as fit `budget` padded word pieces (the batch's text
    /// count times its longest text, special tokens included), at most
    /// `max_texts`, never fewer than one.
    Tokens { budget: usize, max_texts: usize },
}

impl Default for Batching {
    /// Measured on the sample KB (long chunks) and on 10,000 short records;
    /// see BENCHMARKS.md for the sweep this was chosen from.
    fn default() -> Self {
        Batching::Tokens { budget: DEFAULT_BUDGET, max_texts: DEFAULT_MAX_TEXTS }
    }
}

/// Padded word pieces per model call by default: on a quiet machine 512
/// beat 2,048 on both shapes (short records 811 vs 739 texts/s, long
/// chunks 53 vs 43; BENCHMARKS.md, "Batching by text length"), smaller
/// calls keeping the activations in cache.
pub const DEFAULT_BUDGET: usize = 512;
/// Cap on texts per call: beyond it, one-word texts gain nothing more.
pub const DEFAULT_MAX_TEXTS: usize = 128;
/// A batch is cut before a text that would make its padded word pieces more
/// than this many times its real ones. Sorted texts of similar length stay
/// together (a build's batches are far below it); a short utterance and a
/// long window go in separate calls.
pub const MAX_PADDED_OVER_REAL: f64 = 1.5;
/// `[CLS]` and `[SEP]`, which the model sees around every text.
const SPECIAL_TOKENS: usize = 2;

/// Texts in the order they run and the batches cut over that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// Input indexes, shortest first when sorted.
    pub order: Vec<usize>,
    /// Consecutive ranges over `order`, one model call each.
    pub batches: Vec<Range<usize>>,
}

/// Orders texts with these `lengths` shortest first (unless `sort` is off,
/// which only the batching benchmark does) and cuts that order into
/// batches, so each batch pads to about its own length. The caller puts
/// the outputs back in input order through `order`.
pub fn by_length(lengths: &[usize], sort: bool, batching: Batching) -> Ordered {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    if sort {
        order.sort_by_key(|&i| lengths[i]);
    }
    let sorted: Vec<usize> = order.iter().map(|&i| lengths[i]).collect();
    Ordered { batches: plan(&sorted, batching), order }
}

/// Consecutive ranges over texts with these `lengths` (word pieces without
/// special tokens, capped at the model's limit; sorted ascending for the
/// least padding). Every index is in exactly one range, in order.
pub fn plan(lengths: &[usize], batching: Batching) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < lengths.len() {
        let end = match batching {
            Batching::Fixed(n) => (start + n.max(1)).min(lengths.len()),
            Batching::Tokens { budget, max_texts } => {
                let mut end = start + 1;
                let mut longest = lengths[start];
                let mut real = lengths[start] + SPECIAL_TOKENS;
                while end < lengths.len() && end - start < max_texts.max(1) {
                    // The batch pads to its longest text (the last one when
                    // sorted; tracked anyway so unsorted input stays in budget).
                    let with = longest.max(lengths[end]);
                    let padded = (end + 1 - start) * (with + SPECIAL_TOKENS);
                    let real_with = real + lengths[end] + SPECIAL_TOKENS;
                    if padded > budget || padded as f64 > real_with as f64 * MAX_PADDED_OVER_REAL {
                        break;
                    }
                    longest = with;
                    real = real_with;
                    end += 1;
                }
                end
            }
        };
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(ranges: &[Range<usize>], n: usize) -> bool {
        let mut next = 0;
        for r in ranges {
            if r.start != next || r.end <= r.start {
                return false;
            }
            next = r.end;
        }
        next == n
    }

    #[test]
    fn fixed_batches_cut_every_n() {
        let r = plan(&[1; 10], Batching::Fixed(4));
        assert_eq!(r, vec![0..4, 4..8, 8..10]);
        assert_eq!(plan(&[], Batching::Fixed(4)), Vec::<Range<usize>>::new());
    }

    #[test]
    fn short_texts_go_in_bigger_batches_than_long_ones() {
        let mut lengths = vec![10; 300];
        lengths.extend(vec![254; 40]);
        let b = Batching::Tokens { budget: 2048, max_texts: 128 };
        let r = plan(&lengths, b);
        assert!(covers(&r, lengths.len()));
        // 12 padded pieces each: the cap of 128 binds, not the budget.
        assert_eq!(r[0], 0..128);
        // 256 padded pieces each: 8 per batch.
        let last = r.last().unwrap();
        assert_eq!(last.len(), 8);
        for range in &r {
            let longest = lengths[range.end - 1] + 2;
            assert!(range.len() == 1 || range.len() * longest <= 2048, "{range:?} over budget");
        }
    }

    #[test]
    fn texts_run_shortest_first_and_every_one_once() {
        let lengths = [40, 3, 120, 3, 9];
        let o = by_length(&lengths, true, Batching::default());
        assert_eq!(o.order, vec![1, 3, 4, 0, 2]);
        assert!(covers(&o.batches, lengths.len()));
        let unsorted = by_length(&lengths, false, Batching::Fixed(2));
        assert_eq!(unsorted.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(unsorted.batches, vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn a_short_utterance_is_not_padded_to_a_long_window() {
        let b = Batching::default();
        // The live worker's usual pair: a new utterance and the window holding it.
        assert_eq!(plan(&[18, 150], b), vec![0..1, 1..2]);
        // Windows of several calls, alike in length, still share a call.
        assert_eq!(plan(&[90, 100, 110], b), vec![0..3]);
        // Sorted short records: the spread within a batch stays small.
        let records: Vec<usize> = (0..400).map(|i| 6 + i / 20).collect();
        let r = plan(&records, b);
        assert!(covers(&r, records.len()));
        for (i, range) in r.iter().enumerate() {
            let padded = range.len() * (records[range.end - 1] + 2);
            let real: usize = records[range.clone()].iter().map(|l| l + 2).sum();
            assert!(padded as f64 <= real as f64 * MAX_PADDED_OVER_REAL, "{range:?}");
            let remainder = i + 1 == r.len();
            assert!(remainder || range.len() >= 16, "{range:?}: short records still go in big batches");
        }
    }

    #[test]
    fn a_text_longer_than_the_budget_goes_alone() {
        let r = plan(&[5, 5, 5000, 6000], Batching::Tokens { budget: 100, max_texts: 64 });
        assert_eq!(r, vec![0..2, 2..3, 3..4]);
    }
}
