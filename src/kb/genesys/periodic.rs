//! Keeping `genesys:ID` sources current while the console runs: every
//! `kb.sync_interval` each one is synced again (incrementally) and, when a
//! document was added, changed or removed, the rebuild thread is told
//! ([`crate::kb::reload`]), so Genesys edits reach the live index the same
//! way local edits do. A failed sync keeps the last good copy (the sync
//! replaces files whole) and is reported.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use super::{SyncOptions, client, kb_id_of, sync};
use crate::config::Config;
use crate::kb::reload::Trigger;
use crate::paths::AppPaths;

/// The `genesys:ID` sources of a config, as sync options.
pub fn synced_sources(config: &Config) -> Vec<SyncOptions> {
    config
        .kb
        .sources()
        .iter()
        .filter_map(|s| kb_id_of(s).filter(|id| !id.is_empty()))
        .map(|id| SyncOptions {
            knowledge_base_id: id.to_string(),
            include_drafts: config.kb.genesys_include_drafts,
            labels: config.kb.genesys_labels.clone(),
        })
        .collect()
}

/// Syncs every `genesys:ID` source each `every`, forever (abort the task to
/// stop). The first round is one interval after start: the start already
/// synced.
pub async fn run(config: Config, paths: AppPaths, every: Duration, trigger: std_mpsc::Sender<Trigger>) {
    let sources = synced_sources(&config);
    if sources.is_empty() {
        return;
    }
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            let _ = trigger.send(Trigger::SyncFailed { reason: format!("periodic sync disabled: {e}") });
            return;
        }
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for opts in &sources {
            let kb_id = opts.knowledge_base_id.clone();
            let message = match sync(&client, &paths.data_dir, opts).await {
                Ok(r) if r.added + r.changed + r.removed > 0 => {
                    tracing::info!(kb = %kb_id, added = r.added, changed = r.changed, removed = r.removed, "periodic sync found changes");
                    Trigger::Synced { kb_id }
                }
                Ok(_) => {
                    tracing::debug!(kb = %kb_id, "periodic sync: nothing changed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(kb = %kb_id, error = %e, "periodic sync failed; keeping the last copy");
                    Trigger::SyncFailed {
                        reason: format!("sync of knowledge base {kb_id} failed (last copy kept): {e}"),
                    }
                }
            };
            if trigger.send(message).is_err() {
                return;
            }
        }
    }
}

/// The local paths among `sources` (what the file watcher watches): the
/// synced copies of `genesys:ID` sources are left to the periodic sync.
pub fn local_only(configured: &[PathBuf], resolved: &[PathBuf]) -> Vec<PathBuf> {
    configured.iter().zip(resolved).filter(|(c, _)| kb_id_of(c).is_none()).map(|(_, r)| r.clone()).collect()
}
