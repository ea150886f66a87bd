//! Engine tests of need detection: a final utterance joins the query window
//! while it is judged; a needless one leaves it, its search is dropped (or
//! never fires, when judged within the debounce) and later windows skip it.

use std::time::{Duration, Instant};

use super::*;
use crate::domain::{Hit, Speaker, StreamEvent, TranscriptEvent};

fn at(base: Instant, ms: u64) -> Instant {
    base + Duration::from_millis(ms)
}

fn engine() -> Engine {
    let p = Policy { window_min_words: 1, debounce: Duration::ZERO, window: 2, ..Policy::default() };
    assert!(p.need_detection, "need detection is on by default");
    Engine::new(p, "run")
}

fn said(uid: &str, text: &str, is_final: bool) -> Msg {
    Msg::Stream(StreamEvent::Transcript(TranscriptEvent {
        conversation_id: "c".into(),
        utterance_id: uid.into(),
        speaker: Speaker::Customer,
        text: text.into(),
        is_final,
        offset_ms: None,
    }))
}

fn judged(uid: &str, need: bool) -> Msg {
    Msg::NeedJudged { conversation_id: "c".into(), utterance_id: uid.into(), need }
}

fn judge_requests(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::JudgeNeed { utterance_id, .. } = e { Some(utterance_id.clone()) } else { None }
        })
        .collect()
}

fn search_queries(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| if let Effect::Search { query, .. } = e { Some(query.clone()) } else { None })
        .collect()
}

fn hit(article: &str) -> Hit {
    Hit { article_id: article.into(), title: article.into(), score: 0.9, ..Hit::default() }
}

fn done(fx: &[Effect], hits: Vec<Hit>, at: Instant) -> Msg {
    let (request, conversation_id) = fx
        .iter()
        .find_map(|e| match e {
            Effect::Search { request, conversation_id, .. } => Some((*request, conversation_id.clone())),
            _ => None,
        })
        .expect("a search");
    Msg::SearchDone { request, conversation_id, hits, timing: SearchTiming { started: at, finished: at } }
}

fn suggested(e: &Engine) -> Vec<String> {
    e.conversations().flat_map(|c| c.suggestions.iter().map(|s| s.article_id.clone())).collect()
}

#[test]
fn a_final_utterance_is_judged_and_searched_at_once() {
    let base = Instant::now();
    let mut e = engine();
    // Interim text is neither judged nor searched.
    let fx = e.handle(said("u1", "my camera is", false), at(base, 0));
    assert!(judge_requests(&fx).is_empty() && search_queries(&fx).is_empty());
    let fx = e.handle(said("u1", "my camera is offline", true), at(base, 10));
    assert_eq!(judge_requests(&fx), vec!["u1"]);
    assert_eq!(search_queries(&fx), vec!["my camera is offline"], "the search waited for the verdict");
    e.handle(judged("u1", true), at(base, 20));
    e.handle(done(&fx, vec![hit("camera")], at(base, 20)), at(base, 21));
    assert_eq!(suggested(&e), vec!["camera"], "a needful utterance's results were not used");
}

#[test]
fn a_needless_utterance_drops_its_search_and_stays_out_of_the_window() {
    let base = Instant::now();
    let mut e = engine();
    let fx = e.handle(said("u1", "my camera is offline", true), at(base, 0));
    e.handle(judged("u1", true), at(base, 5));
    e.handle(done(&fx, vec![hit("camera")], at(base, 6)), at(base, 6));
    let fx = e.handle(said("u2", "3 3 7 1 0 5", true), at(base, 100));
    assert_eq!(search_queries(&fx), vec!["my camera is offline 3 3 7 1 0 5"]);
    let fx2 = e.handle(judged("u2", false), at(base, 105));
    assert!(search_queries(&fx2).is_empty(), "the window went back to what was searched: {fx2:?}");
    assert_eq!(e.metrics().needless, 1);
    // Its search comes back after the verdict and is not used.
    e.handle(done(&fx, vec![hit("numbers")], at(base, 106)), at(base, 106));
    assert_eq!(suggested(&e), vec!["camera"], "a needless window's results were used");
    assert_eq!(e.metrics().stale_results, 1);
    let fx = e.handle(said("u3", "can i upgrade to premium", true), at(base, 200));
    // The window of two skips the number read out.
    assert_eq!(search_queries(&fx), vec!["my camera is offline can i upgrade to premium"]);
}

#[test]
fn judged_needless_within_the_debounce_no_search_fires() {
    let base = Instant::now();
    let p = Policy { window_min_words: 1, debounce: Duration::from_millis(500), ..Policy::default() };
    let mut e = Engine::new(p, "run");
    let fx = e.handle(said("u1", "hello there how are you", true), at(base, 0));
    assert_eq!(judge_requests(&fx), vec!["u1"]);
    assert!(search_queries(&fx).is_empty());
    e.handle(judged("u1", false), at(base, 30));
    let fx = e.handle(Msg::Tick, at(base, 2_000));
    assert!(search_queries(&fx).is_empty(), "small talk searched: {fx:?}");
    // A needful one judged within the debounce searches when it runs out.
    e.handle(said("u2", "my camera is offline", true), at(base, 3_000));
    e.handle(judged("u2", true), at(base, 3_030));
    let fx = e.handle(Msg::Tick, at(base, 3_600));
    assert_eq!(search_queries(&fx), vec!["my camera is offline"]);
}

#[test]
fn a_repeated_final_keeps_its_verdict_and_a_verdict_for_a_gone_utterance_is_ignored() {
    let base = Instant::now();
    let mut e = engine();
    e.handle(said("u1", "my camera is offline", true), at(base, 0));
    e.handle(judged("u1", true), at(base, 5));
    let fx = e.handle(said("u1", "my camera is offline", true), at(base, 10));
    assert!(judge_requests(&fx).is_empty(), "judged twice");
    // A revised text is judged again.
    let fx = e.handle(said("u1", "my doorbell camera is offline", true), at(base, 20));
    assert_eq!(judge_requests(&fx), vec!["u1"]);
    let fx = e.handle(judged("nope", true), at(base, 30));
    assert!(search_queries(&fx).is_empty());
}

#[test]
fn with_detection_off_every_utterance_searches_at_once() {
    let base = Instant::now();
    let p =
        Policy { window_min_words: 1, debounce: Duration::ZERO, need_detection: false, ..Policy::default() };
    let mut e = Engine::new(p, "run");
    let fx = e.handle(said("u1", "3 3 7 1 0 5", true), at(base, 0));
    assert!(judge_requests(&fx).is_empty());
    assert_eq!(search_queries(&fx), vec!["3 3 7 1 0 5"]);
}

#[test]
fn an_utterance_is_judged_as_read_at_the_end_of_its_window() {
    let base = Instant::now();
    let mut e = engine();
    let contexts = |fx: &[Effect]| -> Vec<(String, String)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::JudgeNeed { text, context, .. } => Some((text.clone(), context.clone())),
                _ => None,
            })
            .collect()
    };
    let fx = e.handle(said("u1", "my camera is offline", true), at(base, 0));
    assert_eq!(contexts(&fx), vec![("my camera is offline".into(), "my camera is offline".into())]);
    e.handle(judged("u1", true), at(base, 5));
    let fx = e.handle(said("u2", "thanks so much", true), at(base, 10));
    let window = "my camera is offline thanks so much";
    assert_eq!(contexts(&fx), vec![("thanks so much".into(), window.into())]);
    // The context is the search's own text: one model run serves both.
    assert_eq!(search_queries(&fx), vec![window]);
}
