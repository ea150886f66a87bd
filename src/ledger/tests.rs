//! The ledger's writer thread with a real redb file.

use super::*;

#[tokio::test]
async fn a_held_push_is_released_with_the_commit_it_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let (tx, mut rx) = mpsc::channel(8);
    let handle = spawn(Box::new(Ledger::open(&path).unwrap()), tx).unwrap();
    let push = PushRequest {
        suggestion_id: "s1".into(),
        conversation_id: "c1".into(),
        items: Vec::new(),
        sinks: Vec::new(),
        operator: false,
        customer_participant: None,
        copilot_suggestion: None,
        url: None,
        probability: None,
    };
    handle.record(Box::new(ConversationRecord::new("c1", None, 1)));
    handle.hold(push);
    let msg = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap();
    let Some(Msg::Durable { pushes, commit }) = msg else { panic!("expected Durable, got {msg:?}") };
    assert_eq!(pushes.iter().map(|p| p.suggestion_id.as_str()).collect::<Vec<_>>(), ["s1"]);
    assert!(
        commit.is_some_and(|d| d > Duration::ZERO),
        "the commit's time travels with the pushes it released"
    );
    handle.close();
    let saved = Ledger::open(&path).unwrap().load(0).unwrap();
    assert_eq!(saved.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["c1"]);
}
