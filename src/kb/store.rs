//! Building, persisting and loading a knowledge base, and searching it.
//!
//! A KB's cache directory is keyed by its source paths and index kind; inside
//! it a manifest records the source hash, model hash, dimension and index
//! parameters. Anything that does not match (or does not parse) means a
//! rebuild, never a wrong answer: the cache is derived data. Writes go to a
//! temporary directory that replaces the old one only when complete.
//! Building from the sources is in [`build`], the hybrid search in
//! [`hybrid`], the model and the KB together in [`retriever`].

mod build;
mod hybrid;
mod retriever;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use build::build;
pub use hybrid::Ranked;
pub use retriever::Retriever;

use super::bm25::Bm25;
use super::chunk::Chunk;
use super::embed::cache::EmbeddingCache;
use super::embed::{self, ModelSpec};
use super::index::{FaissIndex, HnswParams, IndexKind};
use super::rank::Fusion;
use super::source;
use super::{Embedder, Hit, KbError, VectorIndex};
use crate::paths::AppPaths;

/// Bumped whenever chunking or the on-disk layout changes, so old caches rebuild.
const FORMAT: u32 = 3;

/// What to build or load.
#[derive(Debug, Clone)]
pub struct KbOptions {
    pub sources: Vec<PathBuf>,
    pub kind: IndexKind,
    pub hnsw: HnswParams,
    pub model: ModelSpec,
    /// Rebuild even if the cache is current, embedding every chunk again.
    pub force_rebuild: bool,
}

/// The facts a cache was built from; compared field by field on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub source_hash: String,
    pub model_hash: String,
    pub dimension: usize,
    pub index_kind: IndexKind,
    pub max_tokens: usize,
    /// HNSW graph shape (build-time parameters only).
    pub hnsw_m: Option<u32>,
    pub hnsw_ef_construction: Option<u32>,
    pub articles: usize,
    pub chunks: usize,
    pub sources: Vec<PathBuf>,
    pub built_at_unix: u64,
    pub build_seconds: f64,
}

/// An article as kept in the cache: everything the console and pushes need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredArticle {
    pub id: String,
    pub title: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub content: String,
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    articles: Vec<StoredArticle>,
    chunks: Vec<Chunk>,
}

/// Whether [`open`] loaded a cache or built one, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BuildOutcome {
    Loaded,
    Built { reason: String },
}

/// Summary of an [`open`]: what is indexed, and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    #[serde(flatten)]
    pub outcome: BuildOutcome,
    pub articles: usize,
    pub chunks: usize,
    /// Chunks the model embedded in this build (0 when a cache was loaded).
    pub embedded: usize,
    /// Chunks whose vectors came from the embedding cache.
    pub reused: usize,
    pub seconds: f64,
    pub index_kind: IndexKind,
    pub cache_dir: PathBuf,
}

/// Progress of a build, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildProgress {
    Embedding { done: usize, total: usize },
}

/// A loaded knowledge base: articles, chunks and their vector index.
pub struct KnowledgeBase {
    pub articles: Vec<StoredArticle>,
    pub chunks: Vec<Chunk>,
    pub manifest: Manifest,
    pub dir: PathBuf,
    /// How dense and BM25 rankings are fused in [`KnowledgeBase::search_text`].
    pub fusion: Fusion,
    index: Box<dyn VectorIndex>,
    /// BM25 over the same chunks, rebuilt at load (milliseconds).
    bm25: Bm25,
    /// Per article, the index of its first passage chunk.
    first_passage: Vec<usize>,
}

fn titles(articles: &[StoredArticle]) -> Vec<&str> {
    articles.iter().map(|a| a.title.as_str()).collect()
}

/// Per article, the index of its first passage chunk (chunks are in article order).
fn first_passages(articles: usize, chunks: &[Chunk]) -> Vec<usize> {
    let mut first = vec![usize::MAX; articles];
    for (i, c) in chunks.iter().enumerate().rev() {
        if !c.title_only
            && let Some(slot) = first.get_mut(c.article as usize)
        {
            *slot = i;
        }
    }
    first
}

/// The cache directory for a set of sources and an index kind.
pub fn cache_dir_for(paths: &AppPaths, sources: &[PathBuf], kind: IndexKind) -> PathBuf {
    let mut h = Sha256::new();
    for s in sources {
        let canonical = std::fs::canonicalize(s).unwrap_or_else(|_| s.clone());
        h.update(canonical.to_string_lossy().as_bytes());
        h.update([0]);
    }
    let key = embed::hex(&h.finalize());
    paths.index_root().join(format!("{kind}-{}", &key[..16]))
}

/// Hash of every source file's name and bytes, in load order.
pub fn source_hash(sources: &[PathBuf]) -> Result<String, KbError> {
    let mut h = Sha256::new();
    for file in source::source_files(sources)? {
        let bytes = std::fs::read(&file).map_err(|source| KbError::Io { path: file.clone(), source })?;
        h.update(file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(embed::hex(&h.finalize()))
}

/// Reads a cache's manifest, if there is a readable one.
pub fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Loads the KB from its cache when current, otherwise builds and saves it.
pub fn open(
    opts: &KbOptions,
    paths: &AppPaths,
    embedder: &mut dyn Embedder,
    progress: &mut dyn FnMut(BuildProgress),
) -> Result<(KnowledgeBase, BuildReport), KbError> {
    let started = Instant::now();
    let dir = cache_dir_for(paths, &opts.sources, opts.kind);
    let expected = expected_manifest(opts, embedder)?;
    let reason = if opts.force_rebuild {
        "rebuild requested".to_string()
    } else {
        match try_load(&dir, &expected, opts) {
            Ok(kb) => {
                let report = report(&kb, BuildOutcome::Loaded, started, &dir);
                return Ok((kb, report));
            }
            Err(reason) => reason,
        }
    };
    tracing::info!(dir = %dir.display(), %reason, "building knowledge-base index");
    let scope = dir.file_name().map_or_else(|| "kb".into(), |n| n.to_string_lossy().into_owned());
    let mut cache = EmbeddingCache::open(
        &paths.cache_dir.join("embeddings"),
        &scope,
        embedder.fingerprint(),
        embedder.dimension(),
    );
    if opts.force_rebuild {
        cache.clear();
    }
    let (kb, used) = build(opts, embedder, &mut cache, expected, &dir, started, progress)?;
    let mut report = report(&kb, BuildOutcome::Built { reason }, started, &dir);
    (report.embedded, report.reused) = (used.embedded, used.reused);
    Ok((kb, report))
}

fn report(kb: &KnowledgeBase, outcome: BuildOutcome, started: Instant, dir: &Path) -> BuildReport {
    BuildReport {
        outcome,
        articles: kb.articles.len(),
        chunks: kb.chunks.len(),
        embedded: 0,
        reused: 0,
        seconds: started.elapsed().as_secs_f64(),
        index_kind: kb.manifest.index_kind,
        cache_dir: dir.to_path_buf(),
    }
}

fn expected_manifest(opts: &KbOptions, embedder: &dyn Embedder) -> Result<Manifest, KbError> {
    let hnsw = opts.kind == IndexKind::Hnsw;
    Ok(Manifest {
        format: FORMAT,
        source_hash: source_hash(&opts.sources)?,
        model_hash: embedder.fingerprint().to_string(),
        dimension: embedder.dimension(),
        index_kind: opts.kind,
        max_tokens: embed::MAX_TOKENS,
        hnsw_m: hnsw.then_some(opts.hnsw.m),
        hnsw_ef_construction: hnsw.then_some(opts.hnsw.ef_construction),
        articles: 0,
        chunks: 0,
        sources: opts.sources.clone(),
        built_at_unix: 0,
        build_seconds: 0.0,
    })
}

/// Loads a cache if it was built from exactly these inputs; otherwise says why not.
fn try_load(dir: &Path, expected: &Manifest, opts: &KbOptions) -> Result<KnowledgeBase, String> {
    if !dir.join("manifest.json").exists() {
        return Err("no cached index".into());
    }
    let Some(m) = read_manifest(dir) else {
        return Err("cached manifest is unreadable".into());
    };
    let stale = [
        (m.format != expected.format, "index format changed"),
        (m.source_hash != expected.source_hash, "knowledge-base sources changed"),
        (m.model_hash != expected.model_hash, "embedding model changed"),
        (m.index_kind != expected.index_kind, "index kind changed"),
        (m.max_tokens != expected.max_tokens, "chunk size changed"),
        (
            m.hnsw_m != expected.hnsw_m || m.hnsw_ef_construction != expected.hnsw_ef_construction,
            "HNSW parameters changed",
        ),
    ];
    if let Some((_, why)) = stale.iter().find(|(changed, _)| *changed) {
        return Err((*why).to_string());
    }
    let corrupt = |reason: String| KbError::Cache { path: dir.to_path_buf(), reason }.to_string();
    let meta_text = std::fs::read_to_string(dir.join("chunks.json")).map_err(|e| corrupt(e.to_string()))?;
    let meta: Metadata =
        serde_json::from_str(&meta_text).map_err(|e| corrupt(format!("chunks.json: {e}")))?;
    let index = FaissIndex::load(&dir.join("index.faiss"), opts.kind, opts.hnsw)
        .map_err(|e| corrupt(e.to_string()))?;
    if index.dimension() != expected.dimension {
        let e = KbError::DimensionMismatch { model: expected.dimension, index: index.dimension() };
        return Err(corrupt(e.to_string()));
    }
    if index.len() != meta.chunks.len() || m.chunks != meta.chunks.len() {
        return Err(corrupt(format!("index holds {} vectors for {} chunks", index.len(), meta.chunks.len())));
    }
    if meta.chunks.iter().any(|c| c.article as usize >= meta.articles.len()) {
        return Err(corrupt("chunk metadata points past the article list".into()));
    }
    let first_passage = first_passages(meta.articles.len(), &meta.chunks);
    let bm25 = hybrid::lexical_index(&titles(&meta.articles), &meta.chunks);
    Ok(KnowledgeBase {
        articles: meta.articles,
        chunks: meta.chunks,
        manifest: m,
        dir: dir.to_path_buf(),
        fusion: Fusion::default(),
        index: Box::new(index),
        bm25,
        first_passage,
    })
}

impl KnowledgeBase {
    /// The `k` best articles for a unit query vector, one hit per article
    /// (its best chunk), best first.
    pub fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<Hit>, KbError> {
        if query.len() != self.index.dimension() {
            return Err(KbError::DimensionMismatch { model: query.len(), index: self.index.dimension() });
        }
        let total = self.index.len();
        if k == 0 || total == 0 {
            return Ok(Vec::new());
        }
        // Several chunks of one article can crowd the top; fetch more chunks
        // than articles wanted, and widen until k articles or all chunks.
        let mut fetch = (k * 4).max(k + 8).min(total);
        loop {
            let raw = self.index.search(query, fetch)?;
            let hits = self.group(&raw, k);
            if hits.len() >= k || fetch >= total {
                return Ok(hits);
            }
            fetch = (fetch * 4).min(total);
        }
    }

    fn group(&self, raw: &[(u64, f32)], k: usize) -> Vec<Hit> {
        let mut seen = std::collections::HashSet::new();
        let mut hits = Vec::with_capacity(k);
        for &(label, score) in raw {
            let Some(chunk) = usize::try_from(label).ok().and_then(|l| self.chunks.get(l)) else {
                continue;
            };
            if !seen.insert(chunk.article) {
                continue;
            }
            let Some(a) = self.articles.get(chunk.article as usize) else {
                continue;
            };
            // A title match shows the article's opening passage.
            let passage = if chunk.title_only {
                self.first_passage
                    .get(chunk.article as usize)
                    .and_then(|&i| self.chunks.get(i))
                    .unwrap_or(chunk)
            } else {
                chunk
            };
            hits.push(Hit {
                article_id: a.id.clone(),
                title: a.title.clone(),
                url: a.url.clone(),
                score,
                chunk: passage.ordinal,
                text: passage.text.clone(),
                ..Hit::default()
            });
            if hits.len() == k {
                break;
            }
        }
        hits
    }

    /// An article by id.
    pub fn article(&self, id: &str) -> Option<&StoredArticle> {
        self.articles.iter().find(|a| a.id == id)
    }

    pub fn dimension(&self) -> usize {
        self.index.dimension()
    }
}
