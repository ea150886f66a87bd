//! Reading parts of a text in context: one model run gives a text's
//! vector and, from the same per-token output, the vector of any part of
//! it (its last words, say) as the model read them inside the whole text.
//!
//! The live worker needs both for every new utterance: the call's search
//! window (which ends with the utterance) to search with, and the utterance
//! itself to judge whether it carries a need. Pooling the utterance's own
//! word pieces out of the window's run answers the second without a second
//! model run (BENCHMARKS.md, "One model run per utterance").
//!
//! Pooling is done here rather than by fastembed, which only pools whole
//! texts; the whole-text vector is the same mean over the attention mask
//! that fastembed computes.

use std::borrow::Cow;
use std::ops::Range;

use fastembed::{OutputKey, SingleBatchOutput, TextEmbedding};

use crate::kb::KbError;

/// One text as the model read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The whole text's vector (mean over every word piece, unit length).
    pub vector: Vec<f32>,
    /// For each part asked for, the mean of its word pieces (unit length),
    /// or `None` when the model did not see all of them.
    pub parts: Vec<Option<Vec<f32>>>,
}

/// Where a text's parts sit among the word pieces the model sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Word pieces of the whole text, special tokens included, before the
    /// model cuts it to its limit.
    pub tokens: usize,
    /// Per part: its word pieces' positions, or `None` if the model cuts
    /// the text before the part ends (or the part holds no word piece).
    pub spans: Vec<Option<Range<usize>>>,
}

/// Finds the word pieces of each part (a byte range of the text) in the
/// text's encoding, given the encoding's byte offsets and which tokens are
/// special. The model keeps the first `max_tokens - 1` tokens of a longer
/// text and its closing special token, so a part beyond them is not read.
pub fn layout(
    offsets: &[(usize, usize)],
    special: &[u32],
    parts: &[Range<usize>],
    max_tokens: usize,
) -> Layout {
    let tokens = offsets.len();
    let kept = if tokens > max_tokens { max_tokens.saturating_sub(1) } else { tokens };
    let spans = parts
        .iter()
        .map(|part| {
            let mut inside = (0..tokens).filter(|&i| {
                special.get(i) == Some(&0) && offsets[i].0 >= part.start && offsets[i].1 <= part.end
            });
            let first = inside.next()?;
            let last = inside.next_back().unwrap_or(first);
            (last < kept).then_some(first..last + 1)
        })
        .collect();
    Layout { tokens, spans }
}

/// Runs `texts` as one batch on `session` and pools each text whole and
/// over its `layouts`' spans. A layout whose token count disagrees with the
/// model's attention mask (another tokenizer setting) reads no parts.
pub fn run_batch(
    session: &mut TextEmbedding,
    output: Option<&'static str>,
    texts: &[&str],
    layouts: &[&Layout],
) -> Result<Vec<Read>, KbError> {
    let embed_error = |e: fastembed::Error| KbError::Embed(e.to_string());
    let batches = session.transform(texts, Some(texts.len().max(1))).map_err(embed_error)?.into_raw();
    let mut out = Vec::with_capacity(texts.len());
    let mut next = 0;
    for batch in &batches {
        let rows = pool_batch(batch, output, &layouts[next.min(layouts.len())..])?;
        next += rows.len();
        out.extend(rows);
    }
    if out.len() != texts.len() {
        return Err(KbError::Embed(format!("model returned {} vectors for {}", out.len(), texts.len())));
    }
    Ok(out)
}

fn pool_batch(
    batch: &SingleBatchOutput,
    output: Option<&'static str>,
    layouts: &[&Layout],
) -> Result<Vec<Read>, KbError> {
    let keys = match output {
        Some(name) => vec![OutputKey::ByName(name)],
        None => vec![OutputKey::OnlyOne, OutputKey::ByName("last_hidden_state")],
    };
    let view = batch.select_output(&keys.as_slice()).map_err(|e| KbError::Embed(e.to_string()))?;
    let shape = view.shape().to_vec();
    let flat: Cow<[f32]> = match view.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(view.iter().copied().collect()),
    };
    let (rows, seq, dim) = match shape[..] {
        [rows, seq, dim] => (rows, seq, dim),
        // A graph that pools inside gives one vector per text, as fastembed
        // takes it: the whole text is read, no part of it.
        [rows, dim] => {
            return Ok((0..rows)
                .map(|r| {
                    let asked = layouts.get(r).map_or(0, |l| l.spans.len());
                    Read { vector: mean(&flat[r * dim..(r + 1) * dim], dim, 0..1), parts: vec![None; asked] }
                })
                .collect());
        }
        _ => {
            return Err(KbError::Embed(format!(
                "expected [texts, tokens, dim] from the model, got {shape:?}"
            )));
        }
    };
    let mask: Vec<i64> = batch.attention_mask_array.iter().copied().collect();
    if mask.len() != rows * seq {
        return Err(KbError::Embed(format!("attention mask of {} for {rows}×{seq} tokens", mask.len())));
    }
    let mut reads = Vec::with_capacity(rows);
    for r in 0..rows {
        let tokens = &flat[r * seq * dim..(r + 1) * seq * dim];
        let row_mask = &mask[r * seq..(r + 1) * seq];
        let seen: Vec<usize> = (0..seq).filter(|&t| row_mask[t] != 0).collect();
        let vector = mean(tokens, dim, seen.iter().copied());
        let layout = layouts.get(r);
        let agrees = layout.is_some_and(|l| l.tokens.min(seq) == seen.len());
        let parts = layout
            .map(|l| {
                l.spans
                    .iter()
                    .map(|span| span.clone().filter(|s| agrees && s.end <= seq).map(|s| mean(tokens, dim, s)))
                    .collect()
            })
            .unwrap_or_default();
        reads.push(Read { vector, parts });
    }
    Ok(reads)
}

/// Unit-length mean of the token vectors at `positions` (row-major,
/// `dim` floats per token).
fn mean(tokens: &[f32], dim: usize, positions: impl Iterator<Item = usize>) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    for t in positions {
        for (s, x) in sum.iter_mut().zip(&tokens[t * dim..(t + 1) * dim]) {
            *s += x;
        }
    }
    // The mean's scale is lost to normalising, so the sum serves.
    super::normalize(&mut sum);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[CLS] my card was declined thanks [SEP]` and its parts.
    fn encoding() -> (Vec<(usize, usize)>, Vec<u32>) {
        let offsets = vec![(0, 0), (0, 2), (3, 7), (8, 11), (12, 20), (21, 27), (0, 0)];
        let special = vec![1, 0, 0, 0, 0, 0, 1];
        (offsets, special)
    }

    #[test]
    fn a_part_is_its_own_word_pieces_and_never_a_special_token() {
        let (offsets, special) = encoding();
        let l = layout(&offsets, &special, &[21..27, 0..27, 8..27, 0..20], 256);
        assert_eq!(l.tokens, 7);
        assert_eq!(l.spans, vec![Some(5..6), Some(1..6), Some(3..6), Some(1..5)]);
        // A part past the last word has no word pieces to read.
        assert_eq!(layout(&offsets, &special, &[27..27, 27..40], 256).spans, vec![None, None]);
    }

    #[test]
    fn a_part_the_model_cuts_off_is_not_read() {
        let (offsets, special) = encoding();
        // Six tokens kept: [CLS], five more minus the closing [SEP] it adds.
        assert_eq!(layout(&offsets, &special, &[21..27, 0..20], 6).spans, vec![None, Some(1..5)]);
    }

    #[test]
    fn the_mean_covers_only_the_positions_asked_for() {
        // Three tokens of dimension 2.
        let tokens = [1.0, 0.0, 0.0, 1.0, 0.0, 3.0];
        assert_eq!(mean(&tokens, 2, [0].into_iter()), vec![1.0, 0.0]);
        assert_eq!(mean(&tokens, 2, 1..3), vec![0.0, 1.0]);
        let both = mean(&tokens, 2, [0, 1].into_iter());
        assert!((both[0] - both[1]).abs() < 1e-6 && (both[0] - 0.70710677).abs() < 1e-6);
    }
}
