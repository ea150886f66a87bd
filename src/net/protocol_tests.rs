//! Fixture tests for the wire types, built from the shapes in GENESYS.md,
//! including the event captured from a live integration.

use super::*;

/// The captured real transcription event (word arrays shortened as in the source).
const CAPTURED: &str = r#"{"topicName":"v2.conversations.97b9dcb3-c182-4d1f-8123-76a4b5cf1f5a.transcription","version":"2",
 "eventBody":{
  "eventTime":"2026-03-19T22:04:48.128Z","organizationId":"cf6cb7d5-0000","conversationId":"97b9dcb3-c182-4d1f-8123-76a4b5cf1f5a",
  "communicationId":"7dd98c4f-61ab-33a2-9bc3-18eefd1a0824","sessionStartTimeMs":1773957594383,"transcriptionStartTimeMs":1773957594336,
  "transcripts":[{"utteranceId":"5b778cb0-3745-4243-b703-688f8b6597a0","isFinal":true,"channel":"EXTERNAL",
    "alternatives":[{"confidence":0.6584736842105261,"offsetMs":278620,"durationMs":12480,
      "transcript":"and the more's our neighbors see we had ten cissians",
      "words":[{"confidence":0.917,"offsetMs":278620,"durationMs":80,"word":"and"}],
      "decoratedTranscript":"and the more's our neighbors see we had 10 cissians",
      "decoratedWords":[{"confidence":0.92,"offsetMs":278620,"durationMs":80,"word":"and"}]}],
    "engineProvider":"GENESYS","engineId":"r2d2","dialect":"en-US","agentAssistEnabled":false,"voiceTranscriptionEnabled":true}],
  "status":{"offsetMs":278620,"status":"SESSION_ONGOING"}},
 "metadata":{"CorrelationId":"d1ab36e9-af51-4b3c-ab96-98d7349e75b4"},"timestamp":"2026-03-19T22:04:48.128Z"}"#;

#[test]
fn captured_real_event_decodes_with_decorated_text() {
    let Frame::Transcription(b) = decode_notification(CAPTURED).unwrap() else {
        panic!("not a transcription")
    };
    assert_eq!(b.conversation_id.as_deref(), Some("97b9dcb3-c182-4d1f-8123-76a4b5cf1f5a"));
    let t = &b.transcripts.as_ref().unwrap()[0];
    assert_eq!(t.utterance_id.as_deref(), Some("5b778cb0-3745-4243-b703-688f8b6597a0"));
    assert_eq!(crate::domain::Speaker::from_channel(t.channel.as_deref()), crate::domain::Speaker::Customer);
    assert_eq!(result_text(t).as_deref(), Some("and the more's our neighbors see we had 10 cissians"));
    assert!(!session_ended(&b));
}

#[test]
fn status_only_and_partial_events_decode() {
    let status_only = r#"{"topicName":"v2.conversations.c1.transcription","eventBody":{"conversationId":"c1","status":{"offsetMs":5,"status":"SESSION_ENDED"}}}"#;
    let Frame::Transcription(b) = decode_notification(status_only).unwrap() else { panic!() };
    assert!(b.transcripts.is_none() && session_ended(&b));
    let bare = r#"{"topicName":"v2.conversations.c1.transcription","eventBody":{"transcripts":[{"alternatives":[]}]}}"#;
    let Frame::Transcription(b) = decode_notification(bare).unwrap() else { panic!() };
    assert_eq!(result_text(&b.transcripts.unwrap()[0]), None);
    let no_body = r#"{"topicName":"v2.conversations.c1.transcription"}"#;
    assert!(matches!(decode_notification(no_body), Ok(Frame::Transcription(_))));
}

#[test]
fn heartbeat_pong_and_system_topics() {
    let hb = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
    assert!(matches!(decode_notification(hb), Ok(Frame::Heartbeat)));
    let pong = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;
    assert!(matches!(decode_notification(pong), Ok(Frame::Pong)));
    let closing = r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"maintenance"},"metadata":{"CorrelationId":"x"}}"#;
    assert!(matches!(decode_notification(closing), Ok(Frame::SocketClosing)));
    let revoked =
        r#"{"topicName":"v2.system.token_revoked.abc","eventBody":{"systemTopicType":"token_revoked"}}"#;
    assert!(matches!(decode_notification(revoked), Ok(Frame::System { .. })));
}

#[test]
fn unknown_malformed_and_oversized_frames_are_not_fatal() {
    assert!(matches!(
        decode_notification(r#"{"topicName":"v2.users.u.presence","eventBody":{}}"#),
        Ok(Frame::Unknown { .. })
    ));
    assert!(matches!(decode_notification(r#"{"hello":1}"#), Ok(Frame::Unknown { .. })));
    assert!(matches!(decode_notification("{not json"), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_notification("[1,2]"), Err(DecodeError::Malformed(_))));
    let huge = format!(r#"{{"topicName":"x","pad":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
    assert!(matches!(decode_notification(&huge), Err(DecodeError::TooLarge(_))));
    let wrong_shape =
        r#"{"topicName":"v2.conversations.c.transcription","eventBody":{"transcripts":"nope"}}"#;
    assert!(matches!(decode_notification(wrong_shape), Err(DecodeError::Invalid(_))));
}

#[test]
fn conversation_events_track_agent_participants() {
    let active = r#"{"topicName":"v2.routing.queues.q1.conversations","eventBody":{"id":"c1","participants":[
        {"purpose":"customer","connectedTime":"2026-01-01T00:00:00Z"},
        {"purpose":"acd","queueId":"q1","connectedTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:05Z"},
        {"purpose":"agent","userId":"u1","queueId":"q1","connectedTime":"2026-01-01T00:00:06Z"}]}}"#;
    let Frame::Conversation(b) = decode_notification(active).unwrap() else { panic!() };
    assert_eq!(b.phase(), ConversationPhase::Active { queue_id: Some("q1".into()) });
    // A re-route: the first agent left, a second is connected; still active.
    let rerouted: ConversationBody = serde_json::from_str(
        r#"{"id":"c1","participants":[
        {"purpose":"agent","connectedTime":"t","endTime":"t2"},{"purpose":"agent","connectedTime":"t3"}]}"#,
    )
    .unwrap();
    assert!(matches!(rerouted.phase(), ConversationPhase::Active { .. }));
    let ended: ConversationBody = serde_json::from_str(
        r#"{"id":"c1","participants":[{"purpose":"agent","connectedTime":"t","endTime":"t2"}]}"#,
    )
    .unwrap();
    assert_eq!(ended.phase(), ConversationPhase::Ended);
    let ringing: ConversationBody =
        serde_json::from_str(r#"{"id":"c1","participants":[{"purpose":"customer"}]}"#).unwrap();
    assert_eq!(ringing.phase(), ConversationPhase::Pending);
    assert!(is_conversation_topic("v2.users.u1.conversations"));
    assert!(!is_conversation_topic("v2.users.u1.conversations.calls"));
    assert_eq!(conversation_of_topic(&transcription_topic("abc")), Some("abc"));
}

#[test]
fn tutorial_frames() {
    let t = r#"{"type":"interaction:transcript","data":{"id":"c9","transcript":"Customer: hi"}}"#;
    let Frame::TutorialTranscript { id, transcript } = decode_tutorial(t).unwrap() else { panic!() };
    assert_eq!((id.as_str(), transcript.as_str()), ("c9", "Customer: hi"));
    assert!(matches!(decode_tutorial(TUTORIAL_HEARTBEAT), Ok(Frame::Heartbeat)));
    assert!(matches!(decode_tutorial(r#"{"type":"interaction:other"}"#), Ok(Frame::Unknown { .. })));
    assert!(matches!(
        decode_tutorial(r#"{"type":"interaction:transcript","data":{}}"#),
        Err(DecodeError::Invalid(_))
    ));
    assert!(matches!(decode_tutorial("]["), Err(DecodeError::Malformed(_))));
}

#[test]
fn copilot_third_party_action_frames() {
    let f = r#"{"topicName":"v2.conversations.c7.suggestions.thirdpartyaction","version":"2",
        "eventBody":{"conversationId":"c7","suggestionId":"s1","state":"Suggested","triggerType":"Intent",
                     "context":{"queueId":"q","queryStatement":"my camera is offline"}}}"#;
    let Frame::CopilotSuggestion { conversation_id, suggestion_id, state } = decode_notification(f).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (conversation_id.as_str(), suggestion_id.as_str(), state.as_deref()),
        ("c7", "s1", Some("Suggested"))
    );
    // Without a suggestion id there is nothing to answer.
    let bad = r#"{"topicName":"v2.conversations.c7.suggestions.thirdpartyaction","eventBody":{"state":"Suggested"}}"#;
    assert!(matches!(decode_notification(bad), Err(DecodeError::Invalid(_))));
    assert_eq!(copilot_topic("c7"), "v2.conversations.c7.suggestions.thirdpartyaction");
}

#[test]
fn conversation_events_list_the_participants_still_on_the_call() {
    let b: ConversationBody = serde_json::from_str(
        r#"{"id":"c1","participants":[
        {"id":"p-c","purpose":"customer","connectedTime":"t"},
        {"id":"p-q","purpose":"acd","queueId":"q1","connectedTime":"t","endTime":"t2"},
        {"id":"p-a1","purpose":"agent","userId":"u1","connectedTime":"t","endTime":"t3"},
        {"id":"p-a2","purpose":"agent","userId":"u2","connectedTime":"t4"},
        {"purpose":"agent","userId":"no-participant-id"}]}"#,
    )
    .unwrap();
    let ps = b.participants();
    let ids: Vec<(&str, &str, Option<&str>)> =
        ps.iter().map(|p| (p.id.as_str(), p.purpose.as_str(), p.user_id.as_deref())).collect();
    assert_eq!(ids, vec![("p-c", "customer", None), ("p-a2", "agent", Some("u2"))]);
    assert!(ps[1].is_agent() && !ps[0].is_agent());
}
