//! What the engine's tests share: one clock, utterances, hits, and reading
//! searches and pushes out of effects.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Effect, Msg, RequestId, SearchTiming};
use crate::domain::{Hit, PushRequest, Speaker, StreamEvent, TranscriptEvent};

/// `ms` after one instant fixed for the whole test run.
pub fn at(ms: u64) -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
}

/// A final utterance.
pub fn said(conv: &str, uid: &str, speaker: Speaker, text: &str) -> Msg {
    Msg::Stream(StreamEvent::Transcript(TranscriptEvent {
        conversation_id: conv.into(),
        utterance_id: uid.into(),
        speaker,
        text: text.into(),
        is_final: true,
        offset_ms: None,
    }))
}

/// A final customer utterance.
pub fn customer(conv: &str, uid: &str, text: &str) -> Msg {
    said(conv, uid, Speaker::Customer, text)
}

/// A hit on article `id` ("Title id", passage "text of id").
pub fn hit(id: &str, score: f32) -> Hit {
    Hit {
        article_id: id.into(),
        title: format!("Title {id}"),
        score,
        text: format!("text of {id}"),
        ..Hit::default()
    }
}

/// The searches asked for: request and query.
pub fn searches(fx: &[Effect]) -> Vec<(RequestId, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Search { request, query, .. } => Some((*request, query.clone())),
            _ => None,
        })
        .collect()
}

/// The pushes asked for (to be recorded first).
pub fn pushes(fx: &[Effect]) -> Vec<PushRequest> {
    fx.iter().filter_map(|e| if let Effect::Push(p) = e { Some(p.clone()) } else { None }).collect()
}

/// A search answered at `ms`, having taken 5 ms.
pub fn done(request: RequestId, conv: &str, hits: Vec<Hit>, ms: u64) -> Msg {
    let timing = SearchTiming { started: at(ms), finished: at(ms + 5) };
    Msg::SearchDone { request, conversation_id: conv.into(), hits, timing }
}
