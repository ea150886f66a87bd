//! `bench replay`: the bundled calls through the engine and the real
//! knowledge base, on a simulated clock, with no network and no threads.
//!
//! `bench e2e` measures latency on the loaded machine, where stale searches
//! (a window that moved on while its search ran) vary from run to run and
//! change what gets pushed. This replay is deterministic: each utterance
//! arrives at its script time, each need verdict and search is answered at
//! once, debounce timers fire on the simulated clock. So it compares
//! policies exactly: searches run, utterances judged needless, the share of
//! searches whose best article the call needs, and the precision of
//! automatic pushes under the given policy.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::e2e::Relevance;
use crate::domain::{PushOutcome, Speaker, StreamEvent, TranscriptEvent};
use crate::engine::{Effect, Engine, Mode, Msg, Policy, ScoredArticle, SearchTiming};
use crate::kb::need::NeedClassifier;
use crate::kb::need::verdict::{NeedJob, judge};
use crate::kb::{FastEmbedder, ModelSpec, Retriever};
use crate::paths::AppPaths;
use crate::sim;

/// `bench replay`'s options, parsed from its command line as they are
/// (`kb calibrate` and the tests fill them in themselves).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Search on every utterance (need detection off), to compare.
    #[arg(long = "no-need-detection", action = clap::ArgAction::SetFalse)]
    pub need_detection: bool,
    /// Push every search's best article instead of the default policy.
    // As `bench e2e` does, rather than applying the default policy's
    // calibrated thresholds.
    #[arg(long)]
    pub every_search: bool,
    /// A raw auto threshold instead of the calibrated one (sweeps).
    // `push` follows it down.
    #[arg(long)]
    pub auto: Option<f32>,
    /// Fusion of dense and BM25 rankings (default: the KB's).
    // Its calibration, if any, follows.
    #[arg(long)]
    pub fusion: Option<crate::kb::rank::Fusion>,
    /// Play the call scripts in this directory instead of the bundled ones.
    // E.g. the calibration calls.
    #[arg(long)]
    pub calls: Option<std::path::PathBuf>,
    /// Write every search (window, hits, signals) as JSON lines to this file.
    #[arg(long)]
    pub dump: Option<std::path::PathBuf>,
    /// Another `agreement_bonus` than the policy's (sweeps).
    #[arg(long)]
    pub agreement: Option<f32>,
    /// Another `lead_weight` than the policy's (sweeps).
    #[arg(long)]
    pub lead: Option<f32>,
    /// Let auto mode send runners-up too, not only each search's best.
    // The rule before agreement.
    #[arg(long)]
    pub all_ranks: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub calls: usize,
    pub utterances: u64,
    pub searches: u64,
    pub needless: u64,
    pub need_detection: bool,
    pub every_search: bool,
    /// The thresholds in force (after any calibration), and the fusion.
    pub push: f32,
    pub auto: f32,
    pub fusion: String,
    pub calibrated: bool,
    pub agreement_bonus: f32,
    pub lead_weight: f32,
    pub auto_best_only: bool,
    /// The call context in force (`context_weight`, `context_decay`).
    pub context_weight: f32,
    pub context_decay: f32,
    pub relevance: Relevance,
    /// Each call's title by id, to name calls in the summary.
    pub titles: BTreeMap<String, String>,
    /// Every search's best article, labelled by the call's expected
    /// articles (a call expecting none makes every window wrong): what
    /// `kb calibrate --calls` fits on.
    #[serde(skip)]
    pub windows: Vec<crate::kb::calibration::Window>,
}

/// The policy the replay runs: auto mode, with the defaults or pushing all.
fn policy(opts: &Options) -> Policy {
    let mut p = Policy { mode: Mode::Auto, need_detection: opts.need_detection, ..Policy::default() };
    if opts.every_search {
        (p.show, p.push, p.auto) = (-1.0, -1.0, -1.0);
        (p.push_precision, p.auto_precision) = (0.0, 0.0);
        p.top_k = 1;
        p.cooldown = Duration::ZERO;
        p.max_pushes_per_minute = u32::MAX;
        p.debounce = Duration::ZERO;
    }
    p
}

pub fn run(paths: &AppPaths, opts: &Options) -> color_eyre::eyre::Result<Report> {
    let kb_opts = crate::bench::sample_kb_options(paths, None);
    let (mut retriever, _) = Retriever::open(&kb_opts, paths, &mut |_| {})?;
    if let Some(f) = opts.fusion {
        retriever.kb.fusion = f;
        retriever.calibration = crate::kb::calibration::for_kb(&retriever.kb);
    }
    run_with(&mut retriever, paths, opts)
}

/// The replay on a loaded KB (`kb calibrate --calls` passes its own).
pub fn run_with(
    retriever: &mut Retriever,
    paths: &AppPaths,
    opts: &Options,
) -> color_eyre::eyre::Result<Report> {
    let scripts = sim::load_scripts(&opts.calls.clone().unwrap_or_else(sim::default_conversations))?;
    let model = ModelSpec::installed(paths);
    let mut policy = policy(opts);
    if let Some(c) = &retriever.calibration {
        // As the runtime should (it still applies the thresholds only).
        c.apply_to(&mut policy);
    }
    if let Some(a) = opts.auto {
        // A raw auto threshold below `push` lowers `push` with it.
        policy.auto = a;
        policy.push = policy.push.min(a);
    }
    if let Some(b) = opts.agreement {
        policy.agreement_bonus = b;
    }
    if let Some(l) = opts.lead {
        policy.lead_weight = l;
    }
    if opts.all_ranks {
        policy.auto_best_only = false;
    }
    let classifier = NeedClassifier::for_model(&retriever.kb.manifest.model_hash, &paths.model_dir)?;
    policy.need_detection &= classifier.is_some();
    let judge_embedder = FastEmbedder::load(&model)?;
    let mut engine = Engine::new(policy.clone(), "replay");
    let mut side = Side { retriever, judge_embedder, classifier, log: Vec::new(), dump: Vec::new() };
    let base = Instant::now();
    for (n, s) in scripts.iter().enumerate() {
        // Each call starts an hour after the previous one: they never overlap.
        let start = base + Duration::from_secs(3600 * (n as u64 + 1));
        let mut fx = engine.handle(
            Msg::Stream(StreamEvent::ConversationStarted { conversation_id: s.id.clone(), queue_id: None }),
            start,
        );
        for (i, u) in s.utterances.iter().enumerate() {
            let now = start + Duration::from_millis(u.at_ms);
            // Timers due before this utterance fire first.
            while let Some(due) = engine.next_deadline().filter(|d| *d <= now) {
                fx.extend(engine.handle(Msg::Tick, due));
                settle(&mut engine, &mut fx, due, &mut side)?;
            }
            let speaker = if u.channel == "EXTERNAL" { Speaker::Customer } else { Speaker::Agent };
            fx.extend(engine.handle(
                Msg::Stream(StreamEvent::Transcript(TranscriptEvent {
                    conversation_id: s.id.clone(),
                    utterance_id: format!("{}-{i}", s.id),
                    speaker,
                    text: u.text.clone(),
                    is_final: true,
                    offset_ms: None,
                })),
                now,
            ));
            settle(&mut engine, &mut fx, now, &mut side)?;
        }
        let end = start + Duration::from_millis(s.utterances.last().map_or(0, |u| u.at_ms) + 10_000);
        while let Some(due) = engine.next_deadline().filter(|d| *d <= end) {
            fx.extend(engine.handle(Msg::Tick, due));
            settle(&mut engine, &mut fx, due, &mut side)?;
        }
        fx.extend(
            engine.handle(Msg::Stream(StreamEvent::ConversationEnded { conversation_id: s.id.clone() }), end),
        );
        settle(&mut engine, &mut fx, end, &mut side)?;
    }
    if let Some(path) = &opts.dump {
        let lines: Vec<String> = side.dump.iter().map(|v| v.to_string() + "\n").collect();
        std::fs::write(path, lines.concat())?;
    }
    let expected: BTreeMap<String, Vec<String>> =
        scripts.iter().map(|s| (s.id.clone(), s.expected_articles.clone())).collect();
    // The windows are what the engine ranked (its search records, call
    // context included), not the KB's raw order.
    let best: Vec<(String, String, f32, f32, bool)> = side
        .log
        .iter()
        .filter(|v| v["event"] == "search" && v["stale"] == false)
        .filter_map(|v| {
            let call = v["conversation_id"].as_str()?.to_string();
            let results: Vec<ScoredArticle> = serde_json::from_value(v["results"].clone()).ok()?;
            let top = results.first()?;
            let relevant = expected.get(&call).is_some_and(|w| w.contains(&top.article_id));
            let score = top.ranked_score();
            let runner_up = results.get(1).map_or(score, ScoredArticle::ranked_score);
            let article = top.article_id.clone();
            Some((call, article, score, runner_up, relevant))
        })
        .collect();
    let windows = crate::kb::calibration::windows(
        best.iter().map(|(c, a, s, u, r)| (c.as_str(), a.as_str(), *s, *u, *r)),
    );
    let summary = engine.metrics().summary();
    Ok(Report {
        calls: scripts.len(),
        utterances: summary.utterances,
        searches: summary.searches,
        needless: summary.needless,
        need_detection: policy.need_detection,
        every_search: opts.every_search,
        push: policy.push,
        auto: policy.auto,
        fusion: format!("{:?}", side.retriever.kb.fusion),
        calibrated: side.retriever.calibration.is_some(),
        agreement_bonus: policy.agreement_bonus,
        lead_weight: policy.lead_weight,
        auto_best_only: policy.auto_best_only,
        context_weight: policy.context_weight,
        context_decay: policy.context_decay,
        titles: scripts.iter().filter_map(|s| Some((s.id.clone(), s.title.clone()?))).collect(),
        relevance: super::e2e::quality_of(&side.log, &expected),
        windows,
    })
}

/// What answers the engine's effects in the replay, and what it keeps.
struct Side<'a> {
    retriever: &'a mut Retriever,
    judge_embedder: FastEmbedder,
    classifier: Option<NeedClassifier>,
    /// The engine's records (audit log).
    log: Vec<serde_json::Value>,
    /// Every search with its hits and signals (`--dump`).
    dump: Vec<serde_json::Value>,
}

/// Answers every effect at `now` (verdicts, searches, ledger, delivery)
/// until the engine has nothing more to say; keeps the records.
fn settle(
    engine: &mut Engine,
    fx: &mut Vec<Effect>,
    now: Instant,
    side: &mut Side<'_>,
) -> color_eyre::eyre::Result<()> {
    let Side { retriever, judge_embedder, classifier, log, dump } = side;
    let mut queue: VecDeque<Effect> = std::mem::take(fx).into();
    while let Some(e) = queue.pop_front() {
        let answer = match e {
            Effect::JudgeNeed { conversation_id, utterance_id, text, context } => {
                let need = classifier.as_ref().is_none_or(|c| {
                    judge(
                        judge_embedder,
                        c,
                        NeedJob {
                            conversation_id: String::new(),
                            utterance_id: String::new(),
                            text,
                            context,
                        },
                    )
                    .need
                });
                Some(Msg::NeedJudged { conversation_id, utterance_id, need })
            }
            Effect::Search { request, conversation_id, query, k } => {
                let ranked = retriever.query_ranked(&query, k)?;
                dump.push(serde_json::json!({
                    "conversation_id": conversation_id, "request": request, "query": query,
                    "hits": ranked.hits, "signals": format!("{:?}", ranked.signals),
                }));
                Some(Msg::SearchDone {
                    request,
                    conversation_id,
                    hits: ranked.hits,
                    timing: SearchTiming { started: now, finished: now },
                })
            }
            Effect::Push(req) => Some(Msg::Durable { pushes: vec![req], commit: None }),
            Effect::Deliver(req) => {
                for sink in &req.sinks {
                    queue.extend(engine.handle(
                        Msg::PushDone(PushOutcome {
                            suggestion_id: req.suggestion_id.clone(),
                            sink: *sink,
                            conversation_id: req.conversation_id.clone(),
                            status: Some(204),
                            attempts: 1,
                            latency_ms: 0,
                            error: None,
                        }),
                        now,
                    ));
                }
                None
            }
            Effect::Record(r) => {
                log.push(serde_json::to_value(&r)?);
                None
            }
            Effect::Persist(_) | Effect::Unfollow { .. } => None,
        };
        if let Some(msg) = answer {
            queue.extend(engine.handle(msg, now));
        }
    }
    Ok(())
}

pub fn print_table(r: &Report) {
    println!(
        "{} calls replayed: {} utterances, {} searches, {} judged needless (need detection {})",
        r.calls,
        r.utterances,
        r.searches,
        r.needless,
        if r.need_detection { "on" } else { "off" }
    );
    println!(
        "  policy: {}; push {:.3}, auto {:.3}; fusion {}; calibrated {}",
        if r.every_search { "every search's best article pushed" } else { "defaults, auto mode" },
        r.push,
        r.auto,
        r.fusion,
        r.calibrated
    );
    println!(
        "  call context: weight {:.2}, decay {:.2}; auto credit: {:.3} per earlier search with the same best, {:.3} per unit of lead; auto sends {}",
        r.context_weight,
        r.context_decay,
        r.agreement_bonus,
        r.lead_weight,
        if r.auto_best_only { "the best article only" } else { "any article above the threshold" }
    );
    println!(
        "  best article relevant in {:.1}% of searches; {} of {} calls got one",
        r.relevance.top1_share * 100.0,
        r.relevance.calls_covered,
        r.relevance.calls_labelled
    );
    println!(
        "  auto pushes: {} of {} relevant ({:.1}%); {} of {} calls got a relevant push",
        r.relevance.auto_relevant,
        r.relevance.auto_pushes,
        r.relevance.auto_precision * 100.0,
        r.relevance.calls_with_relevant_push,
        r.relevance.calls_labelled
    );
    let title = |call: &str| r.titles.get(call).map_or(call.to_string(), |t| format!("\"{t}\""));
    for (call, article) in &r.relevance.auto_misses {
        println!("    sent but not needed: {article} on {}", title(call));
    }
    for call in &r.relevance.calls_without_relevant_push {
        println!("    no relevant auto push: {}", title(call));
    }
}
