use super::*;
use crate::widget::{FeedEvent, PublishOutcome, WidgetConfig, WidgetSuggestion};

fn hub(max_suggestions: usize, max_events: usize) -> WidgetHub {
    WidgetHub::new(&WidgetConfig {
        max_suggestions_per_call: max_suggestions,
        max_events_per_call: max_events,
        ..WidgetConfig::default()
    })
}

fn suggestion(call: &str, id: &str) -> FeedEvent {
    FeedEvent::Suggestion(WidgetSuggestion {
        conversation_id: call.into(),
        suggestion_id: id.into(),
        article_id: format!("article-{id}"),
        title: format!("Title {id}"),
        score: 0.6,
        probability: Some(0.8),
        text: "Do **this**.".into(),
        url: Some("https://kb.example/a".into()),
        state: "sent".into(),
    })
}

fn update(call: &str, id: &str, state: &str) -> FeedEvent {
    FeedEvent::Update { conversation_id: call.into(), suggestion_id: id.into(), state: state.into() }
}

fn ids(items: &[FeedItem]) -> Vec<(&'static str, Option<u64>)> {
    items.iter().map(|i| (i.kind, i.id)).collect()
}

#[test]
fn publishing_is_idempotent_and_updates_need_a_suggestion() {
    let h = hub(10, 100);
    assert_eq!(h.publish(update("c", "s1", "changed")), PublishOutcome::Unknown);
    assert_eq!(h.publish(suggestion("c", "s1")), PublishOutcome::Delivered);
    assert_eq!(h.publish(suggestion("c", "s1")), PublishOutcome::Duplicate);
    assert_eq!(h.publish(update("c", "s1", "changed")), PublishOutcome::Delivered);
    assert_eq!(h.publish(update("c", "s1", "changed")), PublishOutcome::Duplicate);
    assert_eq!(h.publish(update("c", "nope", "changed")), PublishOutcome::Unknown);
    let ended = FeedEvent::Ended { conversation_id: "c".into() };
    assert_eq!(h.publish(ended.clone()), PublishOutcome::Delivered);
    assert_eq!(h.publish(ended), PublishOutcome::Duplicate);
    assert_eq!(h.publish(suggestion("c", "s2")), PublishOutcome::Closed);
    let sub = h.subscribe("c", None);
    assert_eq!(ids(&sub.replay), vec![("suggestion", Some(1)), ("update", Some(2)), ("ended", Some(3))]);
    assert!(sub.ended);
    let data: serde_json::Value = serde_json::from_str(&sub.replay[0].data).unwrap();
    assert_eq!(data["article_id"], "article-s1");
    assert_eq!(data["html"], "<p>Do <strong>this</strong>.</p>\n");
}

#[test]
fn a_page_resumes_after_its_last_event_and_ids_from_elsewhere_start_it_over() {
    let h = hub(10, 100);
    for i in 0..3 {
        h.publish(suggestion("c", &format!("s{i}")));
    }
    h.publish(suggestion("other", "x"));
    let all = h.subscribe("c", None);
    assert_eq!(
        ids(&all.replay),
        vec![("suggestion", Some(1)), ("suggestion", Some(2)), ("suggestion", Some(3))]
    );
    let after_first = h.subscribe("c", Some(&h.event_id(1)));
    assert_eq!(ids(&after_first.replay), vec![("suggestion", Some(2)), ("suggestion", Some(3))]);
    assert!(h.subscribe("c", Some(&h.event_id(3))).replay.is_empty());
    // Another process's id (a restart): a snapshot, starting with reset.
    let foreign = h.subscribe("c", Some("00000000-2"));
    let kinds: Vec<&str> = foreign.replay.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, vec!["reset", "suggestion", "suggestion", "suggestion"]);
    assert_eq!(foreign.replay.last().and_then(|i| i.id), Some(3));
    assert!(foreign.replay[..3].iter().all(|i| i.id.is_none()));
}

#[test]
fn the_log_and_the_suggestions_kept_are_bounded() {
    let h = hub(2, 3);
    for i in 0..5 {
        h.publish(suggestion("c", &format!("s{i}")));
    }
    // Ids 3..=5 are in the log; a page that saw 4 resumes normally.
    assert_eq!(ids(&h.subscribe("c", Some(&h.event_id(4))).replay), vec![("suggestion", Some(5))]);
    // A fresh page, or one that last saw 1, gets the two kept suggestions.
    for last in [None, Some(h.event_id(1))] {
        let sub = h.subscribe("c", last.as_deref());
        let kinds: Vec<&str> = sub.replay.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, vec!["reset", "suggestion", "suggestion"]);
        let titles: Vec<String> = sub.replay[1..]
            .iter()
            .map(|i| serde_json::from_str::<serde_json::Value>(&i.data).unwrap()["suggestion_id"].to_string())
            .collect();
        assert_eq!(titles, vec!["\"s3\"", "\"s4\""]);
    }
    // Earlier ids stay known for idempotency after leaving the feed.
    assert_eq!(h.publish(suggestion("c", "s0")), PublishOutcome::Duplicate);
}

#[tokio::test]
async fn live_events_reach_subscribers_and_acks_count_once_per_user() {
    let h = hub(10, 100);
    let mut sub = h.subscribe("c", None);
    assert!(sub.replay.is_empty() && !sub.ended);
    h.publish(suggestion("c", "s1"));
    let got = sub.live.recv().await.unwrap();
    assert_eq!((got.kind, got.id), ("suggestion", Some(1)));
    assert!(h.shows("c", "s1") && !h.shows("c", "s2") && !h.shows("x", "s1"));
    assert!(h.acknowledge("c", "s1", Some("u1")));
    assert!(!h.acknowledge("c", "s1", Some("u1")));
    assert!(h.acknowledge("c", "s1", Some("u2")));
    assert!(!h.acknowledge("c", "unknown", Some("u1")));
    h.publish(FeedEvent::Participants { conversation_id: "c".into(), agent_user_ids: vec!["u1".into()] });
    assert_eq!(h.agents("c"), Some(vec!["u1".to_string()]));
    assert_eq!(h.agents("nobody"), None);
}

#[test]
fn calls_beyond_the_limit_push_out_the_longest_ended() {
    let h = WidgetHub::new(&WidgetConfig { max_calls: 2, ..WidgetConfig::default() });
    h.publish(suggestion("a", "1"));
    h.publish(suggestion("b", "1"));
    h.publish(FeedEvent::Ended { conversation_id: "b".into() });
    h.publish(suggestion("c", "1"));
    assert_eq!(h.calls(), 2);
    assert!(h.shows("a", "1") && h.shows("c", "1") && !h.shows("b", "1"));
    // Pages asking for calls that do not exist cannot push out real ones.
    for i in 0..5 {
        h.subscribe(&format!("made-up-{i}"), None);
    }
    assert!(h.shows("a", "1") && h.shows("c", "1") && h.calls() == 2);
    // A page's empty feed gives way to a real call.
    let h = WidgetHub::new(&WidgetConfig { max_calls: 2, ..WidgetConfig::default() });
    h.publish(suggestion("a", "1"));
    h.subscribe("made-up", None);
    h.publish(suggestion("b", "1"));
    assert!(h.shows("a", "1") && h.shows("b", "1") && h.agents("made-up").is_none());
}

#[test]
fn hubs_fed_the_same_numbered_events_resume_each_others_pages() {
    let config = WidgetConfig::default();
    let (a, b) = (WidgetHub::with_epoch(&config, 7), WidgetHub::with_epoch(&config, 7));
    // Hub `a` has read the stream further than hub `b`.
    assert_eq!(a.publish_at(suggestion("c", "s1"), 10), PublishOutcome::Delivered);
    assert_eq!(a.publish_at(suggestion("c", "s2"), 14), PublishOutcome::Delivered);
    assert_eq!(a.publish_at(suggestion("c", "s2"), 14), PublishOutcome::Duplicate, "a redelivery");
    assert_eq!(b.publish_at(suggestion("c", "s1"), 10), PublishOutcome::Delivered);
    // A page that read both on `a` moves to `b`: nothing is replayed, and
    // `s2` is not sent again when `b` catches up; `s3` is.
    let last = a.event_id(14);
    let mut sub = b.subscribe("c", Some(&last));
    assert!(sub.replay.is_empty());
    assert_eq!(sub.after, 14);
    b.publish_at(suggestion("c", "s2"), 14);
    b.publish_at(suggestion("c", "s3"), 20);
    let live: Vec<_> =
        std::iter::from_fn(|| sub.live.try_recv().ok()).filter(|i| i.id > Some(sub.after)).collect();
    assert_eq!(ids(&live), [("suggestion", Some(20))]);
    // A page from `b` resumes on `a` after event 10 with exactly `s2`.
    let sub = a.subscribe("c", Some(&b.event_id(10)));
    assert_eq!(ids(&sub.replay), [("suggestion", Some(14))]);
}
