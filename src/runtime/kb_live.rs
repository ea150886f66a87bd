//! Live reload, wired for the runtime: the rebuild thread
//! ([`crate::kb::reload`]) fed by a watcher on the local sources
//! ([`crate::kb::watch`]) and by the periodic Genesys sync
//! ([`crate::kb::genesys::periodic`]); its reports become engine messages
//! on the runtime's channel. A reload's message is sent by the search
//! worker right after the swap, so every search answer before it came from
//! the old index and every one after it from the new.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::engine::{Engine, KbReload, Msg};
use crate::kb::KbOptions;
use crate::kb::genesys::periodic;
use crate::kb::reload::{ReloadEvent, ReloadSink, Reloader};
use crate::kb::store::StoredArticle;
use crate::kb::watch::{SourceWatcher, watch};
use crate::kb::worker::Installer;
use crate::paths::AppPaths;
use crate::widget::{FeedEvent, FeedOut};

/// The running parts of live reload; [`KbLive::stop`] before the worker.
pub struct KbLive {
    reloader: Reloader,
    _watcher: Option<SourceWatcher>,
    sync: Option<tokio::task::JoinHandle<()>>,
}

/// The engine's message for a reload event.
fn reload_msg(ev: ReloadEvent) -> Msg {
    match ev {
        ReloadEvent::Reloaded(r) => Msg::KbReloaded(KbReload {
            version: r.version,
            added: r.diff.added,
            removed: r.diff.removed,
            changed: r.diff.changed,
            took: r.took,
            articles: r.articles,
        }),
        ReloadEvent::Failed { reason } => Msg::KbReloadFailed { reason },
    }
}

/// Starts watching and syncing. `opts.sources` are the resolved sources
/// (synced copies in place of `genesys:ID`), in the configured order.
pub fn start(
    config: &Config,
    paths: &AppPaths,
    opts: KbOptions,
    catalog: Arc<Vec<StoredArticle>>,
    installer: Installer,
    tx: mpsc::Sender<Msg>,
) -> KbLive {
    let out = tx.clone();
    // Called from the rebuild and search threads, never from async code.
    let sink: ReloadSink = Arc::new(move |ev| {
        let _ = out.blocking_send(reload_msg(ev));
    });
    let local: Vec<PathBuf> = periodic::local_only(&config.kb.sources(), &opts.sources);
    let reloader = Reloader::spawn(opts, paths.clone(), catalog, installer, sink);
    let watcher = if local.is_empty() {
        None
    } else {
        match watch(&local, reloader.trigger()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "knowledge-base sources are not watched");
                let reason = format!("{e}: edits are not picked up until a restart");
                let _ = tx.try_send(Msg::KbReloadFailed { reason });
                None
            }
        }
    };
    let sync = match config.kb.sync_every() {
        Ok(every) if !periodic::synced_sources(config).is_empty() => {
            let trigger = reloader.trigger();
            Some(tokio::spawn(periodic::run(config.clone(), paths.clone(), every, trigger)))
        }
        _ => None,
    };
    KbLive { reloader, _watcher: watcher, sync }
}

/// The runtime's side of a reload: the palette lists what the new index
/// holds, and agent widgets mark suggestions of changed articles `changed`
/// (the hub ignores the ones it never showed).
pub fn on_reloaded(
    r: &KbReload,
    engine: &Engine,
    live: &KbLive,
    catalog: &mut Arc<Vec<StoredArticle>>,
    hub: Option<&FeedOut>,
) {
    if let Some(c) = live.take_catalog() {
        *catalog = c;
    }
    let Some(hub) = hub else { return };
    for c in engine.conversations().filter(|c| c.ended_at.is_none()) {
        for s in c.suggestions.iter().filter(|s| r.changed.contains(&s.article_id)) {
            let _ = hub.publish(FeedEvent::Update {
                conversation_id: c.id.clone(),
                suggestion_id: s.id.clone(),
                state: "changed".into(),
            });
        }
    }
}

impl KbLive {
    /// The article list of the newest index, once, when a reload brought one.
    pub fn take_catalog(&self) -> Option<Arc<Vec<StoredArticle>>> {
        self.reloader.take_catalog()
    }

    /// Stops syncing, watching and rebuilding (after a rebuild in progress).
    pub fn stop(self) {
        if let Some(s) = &self.sync {
            s.abort();
        }
        drop(self._watcher);
        self.reloader.stop();
    }
}
