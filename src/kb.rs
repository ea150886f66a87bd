//! The knowledge base: articles in, ranked article suggestions out.
//!
//! Sources ([`source`]) become chunks ([`chunk`]) that the embedder
//! ([`embed`]) turns into unit vectors in a FAISS index ([`index`]); the
//! index, the chunk metadata and a manifest persist in the cache dir
//! ([`store`]) so an unchanged KB loads without re-embedding, and every
//! vector is cached by its text ([`embed::cache`]) so a changed KB embeds
//! only its changed chunks. A Genesys knowledge base is synced into a
//! local source ([`genesys`]). While the console runs, edited sources are
//! rebuilt in the background and swapped in between searches ([`reload`],
//! [`watch`]). A search
//! returns one [`Hit`] per article with its best chunk. [`eval`] measures
//! retrieval quality and single-query latency on a labelled query set.
//!
//! Embedding and FAISS calls are blocking and CPU-bound; the runtime keeps
//! them on their own thread.

pub mod abstention;
pub mod bm25;
pub mod calibration;
pub mod chunk;
pub mod embed;
pub mod eval;
pub mod genesys;
pub mod index;
pub mod need;
pub mod rank;
pub mod reload;
pub mod source;
pub mod store;
pub mod watch;
pub mod worker;

use std::fmt;
use std::path::{Path, PathBuf};

pub use embed::{Batching, FastEmbedder, ModelSpec, Read};
pub use index::{HnswParams, IndexKind};
pub use store::{BuildOutcome, BuildReport, KbOptions, KnowledgeBase, Retriever};

/// A place in a source file, printed as `path:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
}

impl Location {
    pub fn new(path: impl AsRef<Path>, line: usize) -> Self {
        Self { path: path.as_ref().to_path_buf(), line }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// Everything that can go wrong loading, building or searching a KB. Each
/// message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("embedding model file not found: {path}; run `scripts/setup.sh` to install the model")]
    ModelMissing { path: PathBuf },
    #[error("ONNX Runtime not found at {path}; run `scripts/setup.sh` to install it (or set ORT_DYLIB_PATH)")]
    RuntimeMissing { path: PathBuf },
    #[error("cannot load ONNX Runtime: {message}")]
    RuntimeLoad { message: String },
    #[error("cannot load the embedding model: {message}")]
    Model { message: String },
    #[error("embedding failed: {0}")]
    Embed(String),
    #[error("vector index error: {0}")]
    Index(String),
    #[error("dimension mismatch: the model makes {model}-dimensional vectors but the index holds {index}")]
    DimensionMismatch { model: usize, index: usize },
    #[error("{at}: bad front matter: {message}")]
    FrontMatter { at: Location, message: String },
    #[error("{at}: {message}")]
    Record { at: Location, message: String },
    #[error("{at}: file is not valid UTF-8")]
    NotUtf8 { at: Location },
    #[error("duplicate article id `{id}`: first at {first}, again at {second}")]
    DuplicateId { id: String, first: Location, second: Location },
    #[error("the knowledge base is empty: no articles found in {}", display_paths(.sources))]
    EmptyKb { sources: Vec<PathBuf> },
    #[error("knowledge-base source not found: {path}")]
    SourceMissing { path: PathBuf },
    #[error("the query is empty")]
    EmptyQuery,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("index cache at {path} is unusable: {reason}")]
    Cache { path: PathBuf, reason: String },
    #[error(
        "the need classifier {path} was fitted for other vectors than this model makes; fit it again \
         with `agent-assist kb need --data DIR --install`"
    )]
    NeedClassifierModel { path: PathBuf },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Turns texts into unit vectors. Implemented by [`FastEmbedder`]; tests of
/// pure logic may use a deterministic fake.
pub trait Embedder: Send {
    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;
    /// Identity of the model, for cache invalidation.
    fn fingerprint(&self) -> &str;
    /// Word pieces in `text`, without special tokens.
    fn count_tokens(&self, text: &str) -> usize;
    /// One text, as the live path does: no batching overhead.
    fn embed_one(&mut self, text: &str) -> Result<Vec<f32>, KbError>;
    /// A few texts as the live worker embeds them, each also read in
    /// parts: `parts[i]` holds byte ranges of `texts[i]`, and each [`Read`]
    /// carries the vector of each part as the model read it inside the
    /// whole text, from the same run.
    fn read_parts(
        &mut self,
        texts: &[String],
        parts: &[Vec<std::ops::Range<usize>>],
    ) -> Result<Vec<Read>, KbError>;
    /// Many texts, as index builds do; returns `texts.len() * dimension`
    /// floats in input order and reports how many are done as it goes.
    fn embed_many(&mut self, texts: &[String], progress: &mut dyn FnMut(usize)) -> Result<Vec<f32>, KbError>;
}

/// A searchable set of unit vectors, labelled by insertion order.
pub trait VectorIndex: Send {
    fn dimension(&self) -> usize;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends `n x dimension` floats.
    fn add(&mut self, vectors: &[f32]) -> Result<(), KbError>;
    /// The `k` nearest labels with their inner-product scores, best first.
    fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, KbError>;
    /// The stored vector of `label`.
    fn reconstruct(&self, label: u64) -> Result<Vec<f32>, KbError>;
    fn save(&self, path: &Path) -> Result<(), KbError>;
}

pub use crate::domain::Hit;
