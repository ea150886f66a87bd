//! The agent widget as the product runs it: the runtime in auto mode with
//! the `widget` and `webhook` sinks against the simulator. What the engine
//! sends appears on the call's SSE feed under the same suggestion id the
//! webhook got, the page's acknowledgement and the agent's feedback come
//! back to the engine (audit log, push log, per-article counts), and the
//! call's end closes its feed.

use std::time::Duration;

use agent_assist::domain::Sink;
use agent_assist::engine::{Mode, Msg, PushStatus};
use agent_assist::runtime::{Options, Runtime};
use agent_assist::widget::AuthMode;
use serde_json::json;

use crate::pipeline::{SharedBuf, config_for, fast, test_paths};
use crate::support::bundled_scripts;
use crate::support::net::start;
use crate::widget::SseReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_engine_sends_reaches_the_agent_page_and_feedback_comes_back() {
    let mut sc = fast(bundled_scripts().into_iter().take(2).collect());
    sc.speed = 4.0;
    let sim = start(sc).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_for(&sim, Mode::Auto);
    config.delivery.sinks = vec![Sink::Widget, Sink::Webhook];
    config.widget.auth = AuthMode::None;
    let out = SharedBuf::default();
    let opts = Options { headless_out: Some(Box::new(out.clone())), ..Options::default() };
    let mut rt = Runtime::start(&config, &test_paths(&tmp), opts).await.unwrap();
    let url = rt.widget_url().expect("the widget is served").to_string();

    // Run until a suggestion has been delivered to the widget.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (call, sid) = loop {
        assert!(tokio::time::Instant::now() < deadline, "nothing delivered to the widget");
        let msg = rt.next().await;
        rt.handle(msg);
        let done = rt
            .engine()
            .push_log()
            .iter()
            .find(|e| e.sink == Sink::Widget && matches!(e.status, PushStatus::Pushed { .. }));
        if let Some(e) = done {
            break (e.conversation_id.clone(), e.suggestion_id.clone());
        }
    };
    // A page opened now gets the call's suggestions so far.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/agent/session"))
        .json(&json!({ "conversation_id": call }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.json::<serde_json::Value>().await.unwrap()["session"].as_str().unwrap().to_string();
    let events = http
        .get(format!("{url}/agent/events"))
        .query(&[("conversationId", call.as_str()), ("session", session.as_str())])
        .send()
        .await
        .unwrap();
    let mut page = SseReader::new(events);
    let first = tokio::time::timeout(Duration::from_secs(20), page.next()).await.unwrap().unwrap();
    assert_eq!(first.event, "suggestion");
    assert_eq!(first.data["suggestion_id"], sid.as_str());
    assert!(
        sim.pushes().iter().any(|p| p.suggestion_id.as_deref() == Some(sid.as_str())),
        "the webhook got it too"
    );

    // The page acknowledges it and the agent finds it useful.
    for (path, body) in [
        ("/agent/ack", json!({ "conversation_id": call, "suggestion_ids": [sid] })),
        ("/agent/feedback", json!({ "conversation_id": call, "suggestion_id": sid, "kind": "useful" })),
    ] {
        let r = http.post(format!("{url}{path}")).bearer_auth(&session).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{path}");
    }
    let article = first.data["article_id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rt.engine().article_feedback(&article).useful == 0 {
        assert!(tokio::time::Instant::now() < deadline, "feedback did not reach the engine");
        let msg = tokio::time::timeout(Duration::from_secs(1), rt.next()).await.unwrap_or(Msg::Tick);
        rt.handle(msg);
    }
    assert_eq!(rt.engine().article_feedback(&article).shown, 1);
    assert!(
        rt.engine()
            .push_log()
            .iter()
            .any(|e| e.suggestion_id == sid
                && matches!(e.status, PushStatus::Pushed { acknowledged: true, .. }))
    );
    rt.shutdown().await;
    let lines = out.lines();
    assert!(lines.iter().any(|l| l["event"] == "widget" && l["url"] == url.as_str()));
    assert!(lines.iter().any(|l| l["event"] == "agent_feedback" && l["feedback"] == "useful"));
    assert!(lines.iter().any(|l| l["event"] == "acknowledged" && l["suggestion_id"] == sid.as_str()));
    assert!(lines.iter().any(|l| l["event"] == "push" && l["sink"] == "widget" && l["ok"] == true));
    sim.stop().await;
}
