//! Live reload: the rebuild thread. Told that sources changed (a file
//! watcher, [`super::watch`], or a Genesys sync), it rebuilds the index in
//! the background, incrementally (the embedding cache embeds only new chunk
//! texts), compares the new articles with the ones in use ([`ArticleDiff`])
//! and hands the new index to the search worker, which swaps it in between
//! two searches ([`super::worker::Swap`]). A failed rebuild (a bad file,
//! say) changes nothing: the old index keeps answering and the failure is
//! reported with the build's own message (file and line).
//!
//! The thread has its own embedder, loaded at the first rebuild, so a
//! rebuild never waits for the searches' model or holds it up; it runs on
//! one core ([`REBUILD_THREADS`]), so the searches keep the others. It owns the
//! index version: 1 for the index the runtime started with, one more per
//! swap.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::calibration;
use super::store::{self, KnowledgeBase, StoredArticle};
use super::worker::{Installer, Swap};
use super::{FastEmbedder, KbError, KbOptions};
use crate::paths::AppPaths;

/// Intra-op threads of the rebuild's model: a rebuild of a few edited
/// articles is a handful of chunks, and on a small machine a model using
/// every core would hold up the live searches for its whole run (`bench e2e
/// --reload-every` showed event-to-search p99 at 1.7 s that way).
pub const REBUILD_THREADS: usize = 1;

/// Articles added, removed and changed between two versions of a KB, by id
/// (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArticleDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same id, another title, text, link or tags.
    pub changed: Vec<String>,
}

impl ArticleDiff {
    pub fn between(old: &[StoredArticle], new: &[StoredArticle]) -> Self {
        let before: HashMap<&str, &StoredArticle> = old.iter().map(|a| (a.id.as_str(), a)).collect();
        let after: HashMap<&str, &StoredArticle> = new.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut d = Self::default();
        for (id, a) in &after {
            match before.get(id) {
                None => d.added.push((*id).to_string()),
                Some(b) if b != a => d.changed.push((*id).to_string()),
                Some(_) => {}
            }
        }
        d.removed = before.keys().filter(|id| !after.contains_key(*id)).map(|id| (*id).to_string()).collect();
        d.added.sort();
        d.removed.sort();
        d.changed.sort();
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// A new index is in use.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadReport {
    pub version: u64,
    pub diff: ArticleDiff,
    /// From the start of the rebuild (after the watcher's debounce) to the
    /// new index being ready.
    pub took: Duration,
    pub articles: usize,
    /// Chunks embedded by this rebuild, and reused from the cache.
    pub embedded: usize,
    pub reused: usize,
}

/// What the reloader reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadEvent {
    /// Sent from the search worker once the new index answers searches.
    Reloaded(ReloadReport),
    /// The rebuild (or a sync feeding it) failed; the old index stays.
    Failed { reason: String },
}

/// Where reload events go (any thread).
pub type ReloadSink = Arc<dyn Fn(ReloadEvent) + Send + Sync>;

/// Why a rebuild is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Files under a watched source changed.
    Files(Vec<PathBuf>),
    /// A Genesys knowledge base was synced with changes.
    Synced {
        kb_id: String,
    },
    /// A sync failed; nothing to rebuild, but the operator should know.
    SyncFailed {
        reason: String,
    },
    Stop,
}

/// The newest article list, for the manual-push palette.
type CatalogSlot = Arc<Mutex<Option<Arc<Vec<StoredArticle>>>>>;

/// The rebuild thread. Stop it before the search worker (it holds an
/// [`Installer`], which keeps the worker's queue open).
pub struct Reloader {
    tx: std_mpsc::Sender<Trigger>,
    thread: Option<JoinHandle<()>>,
    catalog: CatalogSlot,
}

impl Reloader {
    /// Starts the thread. `current` is the article list the worker's index
    /// was built from.
    pub fn spawn(
        opts: KbOptions,
        paths: AppPaths,
        current: Arc<Vec<StoredArticle>>,
        installer: Installer,
        sink: ReloadSink,
    ) -> Self {
        let (tx, rx) = std_mpsc::channel::<Trigger>();
        let catalog: CatalogSlot = Arc::new(Mutex::new(None));
        let slot = catalog.clone();
        let thread = std::thread::Builder::new()
            .name("kb-reload".into())
            .spawn(move || {
                let mut state = State { opts, paths, current, embedder: None, version: 1 };
                while let Ok(first) = rx.recv() {
                    // Changes that came in meanwhile are covered by one build.
                    let mut triggers = vec![first];
                    triggers.extend(rx.try_iter());
                    if triggers.contains(&Trigger::Stop) {
                        return;
                    }
                    for t in &triggers {
                        if let Trigger::SyncFailed { reason } = t {
                            sink(ReloadEvent::Failed { reason: reason.clone() });
                        }
                    }
                    if triggers.iter().all(|t| matches!(t, Trigger::SyncFailed { .. })) {
                        continue;
                    }
                    tracing::info!(?triggers, "knowledge-base sources changed; rebuilding");
                    if !state.reload(&installer, &sink, &slot) {
                        return;
                    }
                }
            })
            .ok();
        Self { tx, thread, catalog }
    }

    /// Where to say that sources changed.
    pub fn trigger(&self) -> std_mpsc::Sender<Trigger> {
        self.tx.clone()
    }

    /// The article list of the newest index handed to the worker, once.
    pub fn take_catalog(&self) -> Option<Arc<Vec<StoredArticle>>> {
        self.catalog.lock().ok().and_then(|mut c| c.take())
    }

    /// Stops after the current rebuild and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.tx.send(Trigger::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        // Without a stop the thread would keep the worker's queue open.
        let _ = self.tx.send(Trigger::Stop);
    }
}

/// What the rebuild thread keeps between rebuilds.
struct State {
    opts: KbOptions,
    paths: AppPaths,
    current: Arc<Vec<StoredArticle>>,
    embedder: Option<FastEmbedder>,
    version: u64,
}

impl State {
    /// One rebuild; false once the worker is gone.
    fn reload(&mut self, installer: &Installer, sink: &ReloadSink, slot: &CatalogSlot) -> bool {
        let started = Instant::now();
        let (kb, embedded, reused) = match self.build() {
            Ok(built) => built,
            Err(e) => {
                tracing::warn!(error = %e, "knowledge-base rebuild failed; the old index stays in use");
                sink(ReloadEvent::Failed { reason: e.to_string() });
                return true;
            }
        };
        let diff = ArticleDiff::between(&self.current, &kb.articles);
        if diff.is_empty() {
            tracing::info!("sources changed but no article did; the index stays as it is");
            return true;
        }
        self.version += 1;
        let catalog = Arc::new(kb.articles.clone());
        if let Ok(mut c) = slot.lock() {
            *c = Some(catalog.clone());
        }
        self.current = catalog;
        let report = ReloadReport {
            version: self.version,
            articles: kb.articles.len(),
            diff,
            took: started.elapsed(),
            embedded,
            reused,
        };
        tracing::info!(
            version = report.version,
            added = report.diff.added.len(),
            removed = report.diff.removed.len(),
            changed = report.diff.changed.len(),
            embedded,
            reused,
            seconds = report.took.as_secs_f64(),
            "knowledge base rebuilt"
        );
        let calibration = calibration::for_kb(&kb);
        let sink = sink.clone();
        let installed = Box::new(move || sink(ReloadEvent::Reloaded(report)));
        installer.install(Swap { kb, calibration, installed })
    }

    fn build(&mut self) -> Result<(KnowledgeBase, usize, usize), KbError> {
        let embedder = match &mut self.embedder {
            Some(e) => e,
            None => {
                let spec = super::ModelSpec { threads: Some(REBUILD_THREADS), ..self.opts.model.clone() };
                self.embedder.insert(FastEmbedder::load(&spec)?)
            }
        };
        let (kb, report) = store::open(&self.opts, &self.paths, embedder, &mut |_| {})?;
        Ok((kb, report.embedded, report.reused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, content: &str) -> StoredArticle {
        StoredArticle {
            id: id.into(),
            title: format!("T {id}"),
            url: None,
            tags: vec![],
            content: content.into(),
        }
    }

    #[test]
    fn the_diff_names_added_removed_and_changed_articles() {
        let old = vec![article("a", "one"), article("b", "two"), article("c", "three"), article("d", "four")];
        let mut retitled = article("d", "four");
        retitled.title = "New title".into();
        let new = vec![article("c", "three"), article("b", "two, edited"), article("e", "five"), retitled];
        let d = ArticleDiff::between(&old, &new);
        assert_eq!(d.added, vec!["e"]);
        assert_eq!(d.removed, vec!["a"]);
        assert_eq!(d.changed, vec!["b", "d"]);
        assert!(!d.is_empty());
    }

    #[test]
    fn reordered_or_identical_articles_are_no_change() {
        let old = vec![article("a", "one"), article("b", "two")];
        let new = vec![article("b", "two"), article("a", "one")];
        assert!(ArticleDiff::between(&old, &new).is_empty());
    }

    #[test]
    fn a_changed_link_or_tag_is_a_change() {
        let old = vec![article("a", "one"), article("b", "two")];
        let mut linked = article("a", "one");
        linked.url = Some("https://help.example.com/a".into());
        let mut tagged = article("b", "two");
        tagged.tags = vec!["billing".into()];
        let d = ArticleDiff::between(&old, &[linked, tagged]);
        assert_eq!(d.changed, vec!["a", "b"]);
        assert!(d.added.is_empty() && d.removed.is_empty());
    }
}
