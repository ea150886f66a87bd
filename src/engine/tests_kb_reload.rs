//! The engine's side of a live knowledge-base reload: versions on search
//! records, `changed` marks, deleted articles refused, the reports.

use super::super::tests_support::{at, customer, done, hit, searches};
use super::super::*;
use crate::domain::Hit;

/// Need detection (judged off the engine) is not what these tests are about.
fn engine() -> Engine {
    Engine::new(Policy { window_min_words: 1, need_detection: false, ..Policy::default() }, "run")
}

/// Speaks, lets the debounce run out, and answers the search with `hits`.
fn search_with(e: &mut Engine, conv: &str, uid: &str, hits: Vec<Hit>, ms: u64) -> Vec<Effect> {
    e.handle(customer(conv, uid, &format!("my card was charged twice {uid}")), at(ms));
    let fx = e.handle(Msg::Tick, at(ms + 1_000));
    let (request, _) = searches(&fx)[0].clone();
    e.handle(done(request, conv, hits, ms + 1_001), at(ms + 1_010))
}

fn reload(version: u64, added: &[&str], removed: &[&str], changed: &[&str]) -> Msg {
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect();
    Msg::KbReloaded(KbReload {
        version,
        added: ids(added),
        removed: ids(removed),
        changed: ids(changed),
        took: Duration::from_millis(420),
        articles: 10,
    })
}

fn search_versions(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(Record::Search { kb_version, .. }) => Some(*kb_version),
            _ => None,
        })
        .collect()
}

fn state_of<'a>(e: &'a Engine, conv: &str, article: &str) -> &'a Suggestion {
    e.conversation(conv).unwrap().suggestions.iter().find(|s| s.article_id == article).unwrap()
}

#[test]
fn a_reload_marks_changed_withdraws_deleted_and_versions_the_next_searches() {
    let mut e = engine();
    let fx =
        search_with(&mut e, "c1", "u1", vec![hit("refunds", 0.8), hit("fees", 0.7), hit("cards", 0.6)], 0);
    assert_eq!(search_versions(&fx), vec![1], "the start index is version 1");
    assert_eq!(e.kb_version(), 1);

    let fx = e.handle(reload(2, &["new-fees"], &["fees"], &["refunds"]), at(5_000));
    assert_eq!(e.kb_version(), 2);
    let record = fx.iter().find_map(|f| match f {
        Effect::Record(r @ Record::KbReloaded { .. }) => Some(r.clone()),
        _ => None,
    });
    let Some(Record::KbReloaded { version, added, removed, changed, took_ms, articles, marked_changed }) =
        record
    else {
        panic!("no kb_reloaded record in {fx:?}")
    };
    assert_eq!((version, took_ms, articles, marked_changed), (2, 420, 10, 1));
    assert_eq!(
        (added, removed, changed),
        (vec!["new-fees".into()], vec!["fees".into()], vec!["refunds".into()])
    );

    assert!(
        state_of(&e, "c1", "refunds").article_changed,
        "a shown suggestion of a changed article is marked"
    );
    assert!(!state_of(&e, "c1", "cards").article_changed);
    assert_eq!(
        state_of(&e, "c1", "fees").state,
        SuggestionState::Superseded,
        "a deleted article is withdrawn"
    );
    let status = e.kb_status_line().unwrap();
    assert!(status.ok);
    assert_eq!(status.text, "KB reloaded: +1 −1 ~1 articles (0.4 s)");
    assert!(
        matches!(&e.push_log().back().unwrap().status, PushStatus::Kb { ok: true, text } if text == &status.text)
    );
    assert!(e.article_changed_since("refunds", at(4_000)) && !e.article_changed_since("refunds", at(6_000)));

    // The live call is searched again, and that search is recorded as the new index's.
    let fx = e.handle(Msg::Tick, at(6_000));
    let request = searches(&fx).first().map(|(r, _)| *r).expect("a reload searches live calls again");
    assert_eq!(e.conversation("c1").unwrap().window_event_at, None, "not a transcript event's search");
    let timing = SearchTiming { started: at(6_001), finished: at(6_005) };
    let hits = vec![hit("new-fees", 0.9), hit("refunds", 0.8)];
    let fx = e.handle(Msg::SearchDone { request, conversation_id: "c1".into(), hits, timing }, at(6_010));
    assert_eq!(search_versions(&fx), vec![2]);
    assert!(e.conversation("c1").unwrap().suggestions.iter().any(|s| s.article_id == "new-fees"));

    // An edit to an article the call does not show searches nothing again.
    e.handle(reload(3, &[], &[], &["elsewhere"]), at(7_000));
    assert!(searches(&e.handle(Msg::Tick, at(9_000))).is_empty());
    assert_eq!(e.kb_version(), 3);
}

#[test]
fn a_deleted_article_is_refused_for_approval_retry_and_manual_push_until_it_returns() {
    let mut e = engine();
    search_with(&mut e, "c1", "u1", vec![hit("fees", 0.8)], 0);
    let sid = state_of(&e, "c1", "fees").id.clone();
    e.handle(reload(2, &[], &["fees"], &[]), at(5_000));

    let fx = e.handle(Msg::Command(Command::Approve { suggestion: sid.clone() }), at(5_100));
    assert!(!fx.iter().any(|f| matches!(f, Effect::Push(_))), "nothing is sent: {fx:?}");
    let message = "not sent: article fees was deleted from the knowledge base";
    assert!(fx.contains(&Effect::Record(Record::Refused { message: message.into() })));
    assert_eq!(e.notices().back().unwrap().text, message);

    let article = ArticleRef { id: "fees".into(), title: "Fees".into(), content: "old text".into() };
    let push = Command::PushArticle { conversation: "c1".into(), article: article.clone() };
    let fx = e.handle(Msg::Command(push.clone()), at(5_200));
    assert!(!fx.iter().any(|f| matches!(f, Effect::Push(_))), "nothing is sent: {fx:?}");
    assert!(fx.contains(&Effect::Record(Record::Refused { message: message.into() })));

    // Added back, it can be pushed by hand again.
    e.handle(reload(3, &["fees"], &[], &[]), at(6_000));
    let fx = e.handle(Msg::Command(push), at(6_100));
    assert!(fx.iter().any(|f| matches!(f, Effect::Push(_))), "{fx:?}");
}

#[test]
fn a_failed_reload_is_reported_and_changes_nothing_else() {
    let mut e = engine();
    search_with(&mut e, "c1", "u1", vec![hit("fees", 0.8)], 0);
    let reason = "kb/fees.md:3: bad front matter: did not find expected key";
    let fx = e.handle(Msg::KbReloadFailed { reason: reason.into() }, at(5_000));
    assert_eq!(fx, vec![Effect::Record(Record::KbReloadFailed { reason: reason.into() })]);
    assert_eq!(e.kb_version(), 1);
    let status = e.kb_status_line().unwrap();
    assert!(!status.ok && status.text.contains(reason), "{status:?}");
    assert!(matches!(&e.push_log().back().unwrap().status, PushStatus::Kb { ok: false, .. }));
    assert_eq!(state_of(&e, "c1", "fees").state, SuggestionState::Queued);
    assert!(!state_of(&e, "c1", "fees").article_changed);
}
