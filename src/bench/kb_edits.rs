//! Edits a copy of the sample knowledge base at a steady pace while a
//! benchmark runs, so live reloads happen under load (`bench e2e
//! --reload-every`): each round appends a sentence to one article, in turn,
//! which the console's watcher picks up and rebuilds incrementally.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Copies the bundled sample KB into `dir` and returns its path.
pub fn copy_sample_kb(dir: &Path) -> std::io::Result<PathBuf> {
    let to = dir.join("kb");
    std::fs::create_dir_all(&to)?;
    for e in std::fs::read_dir(crate::paths::bundled("kb"))? {
        let p = e?.path();
        if let Some(name) = p.file_name().filter(|_| p.is_file()) {
            std::fs::copy(&p, to.join(name))?;
        }
    }
    Ok(to)
}

/// The editing thread; [`Editor::stop`] returns how many edits it made.
pub struct Editor {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<usize>,
}

impl Editor {
    /// Edits a Markdown article of `kb` every `every`, round robin.
    pub fn start(kb: PathBuf, every: Duration) -> std::io::Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&kb)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut edits = 0;
            // The pace of the edits is what is being simulated: a timed wait
            // that ends early when the benchmark stops.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let Some(file) = files.get(edits % files.len().max(1)) else { break };
                let edited = std::fs::read_to_string(file).map(|mut text| {
                    text.push_str(&format!("\nRevision {edits}: wording checked by the knowledge team.\n"));
                    std::fs::write(file, text)
                });
                match edited {
                    Ok(Ok(())) => edits += 1,
                    Ok(Err(e)) | Err(e) => {
                        tracing::warn!(file = %file.display(), error = %e, "bench edit failed");
                        break;
                    }
                }
            }
            edits
        });
        Ok(Self { stop, thread })
    }

    pub fn stop(self) -> usize {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(0)
    }
}
