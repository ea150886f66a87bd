//! The knowledge-base worker: a dedicated OS thread that owns the embedder
//! and the index (both blocking and CPU-bound) and answers searches.
//!
//! Latest wins: when it picks up work it drains its queue and keeps only
//! the newest search per conversation, since an older window's results
//! would be dropped as stale anyway; what remains runs as one batch.
//! Results go back on the runtime's bounded message channel
//! (`blocking_send`: the worker waits, the loop never does).

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

use super::store::Retriever;
use super::{Hit, KbError};
use crate::engine::{Msg, RequestId, SearchTiming};

/// One search to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchJob {
    pub request: RequestId,
    pub conversation_id: String,
    pub query: String,
    pub k: usize,
}

/// The sending side of the worker. Dropping it stops the thread.
pub struct KbHandle {
    jobs: std_mpsc::Sender<SearchJob>,
    thread: Option<JoinHandle<()>>,
}

impl KbHandle {
    /// Queues a search; never blocks. Returns false if the worker is gone.
    pub fn submit(&self, job: SearchJob) -> bool {
        self.jobs.send(job).is_ok()
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
pub fn spawn_worker(mut retriever: Retriever, out: mpsc::Sender<Msg>) -> KbHandle {
    let (tx, rx) = std_mpsc::channel::<SearchJob>();
    let thread = std::thread::Builder::new()
        .name("kb-worker".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let jobs = latest_per_conversation(first, &rx);
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
                    let msg = match result {
                        Ok(hits) => Msg::SearchDone {
                            request: job.request,
                            conversation_id: job.conversation_id,
                            hits,
                            timing: SearchTiming { started, finished },
                        },
                        Err(e) => Msg::SearchFailed {
                            request: job.request,
                            conversation_id: job.conversation_id,
                            error: e.to_string(),
                        },
                    };
                    if out.blocking_send(msg).is_err() {
                        return;
                    }
                }
            }
        })
        .ok();
    KbHandle { jobs: tx, thread }
}

/// Drains what is queued behind `first`; keeps the newest job of each
/// conversation, in the order conversations first appeared.
fn latest_per_conversation(first: SearchJob, rx: &std_mpsc::Receiver<SearchJob>) -> Vec<SearchJob> {
    let mut order: Vec<String> = vec![first.conversation_id.clone()];
    let mut latest: HashMap<String, SearchJob> = HashMap::from([(first.conversation_id.clone(), first)]);
    while let Ok(job) = rx.try_recv() {
        if !latest.contains_key(&job.conversation_id) {
            order.push(job.conversation_id.clone());
        }
        latest.insert(job.conversation_id.clone(), job);
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
            tx.send(j).unwrap();
        }
        let got: Vec<u64> =
            latest_per_conversation(job(1, "a"), &rx).into_iter().map(|j| j.request).collect();
        assert_eq!(got, vec![4, 6, 5]);
    }
}
