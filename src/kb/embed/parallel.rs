//! Runs a batch plan over one or more ONNX Runtime sessions at once: each
//! session on its own thread takes the next batch until none is left, and
//! the calling thread collects the vectors and reports progress.
//!
//! Why several one-thread sessions rather than one session with several
//! intra-op threads: a batch of short texts is a handful of small matrix
//! products, and splitting each of them across cores costs a
//! synchronisation per operator that whole batches on separate cores do not
//! pay (BENCHMARKS.md, "Knowledge base: build…").

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use fastembed::TextEmbedding;

use crate::kb::KbError;

/// Embeds `plan`'s batches of `texts`; returns one vector per text, in the
/// order of `texts`. `progress` gets the count of texts done so far.
pub fn run(
    sessions: &mut [TextEmbedding],
    texts: &[&str],
    plan: &[Range<usize>],
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, KbError> {
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    let mut done = 0;
    let mut store = |range: &Range<usize>, vectors: Vec<Vec<f32>>| -> Result<(), KbError> {
        if vectors.len() != range.len() {
            return Err(KbError::Embed(format!(
                "model returned {} vectors for {}",
                vectors.len(),
                range.len()
            )));
        }
        for (slot, v) in out[range.clone()].iter_mut().zip(vectors) {
            *slot = v;
        }
        done += range.len();
        progress(done);
        Ok(())
    };
    if sessions.len() <= 1 || plan.len() <= 1 {
        let session = sessions.first_mut().ok_or_else(|| KbError::Embed("no model session".into()))?;
        for range in plan {
            store(range, embed_batch(session, &texts[range.clone()])?)?;
        }
        return Ok(out);
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<Vec<Vec<f32>>, KbError>)>();
    std::thread::scope(|scope| {
        for session in sessions.iter_mut() {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(range) = plan.get(b) else { break };
                    let result = embed_batch(session, &texts[range.clone()]);
                    let failed = result.is_err();
                    if tx.send((b, result)).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Every worker ends when the plan runs out or `stop` is set, so the
        // channel closes and this loop ends.
        let mut first_error = None;
        for (b, result) in rx {
            let stored = result.and_then(|vectors| store(&plan[b], vectors));
            if let Err(e) = stored {
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    Ok(out)
}

fn embed_batch(session: &mut TextEmbedding, texts: &[&str]) -> Result<Vec<Vec<f32>>, KbError> {
    session.embed(texts, Some(texts.len().max(1))).map_err(|e| KbError::Embed(e.to_string()))
}
