//! The transcript stream against the simulator on loopback: both dialects,
//! every socket fault, duplicates, status-only and partial events, topic
//! limits and channel rotation.

use std::collections::HashSet;
use std::time::Duration;

use agent_assist::domain::{ConnectionState, Speaker, StreamEvent, TranscriptEvent};
use agent_assist::net::auth::TokenSource;
use agent_assist::net::rest::{Rest, http_client};
use agent_assist::net::socket::SocketConfig;
use agent_assist::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use agent_assist::net::tutorial::spawn_tutorial;
use agent_assist::net::{Backoff, Dialect};
use agent_assist::sim::script::RawFrame;
use agent_assist::sim::{Fault, Script, SimConfig, SimHandle};
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::net::{collect_until, endpoint, eventually, script, sim_config, start};

const WAIT: Duration = Duration::from_secs(20);

fn fast_socket() -> SocketConfig {
    SocketConfig {
        ping_after: Duration::from_millis(600),
        pong_timeout: Duration::from_millis(600),
        ..SocketConfig::default()
    }
}

fn fast_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) }
}

fn open(
    sim: &SimHandle,
    dialect: Dialect,
    tweak: impl FnOnce(&mut StreamConfig),
) -> (StreamHandle, mpsc::Receiver<StreamEvent>) {
    let http = http_client(Duration::from_secs(5)).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, dialect));
    let (tx, rx) = mpsc::channel(1024);
    let handle = match dialect {
        Dialect::Notifications => {
            let mut config = StreamConfig {
                queues: vec![sim.queue_id.clone()],
                socket: fast_socket(),
                backoff: fast_backoff(),
                ..StreamConfig::default()
            };
            tweak(&mut config);
            spawn_stream(Rest::new(http, &sim.base_url, auth), config, tx)
        }
        Dialect::Tutorial => spawn_tutorial(auth, sim.base_url.clone(), fast_socket(), fast_backoff(), tx),
    };
    (handle, rx)
}

fn transcripts(events: &[StreamEvent]) -> Vec<&TranscriptEvent> {
    events.iter().filter_map(|e| if let StreamEvent::Transcript(t) = e { Some(t) } else { None }).collect()
}

fn lines(events: &[StreamEvent], conversation: &str) -> Vec<(Speaker, String)> {
    transcripts(events)
        .iter()
        .filter(|t| t.conversation_id == conversation)
        .map(|t| (t.speaker, t.text.clone()))
        .collect()
}

fn ended(events: &[StreamEvent], id: &str) -> bool {
    events
        .iter()
        .any(|e| matches!(e, StreamEvent::ConversationEnded { conversation_id } if conversation_id == id))
}

fn call(id: &str, n: usize, gap_ms: u64) -> Script {
    let texts: Vec<(String, String)> = (0..n)
        .map(|i| {
            let ch = if i % 3 == 0 { "INTERNAL" } else { "EXTERNAL" };
            (ch.to_string(), format!("utterance number {i} of call {id}"))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|(c, t)| (c.as_str(), t.as_str())).collect();
    script(id, &pairs, gap_ms)
}

/// Runs `scripts` with `faults` through one dialect and returns everything
/// the stream reported, once every conversation has all its utterances.
async fn run(dialect: Dialect, config: SimConfig) -> (Vec<StreamEvent>, SimHandle) {
    let expected: Vec<(String, usize)> =
        config.scripts.iter().map(|s| (s.id.clone(), s.utterances.len())).collect();
    let sim = start(config).await;
    let (handle, mut rx) = open(&sim, dialect, |_| {});
    let events = collect_until(&mut rx, WAIT, |ev| {
        expected.iter().all(|(id, n)| {
            let got: HashSet<&str> = transcripts(ev)
                .iter()
                .filter(|t| &t.conversation_id == id)
                .map(|t| t.text.as_str())
                .collect();
            got.len() >= *n
        })
    })
    .await;
    handle.stop().await;
    (events, sim)
}

#[tokio::test]
async fn notifications_stream_follows_a_call_from_start_to_end() {
    let s = script(
        "conv-1",
        &[
            ("INTERNAL", "Thanks for calling"),
            ("EXTERNAL", "I forgot my password"),
            ("EXTERNAL", "and now I am locked out"),
        ],
        30,
    );
    let sim = start(sim_config(vec![s])).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |_| {});
    let events = collect_until(&mut rx, WAIT, |ev| ended(ev, "conv-1")).await;
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Connection(ConnectionState::Live))));
    assert!(
        events.iter().any(|e| matches!(e, StreamEvent::ConversationStarted { conversation_id, queue_id }
        if conversation_id == "conv-1" && queue_id.as_deref() == Some(sim.queue_id.as_str())))
    );
    assert_eq!(
        lines(&events, "conv-1"),
        vec![
            (Speaker::Agent, "Thanks for calling".to_string()),
            (Speaker::Customer, "I forgot my password".to_string()),
            (Speaker::Customer, "and now I am locked out".to_string()),
        ]
    );
    assert!(transcripts(&events).iter().all(|t| t.is_final && t.offset_ms.is_some()));
    handle.stop().await;
    sim.stop().await;
}

/// A simulator started at a later round (as the demo starts each run)
/// plays its calls under fresh ids, from start to end.
#[tokio::test]
async fn calls_started_at_a_later_round_carry_that_rounds_ids() {
    let mut config = sim_config(vec![script("conv-1", &[("EXTERNAL", "my card was declined")], 30)]);
    config.first_round = 7;
    let sim = start(config).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |_| {});
    let events = collect_until(&mut rx, WAIT, |ev| ended(ev, "conv-1-r7")).await;
    assert_eq!(lines(&events, "conv-1-r7"), vec![(Speaker::Customer, "my card was declined".to_string())]);
    assert!(lines(&events, "conv-1").is_empty());
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn the_same_script_yields_the_same_utterances_in_both_dialects() {
    let scripts = crate::support::bundled_scripts();
    let sample: Vec<Script> = scripts.into_iter().take(2).collect();
    let mut per_dialect = Vec::new();
    for dialect in [Dialect::Notifications, Dialect::Tutorial] {
        let mut config = sim_config(sample.clone());
        config.speed = 200.0;
        let (events, sim) = run(dialect, config).await;
        let got: Vec<Vec<(Speaker, String)>> = sample.iter().map(|s| lines(&events, &s.id)).collect();
        per_dialect.push(got);
        sim.stop().await;
    }
    assert_eq!(per_dialect[0], per_dialect[1]);
    let want: Vec<(Speaker, String)> = sample[0]
        .utterances
        .iter()
        .map(|u| (Speaker::from_channel(Some(&u.channel)), u.text.clone()))
        .collect();
    assert_eq!(per_dialect[0][0], want);
}

#[tokio::test]
async fn dropped_sockets_reconnect_and_the_stream_resumes() {
    for dialect in [Dialect::Notifications, Dialect::Tutorial] {
        let mut config = sim_config(vec![call("drop-1", 12, 150)]);
        config.faults = vec![Fault::WsDrop { every: 3 }];
        let (events, sim) = run(dialect, config).await;
        let reconnects = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Connection(ConnectionState::Reconnecting { .. })))
            .count();
        assert!(reconnects >= 2, "{dialect}: only {reconnects} reconnects");
        let texts: Vec<&str> = transcripts(&events).iter().map(|t| t.text.as_str()).collect();
        let unique: HashSet<&&str> = texts.iter().collect();
        assert_eq!(unique.len(), texts.len(), "{dialect}: duplicate utterances {texts:?}");
        assert!(sim.stats().faults_injected["ws-drop"] >= 2);
        sim.stop().await;
    }
}

#[tokio::test]
async fn malformed_oversized_and_duplicate_frames_never_stop_the_stream() {
    for dialect in [Dialect::Notifications, Dialect::Tutorial] {
        let mut config = sim_config(vec![call("bad-1", 10, 20)]);
        config.faults = vec![Fault::WsMalformed { every: 1 }, Fault::WsDuplicate { every: 2 }];
        let (events, sim) = run(dialect, config).await;
        let discarded = events.iter().filter(|e| matches!(e, StreamEvent::Discarded { .. })).count();
        assert!(discarded >= 3, "{dialect}: {discarded} discarded");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::Discarded { reason } if reason.contains("exceeds")))
        );
        let ids: Vec<&str> = transcripts(&events).iter().map(|t| t.utterance_id.as_str()).collect();
        assert_eq!(
            ids.len(),
            ids.iter().collect::<HashSet<_>>().len(),
            "{dialect}: duplicates passed: {ids:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, StreamEvent::Connection(ConnectionState::Reconnecting { .. })))
        );
        assert!(sim.stats().faults_injected["ws-duplicate"] >= 2);
        sim.stop().await;
    }
}

#[tokio::test]
async fn socket_closing_and_silence_trigger_reconnects_without_loss() {
    let mut config = sim_config(vec![call("closing-1", 10, 120)]);
    config.faults = vec![Fault::SocketClosing { every: 3 }];
    let (events, sim) = run(Dialect::Notifications, config).await;
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Connection(ConnectionState::Reconnecting { reason, .. }) if reason.contains("closing"))));
    assert!(sim.stats().ws_connections >= 2);
    sim.stop().await;

    // Every connection goes silent 0.3 s after it opens (no heartbeats,
    // pongs or events): the client pings, hears nothing, and reconnects;
    // utterances flow again on the new connection.
    let mut config = sim_config(vec![call("silent-1", 30, 150)]);
    config.heartbeat = Duration::from_millis(100);
    config.faults = vec![Fault::HeartbeatStop { after: Duration::from_millis(300) }];
    let sim = start(config).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |_| {});
    let silence = |e: &StreamEvent| matches!(e, StreamEvent::Connection(ConnectionState::Reconnecting { reason, .. }) if reason.contains("no heartbeat"));
    let events = collect_until(&mut rx, WAIT, |ev| {
        ev.iter()
            .position(silence)
            .is_some_and(|i| ev[i..].iter().any(|e| matches!(e, StreamEvent::Transcript(_))))
    })
    .await;
    assert!(events.iter().any(silence));
    assert_eq!(sim.stats().pings_answered, 0);
    assert!(sim.stats().ws_connections >= 2);
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn expiring_tokens_are_refreshed_and_subscriptions_keep_working() {
    let scripts = vec![call("tok-1", 4, 50), call("tok-2", 4, 50), call("tok-3", 4, 50)];
    let mut config = sim_config(scripts);
    config.start_gap = Duration::from_millis(700);
    config.faults = vec![Fault::TokenExpire { after: Duration::from_millis(300) }];
    let (_, sim) = run(Dialect::Notifications, config).await;
    let stats = sim.stats();
    assert!(stats.tokens_issued >= 2, "{stats:?}");
    assert!(stats.served_401 >= 1, "{stats:?}");
    sim.stop().await;
}

#[tokio::test]
async fn status_only_partial_and_unknown_events_are_tolerated() {
    let topic = "v2.conversations.cap-1.transcription";
    let frames = vec![
        json!({"topicName": topic, "eventBody": {"conversationId": "cap-1", "status": {"status": "SESSION_ONGOING"}}}),
        json!({"topicName": topic, "eventBody": {"conversationId": "cap-1", "transcripts": [{"isFinal": true}]}}),
        json!({"topicName": "v2.users.u.presence", "eventBody": {}}),
        json!({"topicName": topic, "eventBody": {"conversationId": "cap-1", "transcripts": [
            {"isFinal": false, "channel": "EXTERNAL", "alternatives": [{"transcript": "my earbuds"}]}]}}),
        json!({"topicName": topic, "eventBody": {"conversationId": "cap-1", "transcripts": [
            {"utteranceId": "u-1", "channel": "EXTERNAL", "alternatives": [{"transcript": "my earbuds won't pair", "offsetMs": 10}]}]}}),
        json!({"topicName": topic, "eventBody": {"conversationId": "cap-1", "status": {"status": "SESSION_ENDED"}}}),
    ];
    let captured = Script {
        id: "cap-1".into(),
        queue_id: None,
        title: None,
        expected_articles: vec![],
        utterances: vec![],
        frames: frames
            .into_iter()
            .enumerate()
            .map(|(i, frame)| RawFrame { at_ms: i as u64 * 20, frame })
            .collect(),
    };
    let sim = start(sim_config(vec![captured])).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |_| {});
    let events = collect_until(&mut rx, WAIT, |ev| ended(ev, "cap-1")).await;
    let t = transcripts(&events);
    assert_eq!(t.len(), 2, "{t:#?}");
    assert!(!t[0].is_final && t[1].is_final);
    assert_eq!((t[1].utterance_id.as_str(), t[1].text.as_str()), ("u-1", "my earbuds won't pair"));
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn topics_beyond_a_channels_limit_open_another_channel() {
    let scripts: Vec<Script> = (0..3).map(|i| call(&format!("lim-{i}"), 6, 60)).collect();
    let mut config = sim_config(scripts.clone());
    config.concurrency = 3;
    let expected: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let sim = start(config).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |c| c.max_topics = 2);
    let events = collect_until(&mut rx, WAIT, |ev| expected.iter().all(|id| ended(ev, id))).await;
    for id in &expected {
        assert_eq!(lines(&events, id).len(), 6, "{id}");
    }
    assert!(sim.stats().channels_created >= 2, "{:?}", sim.stats());
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn channels_are_rotated_before_they_expire() {
    let mut config = sim_config(vec![call("rot-1", 16, 150)]);
    config.channel_ttl = Duration::from_secs(2);
    let sim = start(config).await;
    let (handle, mut rx) =
        open(&sim, Dialect::Notifications, |c| c.rotate_before = Duration::from_millis(1500));
    let events = collect_until(&mut rx, WAIT, |ev| ended(ev, "rot-1")).await;
    assert!(sim.stats().channels_created >= 2, "{:?}", sim.stats());
    let ids: Vec<&str> = transcripts(&events).iter().map(|t| t.utterance_id.as_str()).collect();
    assert_eq!(ids.len(), ids.iter().collect::<HashSet<_>>().len());
    assert_eq!(lines(&events, "rot-1").len(), 16, "rotation lost utterances");
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn calls_that_end_or_start_during_an_outage_are_caught_up_after_it() {
    outage_catch_up(vec![]).await.stop().await;
}

#[tokio::test]
async fn a_failed_catch_up_query_is_retried() {
    // Every second analytics query fails: the first one after the outage
    // among them, so gap-2 is only found by a retry.
    let sim = outage_catch_up(vec![Fault::Analytics500 { every: 2 }]).await;
    assert!(sim.stats().served_500 >= 1, "{:?}", sim.stats());
    sim.stop().await;
}

async fn outage_catch_up(faults: Vec<Fault>) -> SimHandle {
    // While every socket is down, `gap-1` ends and `gap-2` starts: both
    // events are lost (the simulator stops repeating gap-2's announcement
    // after 100 ms), so only the analytics catch-up after reconnecting can
    // end the one and find the other.
    let mut config = sim_config(vec![call("gap-1", 8, 100), call("gap-2", 40, 100)]);
    config.concurrency = 2;
    config.start_gap = Duration::from_millis(1500);
    config.subscribe_grace = Duration::from_millis(100);
    config.faults = faults;
    let sim = start(config).await;
    let (handle, mut rx) =
        open(&sim, Dialect::Notifications, |c| c.catch_up_retry = Duration::from_millis(200));
    let mut events = collect_until(&mut rx, WAIT, |ev| !lines(ev, "gap-1").is_empty()).await;
    sim.set_outage(true);
    assert_eq!(sim.stats().conversations_ended, 0);
    // gap-2 is past its grace and talking to nobody once the simulator has
    // sent more utterances than gap-1 has.
    eventually(WAIT, "gap-1 to end and gap-2 to talk", || {
        let s = sim.stats();
        s.conversations_ended == 1 && s.utterances_sent > 8
    })
    .await;
    sim.set_outage(false);
    events.extend(collect_until(&mut rx, WAIT, |ev| ended(ev, "gap-1") && ended(ev, "gap-2")).await);
    assert!(lines(&events, "gap-1").len() < 8);
    let heard = lines(&events, "gap-2");
    assert!(!heard.is_empty() && heard.len() < 40, "{heard:?}");
    let started = |e: &StreamEvent| matches!(e, StreamEvent::ConversationStarted { conversation_id, .. } if conversation_id == "gap-2");
    assert_eq!(events.iter().filter(|e| started(e)).count(), 1);
    handle.stop().await;
    sim
}

#[tokio::test]
async fn without_analytics_permission_the_stream_warns_once_and_goes_on() {
    // Reconnects (socket_closing) would retry a catch-up; one warning is enough.
    let mut config = sim_config(vec![call("perm-1", 6, 50)]);
    config.faults = vec![Fault::Analytics403, Fault::SocketClosing { every: 3 }];
    let sim = start(config).await;
    let (handle, mut rx) = open(&sim, Dialect::Notifications, |_| {});
    let events = collect_until(&mut rx, WAIT, |ev| ended(ev, "perm-1")).await;
    assert_eq!(lines(&events, "perm-1").len(), 6);
    let warnings: Vec<&String> = events
        .iter()
        .filter_map(|e| if let StreamEvent::Warning { message } = e { Some(message) } else { None })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("analytics:conversationDetail:view"), "{}", warnings[0]);
    assert!(sim.stats().ws_connections >= 2, "{:?}", sim.stats());
    handle.stop().await;
    sim.stop().await;
}
