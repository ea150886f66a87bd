//! Building a knowledge base from its sources: chunking (reusing the last
//! build's chunks of unchanged articles), embedding through the embedding
//! cache, indexing, and writing the result to the KB's cache directory.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{
    BuildProgress, KbOptions, KnowledgeBase, Manifest, Metadata, StoredArticle, first_passages, hybrid,
    read_manifest, titles,
};
use crate::kb::chunk::{self, Chunk};
use crate::kb::embed;
use crate::kb::embed::cache::{CacheUse, EmbeddingCache, embed_cached};
use crate::kb::index::FaissIndex;
use crate::kb::rank::Fusion;
use crate::kb::source::{self, Article};
use crate::kb::{Embedder, KbError, VectorIndex};

pub(super) fn build(
    opts: &KbOptions,
    embedder: &mut dyn Embedder,
    cache: &mut EmbeddingCache,
    mut manifest: Manifest,
    dir: &Path,
    started: Instant,
    progress: &mut dyn FnMut(BuildProgress),
) -> Result<(KnowledgeBase, CacheUse), KbError> {
    let articles = source::load_sources(&opts.sources)?;
    let chunks = chunk_reusing(&articles, dir, &manifest, embedder);
    let texts: Vec<String> =
        chunks.iter().map(|c| c.embed_text(&articles[c.article as usize].title)).collect();
    // Only texts the cache has not seen are embedded; progress counts those.
    let (vectors, used) = embed_cached(embedder, &texts, cache, &mut |done, total| {
        progress(BuildProgress::Embedding { done, total })
    })?;
    let mut index = FaissIndex::new(opts.kind, embedder.dimension(), opts.hnsw)?;
    index.add(&vectors)?;
    manifest.articles = articles.len();
    manifest.chunks = chunks.len();
    manifest.built_at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    manifest.build_seconds = started.elapsed().as_secs_f64();
    let articles: Vec<StoredArticle> = articles.into_iter().map(stored).collect();
    let first_passage = first_passages(articles.len(), &chunks);
    let bm25 = hybrid::lexical_index(&titles(&articles), &chunks);
    let kb = KnowledgeBase {
        articles,
        chunks,
        manifest,
        dir: dir.to_path_buf(),
        fusion: Fusion::default(),
        index: Box::new(index),
        bm25,
        first_passage,
    };
    if let Err(e) = save(&kb, dir) {
        // The KB is usable without its cache; the next start rebuilds.
        tracing::warn!(error = %e, "could not save the index cache");
    }
    Ok((kb, used))
}

/// Chunks every article, reusing the previous build's chunks of articles
/// whose title and text are unchanged (when that build used the same
/// chunking, model and limit): counting word pieces of 10,000 articles is
/// most of an incremental rebuild otherwise. Chunking is per article, so
/// the result is the same either way.
fn chunk_reusing(
    articles: &[Article],
    dir: &Path,
    expected: &Manifest,
    embedder: &dyn Embedder,
) -> Vec<Chunk> {
    let count = |t: &str| embedder.count_tokens(t);
    let same = read_manifest(dir).is_some_and(|m| {
        m.format == expected.format
            && m.model_hash == expected.model_hash
            && m.max_tokens == expected.max_tokens
    });
    let previous: Option<Metadata> = same
        .then(|| std::fs::read(dir.join("chunks.json")).ok())
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // (title, text) of each previous article, to that article's chunks.
    let mut by_text: std::collections::HashMap<(&str, &str), Vec<&Chunk>> = std::collections::HashMap::new();
    if let Some(prev) = &previous {
        let mut per_article: Vec<Vec<&Chunk>> = vec![Vec::new(); prev.articles.len()];
        for c in &prev.chunks {
            if let Some(v) = per_article.get_mut(c.article as usize) {
                v.push(c);
            }
        }
        for (a, cs) in prev.articles.iter().zip(per_article) {
            by_text.entry((a.title.as_str(), a.content.as_str())).or_insert(cs);
        }
    }
    let mut out = Vec::new();
    for (i, a) in articles.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        match by_text.get(&(a.title.as_str(), a.content.as_str())) {
            Some(cs) => out.extend(cs.iter().map(|c| Chunk { article: index, ..(*c).clone() })),
            None => out.extend(
                chunk::chunk_articles(std::slice::from_ref(a), embed::MAX_TOKENS, &count)
                    .into_iter()
                    .map(|c| Chunk { article: index, ..c }),
            ),
        }
    }
    out
}

/// An untitled record is shown under its id, as before (its chunks know
/// they are untitled, so the id is never embedded).
fn stored(a: Article) -> StoredArticle {
    let title = if a.title.trim().is_empty() { a.id.clone() } else { a.title };
    StoredArticle { id: a.id, title, url: a.url, tags: a.tags, content: a.content }
}

pub(super) fn save(kb: &KnowledgeBase, dir: &Path) -> Result<(), KbError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KbError::Io { path, source }
    };
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    kb.index.save(&tmp.join("index.faiss"))?;
    let meta = serde_json::to_vec(&Metadata { articles: kb.articles.clone(), chunks: kb.chunks.clone() })
        .map_err(|e| KbError::Index(e.to_string()))?;
    std::fs::write(tmp.join("chunks.json"), meta).map_err(io(&tmp))?;
    let manifest = serde_json::to_vec_pretty(&kb.manifest).map_err(|e| KbError::Index(e.to_string()))?;
    std::fs::write(tmp.join("manifest.json"), manifest).map_err(io(&tmp))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(io(dir))
}
