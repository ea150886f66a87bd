//! Hardening of the network side against the simulator on loopback: server
//! numbers that used to panic, ids that used to escape their URL path
//! segment, REST rate limits and 5xx, and failed token refreshes in both
//! dialects.

use std::time::Duration;

use agent_assist::domain::{ConnectionState, PushItem, PushRequest, StreamEvent};
use agent_assist::net::auth::TokenSource;
use agent_assist::net::push::{PushClient, PushConfig};
use agent_assist::net::rest::{Rest, RestRetry, http_client};
use agent_assist::net::socket::SocketConfig;
use agent_assist::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use agent_assist::net::tutorial::spawn_tutorial;
use agent_assist::net::{Backoff, Dialect, Endpoint, Secret};
use agent_assist::sim::{Fault, Script, SimHandle};
use tokio::sync::mpsc;

use crate::support::net::{collect_until, endpoint, script, sim_config, start};

const WAIT: Duration = Duration::from_secs(20);

fn fast_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) }
}

fn push_client(sim: &SimHandle) -> PushClient {
    let http = http_client(Duration::from_secs(5)).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, Dialect::Notifications));
    let config = PushConfig { max_attempts: 3, backoff: fast_backoff(), ..PushConfig::default() };
    PushClient::new(http, auth, &sim.base_url, config)
}

fn request(conversation_id: &str) -> PushRequest {
    PushRequest {
        suggestion_id: format!("s-{conversation_id}"),
        conversation_id: conversation_id.into(),
        items: vec![PushItem {
            article_id: "password-reset".into(),
            title: "Resetting a forgotten password".into(),
            content: "Use the reset link.".into(),
            score: 0.7,
        }],
        sinks: vec![agent_assist::domain::Sink::Webhook],
        operator: false,
        customer_participant: None,
        copilot_suggestion: None,
        url: None,
        probability: None,
    }
}

#[tokio::test]
async fn ids_with_url_characters_stay_one_path_segment() {
    let sim = start(sim_config(vec![])).await;
    let client = push_client(&sim);
    let id = "a/b?c=1#d%2Fe f";
    let outcome = client.push(&request(id), &mut |_| {}).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.status, Some(204));
    let pushes = sim.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].conversation_id, id, "the server saw exactly the id");
    // Ids no URL path can carry are refused, not sent somewhere else.
    let outcome = client.push(&request(".."), &mut |_| {}).await;
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("cannot be used in a URL")), "{outcome:?}");
    assert_eq!(sim.pushes().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn an_absurd_retry_after_fails_the_push_instead_of_panicking() {
    let mut config = sim_config(vec![]);
    config.faults = vec!["push-429:every=1,retry_after=1e20".parse::<Fault>().unwrap()];
    let sim = start(config).await;
    // A panic here would kill the push task and leave the suggestion `Sending`.
    let outcome = tokio::spawn({
        let client = push_client(&sim);
        async move { client.push(&request("c1"), &mut |_| {}).await }
    })
    .await
    .expect("the push task does not panic");
    assert_eq!(outcome.status, Some(429));
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("more than we wait")), "{outcome:?}");
    sim.stop().await;
}

/// A login service that answers every token request with `body`.
async fn token_server(body: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move || async move {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test]
async fn a_huge_or_odd_expires_in_still_gives_a_usable_token() {
    for body in [
        r#"{"access_token":"t1","expires_in":18446744073709551615}"#,
        r#"{"access_token":"t2","expires_in":1e300}"#,
        r#"{"access_token":"t3","expires_in":-5}"#,
        r#"{"access_token":"t4","expires_in":3599.5}"#,
    ] {
        let (base, server) = token_server(body).await;
        let http = http_client(Duration::from_secs(5)).unwrap();
        let auth = TokenSource::new(
            http,
            Endpoint {
                dialect: Dialect::Notifications,
                api_base: base.clone(),
                login_base: base,
                client_id: "id".into(),
                client_secret: Secret::new("secret"),
            },
        );
        let token = tokio::spawn(async move { auth.token().await }).await.expect("no panic");
        assert!(token.is_ok(), "{body}: {token:?}");
        server.abort();
    }
}

#[tokio::test]
async fn the_simulator_refuses_lifetimes_it_cannot_write_instead_of_panicking() {
    let mut config = sim_config(vec![]);
    config.channel_ttl = Duration::from_secs(u64::MAX);
    let err = agent_assist::sim::spawn(config).await.err().expect("refused");
    assert!(err.to_string().contains("channel ttl"), "{err}");
}

/// A simulator playing `calls` with `faults` that holds each call until its
/// topic is subscribed: these tests check that retries get there, not how
/// fast.
async fn held_sim(calls: Vec<Script>, faults: &[&str]) -> SimHandle {
    let mut config = sim_config(calls);
    config.faults = faults.iter().map(|f| f.parse::<Fault>().unwrap()).collect();
    config.subscribe_grace = WAIT;
    start(config).await
}

/// REST calls retried quickly, `attempts` requests per call at most.
fn fast_rest_retry(attempts: u32) -> RestRetry {
    RestRetry { max_attempts: attempts, backoff: fast_backoff(), ..RestRetry::default() }
}

fn open(sim: &SimHandle, dialect: Dialect, max_topics: usize) -> (StreamHandle, mpsc::Receiver<StreamEvent>) {
    open_with(sim, dialect, max_topics, fast_rest_retry(4))
}

fn open_with(
    sim: &SimHandle,
    dialect: Dialect,
    max_topics: usize,
    retry: RestRetry,
) -> (StreamHandle, mpsc::Receiver<StreamEvent>) {
    let http = http_client(Duration::from_secs(5)).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, dialect));
    let socket = SocketConfig {
        ping_after: Duration::from_millis(600),
        pong_timeout: Duration::from_millis(600),
        ..SocketConfig::default()
    };
    let (tx, rx) = mpsc::channel(1024);
    let handle = match dialect {
        Dialect::Notifications => {
            let config = StreamConfig {
                queues: vec![sim.queue_id.clone()],
                socket,
                backoff: fast_backoff(),
                max_topics,
                ..StreamConfig::default()
            };
            spawn_stream(Rest::new(http, &sim.base_url, auth).with_retry(retry), config, tx)
        }
        Dialect::Tutorial => spawn_tutorial(auth, sim.base_url.clone(), socket, fast_backoff(), tx),
    };
    (handle, rx)
}

fn failed(events: &[StreamEvent]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        StreamEvent::Connection(ConnectionState::Failed { reason }) => Some(reason.as_str()),
        _ => None,
    })
}

fn finals(events: &[StreamEvent], id: &str) -> usize {
    events.iter().filter(|e| matches!(e, StreamEvent::Transcript(t) if t.conversation_id == id)).count()
}

#[tokio::test]
async fn rate_limits_and_5xx_on_channels_and_subscriptions_are_retried() {
    for fault in ["rest-429:every=2,retry_after=0.05", "rest-503:every=2"] {
        let calls = vec![
            script("r1", &[("EXTERNAL", "one"), ("EXTERNAL", "two")], 50),
            script("r2", &[("EXTERNAL", "three"), ("EXTERNAL", "four")], 50),
        ];
        let sim = held_sim(calls, &[fault]).await;
        // One topic per channel: every call needs another channel, and every
        // second channel or subscription request is refused.
        let (handle, mut rx) = open(&sim, Dialect::Notifications, 1);
        let events = collect_until(&mut rx, WAIT, |ev| {
            failed(ev).is_some() || (finals(ev, "r1") >= 2 && finals(ev, "r2") >= 2)
        })
        .await;
        assert_eq!(failed(&events), None, "{fault}");
        let stats = sim.stats();
        assert!(stats.served_429 + stats.served_500 >= 3, "{fault}: {stats:?}");
        assert!(stats.channels_created >= 3, "{stats:?}");
        handle.stop().await;
        sim.stop().await;
    }
}

#[tokio::test]
async fn a_refused_subscription_on_a_live_channel_is_put_again() {
    // Channel, subscription, then the call's added topic is refused (every
    // third request), with no retry inside the REST call. The socket stays
    // live and no other call changes the list, so only putting the list
    // again brings the call's words.
    let calls = vec![script("s1", &[("EXTERNAL", "one"), ("EXTERNAL", "two")], 50)];
    let sim = held_sim(calls, &["rest-503:every=3"]).await;
    let (handle, mut rx) = open_with(&sim, Dialect::Notifications, 1000, fast_rest_retry(1));
    let events = collect_until(&mut rx, WAIT, |ev| failed(ev).is_some() || finals(ev, "s1") >= 2).await;
    assert_eq!(failed(&events), None);
    let stats = sim.stats();
    assert!(stats.served_500 >= 1, "the fault fired: {stats:?}");
    // The call shared the first channel: no reconnect did the repair.
    assert_eq!(stats.channels_created, 1, "{stats:?}");
    handle.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn the_operator_is_told_while_transcript_subscriptions_keep_failing_and_when_they_recover() {
    let calls = vec![script("u1", &[("EXTERNAL", "one"), ("EXTERNAL", "two")], 50)];
    let sim = held_sim(calls, &[]).await;
    sim.fail_transcript_subscriptions(Some(503));
    let (handle, mut rx) = open_with(&sim, Dialect::Notifications, 1000, fast_rest_retry(1));
    let warned = |ev: &[StreamEvent], what: &str| {
        ev.iter().any(|e| matches!(e, StreamEvent::Warning { message } if message.contains(what)))
    };
    let events = collect_until(&mut rx, WAIT, |ev| failed(ev).is_some() || warned(ev, "not arriving")).await;
    assert_eq!(failed(&events), None);
    assert_eq!(finals(&events, "u1"), 0, "nothing is heard while refused");
    sim.fail_transcript_subscriptions(None);
    let events = collect_until(&mut rx, WAIT, |ev| {
        failed(ev).is_some() || (finals(ev, "u1") >= 2 && warned(ev, "subscribed again"))
    })
    .await;
    assert_eq!(failed(&events), None);
    assert_eq!(sim.stats().channels_created, 1, "repaired without a new channel");
    handle.stop().await;
    sim.stop().await;
}

/// Streams `dialect`, then makes every token stale and the login service
/// answer `status`, and drops the sockets. Returns the events up to the
/// first `Failed`, or up to `Live` again once the login service recovers.
async fn refresh_failure(dialect: Dialect, status: u16) -> (Vec<StreamEvent>, SimHandle) {
    let call = script("t1", &[("EXTERNAL", "hello"); 1], 10);
    let sim = start(sim_config(vec![call])).await;
    let (handle, mut rx) = open(&sim, dialect, 1000);
    let live = |e: &StreamEvent| matches!(e, StreamEvent::Connection(ConnectionState::Live));
    // A transcript means the simulator has the listener registered too.
    collect_until(&mut rx, WAIT, |ev| ev.iter().any(|e| matches!(e, StreamEvent::Transcript(_)))).await;
    sim.fail_token_requests(Some(status));
    sim.revoke_tokens();
    // Drop the sockets: reconnecting meets the stale token.
    sim.set_outage(true);
    sim.set_outage(false);
    let retrying = |ev: &[StreamEvent]| {
        ev.iter().any(|e| {
            matches!(e, StreamEvent::Connection(ConnectionState::Reconnecting { reason, delay_ms, .. })
                if reason.contains("token") && *delay_ms > 0)
        })
    };
    let mut events = collect_until(&mut rx, WAIT, |ev| failed(ev).is_some() || retrying(ev)).await;
    if failed(&events).is_none() {
        sim.fail_token_requests(None);
        events.extend(collect_until(&mut rx, WAIT, |ev| failed(ev).is_some() || ev.iter().any(live)).await);
    }
    handle.stop().await;
    (events, sim)
}

#[tokio::test]
async fn a_transient_refresh_failure_backs_off_and_recovers_in_both_dialects() {
    for dialect in [Dialect::Tutorial, Dialect::Notifications] {
        let (events, sim) = refresh_failure(dialect, 503).await;
        assert_eq!(failed(&events), None, "{dialect}: {events:#?}");
        assert!(matches!(events.last(), Some(StreamEvent::Connection(ConnectionState::Live))), "{dialect}");
        sim.stop().await;
    }
}

#[tokio::test]
async fn a_permanent_refresh_failure_is_reported_as_failed_in_both_dialects() {
    for dialect in [Dialect::Tutorial, Dialect::Notifications] {
        let (events, sim) = refresh_failure(dialect, 401).await;
        let reason = failed(&events).unwrap_or_else(|| panic!("{dialect}: not failed: {events:#?}"));
        assert!(reason.contains("401") && reason.contains("authentication failed"), "{dialect}: {reason}");
        sim.stop().await;
    }
}
