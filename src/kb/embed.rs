//! The real embedder: all-MiniLM-L6-v2 through fastembed and ONNX Runtime,
//! loaded from the files `scripts/setup.sh` puts in the data dir.
//!
//! ONNX Runtime is loaded dynamically from the data dir (or `ORT_DYLIB_PATH`
//! when the user sets it); the binary hands the path to `ort` itself, so no
//! environment variable is needed. Vectors come out mean-pooled and
//! L2-normalised, so inner product is cosine similarity.

pub mod batch;
pub mod cache;
pub mod integer;
pub mod models;
mod parallel;
pub mod parts;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fastembed::{
    InitOptionsUserDefined, OutputKey, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use sha2::{Digest, Sha256};

pub use self::batch::Batching;
pub use self::parts::Read;
use super::{Embedder, KbError};
use crate::paths::AppPaths;

/// MiniLM's input limit in word pieces (sentence-transformers uses 256).
pub const MAX_TOKENS: usize = 256;

/// Fewest batches worth loading the one-thread build sessions for: loading
/// them takes a fraction of a second, which a few batches of work do not
/// repay, and the live path's batched queries (a handful of texts) must
/// never wait for it.
const PARALLEL_MIN_BATCHES: usize = 8;

const MODEL_FILES: [&str; 5] =
    ["model.onnx", "tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"];

/// Where the model lives and how many threads ONNX Runtime may use.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub model_dir: PathBuf,
    pub ort_library: PathBuf,
    /// Intra-op threads; `None` uses every core.
    pub threads: Option<usize>,
    /// How to run the files (`[kb] model`).
    pub info: &'static models::ModelInfo,
}

impl ModelSpec {
    /// The installed model and runtime under the app's data dir.
    pub fn installed(paths: &AppPaths) -> Self {
        Self {
            model_dir: paths.model_dir.clone(),
            ort_library: paths.ort_library.clone(),
            threads: None,
            info: models::named_or_default(paths.model_name.as_deref()),
        }
    }

    /// Which of the selectable models this is.
    pub fn info(&self) -> &'static models::ModelInfo {
        self.info
    }

    /// Checks that every model file is present, naming the first missing one.
    pub fn check(&self) -> Result<(), KbError> {
        for f in MODEL_FILES {
            let p = self.model_dir.join(f);
            if !p.is_file() {
                return Err(KbError::ModelMissing { path: p });
            }
        }
        Ok(())
    }

    /// The model's identity for cache keys: sha256 over the model and
    /// tokenizer bytes, and how the graph is run (integer products give
    /// slightly different vectors). Cheap next to creating the session.
    pub fn fingerprint(&self) -> Result<String, KbError> {
        self.check()?;
        let mut h = Sha256::new();
        for f in ["model.onnx", "tokenizer.json"] {
            let p = self.model_dir.join(f);
            h.update(std::fs::read(&p).map_err(|source| KbError::Io { path: p, source })?);
        }
        if self.info.integer_products {
            h.update(integer::REWRITE_TAG);
        }
        Ok(hex(&h.finalize()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads ONNX Runtime once per process. `ort` would otherwise look for the
/// library itself and panic if it is missing; this turns that into an error.
fn ort_environment(library: &Path) -> Result<ort::environment::Environment, KbError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    if !library.is_file() {
        return Err(KbError::RuntimeMissing { path: library.to_path_buf() });
    }
    ENV.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| format!("{}: {e}", library.display()))?
            .with_name("agent-assist")
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|message| KbError::RuntimeLoad { message })
}

/// fastembed's MiniLM with a tokenizer of our own for counting word pieces.
pub struct FastEmbedder {
    /// Sort texts by length before batching (on by default; off only to
    /// measure what sorting buys).
    pub sort_by_length: bool,
    /// How index builds cut texts into model calls.
    pub batching: Batching,
    /// One-thread sessions that index builds run side by side; 1 runs
    /// builds on the live session with its intra-op threads instead.
    pub build_sessions: usize,
    spec: ModelSpec,
    model: TextEmbedding,
    counter: tokenizers::Tokenizer,
    fingerprint: String,
    dimension: usize,
}

/// Reads the model files and creates one ONNX Runtime session.
fn session(spec: &ModelSpec, threads: Option<usize>) -> Result<TextEmbedding, KbError> {
    let env = ort_environment(&spec.ort_library)?;
    let read = |f: &str| {
        let p = spec.model_dir.join(f);
        std::fs::read(&p).map_err(|source| KbError::Io { path: p, source })
    };
    let tokenizer_files = TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let info = spec.info();
    let mut onnx = read("model.onnx")?;
    if info.integer_products {
        let (rewritten, products) = integer::rewrite(&onnx)?;
        tracing::debug!(products, "model matrix products run on integers");
        onnx = rewritten;
    }
    let mut user_model = UserDefinedEmbeddingModel::new(onnx, tokenizer_files).with_pooling(Pooling::Mean);
    user_model.output_key = info.output.map(OutputKey::ByName);
    let mut options = InitOptionsUserDefined::new().with_environment(env).with_max_length(info.max_tokens);
    if let Some(t) = threads {
        options = options.with_intra_threads(t);
    }
    TextEmbedding::try_new_from_user_defined(user_model, options)
        .map_err(|e| KbError::Model { message: e.to_string() })
}

impl FastEmbedder {
    /// Loads the model; fails with a message naming the missing file and the
    /// command that installs it.
    pub fn load(spec: &ModelSpec) -> Result<Self, KbError> {
        let fingerprint = spec.fingerprint()?;
        let mut model = session(spec, spec.threads)?;
        let tokenizer_path = spec.model_dir.join("tokenizer.json");
        let bytes =
            std::fs::read(&tokenizer_path).map_err(|source| KbError::Io { path: tokenizer_path, source })?;
        let mut counter = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| KbError::Model { message: format!("tokenizer.json: {e}") })?;
        counter
            .with_truncation(None)
            .map_err(|e| KbError::Model { message: format!("tokenizer.json: {e}") })?;
        counter.with_padding(None);
        let probe = model.embed(["dimension probe"], None).map_err(|e| KbError::Embed(e.to_string()))?;
        let dimension = probe.first().map_or(0, Vec::len);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            sort_by_length: true,
            batching: Batching::default(),
            build_sessions: spec.threads.unwrap_or(cores).max(1),
            spec: spec.clone(),
            model,
            counter,
            fingerprint,
            dimension,
        })
    }

    /// Every vector must have the size the probe found at load.
    fn check_dimension(&self, len: usize) -> Result<(), KbError> {
        if len == self.dimension {
            Ok(())
        } else {
            Err(KbError::DimensionMismatch { model: len, index: self.dimension })
        }
    }
}

/// Scales a vector to unit length in place (no-op for the zero vector).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl Embedder for FastEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter.encode(text, false).map_or_else(|_| text.split_whitespace().count(), |e| e.len())
    }

    fn embed_one(&mut self, text: &str) -> Result<Vec<f32>, KbError> {
        // A batch of one: no padding, no sorting, nothing to split.
        let mut out = self.model.embed([text], None).map_err(|e| KbError::Embed(e.to_string()))?;
        let mut v = out.pop().ok_or_else(|| KbError::Embed("model returned no vector".into()))?;
        normalize(&mut v);
        Ok(v)
    }

    fn read_parts(&mut self, texts: &[String], parts: &[Vec<Range<usize>>]) -> Result<Vec<Read>, KbError> {
        let info = self.spec.info();
        let layouts: Vec<parts::Layout> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let asked = parts.get(i).map_or(&[][..], Vec::as_slice);
                match self.counter.encode(text.as_str(), true) {
                    Ok(e) => {
                        parts::layout(e.get_offsets(), e.get_special_tokens_mask(), asked, info.max_tokens)
                    }
                    // Not read: the model's own tokenizer reports the error below.
                    Err(_) => parts::Layout { tokens: 0, spans: vec![None; asked.len()] },
                }
            })
            .collect();
        // As for index builds: sorted by length and cut where padding
        // would dominate, so a short utterance is not padded to a window.
        let lengths: Vec<usize> =
            layouts.iter().map(|l| l.tokens.saturating_sub(2).min(info.max_tokens - 2)).collect();
        let ordered = batch::by_length(&lengths, true, self.batching);
        let mut out: Vec<Option<Read>> = vec![None; texts.len()];
        for range in ordered.batches {
            let members = &ordered.order[range];
            let batch_texts: Vec<&str> = members.iter().map(|&i| texts[i].as_str()).collect();
            let batch_layouts: Vec<&parts::Layout> = members.iter().map(|&i| &layouts[i]).collect();
            let reads = parts::run_batch(&mut self.model, info.output, &batch_texts, &batch_layouts)?;
            for (&i, read) in members.iter().zip(reads) {
                self.check_dimension(read.vector.len())?;
                out[i] = Some(read);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| KbError::Embed("model returned too few vectors".into())))
            .collect()
    }

    fn embed_many(&mut self, texts: &[String], progress: &mut dyn FnMut(usize)) -> Result<Vec<f32>, KbError> {
        // Sort by length so each batch pads to about its own length, cut
        // batches by their padded size, then put the vectors back in input
        // order.
        let lengths: Vec<usize> =
            texts.iter().map(|t| self.count_tokens(t).min(self.spec.info().max_tokens - 2)).collect();
        let batch::Ordered { order, batches: plan } =
            batch::by_length(&lengths, self.sort_by_length, self.batching);
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
        let vectors = if self.build_sessions > 1 && plan.len() >= PARALLEL_MIN_BATCHES {
            // Loaded per build and dropped after it, so a console that has
            // built its KB does not keep extra copies of the model.
            let mut sessions = (0..self.build_sessions)
                .map(|_| session(&self.spec, Some(1)))
                .collect::<Result<Vec<_>, _>>()?;
            parallel::run(&mut sessions, &sorted, &plan, progress)?
        } else {
            parallel::run(std::slice::from_mut(&mut self.model), &sorted, &plan, progress)?
        };
        let mut out = vec![0.0f32; texts.len() * self.dimension];
        for (&i, mut v) in order.iter().zip(vectors) {
            self.check_dimension(v.len())?;
            normalize(&mut v);
            out[i * self.dimension..(i + 1) * self.dimension].copy_from_slice(&v);
        }
        Ok(out)
    }
}
