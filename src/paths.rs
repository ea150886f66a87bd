//! Where agent-assist keeps its files: config, data (model, ONNX Runtime,
//! audit log, logs) and cache (built indexes).
//!
//! This is the one module that decides paths. Resolution order for each
//! directory: an explicit env override (`AGENT_ASSIST_CONFIG_DIR`,
//! `AGENT_ASSIST_DATA_DIR`, `AGENT_ASSIST_CACHE_DIR`), then the platform
//! directories from `directories` (XDG on Linux). The model and ONNX Runtime
//! live in the data dir (`ORT_DYLIB_PATH` overrides the latter). `scripts/setup.sh` computes
//! the same data dir, so the binary finds what the script installed without
//! any env var.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

/// File name of the ONNX Runtime library that `scripts/setup.sh` installs.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.24.4";
/// Folder (under the data dir) holding the embedding model files.
pub const MODEL_FOLDER: &str = "models/all-MiniLM-L6-v2";

/// The resolved directories, computed once at start-up and passed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPaths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// The embedding model's files (`model.onnx`, `tokenizer.json`, ...).
    pub model_dir: PathBuf,
    /// The `[kb] model` name, which says how to run the files in
    /// `model_dir`; `None` for the default model.
    pub model_name: Option<String>,
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
}

/// Failure to find a home for the application's files.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot determine a home directory for config, data and cache; \
     set AGENT_ASSIST_CONFIG_DIR, AGENT_ASSIST_DATA_DIR and AGENT_ASSIST_CACHE_DIR"
)]
pub struct PathsError;

impl AppPaths {
    /// Resolves the directories from env overrides and the platform defaults.
    pub fn resolve() -> Result<Self, PathsError> {
        let dirs = ProjectDirs::from("", "", "agent-assist");
        let pick = |var: &str, fallback: Option<&Path>| -> Result<PathBuf, PathsError> {
            match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                _ => fallback.map(Path::to_path_buf).ok_or(PathsError),
            }
        };
        let data_dir = pick("AGENT_ASSIST_DATA_DIR", dirs.as_ref().map(ProjectDirs::data_dir))?;
        let ort_library = match std::env::var_os("ORT_DYLIB_PATH") {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => data_dir.join("onnxruntime").join(ORT_LIBRARY_FILE),
        };
        Ok(Self {
            config_dir: pick("AGENT_ASSIST_CONFIG_DIR", dirs.as_ref().map(ProjectDirs::config_dir))?,
            cache_dir: pick("AGENT_ASSIST_CACHE_DIR", dirs.as_ref().map(ProjectDirs::cache_dir))?,
            model_dir: data_dir.join(MODEL_FOLDER),
            model_name: None,
            ort_library,
            data_dir,
        })
    }

    /// All three directories under one root; for tests and throwaway runs.
    pub fn under(root: &Path) -> Self {
        let data_dir = root.join("data");
        Self {
            config_dir: root.join("config"),
            cache_dir: root.join("cache"),
            model_dir: data_dir.join(MODEL_FOLDER),
            model_name: None,
            ort_library: data_dir.join("onnxruntime").join(ORT_LIBRARY_FILE),
            data_dir,
        }
    }

    /// The same directories with the model `[kb] model` names: its files in
    /// `<data dir>/models/<folder>`.
    pub fn with_model(mut self, name: &str, folder: &str) -> Self {
        self.model_dir = self.data_dir.join("models").join(folder);
        self.model_name = Some(name.to_string());
        self
    }

    /// Root of the persisted indexes.
    pub fn index_root(&self) -> PathBuf {
        self.cache_dir.join("index")
    }

    /// Directory of the audit logs.
    /// The durable ledger of suggestions and deliveries.
    pub fn ledger_file(&self) -> PathBuf {
        self.data_dir.join("ledger.redb")
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.data_dir.join("audit")
    }

    /// Directory of the tracing log files.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// The user's config file.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
}

/// Where the repository's bundled files live when running from a checkout:
/// the sample `kb/` and `assets/`. Used only as a default when the current
/// directory has none, so `agent-assist demo` works from anywhere.
pub fn bundled(relative: &str) -> PathBuf {
    let local = PathBuf::from(relative);
    if local.exists() {
        return local;
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if built_in.exists() { built_in } else { local }
}
