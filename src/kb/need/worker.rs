//! The need-detection thread: owns its own copy of the embedding model and
//! judges each final utterance as it arrives.
//!
//! A thread of its own rather than a job on the search worker: a judgement
//! never waits behind a batch of searches (it sits inside the engine's
//! debounce, so it costs the live path nothing), it uses the second core
//! while the search worker uses the first, and the search worker's queue
//! keeps its one job kind. The model is small (about 25 MB in memory).

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use super::NeedClassifier;
use crate::kb::Embedder;

/// One utterance to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedJob {
    pub conversation_id: String,
    pub utterance_id: String,
    pub text: String,
}

/// The judgement of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedAnswer {
    pub conversation_id: String,
    pub utterance_id: String,
    pub need: bool,
    /// Probability of a need; `None` when the embedding failed (the
    /// utterance is then taken to carry a need: a search too many is
    /// cheaper than a suggestion missed).
    pub probability: Option<f32>,
}

/// Where answers go; returns false once nobody listens (the thread stops).
pub type NeedSink = Box<dyn FnMut(NeedAnswer) -> bool + Send>;

/// The sending side. Dropping it stops the thread.
pub struct NeedHandle {
    jobs: std_mpsc::Sender<NeedJob>,
    _thread: Option<JoinHandle<()>>,
}

impl NeedHandle {
    /// Queues an utterance; never blocks. False if the thread is gone.
    pub fn submit(&self, job: NeedJob) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// Judges one text.
pub fn judge(embedder: &mut dyn Embedder, classifier: &NeedClassifier, job: NeedJob) -> NeedAnswer {
    let probability = embedder.embed_one(&job.text).ok().map(|v| classifier.probability(&v));
    NeedAnswer {
        conversation_id: job.conversation_id,
        utterance_id: job.utterance_id,
        need: probability.is_none_or(|p| p >= classifier.threshold),
        probability,
    }
}

/// Starts the thread around a loaded embedder and its classifier.
pub fn spawn(mut embedder: Box<dyn Embedder>, classifier: NeedClassifier, mut out: NeedSink) -> NeedHandle {
    let (tx, rx) = std_mpsc::channel::<NeedJob>();
    let thread = std::thread::Builder::new()
        .name("kb-need".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                if !out(judge(embedder.as_mut(), &classifier, job)) {
                    return;
                }
            }
        })
        .ok();
    NeedHandle { jobs: tx, _thread: thread }
}
