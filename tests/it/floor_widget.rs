//! The agent widget on a floor: two worker processes with the `widget`
//! sink on a real nats-server and the real simulator. A page opened on the
//! worker that does not own a call gets the owner's suggestion once, the
//! agent's acknowledgement and feedback posted there are recorded by the
//! owner (and only by it), and a page that reconnects to the other worker
//! with its `Last-Event-ID` resumes without a duplicate or a gap.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::floor::{Member, Rig, until};
use crate::widget::{Sse, SseReader};

/// A worker whose suggestions also go to the agent widget (no sign-in:
/// loopback only).
fn widget_worker(rig: &Rig, name: &str) -> Member {
    let config = rig.root().join(name).join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[delivery]\nsinks = [\"widget\", \"webhook\"]\n\n[widget]\nauth = \"none\"\nbind = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    rig.worker(name, "auto", "2s")
}

fn widget_url(m: &Member) -> Option<String> {
    m.events("widget").find_map(|v| v["url"].as_str().map(String::from))
}

/// Waits until both workers hold queues and listen for pages, then for a
/// suggestion one of them delivered to the widget on a call still going:
/// (that worker's index, the call, the suggestion).
fn a_live_widget_delivery(all: &mut [&mut Member], what: &str) -> (usize, String, String) {
    until(all, Duration::from_secs(90), "queues held and widgets listening", |m| {
        m.iter().all(|w| widget_url(w).is_some() && !w.held().is_empty())
    });
    let mut found = None;
    until(all, Duration::from_secs(120), what, |m| {
        found = (0..2).find_map(|i| {
            let ended: BTreeSet<&str> =
                m[i].events("conversation_ended").filter_map(|v| v["conversation_id"].as_str()).collect();
            m[i].events("push")
                .filter(|v| v["sink"] == "widget" && v["ok"] == true)
                .filter(|v| !ended.contains(v["conversation_id"].as_str().unwrap_or("")))
                .find_map(|v| {
                    Some((
                        i,
                        v["conversation_id"].as_str()?.to_string(),
                        v["suggestion_id"].as_str()?.to_string(),
                    ))
                })
        });
        found.is_some()
    });
    found.expect("until returns once found")
}

/// Opens a page's feed on `base` for `call`, resuming after `last` if given.
async fn open_page(http: &reqwest::Client, base: &str, call: &str, last: Option<&str>) -> SseReader {
    let r = http.post(format!("{base}/agent/session")).json(&json!({ "conversation_id": call })).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 200, "session on {base}");
    let body: Value = r.json().await.unwrap();
    let session = body["session"].as_str().unwrap().to_string();
    let mut req = http
        .get(format!("{base}/agent/events"))
        .query(&[("conversationId", call), ("session", session.as_str())]);
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    SseReader::new(req.send().await.unwrap())
}

/// Reads a page until `done` holds for what it has read.
async fn read_until(page: &mut SseReader, got: &mut Vec<Sse>, done: impl Fn(&[Sse]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !done(got) {
        assert!(tokio::time::Instant::now() < deadline, "the page did not get what it waited for: {got:?}");
        match page.next().await {
            Some(ev) => got.push(ev),
            None => panic!("the feed ended early: {got:?}"),
        }
    }
}

fn key(e: &Sse) -> (Option<String>, String, String) {
    (e.id.clone(), e.event.clone(), e.data.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_worker_serves_any_calls_page_and_feedback_reaches_the_owner() {
    let rig = Rig::start(6.0).await;
    let mut w0 = widget_worker(&rig, "w0");
    let mut w1 = widget_worker(&rig, "w1");
    let mut all: Vec<&mut Member> = vec![&mut w0, &mut w1];
    let (owner, call, sid) = a_live_widget_delivery(&mut all, "a widget delivery on a live call");
    let other = 1 - owner;
    let (owner_url, other_url) = (widget_url(all[owner]).unwrap(), widget_url(all[other]).unwrap());
    assert!(!all[other].calls().contains(&call), "the other worker does not follow {call}");

    // A page on the worker that does not own the call shows the owner's
    // suggestion, once.
    let http = reqwest::Client::new();
    let mut page = open_page(&http, &other_url, &call, None).await;
    let mut first = Vec::new();
    read_until(&mut page, &mut first, |got| {
        got.iter().any(|e| e.event == "suggestion" && e.data["suggestion_id"] == sid.as_str())
    })
    .await;
    let shown: Vec<&str> = first
        .iter()
        .filter(|e| e.event == "suggestion")
        .filter_map(|e| e.data["suggestion_id"].as_str())
        .collect();
    assert_eq!(shown.iter().filter(|s| **s == sid).count(), 1, "{sid} shown once: {shown:?}");
    let ids: BTreeSet<&str> = first.iter().filter_map(|e| e.id.as_deref()).collect();
    assert_eq!(ids.len(), first.iter().filter(|e| e.id.is_some()).count(), "no id twice");

    // The agent's acknowledgement and feedback, posted to the other worker,
    // are recorded by the owner.
    let session = {
        let r = http.post(format!("{other_url}/agent/session")).json(&json!({ "conversation_id": call }));
        let body: Value = r.send().await.unwrap().json().await.unwrap();
        body["session"].as_str().unwrap().to_string()
    };
    for (path, body) in [
        ("/agent/ack", json!({ "conversation_id": call, "suggestion_ids": [sid] })),
        ("/agent/feedback", json!({ "conversation_id": call, "suggestion_id": sid, "kind": "useful" })),
    ] {
        let r =
            http.post(format!("{other_url}{path}")).bearer_auth(&session).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{path}");
    }
    let recorded =
        |m: &Member, kind: &str| m.events(kind).filter(|v| v["suggestion_id"] == sid.as_str()).count();
    until(&mut all, Duration::from_secs(30), "the owner records the feedback", |m| {
        recorded(m[owner], "agent_feedback") >= 1 && recorded(m[owner], "acknowledged") >= 1
    });
    let fb =
        all[owner].events("agent_feedback").find(|v| v["suggestion_id"] == sid.as_str()).cloned().unwrap();
    assert_eq!(fb["feedback"], "useful", "{fb}");

    // The page moves to the owner's widget with its last event id (a load
    // balancer sending it elsewhere) and reads on until the call ends.
    let last = first.iter().rev().find_map(|e| e.id.clone()).expect("the page has an event id");
    drop(page);
    until(&mut all, Duration::from_secs(120), "the call ends", |m| {
        m[owner].events("conversation_ended").any(|v| v["conversation_id"] == call.as_str())
    });
    let mut page = open_page(&http, &owner_url, &call, Some(&last)).await;
    let mut second = Vec::new();
    read_until(&mut page, &mut second, |got| got.iter().any(|e| e.event == "ended")).await;
    assert!(second.iter().all(|e| e.event != "reset"), "resumed, not started over: {second:?}");

    // What a page that read the whole call on the other worker got is
    // exactly the two halves: no event twice, none lost, the same ids.
    let mut whole = Vec::new();
    let mut page = open_page(&http, &other_url, &call, None).await;
    read_until(&mut page, &mut whole, |got| got.iter().any(|e| e.event == "ended")).await;
    let halves: Vec<_> = first.iter().chain(&second).filter(|e| e.id.is_some()).map(key).collect();
    let whole: Vec<_> = whole.iter().filter(|e| e.id.is_some()).map(key).collect();
    assert_eq!(halves, whole);

    // Recorded once, by the owner only.
    until(&mut all, Duration::from_secs(30), "metrics after the feedback", |m| {
        m.iter().all(|w| w.events("metrics").count() >= 2)
    });
    assert_eq!(recorded(all[owner], "agent_feedback"), 1);
    assert_eq!(recorded(all[owner], "acknowledged"), 1);
    assert_eq!(recorded(all[other], "agent_feedback") + recorded(all[other], "acknowledged"), 0);
    assert_eq!(rig.sim.stats().duplicate_suggestions, 0);
    drop(all);
    rig.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_the_surviving_worker_keeps_working_when_the_owner_dies() {
    // Slower calls, so the one watched outlives the take-over.
    let rig = Rig::start(3.0).await;
    let mut workers = vec![widget_worker(&rig, "w0"), widget_worker(&rig, "w1")];
    let mut all: Vec<&mut Member> = workers.iter_mut().collect();
    let (owner, call, sid) =
        a_live_widget_delivery(&mut all, "a widget delivery on a call that just started");
    let survivor_url = widget_url(all[1 - owner]).unwrap();
    let queues = all[owner].held();
    drop(all);

    // A page on the surviving worker shows the owner's suggestion.
    let http = reqwest::Client::new();
    let mut page = open_page(&http, &survivor_url, &call, None).await;
    let mut got = Vec::new();
    read_until(&mut page, &mut got, |g| g.iter().any(|e| e.data["suggestion_id"] == sid.as_str())).await;

    // The owner dies; the survivor takes its queues and the call.
    workers.remove(owner).kill9();
    let mut survivor = workers.remove(0);
    let mut all: Vec<&mut Member> = vec![&mut survivor];
    until(&mut all, Duration::from_secs(30), "the dead owner's queues taken over", |m| {
        queues.is_subset(&m[0].held())
    });

    // The same page goes on to the call's end, fed now by the new owner,
    // with nothing shown twice and ids still growing.
    read_until(&mut page, &mut got, |g| g.iter().any(|e| e.event == "ended")).await;
    let shown: Vec<&str> = got
        .iter()
        .filter(|e| e.event == "suggestion")
        .filter_map(|e| e.data["suggestion_id"].as_str())
        .collect();
    let distinct: BTreeSet<&&str> = shown.iter().collect();
    assert_eq!(distinct.len(), shown.len(), "a suggestion shown twice: {shown:?}");
    let numbers: Vec<u64> =
        got.iter().filter_map(|e| e.id.as_deref()?.split_once('-')?.1.parse().ok()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "ids grow: {numbers:?}");

    // Feedback given now is recorded by the new owner.
    let session = {
        let r = http.post(format!("{survivor_url}/agent/session")).json(&json!({ "conversation_id": call }));
        let body: Value = r.send().await.unwrap().json().await.unwrap();
        body["session"].as_str().unwrap().to_string()
    };
    let body = json!({ "conversation_id": call, "suggestion_id": sid, "kind": "copied" });
    let r =
        http.post(format!("{survivor_url}/agent/feedback")).bearer_auth(&session).json(&body).send().await;
    assert_eq!(r.unwrap().status(), 204);
    until(&mut all, Duration::from_secs(30), "the new owner records the feedback", |m| {
        m[0].events("agent_feedback").any(|v| v["suggestion_id"] == sid.as_str() && v["feedback"] == "copied")
    });
    assert_eq!(rig.sim.stats().duplicate_suggestions, 0);
    drop(all);
    rig.sim.stop().await;
}
