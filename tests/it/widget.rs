//! The agent widget over real sockets on loopback: a call's feed over SSE
//! (history for a page opened mid-call, resuming with `Last-Event-ID`
//! without losing or repeating anything, the end of the call), sanitized
//! article HTML, and acknowledgements and feedback reaching the engine's
//! channel. Shared helpers for `widget_auth` and `widget_browser` too.

use std::time::Duration;

use agent_assist::domain::{Participant, StreamEvent};
use agent_assist::net::Dialect;
use agent_assist::net::auth::TokenSource;
use agent_assist::net::rest::{Rest, http_client};
use agent_assist::net::stream::{StreamConfig, StreamHandle, spawn_stream};
use agent_assist::sim::SimHandle;
use agent_assist::widget::{
    AgentSignal, AuthMode, FeedEvent, FeedbackKind, WidgetConfig, WidgetHub, WidgetServer, WidgetSuggestion,
    serve,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::net::{collect_until, endpoint};

pub const WAIT: Duration = Duration::from_secs(20);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A reader of a `text/event-stream` response, parsed by hand: the format
/// is four line prefixes, and the test wants to see exactly what was sent.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "feed refused");
        Self { response, buffer: String::new() }
    }

    /// The next event, or `None` when the server ends the stream.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim_start().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a comment, keep-alive or retry hint
                }
                return Some(Sse { id, event, data: serde_json::from_str(&data).expect("JSON data") });
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk()).await.expect("an event in time");
            match chunk.expect("stream readable") {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }
}

/// A widget config for tests: auth `none` on loopback, small limits.
pub fn open_config() -> WidgetConfig {
    WidgetConfig { auth: AuthMode::None, ..WidgetConfig::default() }
}

/// A widget that signs agents in against the simulator.
pub fn genesys_config(sim: &SimHandle) -> WidgetConfig {
    WidgetConfig {
        auth: AuthMode::Genesys,
        client_id: "widget-test-client".into(),
        api_base: sim.base_url.clone(),
        login_base: sim.base_url.clone(),
        ..WidgetConfig::default()
    }
}

pub async fn start_widget(config: WidgetConfig) -> (WidgetServer, WidgetHub, mpsc::Receiver<AgentSignal>) {
    let hub = WidgetHub::new(&config);
    let (tx, rx) = mpsc::channel(64);
    let server = serve(config, hub.clone(), tx).await.expect("widget starts");
    (server, hub, rx)
}

pub fn suggestion(call: &str, id: &str, title: &str, text: &str) -> FeedEvent {
    FeedEvent::Suggestion(WidgetSuggestion {
        conversation_id: call.into(),
        suggestion_id: id.into(),
        article_id: format!("kb-{id}"),
        title: title.into(),
        score: 0.62,
        probability: Some(0.87),
        text: text.into(),
        url: Some(format!("https://kb.example.com/{id}")),
        state: "sent".into(),
    })
}

/// `POST /agent/session`, with a Genesys token when given.
pub async fn open_session(server: &WidgetServer, call: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}/agent/session", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.json(&json!({ "conversation_id": call })).send().await.expect("session request")
}

pub async fn session_token(server: &WidgetServer, call: &str, token: Option<&str>) -> String {
    let r = open_session(server, call, token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["session"].as_str().unwrap().to_string()
}

/// `GET /agent/events` for a call, resuming after `last` when given.
pub async fn feed(server: &WidgetServer, call: &str, session: &str, last: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{}/agent/events", server.url))
        .query(&[("conversationId", call), ("session", session)]);
    if let Some(l) = last {
        req = req.header("Last-Event-ID", l);
    }
    req.send().await.expect("feed request")
}

/// Follows the simulator's queue with the real transcript stream until it
/// has reported the participants of every call in `calls`, and publishes
/// them to the hub, as the delivery layer does.
pub async fn participants_via_stream(sim: &SimHandle, hub: &WidgetHub, calls: &[&str]) -> StreamHandle {
    let http = http_client(Duration::from_secs(5)).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, Dialect::Notifications));
    let (tx, mut rx) = mpsc::channel(1024);
    let config = StreamConfig { queues: vec![sim.queue_id.clone()], ..StreamConfig::default() };
    let stream = spawn_stream(Rest::new(http, &sim.base_url, auth), config, tx);
    let seen = |events: &[StreamEvent], call: &str| -> Option<Vec<Participant>> {
        events.iter().find_map(|e| match e {
            StreamEvent::Participants { conversation_id, participants } if conversation_id == call => {
                Some(participants.clone())
            }
            _ => None,
        })
    };
    let events = collect_until(&mut rx, WAIT, |ev| calls.iter().all(|c| seen(ev, c).is_some())).await;
    for call in calls {
        let participants = seen(&events, call).unwrap();
        assert!(participants.iter().any(|p| p.purpose == "customer" && !p.id.is_empty()), "{participants:?}");
        hub.publish(FeedEvent::participants(call, &participants));
    }
    stream
}

#[tokio::test]
async fn a_page_gets_the_history_then_resumes_after_a_drop_missing_nothing_and_repeating_nothing() {
    let (server, hub, _signals) = start_widget(open_config()).await;
    let call = "call-resume";
    hub.publish(suggestion(call, "s1", "Reset the router", "Unplug it for **30 seconds**."));
    hub.publish(suggestion(call, "s2", "Check the lights", "A red light means no line."));
    let session = session_token(&server, call, None).await;

    // Opened mid-call: the call's suggestions so far, in order, then live.
    let mut page = SseReader::new(feed(&server, call, &session, None).await);
    let first = page.next().await.unwrap();
    assert_eq!(first.event, "suggestion");
    for key in ["suggestion_id", "article_id", "title", "score", "state", "probability", "html", "url"] {
        assert!(first.data.get(key).is_some(), "`{key}` missing from {}", first.data);
    }
    assert_eq!(first.data["suggestion_id"], "s1");
    assert_eq!(first.data["article_id"], "kb-s1");
    assert_eq!(first.data["html"], "<p>Unplug it for <strong>30 seconds</strong>.</p>\n");
    assert!((first.data["probability"].as_f64().unwrap() - 0.87).abs() < 1e-6);
    assert_eq!(page.next().await.unwrap().data["suggestion_id"], "s2");
    hub.publish(suggestion(call, "s3", "Book an engineer", "Offer the first free slot."));
    let live = page.next().await.unwrap();
    assert_eq!(live.data["suggestion_id"], "s3");
    let resume_from = live.id.clone().expect("events carry ids");

    // The connection drops; the call goes on.
    drop(page);
    hub.publish(suggestion(call, "s4", "Refund the month", "Credit the account."));
    hub.publish(FeedEvent::Update {
        conversation_id: call.into(),
        suggestion_id: "s1".into(),
        state: "superseded".into(),
    });

    // Back with Last-Event-ID: exactly what was missed, then live again.
    let mut page = SseReader::new(feed(&server, call, &session, Some(&resume_from)).await);
    let missed = page.next().await.unwrap();
    assert_eq!((missed.event.as_str(), missed.data["suggestion_id"].as_str()), ("suggestion", Some("s4")));
    let changed = page.next().await.unwrap();
    assert_eq!(changed.event, "update");
    assert_eq!(changed.data, json!({ "suggestion_id": "s1", "state": "superseded" }));
    // A marker published now must be the very next event: nothing repeated.
    hub.publish(suggestion(call, "s5", "Marker", "m"));
    assert_eq!(page.next().await.unwrap().data["suggestion_id"], "s5");
    hub.publish(FeedEvent::Ended { conversation_id: call.into() });
    let end = page.next().await.unwrap();
    assert_eq!((end.event.as_str(), &end.data), ("ended", &json!({ "conversation_id": call })));
    assert_eq!(page.next().await, None, "the stream closes after the end");

    // After the end: resuming yields 204 (the browser stops retrying), and
    // a new page still gets the whole call, ending with `ended`.
    let again = feed(&server, call, &session, end.id.as_deref()).await;
    assert_eq!(again.status(), 204);
    let mut fresh = SseReader::new(feed(&server, call, &session, None).await);
    let mut kinds = Vec::new();
    while let Some(e) = fresh.next().await {
        kinds.push(e.event);
    }
    assert_eq!(
        kinds,
        ["suggestion", "suggestion", "suggestion", "suggestion", "update", "suggestion", "ended"]
    );
    server.stop().await;
}

#[tokio::test]
async fn article_markup_reaches_the_page_as_text_and_links_only_to_the_web() {
    let (server, hub, _signals) = start_widget(open_config()).await;
    let call = "call-xss";
    let evil = "Say <script>alert('x')</script> then <img src=x onerror=\"alert(1)\">.\n\n\
                [Click me](javascript:alert(2)) or [the guide](https://kb.example.com/guide).";
    hub.publish(FeedEvent::Suggestion(WidgetSuggestion {
        url: Some("javascript:alert(3)".into()),
        ..match suggestion(call, "x1", "<b>Bold</b> title", evil) {
            FeedEvent::Suggestion(s) => s,
            _ => unreachable!(),
        }
    }));
    let session = session_token(&server, call, None).await;
    let mut page = SseReader::new(feed(&server, call, &session, None).await);
    let e = page.next().await.unwrap();
    let html = e.data["html"].as_str().unwrap();
    assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("&lt;script&gt;") && html.contains("&lt;img src=x onerror="), "{html}");
    assert!(html.contains(r#"href="https://kb.example.com/guide""#), "{html}");
    assert_eq!(e.data["url"], Value::Null, "a javascript: article URL is dropped");
    // The title stays raw text: the page sets it with textContent.
    assert_eq!(e.data["title"], "<b>Bold</b> title");

    // The page itself forbids inline and foreign script.
    let page = reqwest::get(format!("{}/agent?conversationId={call}", server.url)).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let body = page.text().await.unwrap();
    assert!(body.contains(r#"data-auth="none""#) && body.contains("agent/widget.js"));
    let js = reqwest::get(format!("{}/agent/widget.js", server.url)).await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    server.stop().await;
}

#[tokio::test]
async fn acknowledgements_and_feedback_reach_the_engine_channel_once() {
    let (server, hub, mut signals) = start_widget(open_config()).await;
    let call = "call-feedback";
    hub.publish(suggestion(call, "f1", "Reset", "Unplug it."));
    let session = session_token(&server, call, None).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", server.url)).bearer_auth(&session).json(&body).send()
    };
    let ack = json!({ "conversation_id": call, "suggestion_ids": ["f1", "f1", "unknown"] });
    assert_eq!(post("/agent/ack", ack.clone()).await.unwrap().status(), 204);
    assert_eq!(post("/agent/ack", ack).await.unwrap().status(), 204);
    let fb = json!({ "conversation_id": call, "suggestion_id": "f1", "kind": "copied" });
    assert_eq!(post("/agent/feedback", fb).await.unwrap().status(), 204);
    let unknown = json!({ "conversation_id": call, "suggestion_id": "nope", "kind": "useful" });
    assert_eq!(post("/agent/feedback", unknown).await.unwrap().status(), 400);
    let bad_kind = json!({ "conversation_id": call, "suggestion_id": "f1", "kind": "great" });
    assert_eq!(post("/agent/feedback", bad_kind).await.unwrap().status(), 400);
    let other_call = json!({ "conversation_id": "another", "suggestion_id": "f1", "kind": "useful" });
    assert_eq!(post("/agent/feedback", other_call).await.unwrap().status(), 403);

    let got = tokio::time::timeout(WAIT, signals.recv()).await.unwrap().unwrap();
    let want =
        AgentSignal::Acknowledged { conversation_id: call.into(), suggestion_id: "f1".into(), user_id: None };
    assert_eq!(got, want);
    // The second ack of the same suggestion was not passed on.
    let got = tokio::time::timeout(WAIT, signals.recv()).await.unwrap().unwrap();
    let want = AgentSignal::Feedback {
        conversation_id: call.into(),
        suggestion_id: "f1".into(),
        kind: FeedbackKind::Copied,
        user_id: None,
    };
    assert_eq!(got, want);
    assert!(signals.try_recv().is_err(), "nothing else was signalled");
    server.stop().await;
}

#[tokio::test]
async fn many_open_pages_each_get_every_event_once() {
    use agent_assist::bench::widgets::{Options, measure};
    let opts = Options { streams: 40, rounds: 3, every: Duration::from_millis(20) };
    let r = measure(&opts).await.unwrap();
    assert_eq!(r.opened, 40);
    assert_eq!((r.events_received, r.duplicates), (120, 0), "{r:?}");
    assert_eq!(r.publish_to_page.n, 120);
}
