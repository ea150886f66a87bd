//! `bench index`: FAISS flat versus HNSW on synthetic unit vectors shaped
//! like sentence embeddings (clustered, low intrinsic dimension; HNSW's
//! recall depends on that structure).
//! Reports build time, memory, single-query latency and recall@10 against
//! exact search.

use std::time::Instant;

use serde::Serialize;

use super::{Latency, Machine, SplitMix, machine, proc_stats};
use crate::kb::index::FaissIndex;
use crate::kb::{HnswParams, IndexKind, KbError, VectorIndex};

#[derive(Debug, Clone)]
pub struct Options {
    pub vectors: usize,
    pub kind: IndexKind,
    pub dim: usize,
    pub queries: usize,
    pub hnsw: HnswParams,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub kind: IndexKind,
    pub vectors: usize,
    pub dim: usize,
    pub hnsw: Option<HnswParams>,
    pub build_s: f64,
    /// Resident memory the index added, MiB.
    pub index_mib: f64,
    pub search: Latency,
    pub recall_at_10: f64,
}

/// Dimensions of the latent space the synthetic vectors live in.
const LATENT: usize = 24;

/// `n` unit vectors with the structure of sentence embeddings: clustered,
/// and of low intrinsic dimension (points around `clusters` centres in a
/// 24-dimensional latent space, mapped into `dim` dimensions by a fixed
/// random matrix, plus a little noise). Uniform random vectors in 384
/// dimensions have no near neighbours to find, which no real KB looks like.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    // The map and the centres depend only on the shape, so data and queries
    // (drawn with different seeds) share them.
    let mut shape = SplitMix::new(0x5eed ^ (dim as u64) ^ ((clusters as u64) << 20));
    let map: Vec<f32> = (0..dim * LATENT).map(|_| shape.normal()).collect();
    let centres: Vec<f32> = (0..clusters * LATENT).map(|_| shape.normal()).collect();
    let mut rng = SplitMix::new(seed);
    let mut out = vec![0f32; n * dim];
    let mut z = [0f32; LATENT];
    for row in out.chunks_mut(dim) {
        let c = rng.below(clusters);
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = centres[c * LATENT + j] + 0.5 * rng.normal();
        }
        for (i, x) in row.iter_mut().enumerate() {
            let m = &map[i * LATENT..(i + 1) * LATENT];
            *x = m.iter().zip(&z).map(|(a, b)| a * b).sum::<f32>() + 0.3 * rng.normal();
        }
        crate::kb::embed::normalize(row);
    }
    out
}

pub fn run(opts: &Options) -> Result<Report, KbError> {
    let clusters = (opts.vectors / 500).clamp(16, 4096);
    let data = clustered(opts.vectors, opts.dim, clusters, 1);
    let queries = clustered(opts.queries, opts.dim, clusters, 1_000_001);
    let before = proc_stats("self").rss_mib;
    let started = Instant::now();
    let mut index = FaissIndex::new(opts.kind, opts.dim, opts.hnsw)?;
    index.add(&data)?;
    let build_s = started.elapsed().as_secs_f64();
    let index_mib = proc_stats("self").rss_mib - before;

    let mut samples = Vec::with_capacity(opts.queries);
    let mut found = Vec::with_capacity(opts.queries);
    for q in queries.chunks(opts.dim) {
        let t = Instant::now();
        let hits = index.search(q, 10)?;
        samples.push(t.elapsed());
        found.push(hits.into_iter().map(|(l, _)| l).collect::<Vec<u64>>());
    }
    // Exact neighbours from a flat index, searched in one batch.
    let recall_at_10 = if opts.kind == IndexKind::Flat {
        1.0
    } else {
        let mut exact = FaissIndex::new(IndexKind::Flat, opts.dim, opts.hnsw)?;
        exact.add(&data)?;
        let truth = exact.search_batch(&queries, 10)?;
        let hit: usize =
            truth.iter().zip(&found).map(|(t, f)| t.iter().filter(|(l, _)| f.contains(l)).count()).sum();
        hit as f64 / (truth.len() * 10) as f64
    };
    Ok(Report {
        machine: machine(),
        kind: opts.kind,
        vectors: opts.vectors,
        dim: opts.dim,
        hnsw: (opts.kind == IndexKind::Hnsw).then_some(opts.hnsw),
        build_s,
        index_mib,
        search: Latency::of(&samples),
        recall_at_10,
    })
}

pub fn print_table(r: &Report) {
    println!("machine: {} cores, {}", r.machine.cores, r.machine.cpu);
    let params = r.hnsw.map_or_else(String::new, |h| {
        format!(" (M {}, efConstruction {}, efSearch {})", h.m, h.ef_construction, h.ef_search)
    });
    println!("{} index of {} x {}-d vectors{params}", r.kind, r.vectors, r.dim);
    println!("  build      {:.2} s, {:.0} MiB", r.build_s, r.index_mib);
    println!("  search     {}", r.search);
    println!("  recall@10  {:.4}", r.recall_at_10);
}
