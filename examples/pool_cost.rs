//! What the call context's pool costs a search: the KB's answer (dense +
//! BM25 search, fusion, hit building, calibration) for the same queries at
//! the pipeline's old `k` (3) and at the pool it now asks for (10),
//! interleaved query by query so both see the same machine, with the
//! embedding (which does not depend on `k`) timed beside them.
//!
//! ```sh
//! cargo run --release --example pool_cost -- 5      # rounds over the 94 labelled queries
//! ```

use std::time::{Duration, Instant};

use agent_assist::kb::Retriever;
use agent_assist::kb::eval::load_queries;
use agent_assist::paths::{self, AppPaths};
use color_eyre::eyre::{Result, eyre};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| eyre!("rounds `{a}`: {e}"))?,
        None => 5,
    };
    let paths = AppPaths::resolve()?;
    let opts = agent_assist::bench::sample_kb_options(&paths, None);
    let (mut retriever, _) = Retriever::open(&opts, &paths, &mut |_| {})?;
    let queries: Vec<String> = load_queries(&paths::bundled("tests/fixtures/kb_queries.jsonl"))?
        .into_iter()
        .map(|q| q.query)
        .collect();
    let mut vectors = Vec::with_capacity(queries.len());
    let mut embed = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        vectors.push(retriever.embed_texts(std::slice::from_ref(q))?);
        embed.push(ms(t.elapsed()));
    }
    let (mut k3, mut k10) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (q, v) in queries.iter().zip(&vectors) {
            // Alternate which goes first, so neither always meets a cold cache.
            let order: [usize; 2] = if round % 2 == 0 { [3, 10] } else { [10, 3] };
            for k in order {
                let t = Instant::now();
                std::hint::black_box(retriever.answer(q, v, k)?);
                let d = ms(t.elapsed());
                if k == 3 { k3.push(d) } else { k10.push(d) }
            }
        }
    }
    let (a, b) = (median(k3), median(k10));
    println!("{} queries × {rounds} rounds", queries.len());
    println!("embed p50 {:.3} ms", median(embed));
    println!("answer k=3 p50 {a:.3} ms; k=10 p50 {b:.3} ms; ratio {:.2}", b / a);
    Ok(())
}
