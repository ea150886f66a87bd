//! The stream → view mapping, without NATS: workers' JSON lines in, the
//! mirror engine's conversations, suggestions and push log out; where
//! commands go, and how answers read.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::{Answer, FloorModel, StreamItem, outcome};
use crate::domain::{Sink, Speaker};
use crate::engine::{
    Action, Actor, Command, Knob, Mode, Policy, PushStatus, Record, ScoredArticle, SuggestionState,
};
use crate::kb::store::StoredArticle;

const W1: &str = "worker-host-101-aaaa";
const W2: &str = "worker-host-202-bbbb";

fn article(id: &str, title: &str, content: &str) -> StoredArticle {
    StoredArticle { id: id.into(), title: title.into(), url: None, tags: vec![], content: content.into() }
}

fn model() -> FloorModel {
    let policy = Policy { show: 0.3, push: 0.5, ..Policy::default() };
    let catalog = vec![
        article("reset", "Resetting your password", "Open Settings, then Security."),
        article("billing", "Billing disputes", "Call the billing desk."),
    ];
    FloorModel::new(policy, &[Sink::Webhook], catalog, vec![])
}

/// A worker's line as its bus publishes it: the audit JSON, `ts` first.
fn line(queue: Option<&str>, owner: &str, rec: &Record, ts: SystemTime) -> StreamItem {
    let body = crate::audit::to_json(ts, rec);
    let conversation = body.get("conversation_id").and_then(Value::as_str).map(String::from);
    StreamItem { queue: queue.map(String::from), conversation, owner: Some(owner.into()), body }
}

struct Feed {
    m: FloorModel,
    now: Instant,
    wall: SystemTime,
}

impl Feed {
    fn new() -> Self {
        Self { m: model(), now: Instant::now(), wall: SystemTime::now() }
    }
    fn rec(&mut self, queue: &str, owner: &str, rec: Record) {
        let item = line(Some(queue), owner, &rec, self.wall);
        self.m.apply(item, self.now, self.wall);
    }
    fn raw(&mut self, owner: &str, body: Value) {
        let item = StreamItem { queue: None, conversation: None, owner: Some(owner.into()), body };
        self.m.apply(item, self.now, self.wall);
    }
    /// A call on `q` with one final utterance, a search and a queued suggestion.
    fn call_with_suggestion(&mut self, q: &str, owner: &str, cid: &str, sid: &str) {
        self.rec(
            q,
            owner,
            Record::ConversationStarted { conversation_id: cid.into(), queue_id: Some(q.into()) },
        );
        self.rec(
            q,
            owner,
            Record::Transcript {
                conversation_id: cid.into(),
                utterance_id: format!("{cid}-u1"),
                speaker: Speaker::Customer,
                text: "I forgot my password".into(),
                is_final: true,
            },
        );
        self.rec(q, owner, search(cid, &[("reset", 0.8), ("billing", 0.2)]));
        self.rec(
            q,
            owner,
            Record::Suggestion {
                suggestion_id: sid.into(),
                conversation_id: cid.into(),
                article_id: "reset".into(),
                title: "Resetting your password".into(),
                score: 0.8,
                state: "queued".into(),
            },
        );
    }
}

fn search(cid: &str, results: &[(&str, f32)]) -> Record {
    Record::Search {
        conversation_id: cid.into(),
        request: 1,
        query: "I forgot my password".into(),
        results: results
            .iter()
            .map(|(a, s)| ScoredArticle { article_id: (*a).into(), score: *s, context: None })
            .collect(),
        stale: false,
        kb_version: 1,
    }
}

fn push(cid: &str, sid: &str, ok: bool) -> Record {
    Record::Push {
        suggestion_id: sid.into(),
        conversation_id: cid.into(),
        sink: Sink::Webhook,
        article_id: "reset".into(),
        ok,
        status: Some(if ok { 204 } else { 500 }),
        attempts: 1,
        latency_ms: 12,
        error: (!ok).then(|| "HTTP 500".to_string()),
    }
}

fn decision(cid: &str, sid: &str, action: Action) -> Record {
    Record::Decision {
        suggestion_id: sid.into(),
        conversation_id: cid.into(),
        article_id: "reset".into(),
        action,
        by: Actor::Operator,
        original: None,
        edited: None,
    }
}

#[test]
fn a_call_its_matches_and_suggestion_show_as_a_local_engine_holds_them() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    let c = f.m.engine().conversation("c1").expect("the call is shown");
    assert_eq!(c.queue_id.as_deref(), Some("q1"));
    assert_eq!(c.utterances.len(), 1);
    assert_eq!(c.window, vec!["c1-u1".to_string()], "the query's utterance is the window");
    assert_eq!(c.matches.len(), 2);
    assert_eq!(c.matches[0].title, "Resetting your password", "titles come from the console's KB copy");
    assert_eq!(c.matches[0].text, "Open Settings, then Security.");
    let s = &c.suggestions[0];
    assert_eq!((s.id.as_str(), &s.state), ("s1", &SuggestionState::Queued));
    assert_eq!(s.content, "Open Settings, then Security.", "the editor starts from the article");
    assert_eq!(f.m.info.owners.get("c1").map(String::as_str), Some(W1));
    assert_eq!(f.m.engine().metrics().utterances, 1);
    assert_eq!(f.m.engine().metrics().suggestions, 1);
}

#[test]
fn a_decision_and_its_push_move_the_suggestion_and_the_push_log() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    f.rec("q1", W1, decision("c1", "s1", Action::Send));
    let state = |m: &FloorModel| m.engine().conversation("c1").unwrap().suggestions[0].state.clone();
    assert_eq!(state(&f.m), SuggestionState::Sending);
    assert_eq!(f.m.engine().push_log().back().map(|e| e.status.clone()), Some(PushStatus::Sending));
    assert_eq!(f.m.engine().pushes_in_flight(), 1);
    f.rec("q1", W1, push("c1", "s1", true));
    assert_eq!(state(&f.m), SuggestionState::Pushed);
    let log = f.m.engine().push_log();
    assert_eq!(log.len(), 1, "one line per suggestion and sink");
    assert!(matches!(log[0].status, PushStatus::Pushed { status: Some(204), .. }), "{:?}", log[0].status);
    assert_eq!(log[0].by, Actor::Operator);
    assert_eq!(f.m.engine().pushes_in_flight(), 0);
    assert_eq!(f.m.engine().metrics().pushes_ok, 1);
}

#[test]
fn a_failed_push_and_a_rejection_show_as_such() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    f.rec("q1", W1, decision("c1", "s1", Action::Send));
    f.rec("q1", W1, push("c1", "s1", false));
    let s = f.m.engine().conversation("c1").unwrap().suggestions[0].clone();
    assert_eq!(s.state, SuggestionState::Failed("HTTP 500".into()));
    assert!(!f.m.engine().conversation("c1").unwrap().pushed.contains_key("reset"), "cooldown lifted");
    f.call_with_suggestion("q1", W1, "c2", "s2");
    f.rec("q1", W1, decision("c2", "s2", Action::Reject));
    let s = &f.m.engine().conversation("c2").unwrap().suggestions[0];
    assert_eq!(s.state, SuggestionState::Rejected);
}

#[test]
fn a_newer_search_supersedes_what_it_no_longer_lists() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    f.rec("q1", W1, search("c1", &[("billing", 0.6), ("reset", 0.1)]));
    let c = f.m.engine().conversation("c1").unwrap();
    assert_eq!(c.suggestions[0].state, SuggestionState::Superseded);
    assert_eq!(c.matches[0].article_id, "billing");
}

#[test]
fn settings_move_the_policy_modes_and_pauses() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    let setting = |k: &str, v: &str| Record::Setting { knob: k.into(), value: v.into() };
    f.rec("q1", W1, setting("push", "0.90"));
    f.rec("q1", W1, setting("mode", "auto"));
    f.rec("q1", W1, setting("topk", "5"));
    f.rec("q1", W1, setting("paused[c1]", "true"));
    f.rec("q1", W1, setting("mode[c1]", "off"));
    let e = f.m.engine();
    assert!((e.policy().push - 0.9).abs() < 1e-6);
    assert_eq!(e.policy().mode, Mode::Auto);
    assert_eq!(e.policy().top_k, 5);
    let c = e.conversation("c1").unwrap();
    assert!(c.paused);
    assert_eq!(c.mode, Some(Mode::Off));
    assert_eq!(c.suggestions[0].state, SuggestionState::Candidate, "below the new push threshold");
    f.rec("q1", W1, setting("paused", "true"));
    assert!(f.m.engine().paused_all());
}

#[test]
fn a_call_heard_of_mid_way_gets_its_queue_and_old_events_keep_their_age() {
    let mut f = Feed::new();
    let rec = Record::Transcript {
        conversation_id: "late".into(),
        utterance_id: "u9".into(),
        speaker: Speaker::Agent,
        text: "anything else?".into(),
        is_final: true,
    };
    let item = line(Some("q2"), W2, &rec, f.wall - Duration::from_secs(40));
    f.m.apply(item, f.now, f.wall);
    let c = f.m.engine().conversation("late").expect("shown");
    assert_eq!(c.queue_id.as_deref(), Some("q2"));
    let age = f.now.duration_since(c.utterances[0].at);
    assert!(age >= Duration::from_secs(39) && age <= Duration::from_secs(41), "{age:?}");
}

#[test]
fn ended_calls_are_forgotten_after_the_grace() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    f.rec("q1", W1, Record::ConversationEnded { conversation_id: "c1".into() });
    let c = f.m.engine().conversation("c1").unwrap();
    assert!(c.ended_at.is_some());
    assert_eq!(c.suggestions[0].state, SuggestionState::Superseded);
    f.m.tick(f.now + Duration::from_secs(30));
    assert!(f.m.engine().conversation("c1").is_some(), "kept a while, greyed");
    f.m.tick(f.now + Duration::from_secs(61));
    assert!(f.m.engine().conversation("c1").is_none());
    assert!(f.m.info.owners.is_empty());
}

#[test]
fn leases_and_metrics_name_each_queues_worker() {
    let mut f = Feed::new();
    f.raw(W1, json!({ "event": "lease", "queue": "q1", "state": "acquired", "resumed": 0 }));
    f.raw(W2, json!({ "event": "lease", "queue": "q2", "state": "acquired", "resumed": 0 }));
    assert_eq!(f.m.info.queue_owners.get("q1").map(String::as_str), Some(W1));
    f.raw(W1, json!({ "event": "metrics", "worker": W1, "queues": ["q1", "q3"] }));
    assert_eq!(f.m.info.queue_owners.get("q3").map(String::as_str), Some(W1));
    f.raw(W2, json!({ "event": "lease", "queue": "q2", "state": "lost" }));
    assert!(!f.m.info.queue_owners.contains_key("q2"));
    assert_eq!(f.m.info.workers_present(f.now), 2);
    assert_eq!(f.m.info.workers_present(f.now + Duration::from_secs(60)), 0);
}

#[test]
fn commands_go_to_the_calls_queue_and_floor_wide_ones_once_per_worker() {
    let mut f = Feed::new();
    f.call_with_suggestion("q1", W1, "c1", "s1");
    let route = |m: &FloorModel, cmd: Command| m.route(&cmd);
    assert_eq!(route(&f.m, Command::Approve { suggestion: "s1".into() }), Ok(vec!["q1".to_string()]));
    assert_eq!(route(&f.m, Command::ApproveAll { conversation: "c1".into() }), Ok(vec!["q1".to_string()]));
    assert!(route(&f.m, Command::Approve { suggestion: "nope".into() }).is_err());
    assert!(route(&f.m, Command::SetPaused { conversation: Some("nope".into()), paused: true }).is_err());
    for (q, w) in [("q1", W1), ("q2", W1), ("q3", W2)] {
        f.raw(w, json!({ "event": "lease", "queue": q, "state": "acquired" }));
    }
    let global = route(&f.m, Command::Adjust { knob: Knob::Push, steps: 1 }).unwrap();
    assert_eq!(global, vec!["q1".to_string(), "q3".to_string()], "one queue per worker");
    assert!(model().route(&Command::SetMode { conversation: None, mode: Mode::Auto }).is_err());
}

#[test]
fn answers_read_as_accepted_refused_no_owner_or_no_answer() {
    let approve = Command::Approve { suggestion: "s1".into() };
    let reply = |v: Value| Answer::Reply(v);
    let accepted = reply(
        json!({ "ok": true, "worker": W1, "queue": "q1", "outcome": [], "suggestion_state": "sending" }),
    );
    assert_eq!(outcome(&approve, "q1", &accepted), "✔ approve accepted by 101-aaaa: sending");
    let taken = reply(json!({ "ok": true, "worker": W1, "outcome": [], "suggestion_state": "pushed" }));
    assert_eq!(outcome(&approve, "q1", &taken), "✖ approve refused by 101-aaaa: the suggestion is pushed");
    let refused = reply(json!({ "ok": true, "worker": W1,
        "outcome": [{ "event": "refused", "message": "not sent: article reset was deleted" }] }));
    assert!(outcome(&approve, "q1", &refused).ends_with("article reset was deleted"));
    assert_eq!(outcome(&approve, "q1", &Answer::NoResponders), "✖ approve: no worker owns queue q1 now");
    assert!(outcome(&approve, "q1", &Answer::TimedOut).contains("did not answer in time"));
    let bad = reply(json!({ "ok": false, "worker": W1, "error": "command not understood" }));
    assert_eq!(outcome(&approve, "q1", &bad), "✖ approve refused by 101-aaaa: command not understood");
    let adjust = Command::Adjust { knob: Knob::Push, steps: 1 };
    let set = reply(json!({ "ok": true, "worker": W2,
        "outcome": [{ "event": "setting", "knob": "push", "value": "0.50" }] }));
    assert_eq!(outcome(&adjust, "q2", &set), "✔ push = 0.50 on 202-bbbb");
}

#[test]
fn the_link_state_is_shown_and_said() {
    let mut m = model();
    let t = Instant::now();
    m.set_link(true, t);
    assert!(m.info.link_up);
    assert!(m.engine().notices().is_empty(), "coming up the first time is not news");
    m.set_link(false, t + Duration::from_secs(1));
    assert!(!m.info.link_up);
    assert!(m.engine().notices().back().is_some_and(|n| n.text.starts_with("floor link down")));
    m.set_link(true, t + Duration::from_secs(5));
    assert!(m.engine().notices().back().is_some_and(|n| n.text.starts_with("floor link up")));
}

/// The dashboard drawn from a model: the same screens, plus the owner
/// column and the floor link.
fn screen(m: &FloorModel, now: Instant) -> String {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let keymap = crate::config::keymap::Keymap::default_map();
    let status = crate::ui::state::StatusInfo {
        dialect: crate::net::Dialect::Notifications,
        token_expires_at: None,
        wall_now: SystemTime::now(),
        queue_depth: 0,
        sim_url: None,
        widget_url: None,
    };
    let ui = crate::ui::state::UiState::default();
    let view = crate::ui::View {
        engine: m.engine(),
        ui: &ui,
        keymap: &keymap,
        status: &status,
        catalog: m.catalog(),
        now,
        floor: Some(&m.info),
    };
    let mut terminal = Terminal::new(TestBackend::new(160, 40)).expect("test terminal");
    terminal.draw(|f| crate::ui::render(f, &view)).expect("drawn");
    terminal.backend().to_string()
}

#[test]
fn the_dashboard_shows_each_calls_worker_and_the_floor_link() {
    let mut f = Feed::new();
    f.m.set_link(true, f.now);
    f.call_with_suggestion("q1", W1, "c1", "s1");
    let up = screen(&f.m, f.now);
    assert!(up.contains("worker"), "{up}");
    assert!(up.contains("101-aaaa"), "the owner column: {up}");
    assert!(up.contains(&format!("worker {W1}")), "the transcript title: {up}");
    assert!(up.contains("⇄ FLOOR 1 worker"), "{up}");
    assert!(up.contains("queued") && up.contains("Resetting your password"), "{up}");
    assert!(!up.contains("CONNECTING"), "no stream state heard yet, none shown: {up}");
    f.m.set_link(false, f.now);
    let down = screen(&f.m, f.now + Duration::from_secs(3));
    assert!(down.contains("FLOOR LINK DOWN 3s"), "{down}");
}
