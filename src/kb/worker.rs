//! The knowledge-base worker: a dedicated OS thread that owns the embedder
//! and the index (both blocking and CPU-bound) and answers searches.
//!
//! Latest wins: when it picks up work it drains its queue and keeps only
//! the newest search per conversation, since an older window's results
//! would be dropped as stale anyway; what remains runs as one batch.
//! Each answer goes to a sink the owner supplies (the runtime puts it on its
//! bounded message channel with `blocking_send`: the worker waits, the loop
//! never does); the worker knows nothing of the engine's messages.
//!
//! A live reload hands it a whole new index ([`Swap`]) on the same queue as
//! the searches: it is installed between two batches, so every search is
//! answered by one complete index, old or new, and none waits for a build.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::calibration::Calibration;
use super::store::{KnowledgeBase, Retriever};
use super::{Hit, KbError};

/// One search to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchJob {
    /// The caller's id for this search, returned with its answer.
    pub request: u64,
    pub conversation_id: String,
    pub query: String,
    pub k: usize,
}

/// The worker's answer to one search.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    pub request: u64,
    pub conversation_id: String,
    /// The hits, or why the search failed.
    pub result: Result<Vec<Hit>, String>,
    /// When the batch holding this search started and finished.
    pub started: Instant,
    pub finished: Instant,
}

/// Where answers go; returns false once nobody listens (the worker stops).
pub type AnswerSink = Box<dyn FnMut(SearchAnswer) -> bool + Send>;

/// A complete new index to answer searches from, built elsewhere.
pub struct Swap {
    pub kb: KnowledgeBase,
    pub calibration: Option<Calibration>,
    /// Called on the worker thread right after the swap, before any search
    /// runs on the new index: whatever it sends is ordered after every
    /// answer from the old one.
    pub installed: Box<dyn FnOnce() + Send>,
}

/// What the worker's queue carries.
enum Work {
    Search(SearchJob),
    Swap(Box<Swap>),
}

/// The sending side of the worker. Dropping it stops the thread.
pub struct KbHandle {
    jobs: std_mpsc::Sender<Work>,
    thread: Option<JoinHandle<()>>,
}

/// Hands new indexes to the worker; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Installer(std_mpsc::Sender<Work>);

impl Installer {
    /// Queues a swap; returns false if the worker is gone.
    pub fn install(&self, swap: Swap) -> bool {
        self.0.send(Work::Swap(Box::new(swap))).is_ok()
    }
}

impl KbHandle {
    /// Queues a search; never blocks. Returns false if the worker is gone.
    pub fn submit(&self, job: SearchJob) -> bool {
        self.jobs.send(Work::Search(job)).is_ok()
    }

    /// A handle for installing new indexes from another thread.
    pub fn installer(&self) -> Installer {
        Installer(self.jobs.clone())
    }

    /// Stops the worker after its current search and waits for it.
    pub fn stop(mut self) {
        let (tx, _) = std_mpsc::channel();
        self.jobs = tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the worker thread around a loaded retriever.
pub fn spawn_worker(mut retriever: Retriever, mut out: AnswerSink) -> KbHandle {
    let (tx, rx) = std_mpsc::channel::<Work>();
    let thread = std::thread::Builder::new()
        .name("kb-worker".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut swaps = Vec::new();
                let jobs = latest_per_conversation(first, &rx, &mut swaps);
                // A swap queued with these searches goes in first: they are
                // then answered from the newest complete index.
                for swap in swaps {
                    let Swap { kb, calibration, installed } = swap;
                    retriever.kb = kb;
                    retriever.calibration = calibration;
                    installed();
                }
                if jobs.is_empty() {
                    continue;
                }
                let started = Instant::now();
                // Under load several calls wait at once: one batched model
                // run serves them all for much less than one run each.
                let results: Vec<Result<Vec<Hit>, KbError>> = if jobs.len() == 1 {
                    vec![retriever.query(&jobs[0].query, jobs[0].k)]
                } else {
                    let queries: Vec<(String, usize)> = jobs.iter().map(|j| (j.query.clone(), j.k)).collect();
                    match retriever.query_many(&queries) {
                        Ok(r) => r,
                        Err(e) => jobs.iter().map(|_| Err(KbError::Embed(e.to_string()))).collect(),
                    }
                };
                let finished = Instant::now();
                for (job, result) in jobs.into_iter().zip(results) {
                    let answer = SearchAnswer {
                        request: job.request,
                        conversation_id: job.conversation_id,
                        result: result.map_err(|e| e.to_string()),
                        started,
                        finished,
                    };
                    if !out(answer) {
                        return;
                    }
                }
            }
        })
        .ok();
    KbHandle { jobs: tx, thread }
}

/// Drains what is queued behind `first`; keeps the newest job of each
/// conversation, in the order conversations first appeared, and sets the
/// swaps aside in order.
fn latest_per_conversation(
    first: Work,
    rx: &std_mpsc::Receiver<Work>,
    swaps: &mut Vec<Swap>,
) -> Vec<SearchJob> {
    let mut order: Vec<String> = Vec::new();
    let mut latest: HashMap<String, SearchJob> = HashMap::new();
    let mut take = |work: Work| match work {
        Work::Swap(s) => swaps.push(*s),
        Work::Search(job) => {
            if !latest.contains_key(&job.conversation_id) {
                order.push(job.conversation_id.clone());
            }
            latest.insert(job.conversation_id.clone(), job);
        }
    };
    take(first);
    while let Ok(work) = rx.try_recv() {
        take(work);
    }
    order.into_iter().filter_map(|c| latest.remove(&c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(request: u64, conv: &str) -> SearchJob {
        SearchJob { request, conversation_id: conv.into(), query: format!("q{request}"), k: 3 }
    }

    #[test]
    fn only_the_newest_job_per_conversation_runs() {
        let (tx, rx) = std_mpsc::channel();
        for j in [job(2, "a"), job(3, "b"), job(4, "a"), job(5, "c"), job(6, "b")] {
            tx.send(Work::Search(j)).unwrap();
        }
        let mut swaps = Vec::new();
        let got: Vec<u64> = latest_per_conversation(Work::Search(job(1, "a")), &rx, &mut swaps)
            .into_iter()
            .map(|j| j.request)
            .collect();
        assert_eq!(got, vec![4, 6, 5]);
        assert!(swaps.is_empty());
    }
}
