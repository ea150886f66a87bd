//! `bench kb --strategies`: the same texts embedded under each way of
//! batching and of using the cores, side by side in one run, so the
//! default (`Batching::default()`, one one-thread session per core) is
//! chosen from figures rather than taste.

use std::time::Instant;

use serde::Serialize;

use crate::kb::embed::batch::DEFAULT_MAX_TEXTS;
use crate::kb::{Batching, Embedder, FastEmbedder, KbError};

/// One way of embedding a KB's texts and how fast it went.
#[derive(Debug, Clone, Serialize)]
pub struct Strategy {
    pub kb: String,
    pub strategy: String,
    pub texts: usize,
    pub seconds: f64,
    pub texts_per_s: f64,
}

/// What to try: the old default (fixed batches of 8 on one session using
/// every core), token budgets on that session, and token budgets on one
/// one-thread session per core; plus unsorted input once, to show what
/// sorting buys.
fn candidates(cores: usize, budgets: &[usize]) -> Vec<(String, Batching, usize, bool)> {
    let tokens = |budget| Batching::Tokens { budget, max_texts: DEFAULT_MAX_TEXTS };
    let default = Batching::default();
    let mut out = vec![
        (format!("fixed 8, 1 session x {cores} threads"), Batching::Fixed(8), 1, true),
        (format!("{}, 1 session x {cores} threads", label(default)), default, 1, true),
        (format!("{}, {cores} sessions x 1 thread", label(default)), default, cores, true),
        (format!("{}, {cores} sessions x 1 thread, unsorted", label(default)), default, cores, false),
    ];
    for &b in budgets {
        out.push((format!("{}, {cores} sessions x 1 thread", label(tokens(b))), tokens(b), cores, true));
    }
    out
}

fn label(b: Batching) -> String {
    match b {
        Batching::Fixed(n) => format!("fixed {n}"),
        Batching::Tokens { budget, max_texts } => format!("tokens {budget} (max {max_texts})"),
    }
}

/// Embeds `texts` once per strategy; restores the embedder's settings.
pub fn compare(
    embedder: &mut FastEmbedder,
    kb: &str,
    texts: &[String],
    budgets: &[usize],
) -> Result<Vec<Strategy>, KbError> {
    let saved = (embedder.batching, embedder.build_sessions, embedder.sort_by_length);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut out = Vec::new();
    for (name, batching, sessions, sorted) in candidates(cores, budgets) {
        embedder.batching = batching;
        embedder.build_sessions = sessions;
        embedder.sort_by_length = sorted;
        let t = Instant::now();
        let result = embedder.embed_many(texts, &mut |_| {});
        let seconds = t.elapsed().as_secs_f64();
        if let Err(e) = result {
            (embedder.batching, embedder.build_sessions, embedder.sort_by_length) = saved;
            return Err(e);
        }
        out.push(Strategy {
            kb: kb.into(),
            strategy: name,
            texts: texts.len(),
            seconds,
            texts_per_s: texts.len() as f64 / seconds,
        });
    }
    (embedder.batching, embedder.build_sessions, embedder.sort_by_length) = saved;
    Ok(out)
}
