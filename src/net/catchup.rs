//! Catching up on conversations the live stream did not announce: those
//! already in progress when the console starts, and those that started
//! while the socket was down. Notification topics deliver only what happens
//! while someone listens, so after either gap the stream asks the analytics
//! conversation details query for the followed queues' and users' active
//! conversations and subscribes any it is not following yet.
//!
//! With client credentials `GET /api/v2/conversations` has no user and
//! returns nothing; the details query is the endpoint that works
//! (GENESYS.md, "Recovery after a gap"). It needs the permission
//! `analytics:conversationDetail:view`; without it the stream goes on
//! without catch-up and says so once.
//!
//! After a gap it also asks about the conversations it follows, by id, and
//! ends those the query reports ended. Only a reported `conversationEnd`
//! counts: analytics lags the live stream by seconds, so "absent from the
//! answer" cannot safely mean "over".

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

/// How far back to look for conversations still in progress. The details
/// query matches conversations by start time, so this bounds the longest
/// call that is caught up on.
pub const LOOKBACK: Duration = Duration::from_secs(12 * 3600);
/// Conversations per page (the API's maximum is 100).
pub const PAGE_SIZE: u32 = 100;
/// Pages read at most per catch-up: 1,000 active conversations.
pub const MAX_PAGES: u32 = 10;
/// Conversation ids asked about per query when checking for ends.
pub const IDS_PER_QUERY: usize = 50;

/// One page of `POST /api/v2/analytics/conversations/details/query`.
/// Genesys omits `conversations` when nothing matched.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailsPage {
    pub conversations: Option<Vec<ConversationDetail>>,
    pub total_hits: Option<u64>,
}

/// The fields of a conversation detail record that catch-up reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDetail {
    pub conversation_id: Option<String>,
    pub conversation_end: Option<String>,
    pub participants: Option<Vec<DetailParticipant>>,
}

/// A participant of a detail record; its segments name the queue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailParticipant {
    pub sessions: Option<Vec<DetailSession>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailSession {
    pub segments: Option<Vec<DetailSegment>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailSegment {
    pub queue_id: Option<String>,
}

impl ConversationDetail {
    /// The first queue any segment of the conversation went through.
    pub fn queue_id(&self) -> Option<&str> {
        self.participants
            .iter()
            .flatten()
            .flat_map(|p| p.sessions.iter().flatten())
            .flat_map(|s| s.segments.iter().flatten())
            .find_map(|seg| seg.queue_id.as_deref())
    }
}

/// [`LOOKBACK`] before `now` to a minute after it (which absorbs clock skew
/// between this machine and the org).
fn interval(now: SystemTime) -> String {
    let from = now.checked_sub(LOOKBACK).unwrap_or(SystemTime::UNIX_EPOCH);
    let to = now + Duration::from_secs(60);
    format!("{}/{}", humantime::format_rfc3339_millis(from), humantime::format_rfc3339_millis(to))
}

/// The query body: conversations without an end, started within
/// [`LOOKBACK`] of `now`, with a segment on one of `queues` or `users`.
pub fn query(queues: &[String], users: &[String], now: SystemTime, page: u32) -> Value {
    let predicates: Vec<Value> =
        queues
            .iter()
            .map(|q| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": q}))
            .chain(users.iter().map(
                |u| json!({"type": "dimension", "dimension": "userId", "operator": "matches", "value": u}),
            ))
            .collect();
    json!({
        "interval": interval(now),
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": page},
        "conversationFilters": [{"type": "and", "predicates": [
            {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
        ]}],
        "segmentFilters": [{"type": "or", "predicates": predicates}],
    })
}

/// The query body asking what became of these conversations (at most
/// [`IDS_PER_QUERY`], so the answer fits one page).
pub fn status_query(ids: &[String], now: SystemTime) -> Value {
    let predicates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "dimension", "dimension": "conversationId", "operator": "matches", "value": id}))
        .collect();
    json!({
        "interval": interval(now),
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": 1},
        "conversationFilters": [{"type": "or", "predicates": predicates}],
    })
}

/// The conversations on a page that have ended.
pub fn ended(page: &DetailsPage) -> impl Iterator<Item = &str> {
    page.conversations
        .iter()
        .flatten()
        .filter(|c| c.conversation_end.is_some())
        .filter_map(|c| c.conversation_id.as_deref())
}

/// The conversations still in progress on a page, as (id, queue), skipping
/// records without an id and any that report an end after all.
pub fn active(page: &DetailsPage) -> impl Iterator<Item = (&str, Option<&str>)> {
    page.conversations
        .iter()
        .flatten()
        .filter(|c| c.conversation_end.is_none())
        .filter_map(|c| Some((c.conversation_id.as_deref().filter(|id| !id.is_empty())?, c.queue_id())))
}

/// Whether another page is worth asking for.
pub fn has_more(page: &DetailsPage, page_number: u32) -> bool {
    let got = page.conversations.as_ref().map_or(0, Vec::len);
    let seen = u64::from(page_number) * u64::from(PAGE_SIZE);
    got == PAGE_SIZE as usize && page.total_hits.is_none_or(|t| t > seen) && page_number < MAX_PAGES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_open_conversations_on_the_followed_queues_and_users() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let q = query(&["q1".into()], &["u1".into()], now, 2);
        assert_eq!(q["interval"], "2033-05-17T15:33:20.000Z/2033-05-18T03:34:20.000Z");
        assert_eq!(q["paging"]["pageNumber"], 2);
        assert_eq!(q["conversationFilters"][0]["predicates"][0]["operator"], "notExists");
        let preds = q["segmentFilters"][0]["predicates"].as_array().unwrap();
        assert_eq!(preds.len(), 2);
        assert_eq!(
            (preds[0]["dimension"].as_str(), preds[0]["value"].as_str()),
            (Some("queueId"), Some("q1"))
        );
        assert_eq!(
            (preds[1]["dimension"].as_str(), preds[1]["value"].as_str()),
            (Some("userId"), Some("u1"))
        );
    }

    #[test]
    fn the_status_query_names_each_conversation() {
        let q = status_query(&["a".into(), "b".into()], SystemTime::now());
        let preds = q["conversationFilters"][0]["predicates"].as_array().unwrap();
        let ids: Vec<&str> = preds.iter().filter_map(|p| p["value"].as_str()).collect();
        assert_eq!((q["conversationFilters"][0]["type"].as_str(), ids), (Some("or"), vec!["a", "b"]));
    }

    #[test]
    fn pages_decode_leniently_and_skip_ended_or_unnamed_records() {
        let empty: DetailsPage = serde_json::from_str(r#"{"totalHits": 0}"#).unwrap();
        assert_eq!(active(&empty).count(), 0);
        assert!(!has_more(&empty, 1));
        let page: DetailsPage = serde_json::from_str(
            r#"{"totalHits": 3, "conversations": [
                {"conversationId": "a", "conversationStart": "2026-11-24T10:00:00.000Z", "participants": [
                    {"purpose": "customer", "sessions": [{"segments": [{"segmentType": "interact"}]}]},
                    {"purpose": "acd", "sessions": [{"segments": [{"queueId": "q1"}]}]}]},
                {"conversationId": "c"},
                {"conversationId": "b", "conversationEnd": "2026-11-24T10:05:00.000Z"},
                {"conversationStart": "2026-11-24T10:01:00.000Z"},
                {"conversationId": ""}
            ]}"#,
        )
        .unwrap();
        assert_eq!(active(&page).collect::<Vec<_>>(), [("a", Some("q1")), ("c", None)]);
        assert_eq!(ended(&page).collect::<Vec<_>>(), ["b"]);
        assert!(!has_more(&page, 1));
    }

    #[test]
    fn paging_stops_at_the_total_or_the_cap() {
        let full = |total: Option<u64>| DetailsPage {
            conversations: Some(vec![ConversationDetail::default(); PAGE_SIZE as usize]),
            total_hits: total,
        };
        assert!(has_more(&full(Some(250)), 1));
        assert!(has_more(&full(Some(250)), 2));
        assert!(!has_more(&full(Some(200)), 2));
        assert!(has_more(&full(None), 3));
        assert!(!has_more(&full(None), MAX_PAGES));
    }
}
