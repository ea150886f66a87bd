//! Engine transition tests: plain functions of messages and time, no tokio.

use std::time::Duration;

use super::tests_support::{at, customer, done, hit, pushes, said, searches};

// A file beside this one (the arch test reads src/engine as flat files).
#[path = "tests_auto.rs"]
mod auto_rule;

use super::*;
use crate::domain::{
    Hit, PushAttempt, PushOutcome, PushRequest, Sink, Speaker, StreamEvent, TranscriptEvent,
};

fn engine(tweak: impl FnOnce(&mut Policy)) -> Engine {
    // Test utterances are short; let every word count.
    let mut p = Policy { window_min_words: 1, need_detection: false, ..Policy::default() };
    tweak(&mut p);
    Engine::new(p, "run")
}

fn ok(p: &PushRequest, latency_ms: u64) -> Msg {
    Msg::PushDone(PushOutcome {
        suggestion_id: p.suggestion_id.clone(),
        sink: Sink::Webhook,
        conversation_id: p.conversation_id.clone(),
        status: Some(204),
        attempts: 1,
        latency_ms,
        error: None,
    })
}

fn states(e: &Engine, conv: &str) -> Vec<(String, &'static str)> {
    e.conversation(conv).unwrap().suggestions.iter().map(|s| (s.article_id.clone(), s.state.name())).collect()
}

/// Speaks one utterance and runs its search to completion with `hits`.
fn search_with(e: &mut Engine, conv: &str, uid: &str, text: &str, hits: Vec<Hit>, ms: u64) -> Vec<Effect> {
    e.handle(customer(conv, uid, text), at(ms));
    let fx = e.handle(Msg::Tick, at(ms + 1_000));
    let (req, _) = searches(&fx)[0].clone();
    e.handle(done(req, conv, hits, ms + 1_001), at(ms + 1_010))
}

#[test]
fn a_burst_of_events_causes_one_search_on_the_latest_window() {
    let mut e = engine(|_| {});
    for (i, text) in ["my earbuds", "won't pair", "with my new phone"].iter().enumerate() {
        let fx = e.handle(customer("c1", &format!("u{i}"), text), at(i as u64 * 100));
        assert!(searches(&fx).is_empty(), "searched before the debounce ran out");
    }
    assert_eq!(e.next_deadline(), Some(at(700)));
    assert!(searches(&e.handle(Msg::Tick, at(650))).is_empty());
    let fx = e.handle(Msg::Tick, at(700));
    assert_eq!(searches(&fx), vec![(1, "won't pair with my new phone".to_string())]);
    assert!(searches(&e.handle(Msg::Tick, at(5_000))).is_empty(), "one burst, one search");
}

#[test]
fn a_continuous_burst_still_searches_within_twice_the_debounce() {
    let mut e = engine(|_| {});
    let mut fired = Vec::new();
    for i in 0..20u64 {
        fired.extend(searches(&e.handle(customer("c1", &format!("u{i}"), &format!("word{i}")), at(i * 100))));
    }
    assert!(!fired.is_empty(), "a burst longer than 2x debounce must not starve the search");
}

#[test]
fn the_window_is_the_latest_final_customer_speech_capped_in_words() {
    let mut e = engine(|p| p.debounce = Duration::ZERO);
    e.handle(customer("c", "1", "first thing"), at(0));
    e.handle(said("c", "2", Speaker::Agent, "agent talk"), at(1));
    e.handle(customer("c", "3", "second thing"), at(2));
    let mut partial = TranscriptEvent {
        conversation_id: "c".into(),
        utterance_id: "4".into(),
        speaker: Speaker::Customer,
        text: "still talk".into(),
        is_final: false,
        offset_ms: None,
    };
    e.handle(Msg::Stream(StreamEvent::Transcript(partial.clone())), at(3));
    assert_eq!(e.conversation("c").unwrap().window_text, "first thing second thing");
    partial.is_final = true;
    partial.text = "still talking".into();
    e.handle(Msg::Stream(StreamEvent::Transcript(partial)), at(4));
    let c = e.conversation("c").unwrap();
    assert_eq!(c.window_text, "second thing still talking");
    assert_eq!(c.window, vec!["3".to_string(), "4".to_string()]);
    assert_eq!(c.utterances.len(), 4, "a revision replaces, it does not append");

    let mut e = engine(|p| {
        p.include_agent = true;
        p.window = 3;
        p.window_max_words = 8;
    });
    e.handle(customer("c", "1", "one two three four five"), at(0));
    e.handle(said("c", "2", Speaker::Agent, "six seven"), at(1));
    e.handle(customer("c", "3", "eight nine ten"), at(2));
    assert_eq!(e.conversation("c").unwrap().window_text, "three four five six seven eight nine ten");
}

#[test]
fn a_result_for_a_stale_window_is_dropped() {
    let mut e = engine(|p| p.debounce = Duration::ZERO);
    let fx = e.handle(customer("c", "1", "my camera is offline"), at(0));
    let (r1, _) = searches(&fx)[0].clone();
    let fx = e.handle(customer("c", "2", "and the app crashes"), at(10));
    let (r2, q2) = searches(&fx)[0].clone();
    assert_eq!(q2, "my camera is offline and the app crashes");
    e.handle(done(r1, "c", vec![hit("camera-offline", 0.9)], 11), at(20));
    assert!(e.conversation("c").unwrap().suggestions.is_empty());
    assert_eq!(e.metrics().stale_results, 1);
    // Not used for suggestions, but what the customer said still counts
    // as evidence about the call.
    assert!(e.conversation("c").unwrap().context.evidence("camera-offline") > 0.8);
    e.handle(done(r2, "c", vec![hit("app-not-working", 0.8)], 21), at(30));
    assert_eq!(states(&e, "c"), vec![("app-not-working".to_string(), "queued")]);
}

#[test]
fn thresholds_list_queue_and_reclassify_at_once() {
    let mut e = engine(|_| {});
    let hits = vec![hit("a", 0.70), hit("b", 0.50), hit("c", 0.40), hit("d", 0.20)];
    let fx = search_with(&mut e, "c1", "u1", "help", hits, 0);
    assert!(pushes(&fx).is_empty(), "manual mode sends nothing by itself");
    let s = |v: &[(&str, &'static str)]| v.iter().map(|(a, b)| (a.to_string(), *b)).collect::<Vec<_>>();
    assert_eq!(states(&e, "c1"), s(&[("a", "queued"), ("b", "queued"), ("c", "candidate")]));
    // Raise push to 0.55: b drops to candidate immediately.
    e.handle(Msg::Command(Command::Adjust { knob: Knob::Push, steps: 10 }), at(2_000));
    assert_eq!(e.policy().push, 0.55);
    assert_eq!(states(&e, "c1"), s(&[("a", "queued"), ("b", "candidate"), ("c", "candidate")]));
    // Lower it to 0.35: c becomes eligible.
    e.handle(Msg::Command(Command::Adjust { knob: Knob::Push, steps: -20 }), at(2_100));
    assert_eq!(states(&e, "c1"), s(&[("a", "queued"), ("b", "queued"), ("c", "queued")]));
    // Only the `top_k` (3) best are kept, so d never counts.
    assert_eq!(e.would_pass(0.45), (2, 3));
}

#[test]
fn auto_mode_sends_above_auto_and_switching_modes_applies_to_waiting_suggestions() {
    let mut e = engine(|p| {
        p.mode = Mode::Auto;
        p.auto = 0.55;
        // Thresholds alone decide here (the best-only rule: tests/auto_rule.rs).
        p.auto_best_only = false;
    });
    let fx = search_with(&mut e, "c1", "u1", "help", vec![hit("a", 0.70), hit("b", 0.50)], 0);
    let sent = pushes(&fx);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].items[0].article_id.as_str(), sent[0].items[0].content.as_str()), ("a", "text of a"));
    assert_eq!(states(&e, "c1")[1], ("b".to_string(), "queued"));
    // Lowering auto to 0.45 sends b straight away.
    let fx = e.handle(Msg::Command(Command::Adjust { knob: Knob::Auto, steps: -10 }), at(2_000));
    assert_eq!(pushes(&fx)[0].items[0].article_id, "b");

    let mut e = engine(|_| {});
    search_with(&mut e, "c1", "u1", "help", vec![hit("a", 0.70)], 0);
    let fx = e.handle(
        Msg::Command(Command::SetMode { conversation: Some("c1".into()), mode: Mode::Auto }),
        at(2_000),
    );
    assert_eq!(pushes(&fx).len(), 1, "a conversation switched to auto sends what waits");

    let mut e = engine(|p| p.mode = Mode::Off);
    assert!(searches(&e.handle(customer("c1", "u1", "help me"), at(0))).is_empty());
    assert!(searches(&e.handle(Msg::Tick, at(5_000))).is_empty(), "off mode never searches");
}

#[test]
fn cooldown_and_rate_cap_limit_automatic_pushes() {
    let mut e = engine(|p| {
        p.mode = Mode::Auto;
        p.max_pushes_per_minute = 2;
        p.cooldown = Duration::from_secs(300);
        // Several articles of one search go out: the cap is what is tested.
        p.auto_best_only = false;
    });
    let fx = search_with(&mut e, "c", "u1", "x", vec![hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)], 0);
    let sent = pushes(&fx);
    assert_eq!(sent.iter().map(|p| p.items[0].article_id.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
    for p in &sent {
        e.handle(ok(p, 20), at(1_100));
    }
    // A minute later: c goes out; a and b are in cooldown, not suggested again.
    let fx = search_with(&mut e, "c", "u2", "y", vec![hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)], 61_000);
    assert_eq!(pushes(&fx).iter().map(|p| p.items[0].article_id.as_str()).collect::<Vec<_>>(), vec!["c"]);
    let open: Vec<&str> = e
        .conversation("c")
        .unwrap()
        .suggestions
        .iter()
        .filter(|s| s.state.is_open())
        .map(|s| s.article_id.as_str())
        .collect();
    assert!(open.is_empty(), "{open:?}");
    // After the cooldown, a may be suggested and sent again.
    let fx = search_with(&mut e, "c", "u3", "z", vec![hit("a", 0.9)], 400_000);
    assert_eq!(pushes(&fx).len(), 1);
}

#[test]
fn edit_then_send_replaces_content_and_keeps_the_original_for_the_audit() {
    let mut e = engine(|_| {});
    search_with(&mut e, "c", "u1", "x", vec![hit("a", 0.7)], 0);
    let sid = e.conversation("c").unwrap().suggestions[0].id.clone();
    let fx = e.handle(Msg::Command(Command::Edit { suggestion: sid.clone(), text: "  ".into() }), at(2_000));
    assert!(pushes(&fx).is_empty() && e.notices().back().unwrap().text.contains("empty"));
    let fx = e.handle(
        Msg::Command(Command::Edit { suggestion: sid.clone(), text: "Try this first.".into() }),
        at(2_100),
    );
    assert_eq!(pushes(&fx)[0].items[0].content, "Try this first.");
    // The decision is said once the ledger has it.
    let fx = e.handle(Msg::Durable { pushes: pushes(&fx), commit: None }, at(2_101));
    let decision = fx.iter().find_map(|f| match f {
        Effect::Record(Record::Decision { action, by, original, edited, .. }) => {
            Some((*action, *by, original.clone(), edited.clone()))
        }
        _ => None,
    });
    assert_eq!(
        decision,
        Some((Action::SendEdited, Actor::Operator, Some("text of a".into()), Some("Try this first.".into())))
    );
    assert_eq!(states(&e, "c")[0].1, "sending");
}

#[test]
fn reject_retry_approve_all_and_manual_push() {
    let mut e = engine(|_| {});
    search_with(&mut e, "c", "u1", "x", vec![hit("a", 0.7), hit("b", 0.6), hit("c", 0.4)], 0);
    let id = |e: &Engine, art: &str| {
        e.conversation("c").unwrap().suggestions.iter().find(|s| s.article_id == art).unwrap().id.clone()
    };
    e.handle(Msg::Command(Command::Reject { suggestion: id(&e, "b") }), at(2_000));
    let fx = e.handle(Msg::Command(Command::ApproveAll { conversation: "c".into() }), at(2_100));
    let sent = pushes(&fx);
    assert_eq!(sent.iter().map(|p| p.items[0].article_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
    // The push fails; retry sends it again.
    e.handle(
        Msg::PushAttempted(PushAttempt {
            suggestion_id: sent[0].suggestion_id.clone(),
            sink: Sink::Webhook,
            attempt: 1,
            status: Some(500),
            retry_in_ms: Some(10),
            reason: "500".into(),
        }),
        at(2_200),
    );
    e.handle(
        Msg::PushDone(PushOutcome {
            error: Some("gave up".into()),
            status: Some(500),
            attempts: 5,
            ..outcome(&sent[0])
        }),
        at(2_300),
    );
    assert_eq!(states(&e, "c")[0].1, "failed");
    assert_eq!(e.metrics().pushes_failed, 1);
    let fx = e.handle(Msg::Command(Command::Retry { suggestion: id(&e, "a") }), at(2_400));
    assert_eq!(pushes(&fx).len(), 1);
    // A rejected article is not offered again in the next search.
    search_with(&mut e, "c", "u2", "y", vec![hit("b", 0.7)], 3_000);
    assert_eq!(e.conversation("c").unwrap().suggestions.iter().filter(|s| s.article_id == "b").count(), 1);
    // Any article by hand, even one in cooldown.
    let article = ArticleRef { id: "b".into(), title: "B".into(), content: "by hand".into() };
    let fx = e.handle(Msg::Command(Command::PushArticle { conversation: "c".into(), article }), at(5_000));
    assert_eq!(pushes(&fx)[0].items[0].content, "by hand");
    // Unknown ids are notices, not panics.
    e.handle(Msg::Command(Command::Approve { suggestion: "nope".into() }), at(5_100));
    assert!(e.notices().back().unwrap().text.contains("no suggestion nope"));
}

fn outcome(p: &PushRequest) -> PushOutcome {
    PushOutcome {
        suggestion_id: p.suggestion_id.clone(),
        sink: Sink::Webhook,
        conversation_id: p.conversation_id.clone(),
        status: Some(204),
        attempts: 1,
        latency_ms: 5,
        error: None,
    }
}

#[test]
fn push_outcomes_update_state_and_latency_stages() {
    let mut e = engine(|p| {
        p.mode = Mode::Auto;
        p.debounce = Duration::ZERO;
    });
    let fx = e.handle(customer("c", "u1", "x"), at(0));
    let (req, _) = searches(&fx)[0].clone();
    let fx = e.handle(done(req, "c", vec![hit("a", 0.9)], 2), at(9));
    let p = pushes(&fx)[0].clone();
    e.handle(Msg::Durable { pushes: vec![p.clone()], commit: Some(Duration::from_millis(2)) }, at(12));
    e.handle(ok(&p, 30), at(40));
    assert_eq!(states(&e, "c")[0].1, "pushed");
    let m = e.metrics();
    assert_eq!((m.pushes_ok, m.suggestions, m.searches, m.utterances), (1, 1, 1, 1));
    let e2e = m.percentiles(Stage::EndToEnd).unwrap();
    assert!((39.0..=41.0).contains(&e2e.p50_ms), "{e2e:?}");
    assert!(m.percentiles(Stage::Search).unwrap().p50_ms >= 4.9);
    // Decided at 9 ms, durable at 12 ms, of which the commit took 2 ms.
    assert!((2.9..=3.1).contains(&m.percentiles(Stage::Record).unwrap().p50_ms));
    assert!((1.9..=2.1).contains(&m.percentiles(Stage::Commit).unwrap().p50_ms));
    let s = m.summary();
    assert_eq!(s.latency.len(), Stage::ALL.len());
}

#[test]
fn pausing_stops_searches_and_resuming_restarts_them() {
    let mut e = engine(|p| p.debounce = Duration::ZERO);
    e.handle(customer("c", "u0", "hello"), at(0));
    e.handle(Msg::Command(Command::SetPaused { conversation: None, paused: true }), at(1));
    assert!(searches(&e.handle(customer("c", "u1", "my bill is wrong"), at(2))).is_empty());
    e.handle(Msg::Command(Command::SetPaused { conversation: None, paused: false }), at(3));
    e.handle(Msg::Command(Command::SetPaused { conversation: Some("c".into()), paused: true }), at(4));
    assert!(searches(&e.handle(customer("c", "u2", "charged twice"), at(5))).is_empty());
    e.handle(Msg::Command(Command::SetPaused { conversation: Some("c".into()), paused: false }), at(6));
    assert_eq!(searches(&e.handle(customer("c", "u3", "please help"), at(7))).len(), 1);
}

#[test]
fn ended_conversations_are_evicted_so_memory_stays_bounded() {
    let mut e = engine(|p| p.ended_grace = Duration::from_secs(60));
    for i in 0..1_000u64 {
        let id = format!("c{i}");
        e.handle(
            Msg::Stream(StreamEvent::ConversationStarted { conversation_id: id.clone(), queue_id: None }),
            at(i),
        );
        e.handle(customer(&id, "u", "hello"), at(i));
        e.handle(Msg::Stream(StreamEvent::ConversationEnded { conversation_id: id.clone() }), at(i + 1));
    }
    assert_eq!(e.conversations().count(), 1_000);
    assert!(e.conversations().all(|c| c.ended_at.is_some() && c.search_due.is_none()));
    e.handle(Msg::Tick, at(62_000));
    assert_eq!(e.conversations().count(), 0);
    // Late events for an ended call do not resurrect it as live speech.
    e.handle(
        Msg::Stream(StreamEvent::ConversationStarted { conversation_id: "x".into(), queue_id: None }),
        at(70_000),
    );
    e.handle(Msg::Stream(StreamEvent::ConversationEnded { conversation_id: "x".into() }), at(70_001));
    assert!(searches(&e.handle(customer("x", "u", "late"), at(70_002))).is_empty());
    // A silent conversation times out.
    let mut e = engine(|p| p.idle_timeout = Duration::from_secs(10));
    e.handle(customer("q", "u", "hi"), at(0));
    let fx = e.handle(Msg::Tick, at(10_000));
    assert!(e.conversation("q").unwrap().ended_at.is_some());
    // ... and the stream is told to stop following it, once.
    assert!(fx.contains(&Effect::Unfollow { conversation_id: "q".into() }));
    let fx = e.handle(Msg::Tick, at(11_000));
    assert!(!fx.iter().any(|f| matches!(f, Effect::Unfollow { .. })));
}

#[test]
fn stream_warnings_reach_the_operator_and_the_audit_log() {
    let mut e = engine(|_| {});
    let message = "cannot catch up: needs permission analytics:conversationDetail:view".to_string();
    let fx = e.handle(Msg::Stream(StreamEvent::Warning { message: message.clone() }), at(1));
    assert_eq!(e.notices().back().map(|n| n.text.as_str()), Some(message.as_str()));
    assert!(fx.contains(&Effect::Record(Record::Warning { message })));
}
