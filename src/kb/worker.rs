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
//! dropped, and are answered before the searches drained with them: the
//! engine has every verdict on an utterance before it sees a search whose
//! window holds it. An utterance is read at the end of its window, so the
//! verdict and that window's search share one model run: in the same batch
//! when the search is queued with it (no debounce), or, when the search
//! comes after a debounce, through the window's vector kept from the
//! verdict's run ([`texts::Recent`]). Each distinct text of a batch runs
//! once whatever asks for it.
//!
//! A live reload hands it a whole new index ([`Swap`]) on the same queue as
//! the searches: it is installed between two batches, so every search is
//! answered by one complete index, old or new, and none waits for a build.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::calibration::Calibration;
use super::need::verdict::{NeedAnswer, NeedJob, verdict};
use super::need::{self, NeedClassifier};
use super::store::{KnowledgeBase, Retriever};
use super::{Hit, KbError, Read};
use texts::{Recent, Source, Texts, recent};

mod texts;

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
    /// Its window's vector came from an earlier model run (a verdict on the
    /// window's newest utterance, given inside the debounce).
    pub from_recent: bool,
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
            let mut recent = recent();
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
                for answer in batch.run(&mut retriever, need.as_ref(), &mut recent) {
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
    ///
    /// An utterance is judged from its window's run ([`NeedJob::reading`]),
    /// which is also the search's text when both are queued together (no
    /// debounce). With a debounce the verdict comes first and the search
    /// later on the same window: its vector is then taken from `recent`.
    fn run(
        self,
        retriever: &mut Retriever,
        need: Option<&NeedClassifier>,
        recent: &mut Recent,
    ) -> Vec<Answer> {
        let started = Instant::now();
        let Batch { judges, searches, .. } = self;
        let mut texts = Texts::default();
        let judge_at: Vec<Option<(usize, usize)>> = judges
            .iter()
            .map(|j| {
                need?;
                let (text, at) = j.reading();
                let (slot, k) = texts.place(text, Some(at))?;
                Some((slot, k?))
            })
            .collect();
        let search_at: Vec<Source> = searches
            .iter()
            .map(|s| {
                let q = s.query.trim();
                // A text already in this run is read with it; only one that is
                // not looks in (and refreshes) the recent vectors.
                if texts.slot(q).is_none()
                    && let Some(v) = recent.get(q)
                {
                    return Source::Recent(v.clone());
                }
                texts.place(q, None).map_or(Source::Empty, |(slot, _)| Source::Run(slot))
            })
            .collect();
        let reads = retriever.read_texts(&texts.texts, &texts.parts).map_err(|e| e.to_string());
        if let Ok(reads) = &reads {
            for (text, read) in texts.texts.iter().zip(reads) {
                recent.put(text.clone(), read.vector.clone());
            }
        }
        let verdicts = verdicts(retriever, need, judges, &judge_at, reads.as_deref().ok());
        let mut answers: Vec<Answer> = verdicts.into_iter().map(Answer::Need).collect();
        let results: Vec<(bool, Result<Vec<Hit>, String>)> = searches
            .iter()
            .zip(search_at)
            .map(|(job, source)| {
                let from_recent = matches!(source, Source::Recent(_));
                (from_recent, search(retriever, job, source, &reads))
            })
            .collect();
        let finished = Instant::now();
        answers.extend(searches.into_iter().zip(results).map(|(job, (from_recent, result))| {
            Answer::Search(SearchAnswer {
                request: job.request,
                conversation_id: job.conversation_id,
                result,
                started,
                finished,
                from_recent,
            })
        }));
        answers
    }
}

/// The verdict on each job; without a classifier every utterance carries
/// a need.
fn verdicts(
    retriever: &mut Retriever,
    need: Option<&NeedClassifier>,
    judges: Vec<NeedJob>,
    at: &[Option<(usize, usize)>],
    reads: Option<&[Read]>,
) -> Vec<NeedAnswer> {
    let Some(classifier) = need else {
        return judges
            .into_iter()
            .map(|job| NeedAnswer {
                conversation_id: job.conversation_id,
                utterance_id: job.utterance_id,
                need: true,
                probability: None,
            })
            .collect();
    };
    let vectors = judge_features(retriever, &judges, at, reads);
    judges.into_iter().zip(vectors).map(|(job, v)| verdict(classifier, job, v.as_deref())).collect()
}

/// What the classifier weighs for each job: the parts of its window's read
/// at `at` (slot, first part), or, for utterances whose window the model
/// cut before their end, their own read ([`NeedJob::alone`]), all of those
/// in one more run. `None` where the model failed.
fn judge_features(
    retriever: &mut Retriever,
    judges: &[NeedJob],
    at: &[Option<(usize, usize)>],
    reads: Option<&[Read]>,
) -> Vec<Option<Vec<f32>>> {
    let Some(reads) = reads else {
        return vec![None; judges.len()];
    };
    let mut features: Vec<Option<Vec<f32>>> = at
        .iter()
        .map(|at| {
            let (slot, k) = (*at)?;
            need::features(reads.get(slot)?.parts.get(k..)?)
        })
        .collect();
    let alone: Vec<usize> = (0..judges.len()).filter(|&i| features[i].is_none() && at[i].is_some()).collect();
    if alone.is_empty() {
        return features;
    }
    let (own, parts): (Vec<String>, Vec<Vec<Range<usize>>>) =
        alone.iter().map(|&i| judges[i].alone()).unzip();
    if let Ok(more) = retriever.read_texts(&own, &parts) {
        for (&i, read) in alone.iter().zip(more) {
            features[i] = need::features(&read.parts);
        }
    }
    features
}

/// One search's hits, its vector taken from where `source` says.
fn search(
    retriever: &mut Retriever,
    job: &SearchJob,
    source: Source,
    reads: &Result<Vec<Read>, String>,
) -> Result<Vec<Hit>, String> {
    let v = match source {
        Source::Recent(v) => v,
        Source::Run(slot) => match reads {
            Ok(r) => r.get(slot).map(|r| r.vector.clone()).ok_or("the model returned too few vectors")?,
            Err(e) => return Err(e.clone()),
        },
        Source::Empty => return Err(KbError::EmptyQuery.to_string()),
    };
    retriever.answer(&job.query, &v, job.k).map_err(|e| e.to_string())
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
