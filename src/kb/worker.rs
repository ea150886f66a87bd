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
//! Need verdicts ([`NeedJob`]) come on the same queue. They are never
//! dropped, are embedded in the same model run as the searches drained with
//! them (a text asked for twice is embedded once), and are answered before
//! those searches: the engine has every verdict on an utterance before it
//! sees a search whose window holds it.
//!
//! A live reload hands it a whole new index ([`Swap`]) on the same queue as
//! the searches: it is installed between two batches, so every search is
//! answered by one complete index, old or new, and none waits for a build.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::calibration::Calibration;
use super::need::NeedClassifier;
use super::need::verdict::{NeedAnswer, NeedJob, verdict};
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

/// What the worker answers, in the order it answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Need(NeedAnswer),
    Search(SearchAnswer),
}

/// Where answers go; returns false once nobody listens (the worker stops).
pub type AnswerSink = Box<dyn FnMut(Answer) -> bool + Send>;

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
    Judge(NeedJob),
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

    /// Queues an utterance for a need verdict; never blocks. Returns false
    /// if the worker is gone.
    pub fn judge(&self, job: NeedJob) -> bool {
        self.jobs.send(Work::Judge(job)).is_ok()
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

/// Starts the worker thread around a loaded retriever; with a classifier
/// it also gives need verdicts.
pub fn spawn_worker(mut retriever: Retriever, need: Option<NeedClassifier>, mut out: AnswerSink) -> KbHandle {
    let (tx, rx) = std_mpsc::channel::<Work>();
    let thread = std::thread::Builder::new()
        .name("kb-worker".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = Batch::default();
                batch.drain(first, &rx);
                // A swap queued with these searches goes in first: they are
                // then answered from the newest complete index.
                for swap in batch.swaps.drain(..) {
                    let Swap { kb, calibration, installed } = swap;
                    retriever.kb = kb;
                    retriever.calibration = calibration;
                    installed();
                }
                if batch.judges.is_empty() && batch.searches.is_empty() {
                    continue;
                }
                for answer in batch.run(&mut retriever, need.as_ref()) {
                    if !out(answer) {
                        return;
                    }
                }
            }
        })
        .ok();
    KbHandle { jobs: tx, thread }
}

/// What one pass of the worker takes off its queue.
#[derive(Default)]
struct Batch {
    judges: Vec<NeedJob>,
    searches: Vec<SearchJob>,
    swaps: Vec<Swap>,
}

impl Batch {
    /// Takes `first` and everything queued behind it: every verdict asked
    /// for, the newest search of each conversation (in the order
    /// conversations first appeared), and the swaps in order.
    fn drain(&mut self, first: Work, rx: &std_mpsc::Receiver<Work>) {
        let mut order: Vec<String> = Vec::new();
        let mut latest: HashMap<String, SearchJob> = HashMap::new();
        let mut take = |work: Work| match work {
            Work::Swap(s) => self.swaps.push(*s),
            Work::Judge(job) => self.judges.push(job),
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
        self.searches = order.into_iter().filter_map(|c| latest.remove(&c)).collect();
    }

    /// Embeds every distinct text of the batch in one model run (under load
    /// several calls wait at once, and one batched run serves them all for
    /// much less than one run each), then answers: verdicts first.
    fn run(self, retriever: &mut Retriever, need: Option<&NeedClassifier>) -> Vec<Answer> {
        let started = Instant::now();
        let mut texts: Vec<String> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        let mut place = |text: &str| -> Option<usize> {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            Some(*slot.entry(text.to_string()).or_insert_with(|| {
                texts.push(text.to_string());
                texts.len() - 1
            }))
        };
        let judge_slots: Vec<Option<usize>> =
            self.judges.iter().map(|j| if need.is_some() { place(&j.text) } else { None }).collect();
        let search_slots: Vec<Option<usize>> = self.searches.iter().map(|s| place(&s.query)).collect();
        let dim = retriever.dimension().max(1);
        let embedded = retriever.embed_texts(&texts).map_err(|e| e.to_string());
        let vector = |i: Option<usize>| -> Result<&[f32], String> {
            let i = i.ok_or_else(|| KbError::EmptyQuery.to_string())?;
            let all = embedded.as_ref().map_err(Clone::clone)?;
            all.get(i * dim..(i + 1) * dim).ok_or_else(|| "the model returned too few vectors".to_string())
        };
        let mut answers = Vec::with_capacity(self.judges.len() + self.searches.len());
        for (job, i) in self.judges.into_iter().zip(judge_slots) {
            answers.push(Answer::Need(match need {
                Some(c) => verdict(c, job, vector(i).ok()),
                // Without a classifier every utterance carries a need.
                None => NeedAnswer {
                    conversation_id: job.conversation_id,
                    utterance_id: job.utterance_id,
                    need: true,
                    probability: None,
                },
            }));
        }
        let results: Vec<Result<Vec<Hit>, String>> = self
            .searches
            .iter()
            .zip(&search_slots)
            .map(|(job, &i)| {
                let v = vector(i)?.to_vec();
                retriever.answer(&job.query, &v, job.k).map_err(|e| e.to_string())
            })
            .collect();
        let finished = Instant::now();
        for (job, result) in self.searches.into_iter().zip(results) {
            answers.push(Answer::Search(SearchAnswer {
                request: job.request,
                conversation_id: job.conversation_id,
                result,
                started,
                finished,
            }));
        }
        answers
    }
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
        let mut batch = Batch::default();
        batch.drain(Work::Search(job(1, "a")), &rx);
        let got: Vec<u64> = batch.searches.iter().map(|j| j.request).collect();
        assert_eq!(got, vec![4, 6, 5]);
        assert!(batch.swaps.is_empty() && batch.judges.is_empty());
    }
}
