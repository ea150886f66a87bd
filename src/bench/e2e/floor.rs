//! The floor `bench e2e` compares the pipeline against: the same query
//! windows, embedded and searched by the same retriever (dense and BM25
//! fused, calibrated, top 3) with nothing else running in the process.
//!
//! Three pacings, because on a virtual machine the model's speed depends
//! on how long its memory sat untouched before the query (measured by
//! `examples/idle_probe`), not only on the query: back to back (the most
//! flattering),
//! one query every 100 ms, and at the pipeline's own pace (each query
//! after the same gap as its search followed the one before it in the
//! run, so the floor sees the same idle time the pipeline did). The last
//! takes about as long as the run itself, gaps over [`MAX_GAP`] cut short.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::super::Latency;
use crate::kb::Retriever;
use crate::paths::AppPaths;

/// The longest idle gap the paced-as-run floor reproduces: a call's
/// silence longer than this adds run time and nothing to the comparison.
const MAX_GAP: Duration = Duration::from_secs(5);

/// One query the pipeline searched, and when.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub at: SystemTime,
}

/// The floor's figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    /// Embedding alone, one query every 100 ms.
    pub embed: Latency,
    /// Embedding + search, one query every 100 ms.
    pub paced: Latency,
    /// Embedding + search, back to back.
    pub back_to_back: Latency,
    /// Embedding + search, each query after its gap in the run.
    pub as_run: Latency,
    /// The median idle gap before a query in the run.
    pub gap_p50_ms: f64,
}

/// Runs the floor on `queries` (in the order the pipeline searched them).
pub fn measure(
    paths: &AppPaths,
    threads: Option<usize>,
    queries: &[Query],
) -> color_eyre::eyre::Result<Floor> {
    let opts = crate::bench::sample_kb_options(paths, threads);
    let (mut retriever, _) = Retriever::open(&opts, paths, &mut |_| {})?;
    // As many hits as the pipeline asks for (the call context's pool).
    let k = crate::engine::Policy::default().search_k();
    retriever.query("warm up", k)?;
    let mut one = |q: &str, embed: Option<&mut Vec<Duration>>| -> color_eyre::eyre::Result<Duration> {
        let t = Instant::now();
        let v = retriever.embed_texts(&[q.to_string()])?;
        if let Some(e) = embed {
            e.push(t.elapsed());
        }
        retriever.answer(q, &v, k)?;
        Ok(t.elapsed())
    };
    let (mut embed, mut paced, mut hot, mut as_run, mut gaps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The pacing is what is being measured against, not a wait for anything.
    for q in queries {
        std::thread::sleep(Duration::from_millis(100));
        paced.push(one(&q.text, Some(&mut embed))?);
    }
    for q in queries {
        hot.push(one(&q.text, None)?);
    }
    let mut previous: Option<SystemTime> = None;
    for q in queries {
        let gap = previous.and_then(|p| q.at.duration_since(p).ok()).unwrap_or_default().min(MAX_GAP);
        previous = Some(q.at);
        gaps.push(gap);
        std::thread::sleep(gap);
        as_run.push(one(&q.text, None)?);
    }
    Ok(Floor {
        embed: Latency::of(&embed),
        paced: Latency::of(&paced),
        back_to_back: Latency::of(&hot),
        as_run: Latency::of(&as_run),
        gap_p50_ms: Latency::of(&gaps).p50_ms,
    })
}
