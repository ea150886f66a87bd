//! Shared helpers for the integration tests.

use std::path::{Path, PathBuf};

use agent_assist::kb::{HnswParams, IndexKind, KbOptions, ModelSpec};
use agent_assist::paths::AppPaths;

pub mod floor;
pub mod process;
pub mod tmux;

/// The repository root (for `kb/`, `assets/`, fixtures).
pub fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The installed model (from `scripts/setup.sh`), whatever dirs a test uses.
pub fn installed_model() -> ModelSpec {
    let paths = AppPaths::resolve().expect("home directory");
    ModelSpec::installed(&paths)
}

/// Throwaway app directories under a temp dir.
pub fn temp_paths() -> (tempfile::TempDir, AppPaths) {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = AppPaths::under(dir.path());
    (dir, paths)
}

/// Options for a KB built from `sources` with the real model.
pub fn kb_options(sources: Vec<PathBuf>, kind: IndexKind) -> KbOptions {
    KbOptions { sources, kind, hnsw: HnswParams::default(), model: installed_model(), force_rebuild: false }
}

/// Writes `files` (name, contents) into a fresh directory and returns it.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    std::fs::create_dir_all(root).expect("mkdir");
    for (name, body) in files {
        let p = root.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, body).expect("write");
    }
    root.to_path_buf()
}

/// Network-test helpers: a simulator, an endpoint for it, and a way to wait
/// for stream events without sleeping.
pub mod net {
    use std::time::Duration;

    use agent_assist::domain::StreamEvent;
    use agent_assist::net::{Dialect, Endpoint, Secret};
    use agent_assist::sim::script::Utterance;
    use agent_assist::sim::{Script, SimConfig, SimHandle};
    use tokio::sync::mpsc;

    /// Pushes the simulator received, by (conversation, article): arrival
    /// times and whether an operator asked for them.
    pub fn pushes_by_article(
        sim: &SimHandle,
    ) -> std::collections::BTreeMap<(String, String), Vec<(u64, bool)>> {
        let mut out: std::collections::BTreeMap<(String, String), Vec<(u64, bool)>> = Default::default();
        for p in sim.pushes() {
            let r = &p.body["results"][0];
            let article = r["id"].as_str().unwrap_or_default().to_string();
            let operator = r["metadata"]["decided_by"] == "operator";
            out.entry((p.conversation_id.clone(), article)).or_default().push((p.received_ms, operator));
        }
        out
    }

    /// A script from `(channel, text)` pairs, `gap_ms` apart.
    pub fn script(id: &str, lines: &[(&str, &str)], gap_ms: u64) -> Script {
        Script {
            id: id.into(),
            queue_id: None,
            title: None,
            expected_articles: vec![],
            utterances: lines
                .iter()
                .enumerate()
                .map(|(i, (c, t))| Utterance {
                    at_ms: i as u64 * gap_ms,
                    channel: (*c).into(),
                    text: (*t).into(),
                })
                .collect(),
            frames: vec![],
        }
    }

    /// A simulator config for tests: fast heartbeats, short start gaps.
    pub fn sim_config(scripts: Vec<Script>) -> SimConfig {
        let mut c = SimConfig::new(scripts);
        c.heartbeat = Duration::from_millis(200);
        c.start_gap = Duration::from_millis(10);
        c.subscribe_grace = Duration::from_secs(5);
        c
    }

    pub async fn start(config: SimConfig) -> SimHandle {
        agent_assist::sim::spawn(config).await.expect("simulator starts")
    }

    pub fn endpoint(sim: &SimHandle, dialect: Dialect) -> Endpoint {
        Endpoint {
            dialect,
            api_base: sim.base_url.clone(),
            login_base: sim.base_url.clone(),
            client_id: "test-client".into(),
            client_secret: Secret::new("test-secret"),
        }
    }

    /// Receives events until `done` says the collection is complete, or
    /// panics with what arrived after `timeout`.
    pub async fn collect_until(
        rx: &mut mpsc::Receiver<StreamEvent>,
        timeout: Duration,
        done: impl Fn(&[StreamEvent]) -> bool,
    ) -> Vec<StreamEvent> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&got) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => got.push(ev),
                Ok(None) => panic!("stream closed; got {got:#?}"),
                Err(_) => panic!("timed out; got {got:#?}"),
            }
        }
        got
    }

    /// Polls `cond` until true, or panics after `timeout`.
    pub async fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `agent-assist` as a process with its config, data and cache dirs under
/// `tmp` (the index cache is shared between tests).
pub fn console_process(tmp: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_agent-assist"));
    let model = installed_model();
    c.env("AGENT_ASSIST_CONFIG_DIR", tmp.join("config"))
        .env("AGENT_ASSIST_DATA_DIR", tmp.join("data"))
        .env("AGENT_ASSIST_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("kb-cache"))
        .env("ORT_DYLIB_PATH", &model.ort_library)
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .env_remove("GENESYS_ORG_DOMAIN");
    c
}

/// Builds the sample KB's index into the shared test cache once, so tests
/// that start console processes do not each build it (slowly, at once).
pub fn warm_index() {
    static DONE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *done {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    link_model(tmp.path());
    let out = console_process(tmp.path()).args(["kb", "build"]).output().expect("kb build runs");
    assert!(out.status.success(), "kb build: {}", String::from_utf8_lossy(&out.stderr));
    *done = true;
}

/// The model is looked up in the data dir: point `tmp`'s at the installed one.
pub fn link_model(tmp: &Path) {
    let model = installed_model();
    let model_home = tmp.join("data/models");
    std::fs::create_dir_all(&model_home).expect("mkdir");
    let link = model_home.join("all-MiniLM-L6-v2");
    if !link.exists() {
        std::os::unix::fs::symlink(&model.model_dir, link).expect("symlink");
    }
}

/// The bundled conversation scripts.
pub fn bundled_scripts() -> Vec<agent_assist::sim::Script> {
    agent_assist::sim::load_scripts(&repo("assets/conversations")).expect("bundled scripts load")
}
