//! Watching local knowledge-base sources for edits, so the console reloads
//! them while calls run ([`super::reload`]).
//!
//! A directory source is watched recursively; a file source through its
//! parent directory (editors save by writing a new file and renaming it
//! over the old one, which a watch on the file itself would lose). Events
//! are debounced (one save is several events; a `git pull` many) and only
//! paths a build could read count: hidden files, editor backups and the
//! sync's temporary files are ignored.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use super::KbError;
use super::reload::Trigger;

/// Quiet time after the last event before a rebuild starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches while it lives.
pub struct SourceWatcher {
    _debouncer: Debouncer<RecommendedWatcher>,
}

/// One watch: where, how deep, and (for a file source) the one file that counts.
struct Target {
    dir: PathBuf,
    mode: RecursiveMode,
    only: Option<PathBuf>,
}

fn target(source: &Path) -> Result<Target, KbError> {
    let canonical =
        std::fs::canonicalize(source).map_err(|_| KbError::SourceMissing { path: source.to_path_buf() })?;
    if canonical.is_dir() {
        return Ok(Target { dir: canonical, mode: RecursiveMode::Recursive, only: None });
    }
    let dir = canonical.parent().map_or_else(|| canonical.clone(), Path::to_path_buf);
    Ok(Target { dir, mode: RecursiveMode::NonRecursive, only: Some(canonical) })
}

/// Whether a changed path could change what a build reads.
fn relevant(path: &Path, targets: &[Target]) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    if name.starts_with('.') || name.ends_with('~') || name.contains(".tmp-") || name.ends_with(".swp") {
        return false;
    }
    targets.iter().any(|t| match &t.only {
        Some(file) => path == file,
        None => path.starts_with(&t.dir),
    })
}

/// Starts watching `sources` (local paths; `genesys:` copies are fed by
/// their sync instead); each debounced batch of relevant changes becomes
/// one [`Trigger::Files`].
pub fn watch(sources: &[PathBuf], trigger: std_mpsc::Sender<Trigger>) -> Result<SourceWatcher, KbError> {
    let targets: Vec<Target> = sources.iter().map(|s| target(s)).collect::<Result<_, _>>()?;
    let dirs: Vec<(PathBuf, RecursiveMode)> = targets.iter().map(|t| (t.dir.clone(), t.mode)).collect();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut changed: Vec<PathBuf> =
                events.into_iter().map(|e| e.path).filter(|p| relevant(p, &targets)).collect();
            changed.sort();
            changed.dedup();
            if !changed.is_empty() {
                let _ = trigger.send(Trigger::Files(changed));
            }
        }
        Err(e) => tracing::warn!(error = %e, "watching knowledge-base sources"),
    };
    let watch_error = |path: &Path, e: &dyn std::fmt::Display| KbError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("cannot watch for changes: {e}")),
    };
    let mut debouncer = new_debouncer(DEBOUNCE, handler).map_err(|e| watch_error(Path::new("."), &e))?;
    for (dir, mode) in dirs {
        debouncer.watcher().watch(&dir, mode).map_err(|e| watch_error(&dir, &e))?;
        tracing::info!(dir = %dir.display(), "watching knowledge-base source");
    }
    Ok(SourceWatcher { _debouncer: debouncer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_a_build_reads_count() {
        let targets = vec![
            Target { dir: "/kb".into(), mode: RecursiveMode::Recursive, only: None },
            Target {
                dir: "/data".into(),
                mode: RecursiveMode::NonRecursive,
                only: Some("/data/faq.csv".into()),
            },
        ];
        assert!(relevant(Path::new("/kb/billing/refunds.md"), &targets));
        assert!(relevant(Path::new("/data/faq.csv"), &targets));
        assert!(!relevant(Path::new("/data/other.csv"), &targets));
        assert!(!relevant(Path::new("/kb/.refunds.md.swp"), &targets));
        assert!(!relevant(Path::new("/kb/refunds.md~"), &targets));
        assert!(!relevant(Path::new("/kb/documents.tmp-4242"), &targets));
        assert!(!relevant(Path::new("/elsewhere/a.md"), &targets));
    }
}
