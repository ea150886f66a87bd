//! Genesys Knowledge as a knowledge-base source.
//!
//! A sync pulls one knowledge base's documents with their variations,
//! turns each into a record (`id` = document id, `title`, `url` =
//! `externalUrl`, labels as `tags`, `category`, the body as Markdown
//! ([`markdown`])) and writes them as a JSON Lines source under the data
//! dir (`knowledge/<kb id>/documents.jsonl`), with the time of the sync in
//! `sync.json`. The next sync lists what changed since then (`interval`)
//! and fetches only those documents, while a listing of every document
//! finds the ones deleted or unpublished, which drop out. The files are
//! replaced whole (write, then rename), so a failed sync leaves the last
//! good copy in place.
//!
//! `genesys:KB_ID` in `[kb] paths` (or `--kb`) names such a source: the
//! console syncs it at start and every `kb.sync_interval` ([`periodic`]);
//! the `kb` commands read the last synced copy.

pub mod markdown;
pub mod periodic;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::net::NetError;
use crate::net::knowledge::wire::Document;
use crate::net::knowledge::{DocumentQuery, KnowledgeClient};

/// The prefix of a Genesys source in `[kb] paths` / `--kb`.
pub const SCHEME: &str = "genesys:";
/// Documents fetched at once: enough to hide latency, few enough to stay
/// well inside the org's request rate.
const PARALLEL_FETCHES: usize = 4;
/// How far back an incremental listing reaches before the last sync, to
/// cover clock skew between us and the server.
const SKEW: Duration = Duration::from_secs(300);

/// What went wrong syncing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Genesys Knowledge: {0}")]
    Net(#[from] NetError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "knowledge base `{id}` has not been synced yet: run `agent-assist kb sync genesys --knowledge-base {id}`"
    )]
    NotSynced { id: String },
    #[error("`{given}` names no knowledge base (expected genesys:<id>)")]
    BadSource { given: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// The knowledge base id of a `genesys:ID` source, if it is one.
pub fn kb_id_of(source: &Path) -> Option<&str> {
    source.to_str()?.strip_prefix(SCHEME).map(str::trim)
}

/// Where a knowledge base's synced copy lives.
pub fn sync_dir(data_dir: &Path, kb_id: &str) -> PathBuf {
    let safe: String = kb_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    data_dir.join("knowledge").join(safe)
}

/// The JSON Lines source a sync writes.
pub fn records_path(data_dir: &Path, kb_id: &str) -> PathBuf {
    sync_dir(data_dir, kb_id).join("documents.jsonl")
}

/// Replaces `genesys:ID` sources by their last synced copy (no network).
pub fn local_sources(sources: &[PathBuf], data_dir: &Path) -> Result<Vec<PathBuf>, SyncError> {
    sources
        .iter()
        .map(|s| match kb_id_of(s) {
            None => Ok(s.clone()),
            Some("") => Err(SyncError::BadSource { given: s.display().to_string() }),
            Some(id) => {
                let p = records_path(data_dir, id);
                if p.is_file() { Ok(p) } else { Err(SyncError::NotSynced { id: id.to_string() }) }
            }
        })
        .collect()
}

/// What to sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOptions {
    pub knowledge_base_id: String,
    pub include_drafts: bool,
    /// Keep only documents with one of these labels (by name or id); all when empty.
    pub labels: Vec<String>,
}

/// The state a sync leaves for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncState {
    #[serde(flatten)]
    pub options: SyncOptions,
    /// When the last sync started (RFC 3339), the start of the next `interval`.
    pub synced_at: String,
    /// `dateModified` of every document in the copy.
    pub documents: BTreeMap<String, String>,
}

/// One line of the synced source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLine {
    pub id: String,
    pub title: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub knowledge_base_id: String,
    /// False for a first sync, or when the options changed since the last.
    pub incremental: bool,
    pub documents: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Documents left out because none of their variations has any text.
    pub skipped_empty: usize,
    /// Documents fetched with their variations.
    pub fetched: usize,
    /// Listing pages requested.
    pub pages: usize,
    pub seconds: f64,
    pub synced_at: String,
    pub source: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io { path: path.to_path_buf(), source }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Whether a listed document belongs in the copy: published (or a draft
/// when asked for), visible to search, and carrying a wanted label.
fn wanted(doc: &Document, opts: &SyncOptions) -> bool {
    let state_ok = match doc.state.as_deref() {
        None | Some("Published") => true,
        Some("Draft") => opts.include_drafts,
        Some(_) => false,
    };
    let labelled = opts.labels.is_empty()
        || doc.labels.iter().any(|l| {
            opts.labels
                .iter()
                .any(|w| w == &l.id || l.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(w)))
        });
    state_ok && doc.visible != Some(false) && labelled
}

fn record(doc: &Document) -> RecordLine {
    RecordLine {
        id: doc.id.clone(),
        title: doc.title.trim().to_string(),
        content: markdown::document(doc),
        url: doc.external_url.clone().filter(|u| !u.trim().is_empty()),
        tags: doc.labels.iter().map(|l| l.name.clone().unwrap_or_else(|| l.id.clone())).collect(),
        category: doc.category.as_ref().map(|c| c.name.clone().unwrap_or_else(|| c.id.clone())),
    }
}

fn read_state(dir: &Path) -> Option<SyncState> {
    serde_json::from_slice(&std::fs::read(dir.join("sync.json")).ok()?).ok()
}

fn read_records(path: &Path) -> HashMap<String, RecordLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<RecordLine>(l).ok())
        .map(|r| (r.id.clone(), r))
        .collect()
}

/// Writes a file whole: a temporary file, then a rename.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Pulls one knowledge base into its local copy.
pub async fn sync(
    client: &KnowledgeClient,
    data_dir: &Path,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let synced_at = now_rfc3339();
    let kb = opts.knowledge_base_id.as_str();
    let dir = sync_dir(data_dir, kb);
    let path = records_path(data_dir, kb);
    let previous = read_state(&dir).filter(|s| &s.options == opts && path.is_file());
    let old = if previous.is_some() { read_records(&path) } else { HashMap::new() };
    let query = DocumentQuery { include_drafts: opts.include_drafts, interval: None };
    let listed = client.documents(kb, &query).await?;
    let mut pages = listed.pages;
    // Changed since the last sync, by the server's own reckoning: the
    // window reaches back a little (clock skew), and a document counts when
    // it was modified after the last sync started.
    let mut changed_ids: HashSet<String> = HashSet::new();
    if let Some(state) = &previous
        && let Ok(last) = humantime::parse_rfc3339_weak(&state.synced_at)
    {
        let since = humantime::format_rfc3339_millis(last.checked_sub(SKEW).unwrap_or(last));
        let q = DocumentQuery { interval: Some(format!("{since}/{synced_at}")), ..query.clone() };
        let changed = client.documents(kb, &q).await?;
        pages += changed.pages;
        let after_last = |d: &Document| {
            d.date_modified
                .as_deref()
                .and_then(|m| humantime::parse_rfc3339_weak(m).ok())
                .is_none_or(|m| m > last)
        };
        changed_ids.extend(changed.entities.into_iter().filter(after_last).map(|d| d.id));
    }
    let keep: Vec<&Document> = listed.entities.iter().filter(|d| wanted(d, opts)).collect();
    let prev_modified = previous.as_ref().map(|s| &s.documents);
    // New, modified after the last sync, or with another `dateModified`
    // than the copy's (a safety net for clocks that disagree).
    let needs_fetch = |d: &Document| {
        let known = prev_modified.and_then(|m| m.get(&d.id));
        !old.contains_key(&d.id)
            || changed_ids.contains(&d.id)
            || known.map(String::as_str) != d.date_modified.as_deref()
    };
    let to_fetch: Vec<String> = keep.iter().filter(|d| needs_fetch(d)).map(|d| d.id.clone()).collect();
    let fetched: Vec<Result<Option<Document>, NetError>> =
        futures_util::stream::iter(to_fetch.iter().cloned())
            // Owned ids: a closure over `&String` makes the future not provably
            // `Send` (a higher-ranked lifetime), and the periodic sync spawns it.
            .map(|id| async move { client.document(kb, &id).await })
            .buffered(PARALLEL_FETCHES)
            .collect()
            .await;
    let mut fresh: HashMap<String, Document> = HashMap::new();
    for f in fetched {
        if let Some(d) = f? {
            fresh.insert(d.id.clone(), d);
        }
    }
    let (mut records, mut documents) = (Vec::new(), BTreeMap::new());
    let (mut added, mut changed, mut unchanged, mut skipped_empty) = (0, 0, 0, 0);
    for d in &keep {
        let line = match fresh.get(&d.id) {
            Some(full) => {
                // The listing's labels and category are expanded; keep them
                // if the single fetch left them out.
                let mut full = full.clone();
                if full.labels.is_empty() {
                    full.labels.clone_from(&d.labels);
                }
                if full.category.is_none() {
                    full.category.clone_from(&d.category);
                }
                let line = record(&full);
                if old.contains_key(&d.id) {
                    changed += 1
                } else {
                    added += 1
                }
                line
            }
            // Deleted between the listing and the fetch.
            None if to_fetch.contains(&d.id) => continue,
            None => match old.get(&d.id) {
                Some(line) => {
                    unchanged += 1;
                    line.clone()
                }
                None => continue,
            },
        };
        if line.content.trim().is_empty() || line.title.is_empty() {
            tracing::warn!(document = %d.id, "knowledge document has no text; left out");
            skipped_empty += 1;
            continue;
        }
        documents.insert(d.id.clone(), d.date_modified.clone().unwrap_or_default());
        records.push(line);
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let kept: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let removed = old.keys().filter(|id| !kept.contains(id.as_str())).count();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut out = Vec::new();
    for r in &records {
        out.extend(
            serde_json::to_vec(r).map_err(|e| SyncError::Io { path: path.clone(), source: e.into() })?,
        );
        out.push(b'\n');
    }
    replace(&path, &out)?;
    let state = SyncState { options: opts.clone(), synced_at: synced_at.clone(), documents };
    let state_bytes = serde_json::to_vec_pretty(&state)
        .map_err(|e| SyncError::Io { path: dir.clone(), source: e.into() })?;
    replace(&dir.join("sync.json"), &state_bytes)?;
    let report = SyncReport {
        knowledge_base_id: kb.to_string(),
        incremental: previous.is_some(),
        documents: records.len(),
        added,
        changed,
        removed,
        unchanged,
        skipped_empty,
        fetched: fresh.len(),
        pages,
        seconds: started.elapsed().as_secs_f64(),
        synced_at,
        source: path,
    };
    tracing::info!(kb, documents = report.documents, added, changed, removed, "knowledge base synced");
    Ok(report)
}

/// A Knowledge API client with the configured org's credentials.
pub fn client(config: &crate::config::Config) -> Result<KnowledgeClient, SyncError> {
    let endpoint = config.endpoint()?;
    let http = crate::net::rest::http_client(Duration::from_secs(30))?;
    let auth = crate::net::auth::TokenSource::new(http.clone(), endpoint.clone());
    Ok(KnowledgeClient::new(http, &endpoint.api_base, auth))
}

/// The configured sources with every `genesys:ID` synced and replaced by
/// its local copy. A failed sync falls back to the last good copy (and
/// says so in the log); without one it is an error.
pub async fn resolve_sources(
    config: &crate::config::Config,
    paths: &crate::paths::AppPaths,
) -> Result<Vec<PathBuf>, SyncError> {
    let sources = config.kb.sources();
    if !sources.iter().any(|s| kb_id_of(s).is_some()) {
        return Ok(sources);
    }
    let client = client(config)?;
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let Some(id) = kb_id_of(&s).map(str::to_string) else {
            out.push(s);
            continue;
        };
        if id.is_empty() {
            return Err(SyncError::BadSource { given: s.display().to_string() });
        }
        let opts = SyncOptions {
            knowledge_base_id: id.clone(),
            include_drafts: config.kb.genesys_include_drafts,
            labels: config.kb.genesys_labels.clone(),
        };
        let copy = records_path(&paths.data_dir, &id);
        match sync(&client, &paths.data_dir, &opts).await {
            Ok(r) => {
                tracing::info!(kb = %id, documents = r.documents, added = r.added, changed = r.changed, removed = r.removed, "synced at start")
            }
            Err(e) if copy.is_file() => {
                tracing::warn!(kb = %id, error = %e, "sync failed; using the last synced copy");
            }
            Err(e) => return Err(e),
        }
        out.push(copy);
    }
    Ok(out)
}
