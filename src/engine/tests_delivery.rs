//! Engine tests of delivery: record-then-act ordering, per-sink outcomes,
//! the ledger's failure and recovery, restoring from records, agent
//! feedback and Copilot requests.

use std::time::Duration;

use super::tests_support::{at, customer, hit, pushes, searches};
use super::*;
use crate::domain::{Hit, Participant, PushOutcome, PushRequest, Sink, StreamEvent};

fn engine(mode: Mode, sinks: &[Sink]) -> Engine {
    let p = Policy {
        window_min_words: 1,
        debounce: Duration::ZERO,
        mode,
        need_detection: false,
        ..Policy::default()
    };
    let mut e = Engine::new(p, "run");
    e.set_sinks(sinks);
    e.set_clock(at(0), 1_800_000_000_000);
    e.enable_persistence();
    e
}

/// Speaks and answers the search; returns the effects of the answer.
fn matched(e: &mut Engine, conv: &str, uid: &str, hits: Vec<Hit>, ms: u64) -> Vec<Effect> {
    let fx = e.handle(customer(conv, uid, "my router keeps dropping"), at(ms));
    let (request, _) = searches(&fx).into_iter().next().expect("a search");
    e.handle(super::tests_support::done(request, conv, hits, ms), at(ms + 6))
}

fn delivers(fx: &[Effect]) -> Vec<PushRequest> {
    fx.iter().filter_map(|f| if let Effect::Deliver(p) = f { Some(p.clone()) } else { None }).collect()
}

fn done(p: &PushRequest, sink: Sink, error: Option<&str>) -> Msg {
    Msg::PushDone(PushOutcome {
        suggestion_id: p.suggestion_id.clone(),
        sink,
        conversation_id: p.conversation_id.clone(),
        status: if error.is_some() { Some(500) } else { Some(204) },
        attempts: 1,
        latency_ms: 3,
        error: error.map(str::to_string),
    })
}

fn state(e: &Engine, conv: &str, sid: &str) -> String {
    let c = e.conversation(conv).expect("conversation");
    c.suggestions.iter().find(|s| s.id == sid).expect("suggestion").state.name().to_string()
}

#[test]
fn a_decision_is_recorded_before_it_is_delivered() {
    let mut e = engine(Mode::Auto, &[Sink::Widget, Sink::Webhook]);
    let fx = matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0);
    let persist = fx.iter().position(|f| matches!(f, Effect::Persist(_))).expect("a ledger record");
    let push = fx.iter().position(|f| matches!(f, Effect::Push(_))).expect("a push");
    assert!(persist < push, "the record must come first: {fx:?}");
    let Effect::Persist(rec) = &fx[persist] else { unreachable!() };
    assert_eq!(rec.suggestions[0].state, SuggestionState::Sending);
    assert_eq!(rec.suggestions[0].decided_by, Some(Actor::Auto));
    assert!(rec.pushed.contains_key("a"), "the cooldown is in the record");
    // Nothing is delivered, or said to be decided, until the ledger has it.
    assert!(delivers(&fx).is_empty());
    assert!(!fx.iter().any(|f| matches!(f, Effect::Record(Record::Decision { .. }))));
    let p = pushes(&fx).remove(0);
    assert_eq!(p.sinks, vec![Sink::Widget, Sink::Webhook]);
    let fx = e.handle(Msg::Durable { pushes: vec![p.clone()], commit: None }, at(20));
    let decision = fx.iter().position(|f| matches!(f, Effect::Record(Record::Decision { .. }))).unwrap();
    let deliver = fx.iter().position(|f| matches!(f, Effect::Deliver(_))).unwrap();
    assert!(decision < deliver);
    assert_eq!(delivers(&fx), vec![p]);
}

#[test]
fn each_sink_reports_and_one_delivery_makes_it_pushed() {
    let mut e = engine(Mode::Auto, &[Sink::Widget, Sink::Webhook]);
    let p = pushes(&matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0)).remove(0);
    e.handle(Msg::Durable { pushes: vec![p.clone()], commit: None }, at(10));
    let fx = e.handle(done(&p, Sink::Widget, None), at(11));
    assert!(
        fx.iter().any(|f| matches!(f, Effect::Record(Record::Push { sink: Sink::Widget, ok: true, .. })))
    );
    assert_eq!(state(&e, "c", &p.suggestion_id), "sending", "the webhook has not answered");
    e.handle(done(&p, Sink::Webhook, Some("gave up")), at(12));
    assert_eq!(state(&e, "c", &p.suggestion_id), "pushed");
    let log: Vec<_> =
        e.push_log().iter().map(|l| (l.sink, matches!(l.status, PushStatus::Pushed { .. }))).collect();
    assert_eq!(log, vec![(Sink::Widget, true), (Sink::Webhook, false)]);
    // All sinks failing fails it and lifts the cooldown.
    let mut e = engine(Mode::Auto, &[Sink::Webhook]);
    let p = pushes(&matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0)).remove(0);
    e.handle(Msg::Durable { pushes: vec![p.clone()], commit: None }, at(10));
    e.handle(done(&p, Sink::Webhook, Some("500")), at(11));
    assert_eq!(state(&e, "c", &p.suggestion_id), "failed");
    assert!(!e.conversation("c").unwrap().pushed.contains_key("a"));
}

#[test]
fn a_failing_ledger_holds_auto_mode_until_it_records_again() {
    let mut e = engine(Mode::Auto, &[Sink::Webhook]);
    let p = pushes(&matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0)).remove(0);
    let fx = e
        .handle(Msg::LedgerFailed { error: "No space left on device".into(), held: vec![p.clone()] }, at(10));
    assert!(!e.ledger_ok());
    assert!(delivers(&fx).is_empty());
    assert!(fx.iter().any(|f| matches!(f, Effect::Record(Record::Ledger { ok: false, .. }))));
    assert_eq!(state(&e, "c", &p.suggestion_id), "queued", "an automatic decision waits to be made again");
    // Meanwhile new matches are listed but not sent.
    let fx = matched(&mut e, "c", "u2", vec![hit("a", 0.9), hit("b", 0.95)], 100);
    assert!(pushes(&fx).is_empty());
    // The operator's approval is refused by the ledger the same way.
    let b = e.conversation("c").unwrap().suggestions.iter().find(|s| s.article_id == "b").unwrap().id.clone();
    let fx = e.handle(Msg::Command(Command::Approve { suggestion: b.clone() }), at(200));
    let held = pushes(&fx);
    e.handle(Msg::LedgerFailed { error: "No space left on device".into(), held }, at(210));
    assert_eq!(state(&e, "c", &b), "failed");
    // Recovery resumes auto mode: what waited goes out.
    let fx = e.handle(Msg::LedgerRecovered, at(300));
    assert!(e.ledger_ok());
    assert_eq!(pushes(&fx).iter().map(|p| p.items[0].article_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
}

#[test]
fn a_restart_keeps_ids_cooldowns_and_finishes_undelivered_decisions() {
    let mut e = engine(Mode::Manual, &[Sink::Widget, Sink::Webhook]);
    e.handle(
        Msg::Stream(StreamEvent::ConversationStarted { conversation_id: "c".into(), queue_id: None }),
        at(0),
    );
    e.handle(
        Msg::Stream(StreamEvent::Participants {
            conversation_id: "c".into(),
            participants: vec![Participant {
                id: "cust-1".into(),
                purpose: "customer".into(),
                user_id: None,
            }],
        }),
        at(0),
    );
    matched(&mut e, "c", "u1", vec![hit("a", 0.9), hit("b", 0.8)], 0);
    let ids: Vec<String> = e.conversation("c").unwrap().suggestions.iter().map(|s| s.id.clone()).collect();
    let fx = e.handle(Msg::Command(Command::Approve { suggestion: ids[0].clone() }), at(100));
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::Persist(r) if r.suggestions[0].decided_by == Some(Actor::Operator)))
    );
    let p = pushes(&fx).remove(0);
    e.handle(Msg::Durable { pushes: vec![p.clone()], commit: None }, at(110));
    e.handle(done(&p, Sink::Widget, None), at(111));
    // The process dies here: the webhook never answered.
    let record = e.snapshot("c").expect("record");

    let mut again = engine(Mode::Manual, &[Sink::Widget, Sink::Webhook]);
    again.set_clock(at(60_000), 1_800_000_060_000);
    let fx = again.restore(vec![record], at(60_000));
    assert!(matches!(
        fx[0],
        Effect::Record(Record::Restored { conversations: 1, suggestions: 2, redelivered: 1 })
    ));
    let redo = delivers(&fx);
    assert_eq!(redo.len(), 1);
    assert_eq!(redo[0].suggestion_id, p.suggestion_id, "the same idempotency key");
    assert_eq!(redo[0].sinks, vec![Sink::Webhook], "only the sink that had not answered");
    assert_eq!(redo[0].customer_participant.as_deref(), Some("cust-1"));
    again.handle(done(&redo[0], Sink::Webhook, None), at(60_010));
    assert_eq!(state(&again, "c", &p.suggestion_id), "pushed");
    // The pushed article stays in cooldown: a new search does not offer it.
    matched(&mut again, "c", "u2", vec![hit("a", 0.95), hit("b", 0.8)], 61_000);
    let c = again.conversation("c").unwrap();
    assert_eq!(c.suggestions.iter().filter(|s| s.article_id == "a").count(), 1);
    let b: Vec<&str> = c.suggestions.iter().filter(|s| s.article_id == "b").map(|s| s.id.as_str()).collect();
    assert_eq!(b, vec![ids[1].as_str()], "the open suggestion kept its id");
}

#[test]
fn records_are_written_only_when_durable_state_changes() {
    let mut e = engine(Mode::Manual, &[Sink::Webhook]);
    let fx = matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0);
    assert_eq!(fx.iter().filter(|f| matches!(f, Effect::Persist(_))).count(), 1);
    // The same match again (only the score moves) is not worth a write.
    let fx = matched(&mut e, "c", "u2", vec![hit("a", 0.91)], 100);
    assert_eq!(fx.iter().filter(|f| matches!(f, Effect::Persist(_))).count(), 0);
}

#[test]
fn agent_feedback_is_counted_logged_and_recorded() {
    let mut e = engine(Mode::Auto, &[Sink::Widget]);
    let p = pushes(&matched(&mut e, "c", "u1", vec![hit("a", 0.9)], 0)).remove(0);
    e.handle(Msg::Durable { pushes: vec![p.clone()], commit: None }, at(10));
    e.handle(done(&p, Sink::Widget, None), at(11));
    let ack = AgentEvent::Acknowledged {
        conversation_id: "c".into(),
        suggestion_id: p.suggestion_id.clone(),
        user_id: Some("agent-1".into()),
    };
    e.handle(Msg::Agent(ack.clone()), at(12));
    e.handle(Msg::Agent(ack), at(13));
    let useful = |f| AgentEvent::Feedback {
        conversation_id: "c".into(),
        suggestion_id: p.suggestion_id.clone(),
        feedback: f,
        user_id: Some("agent-1".into()),
    };
    let fx = e.handle(Msg::Agent(useful(Feedback::NotUseful)), at(14));
    assert!(
        fx.iter().any(|f| matches!(
            f,
            Effect::Record(Record::AgentFeedback { feedback: Feedback::NotUseful, .. })
        ))
    );
    e.handle(Msg::Agent(useful(Feedback::Useful)), at(15));
    let counts = e.article_feedback("a");
    assert_eq!((counts.shown, counts.useful, counts.not_useful), (1, 1, 0), "a changed mind counts once");
    assert!(matches!(e.push_log().back().unwrap().status, PushStatus::Agent { feedback: Feedback::Useful }));
    assert!(e.push_log().iter().any(|l| matches!(l.status, PushStatus::Pushed { acknowledged: true, .. })));
    // Unknown suggestions are ignored, not a panic.
    e.handle(
        Msg::Agent(AgentEvent::Acknowledged {
            conversation_id: "x".into(),
            suggestion_id: "y".into(),
            user_id: None,
        }),
        at(16),
    );
}

#[test]
fn copilot_requests_are_answered_with_the_best_current_match() {
    let mut e = engine(Mode::Manual, &[Sink::Widget, Sink::GenesysCopilot]);
    assert_eq!(e.sinks(), &[Sink::Widget], "copilot answers requests; it is not a fan-out target");
    let ask = |gid: &str| {
        Msg::Stream(StreamEvent::CopilotRequest { conversation_id: "c".into(), suggestion_id: gid.into() })
    };
    // Nothing matched yet: nothing to offer.
    e.handle(
        Msg::Stream(StreamEvent::ConversationStarted { conversation_id: "c".into(), queue_id: None }),
        at(0),
    );
    assert!(pushes(&e.handle(ask("g0"), at(1))).is_empty());
    matched(&mut e, "c", "u1", vec![hit("a", 0.9), hit("b", 0.6)], 10);
    let fx = e.handle(ask("g1"), at(100));
    let p = pushes(&fx).remove(0);
    assert_eq!(p.sinks, vec![Sink::GenesysCopilot]);
    assert_eq!(p.copilot_suggestion.as_deref(), Some("g1"));
    assert_eq!(p.items[0].article_id, "a");
}

#[test]
fn a_queue_handed_over_is_forgotten_and_its_held_pushes_are_never_delivered() {
    let mut e = engine(Mode::Auto, &[Sink::Webhook]);
    for (conv, queue) in [("c1", "q1"), ("c2", "q2")] {
        let started =
            StreamEvent::ConversationStarted { conversation_id: conv.into(), queue_id: Some(queue.into()) };
        e.handle(Msg::Stream(started), at(0));
    }
    let held = pushes(&matched(&mut e, "c1", "u1", vec![hit("a", 0.9)], 10));
    let other = pushes(&matched(&mut e, "c2", "u1", vec![hit("b", 0.9)], 20));
    assert_eq!((held.len(), other.len()), (1, 1));
    e.handle(Msg::HandedOver { queue: "q1".into() }, at(30));
    assert!(e.conversation("c1").is_none(), "the handed-over call is still here");
    // The ledger then commits what it held: only the kept queue's push goes.
    let fx = e.handle(Msg::Durable { pushes: held.into_iter().chain(other).collect(), commit: None }, at(40));
    let sent: Vec<String> = delivers(&fx).into_iter().map(|p| p.conversation_id).collect();
    assert_eq!(sent, vec!["c2"]);
    // Nothing of the handed-over call is saved again from here.
    assert!(
        !fx.iter().any(|f| matches!(f, Effect::Persist(r) if r.id == "c1")),
        "a record of the handed-over call: {fx:?}"
    );
}
