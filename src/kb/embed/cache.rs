//! The embedding cache: vectors keyed by a hash of (model fingerprint,
//! exact embedded text), so a rebuild embeds only the chunks whose text is
//! new and reuses every other vector.
//!
//! One file per knowledge base (its sources), model and dimension in the
//! cache dir's `embeddings/` folder (so compacting one KB's file never
//! evicts another's vectors): a 32-byte header (magic, dimension, model hash) and then
//! fixed-size records of a 16-byte key and the vector as little-endian
//! `f32`s. A flat append-only file rather than an embedded database
//! because the access pattern is "read everything once, look up, append a
//! few": loading 30,000 vectors is one sequential read, an edit appends a
//! handful of records, and there is no dependency or schema to carry. It is
//! derived data, so it is checked rather than trusted: a wrong header, a
//! torn last record (a crash mid-append) or a vector that is not unit
//! length is dropped and simply embedded again. When the file holds more
//! than twice the vectors the last build used, it is rewritten with only
//! those (old versions of edited chunks otherwise pile up).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::kb::KbError;

const MAGIC: &[u8; 8] = b"AAEMBED1";
const HEADER: usize = 32;
const KEY: usize = 16;
/// Below this many records a file is never worth compacting.
const COMPACT_MIN: usize = 1024;

/// A cache key: the first 128 bits of sha256(fingerprint, NUL, text).
pub type Key = [u8; KEY];

/// Vectors by key, backed by one file.
pub struct EmbeddingCache {
    path: PathBuf,
    dimension: usize,
    model_tag: [u8; 16],
    fingerprint: String,
    rows: HashMap<Key, usize>,
    keys: Vec<Key>,
    vectors: Vec<f32>,
    /// Whole records in the file (may exceed `keys` after a torn write).
    file_records: usize,
    file_ok: bool,
}

impl EmbeddingCache {
    /// Opens (or starts) the cache of one KB (`scope`, a file-name-safe
    /// key) and model in `dir`. Never fails: an unreadable or foreign file
    /// just means an empty cache.
    pub fn open(dir: &Path, scope: &str, fingerprint: &str, dimension: usize) -> Self {
        let model_tag: [u8; 16] = first16(&Sha256::digest(fingerprint.as_bytes()));
        let short: String = fingerprint.chars().take(16).collect();
        let path = dir.join(format!("{scope}-{short}-{dimension}.bin"));
        let mut cache = Self {
            path,
            dimension,
            model_tag,
            fingerprint: fingerprint.to_string(),
            rows: HashMap::new(),
            keys: Vec::new(),
            vectors: Vec::new(),
            file_records: 0,
            file_ok: false,
        };
        match std::fs::read(&cache.path) {
            Ok(bytes) => cache.load(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %cache.path.display(), error = %e, "embedding cache unreadable; starting afresh")
            }
        }
        cache
    }

    fn record_len(&self) -> usize {
        KEY + 4 * self.dimension
    }

    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&u32::try_from(self.dimension).unwrap_or(u32::MAX).to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(&self.model_tag);
        h
    }

    fn load(&mut self, bytes: &[u8]) {
        if bytes.len() < HEADER || bytes[..HEADER] != self.header()[..] {
            tracing::warn!(path = %self.path.display(), "embedding cache is for another model or damaged; starting afresh");
            return;
        }
        let rec = self.record_len();
        let body = &bytes[HEADER..];
        self.file_records = body.len() / rec;
        self.file_ok = body.len().is_multiple_of(rec);
        let mut bad = 0usize;
        for r in body.chunks_exact(rec) {
            let mut key = [0u8; KEY];
            key.copy_from_slice(&r[..KEY]);
            let v: Vec<f32> =
                r[KEY..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let norm2: f32 = v.iter().map(|x| x * x).sum();
            if !(norm2.is_finite() && ((norm2 - 1.0).abs() < 1e-3 || norm2 == 0.0)) {
                bad += 1;
                continue;
            }
            self.put(key, &v);
        }
        if bad > 0 {
            self.file_ok = false;
            tracing::warn!(path = %self.path.display(), bad, "embedding cache had damaged records; they will be embedded again");
        }
    }

    fn put(&mut self, key: Key, v: &[f32]) {
        if let Some(&row) = self.rows.get(&key) {
            let d = self.dimension;
            self.vectors[row * d..(row + 1) * d].copy_from_slice(v);
            return;
        }
        self.rows.insert(key, self.keys.len());
        self.keys.push(key);
        self.vectors.extend_from_slice(v);
    }

    /// Forgets every vector (a forced rebuild embeds everything again); the
    /// next store rewrites the file.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
        self.vectors.clear();
        self.file_ok = false;
    }

    /// The key of a text under this cache's model.
    pub fn key(&self, text: &str) -> Key {
        let mut h = Sha256::new();
        h.update(self.fingerprint.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        first16(&h.finalize())
    }

    /// The cached vector for a key.
    pub fn get(&self, key: &Key) -> Option<&[f32]> {
        let d = self.dimension;
        self.rows.get(key).map(|&row| &self.vectors[row * d..(row + 1) * d])
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds new vectors (`keys.len() x dimension` floats) and appends them
    /// to the file; then, if the file has grown past twice what `live`
    /// (the keys the current build uses) needs, rewrites it with only those.
    /// A failed write is logged, not returned: the build has its vectors,
    /// and the next build embeds again what was not saved.
    pub fn store(&mut self, keys: &[Key], vectors: &[f32], live: &HashSet<Key>) {
        let d = self.dimension;
        for (k, v) in keys.iter().zip(vectors.chunks_exact(d.max(1))) {
            self.put(*k, v);
        }
        let compact = !self.file_ok || (self.file_records + keys.len() > COMPACT_MIN.max(2 * live.len()));
        let result = if compact { self.rewrite(live) } else { self.append(keys) };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not save the embedding cache");
        }
    }

    fn append(&mut self, keys: &[Key]) -> Result<(), KbError> {
        if keys.is_empty() {
            return Ok(());
        }
        let io = |source| KbError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut buf = Vec::with_capacity(keys.len() * self.record_len() + HEADER);
        if self.file_records == 0 {
            buf.extend_from_slice(&self.header());
        }
        for k in keys {
            self.encode(k, &mut buf);
        }
        // Header and records in one append-mode write: a second process
        // appending at the same time lands before or after, not inside.
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        f.write_all(&buf).map_err(io)?;
        self.file_records += keys.len();
        Ok(())
    }

    fn encode(&self, k: &Key, buf: &mut Vec<u8>) {
        if let Some(v) = self.get(k) {
            buf.extend_from_slice(k);
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
    }

    /// Rewrites the file with the live keys only (temp file, then rename).
    fn rewrite(&mut self, live: &HashSet<Key>) -> Result<(), KbError> {
        let io = |source| KbError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let keep: Vec<Key> = self.keys.iter().filter(|k| live.contains(*k)).copied().collect();
        let mut buf = self.header();
        buf.reserve(keep.len() * self.record_len());
        for k in &keep {
            self.encode(k, &mut buf);
        }
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, &buf).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.file_records = keep.len();
        self.file_ok = true;
        tracing::info!(path = %self.path.display(), vectors = keep.len(), "embedding cache compacted");
        Ok(())
    }
}

/// How a build got its vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Texts the model embedded.
    pub embedded: usize,
    /// Texts whose vectors came from the cache.
    pub reused: usize,
}

/// Vectors for `texts` in order: cached ones reused, the rest embedded (each
/// distinct text once) and added to the cache. `progress` counts embedded
/// texts out of those that need embedding.
pub fn embed_cached(
    embedder: &mut dyn crate::kb::Embedder,
    texts: &[String],
    cache: &mut EmbeddingCache,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<f32>, CacheUse), KbError> {
    let d = embedder.dimension();
    let keys: Vec<Key> = texts.iter().map(|t| cache.key(t)).collect();
    let mut missing: Vec<usize> = Vec::new();
    let mut queued: HashSet<Key> = HashSet::new();
    for (i, k) in keys.iter().enumerate() {
        if cache.get(k).is_none() && queued.insert(*k) {
            missing.push(i);
        }
    }
    let total = missing.len();
    progress(0, total);
    let fresh_texts: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
    let fresh = embedder.embed_many(&fresh_texts, &mut |done| progress(done, total))?;
    let fresh_keys: Vec<Key> = missing.iter().map(|&i| keys[i]).collect();
    let live: HashSet<Key> = keys.iter().copied().collect();
    cache.store(&fresh_keys, &fresh, &live);
    let mut out = Vec::with_capacity(texts.len() * d);
    for k in &keys {
        let v = cache.get(k).ok_or_else(|| KbError::Embed("a vector went missing from the cache".into()))?;
        if v.len() != d {
            return Err(KbError::DimensionMismatch { model: d, index: v.len() });
        }
        out.extend_from_slice(v);
    }
    Ok((out, CacheUse { embedded: total, reused: texts.len() - total }))
}

fn first16(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(d: usize, i: usize) -> Vec<f32> {
        let mut v = vec![0.0; d];
        v[i % d] = 1.0;
        v
    }

    #[test]
    fn vectors_survive_a_reopen_and_other_models_do_not_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "kb", "model-a", 4);
        let keys = [c.key("one"), c.key("two")];
        let live: HashSet<Key> = keys.iter().copied().collect();
        c.store(&keys, &[unit(4, 0), unit(4, 1)].concat(), &live);
        let again = EmbeddingCache::open(dir.path(), "kb", "model-a", 4);
        assert_eq!(again.len(), 2);
        assert_eq!(again.get(&again.key("two")), Some(&unit(4, 1)[..]));
        assert_ne!(again.key("two"), EmbeddingCache::open(dir.path(), "kb", "model-b", 4).key("two"));
        assert!(EmbeddingCache::open(dir.path(), "kb", "model-b", 4).is_empty());
    }

    #[test]
    fn a_torn_or_damaged_file_loses_only_the_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "kb", "m", 4);
        let keys: Vec<Key> = (0..3).map(|i| c.key(&i.to_string())).collect();
        let live: HashSet<Key> = keys.iter().copied().collect();
        let vectors: Vec<f32> = (0..3).flat_map(|i| unit(4, i)).collect();
        c.store(&keys, &vectors, &live);
        let path = c.path().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        // Damage the second vector, then tear the file mid-record.
        let rec = KEY + 16;
        bytes[HEADER + rec + KEY + 4 + 3] = 0x7f; // 1.0 becomes infinity
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "kb", "m", 4);
        assert_eq!(c.len(), 2);
        assert!(c.get(&keys[1]).is_none());
        // The next store rewrites a clean file.
        c.store(&keys[1..2], &unit(4, 1), &live);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, HEADER + 3 * rec);
        assert_eq!(EmbeddingCache::open(dir.path(), "kb", "m", 4).len(), 3);
    }

    #[test]
    fn garbage_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let c = EmbeddingCache::open(dir.path(), "kb", "m", 4);
        std::fs::write(c.path(), b"not a cache").unwrap();
        assert!(EmbeddingCache::open(dir.path(), "kb", "m", 4).is_empty());
    }
}
