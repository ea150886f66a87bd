//! Vector indexes: FAISS `IndexFlatIP` (exact cosine on unit vectors) and
//! FAISS HNSW for large knowledge bases, behind [`VectorIndex`].

use std::path::Path;

use faiss::index::autotune::ParameterSpace;
use faiss::{Index, MetricType};
use serde::{Deserialize, Serialize};

use super::{KbError, VectorIndex};

/// Which FAISS index to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// Exact inner-product search; best up to a few hundred thousand chunks.
    #[default]
    Flat,
    /// Approximate graph search; sub-millisecond at millions of vectors.
    Hnsw,
}

impl IndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Hnsw => "hnsw",
        }
    }
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IndexKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flat" => Ok(Self::Flat),
            "hnsw" => Ok(Self::Hnsw),
            other => Err(format!("unknown index kind `{other}` (expected flat or hnsw)")),
        }
    }
}

/// HNSW graph parameters. `m` and `ef_construction` shape the graph at build
/// time; `ef_search` trades recall for speed at query time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    pub m: u32,
    pub ef_construction: u32,
    pub ef_search: u32,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self { m: 32, ef_construction: 80, ef_search: 64 }
    }
}

fn faiss_err(e: faiss::error::Error) -> KbError {
    KbError::Index(e.to_string())
}

/// A FAISS index over unit vectors, scored by inner product.
pub struct FaissIndex {
    inner: faiss::index::IndexImpl,
    kind: IndexKind,
    dimension: usize,
}

impl FaissIndex {
    /// An empty index of the given kind.
    pub fn new(kind: IndexKind, dimension: usize, hnsw: HnswParams) -> Result<Self, KbError> {
        let d = u32::try_from(dimension)
            .map_err(|_| KbError::Index(format!("dimension {dimension} too large")))?;
        let description = match kind {
            IndexKind::Flat => "Flat".to_string(),
            IndexKind::Hnsw => format!("HNSW{},Flat", hnsw.m),
        };
        let inner = faiss::index_factory(d, description, MetricType::InnerProduct).map_err(faiss_err)?;
        let mut index = Self { inner, kind, dimension };
        if kind == IndexKind::Hnsw {
            index.set_param("efConstruction", hnsw.ef_construction)?;
            index.set_param("efSearch", hnsw.ef_search)?;
        }
        Ok(index)
    }

    /// Reads an index written by [`VectorIndex::save`].
    pub fn load(path: &Path, kind: IndexKind, hnsw: HnswParams) -> Result<Self, KbError> {
        let name =
            path.to_str().ok_or_else(|| KbError::Index(format!("non-UTF-8 path {}", path.display())))?;
        let inner = faiss::read_index(name).map_err(faiss_err)?;
        let dimension = inner.d() as usize;
        let mut index = Self { inner, kind, dimension };
        if kind == IndexKind::Hnsw {
            index.set_param("efSearch", hnsw.ef_search)?;
        }
        Ok(index)
    }

    /// Sets a FAISS tuning parameter such as `efSearch`.
    pub fn set_param(&mut self, name: &str, value: u32) -> Result<(), KbError> {
        let space = ParameterSpace::new().map_err(faiss_err)?;
        space.set_index_parameter(&self.inner, name, f64::from(value)).map_err(faiss_err)
    }

    pub fn kind(&self) -> IndexKind {
        self.kind
    }

    /// Searches many queries at once (row-major `n x d`); FAISS spreads them
    /// over the cores. Results per query, best first.
    pub fn search_batch(&mut self, queries: &[f32], k: usize) -> Result<Vec<Vec<(u64, f32)>>, KbError> {
        if self.dimension == 0 || !queries.len().is_multiple_of(self.dimension) {
            return Err(KbError::DimensionMismatch { model: queries.len(), index: self.dimension });
        }
        let n = queries.len() / self.dimension;
        let k = k.min(self.len()).max(1);
        let result = self.inner.search(queries, k).map_err(faiss_err)?;
        let mut out = Vec::with_capacity(n);
        for q in 0..n {
            let row = q * k..(q + 1) * k;
            let hits = result.labels[row.clone()]
                .iter()
                .zip(&result.distances[row])
                .filter_map(|(label, score)| label.get().map(|l| (l, *score)))
                .collect();
            out.push(hits);
        }
        Ok(out)
    }
}

impl VectorIndex for FaissIndex {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn len(&self) -> usize {
        usize::try_from(self.inner.ntotal()).unwrap_or(usize::MAX)
    }

    fn add(&mut self, vectors: &[f32]) -> Result<(), KbError> {
        if self.dimension == 0 || !vectors.len().is_multiple_of(self.dimension) {
            return Err(KbError::Index(format!(
                "{} floats do not make whole {}-dimensional vectors",
                vectors.len(),
                self.dimension
            )));
        }
        self.inner.add(vectors).map_err(faiss_err)
    }

    fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, KbError> {
        if query.len() != self.dimension {
            return Err(KbError::DimensionMismatch { model: query.len(), index: self.dimension });
        }
        if self.len() == 0 || k == 0 {
            return Ok(Vec::new());
        }
        Ok(self.search_batch(query, k)?.pop().unwrap_or_default())
    }

    fn reconstruct(&self, label: u64) -> Result<Vec<f32>, KbError> {
        if label >= self.inner.ntotal() {
            return Err(KbError::Index(format!("no vector {label} in an index of {}", self.inner.ntotal())));
        }
        let mut out = vec![0.0; self.dimension];
        self.inner.reconstruct(faiss::Idx::new(label), &mut out).map_err(faiss_err)?;
        Ok(out)
    }

    fn save(&self, path: &Path) -> Result<(), KbError> {
        let name =
            path.to_str().ok_or_else(|| KbError::Index(format!("non-UTF-8 path {}", path.display())))?;
        faiss::write_index(&self.inner, name).map_err(faiss_err)
    }
}
