//! Property tests: whatever bytes the network, a file or the operator
//! supplies, the decoders and parsers return a value or an error and never
//! panic. Inputs are arbitrary bytes, valid samples with random edits, and
//! well-formed envelopes around arbitrary JSON. Case counts stay modest so
//! the suite stays fast on two cores.

use std::time::Duration;

use agent_assist::config::Config;
use agent_assist::config::keymap::KeyChord;
use agent_assist::kb::source::load_sources;
use agent_assist::net::cumulative::Cumulative;
use agent_assist::net::policy::{RateHints, classify};
use agent_assist::net::protocol::{decode_notification, decode_tutorial};
use agent_assist::net::{Backoff, path_segment, redact};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

const CASES: u32 = 96;

const NOTIFICATIONS: [&str; 4] = [
    r#"{"topicName":"v2.conversations.c1.transcription","eventBody":{"conversationId":"c1","transcripts":[{"utteranceId":"u1","isFinal":true,"channel":"EXTERNAL","alternatives":[{"confidence":0.9,"offsetMs":10,"transcript":"my router is broken"}]}],"status":{"offsetMs":10,"status":"SESSION_ONGOING"}}}"#,
    r#"{"topicName":"v2.routing.queues.q1.conversations","eventBody":{"id":"c1","participants":[{"purpose":"agent","userId":"a","queueId":"q1","connectedTime":"2026-01-01T00:00:00Z"}]}}"#,
    r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#,
    r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"bye"}}"#,
];
const TUTORIAL: [&str; 2] = [
    r#"{"type":"interaction:transcript","data":{"id":"i1","transcript":"Customer: hello\nAgent: hi\n"}}"#,
    r#"{"type":"heartbeat"}"#,
];
const KEYS: [&str; 16] = [
    "conversationId",
    "transcripts",
    "alternatives",
    "transcript",
    "isFinal",
    "utteranceId",
    "channel",
    "participants",
    "purpose",
    "endTime",
    "connectedTime",
    "status",
    "offsetMs",
    "id",
    "queueId",
    "message",
];
const TOPICS: [&str; 5] = [
    "v2.conversations.c1.transcription",
    "v2.routing.queues.q1.conversations",
    "v2.users.u1.conversations",
    "channel.metadata",
    "v2.system.token_revoked",
];

/// A valid sample with up to eight byte edits (overwrite, cut, insert).
fn mutated(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edits = proptest::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 0..8);
    (any::<Index>(), edits).prop_map(move |(which, edits)| {
        let mut b = samples[which.index(samples.len())].as_bytes().to_vec();
        for (at, byte, op) in edits {
            if b.is_empty() {
                break;
            }
            let k = at.index(b.len());
            match op {
                0 => b[k] = byte,
                1 => b.truncate(k),
                _ => b.insert(k, byte),
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

/// Arbitrary JSON whose object keys are mostly the fields decoders read.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key =
            prop_oneof![any::<Index>().prop_map(|i| KEYS[i.index(KEYS.len())].to_string()), any::<String>()];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn notification_decoder_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..512),
        edited in mutated(&NOTIFICATIONS),
        topic in any::<Index>(),
        body in json_value(),
    ) {
        let _ = decode_notification(&lossy(&raw));
        let _ = decode_notification(&edited);
        let frame = json!({"topicName": TOPICS[topic.index(TOPICS.len())], "eventBody": body});
        let _ = decode_notification(&frame.to_string());
    }

    #[test]
    fn tutorial_decoder_and_cumulative_transcripts_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..512),
        edited in mutated(&TUTORIAL),
        data in json_value(),
        texts in proptest::collection::vec(any::<String>(), 1..5),
    ) {
        let _ = decode_tutorial(&lossy(&raw));
        let _ = decode_tutorial(&edited);
        let _ = decode_tutorial(&json!({"type": "interaction:transcript", "data": data}).to_string());
        // Cumulative transcripts that shrink, change or grow arbitrarily.
        let mut c = Cumulative::default();
        for t in &texts {
            let _ = c.update("i1", t);
        }
    }

    #[test]
    fn rate_limit_headers_and_any_status_classify_without_panicking(
        retry_after in any::<String>(),
        reset in prop_oneof![any::<String>(), any::<f64>().prop_map(|f| f.to_string()), Just("1e400".to_string())],
        status in any::<u16>(),
        attempt in any::<u32>(),
        jitter in any::<f64>(),
        body in any::<String>(),
    ) {
        let backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(8) };
        let hints = RateHints::parse(Some(&retry_after), Some(&reset));
        let _ = classify(status, hints, &body, attempt, false, &backoff, jitter);
        let _ = classify(status, RateHints::parse(Some(&reset), None), &body, attempt, true, &backoff, jitter);
    }

    #[test]
    fn ids_and_urls_from_servers_never_panic(id in any::<String>(), text in any::<String>()) {
        if let Some(seg) = path_segment(&id) {
            prop_assert!(!seg.contains('/') && !seg.contains('?') && !seg.contains('#'));
        }
        let _ = redact(&format!("{text}access_token={id}&{text}"));
    }

    #[test]
    fn config_and_key_chords_parse_or_fail_cleanly(
        raw in proptest::collection::vec(any::<u8>(), 0..256),
        edited in mutated(&[
            "[policy]\npush = 0.45\ndebounce = 500\nmode = \"auto\"\n",
            "[genesys]\nqueues = [\"q\"]\nmax_topics_per_channel = 1000\nping_after_ms = 45000\n",
            "[keys]\n\"ctrl-r\" = \"retry\"\nx = \"approve\"\n",
        ]),
        chord in any::<String>(),
    ) {
        for text in [lossy(&raw), edited] {
            if let Ok(c) = toml::from_str::<Config>(&text) {
                let _ = c.validate();
                let _ = c.endpoint();
            }
        }
        let _ = chord.parse::<KeyChord>();
    }
}

proptest! {
    // Each case writes files: fewer of them.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn kb_sources_load_or_fail_cleanly(
        markdown in mutated(&["---\nid: a1\ntitle: Reset a password\ntags: [login, password]\n---\n# Reset a password\nUse the link.\n"]),
        jsonl in mutated(&["{\"id\":\"a1\",\"title\":\"T\",\"body\":\"B\"}\n{\"id\":\"a2\",\"title\":\"U\",\"body\":\"C\",\"tags\":[\"x\"]}\n"]),
        csv in mutated(&["id,title,body,tags\na1,T,\"B, with comma\",x;y\na2,U,C,\n"]),
        raw in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [("a.md", markdown.into_bytes()), ("b.jsonl", jsonl.into_bytes()), ("c.csv", csv.into_bytes())] {
            let p = dir.path().join(name);
            std::fs::write(&p, &body).unwrap();
            let _ = load_sources(&[p]);
        }
        for name in ["raw.md", "raw.jsonl", "raw.csv"] {
            let p = dir.path().join(name);
            std::fs::write(&p, &raw).unwrap();
            let _ = load_sources(&[p]);
        }
    }
}
