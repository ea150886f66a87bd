//! The Genesys Cloud delivery sinks' requests, as pure functions: the
//! participant-attributes PATCH (`genesys-attributes`) and the answer to a
//! Copilot third-party-action suggestion (`genesys-copilot`). Sending goes
//! through [`super::push::PushClient::send`], so both share the push's
//! retry policy, token refresh and permission messages.

use serde_json::{Value, json};
use url::Url;

use crate::domain::PushRequest;

/// Genesys bot flows cap an attribute value at 256 characters; stay within.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

/// `{base}/a/b/c` with each segment percent-encoded (ids come from the
/// network and must not change the path).
pub fn api_url(base: &str, segments: &[&str]) -> Result<String, String> {
    let mut url = Url::parse(base).map_err(|e| format!("bad API base `{base}`: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| format!("API base `{base}` cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url.into())
}

/// Cuts `s` to at most `max` characters (not bytes), marking the cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `PATCH /api/v2/conversations/{id}/participants/{participantId}/attributes`:
/// the URL, or why it cannot be made (no customer participant known yet).
pub fn attributes_url(base: &str, req: &PushRequest) -> Result<String, String> {
    let participant = req
        .customer_participant
        .as_deref()
        .ok_or("the call's customer participant is not known yet (no conversation event named one)")?;
    api_url(
        base,
        &["api", "v2", "conversations", &req.conversation_id, "participants", participant, "attributes"],
    )
}

/// The attributes written: the last suggestion's article id, title, score
/// (and probability, link and suggestion id), keys prefixed.
pub fn attributes_body(prefix: &str, req: &PushRequest) -> Value {
    let mut attrs = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        attrs.insert(format!("{prefix}{k}"), Value::String(clip(&v, MAX_ATTRIBUTE_CHARS)));
    };
    if let Some(item) = req.items.first() {
        put("articleId", item.article_id.clone());
        put("title", item.title.clone());
        put("score", format!("{:.3}", item.score));
    }
    if let Some(p) = req.probability {
        put("probability", format!("{p:.3}"));
    }
    if let Some(u) = &req.url {
        put("url", u.clone());
    }
    put("suggestionId", req.suggestion_id.clone());
    json!({ "attributes": attrs })
}

/// `PATCH /api/v2/conversations/{id}/suggestions/{suggestionId}`.
pub fn copilot_url(base: &str, req: &PushRequest) -> Result<String, String> {
    let sid = req.copilot_suggestion.as_deref().ok_or("no Copilot suggestion to answer")?;
    api_url(base, &["api", "v2", "conversations", &req.conversation_id, "suggestions", sid])
}

/// `{"thirdPartySuggestion": {title, text, sources[{name, url}]}}`.
pub fn copilot_body(req: &PushRequest) -> Value {
    let item = req.items.first();
    let title = item.map(|i| i.title.clone()).unwrap_or_default();
    let text = item.map(|i| i.content.clone()).unwrap_or_default();
    let sources: Vec<Value> = req.url.iter().map(|u| json!({ "name": title, "url": u })).collect();
    json!({ "thirdPartySuggestion": { "title": title, "text": text, "sources": sources } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PushItem;

    fn req() -> PushRequest {
        PushRequest {
            suggestion_id: "run-1".into(),
            conversation_id: "c/1?x".into(),
            items: vec![PushItem {
                article_id: "a1".into(),
                title: "T".repeat(300),
                content: "body".into(),
                score: 0.61234,
            }],
            sinks: vec![],
            operator: false,
            customer_participant: Some("p 1".into()),
            copilot_suggestion: Some("g#1".into()),
            url: Some("https://kb.example/a1".into()),
            probability: None,
        }
    }

    #[test]
    fn ids_are_percent_encoded_path_segments() {
        let u = attributes_url("http://127.0.0.1:9/", &req()).unwrap();
        assert_eq!(u, "http://127.0.0.1:9/api/v2/conversations/c%2F1%3Fx/participants/p%201/attributes");
        let u = copilot_url("http://h", &req()).unwrap();
        assert_eq!(u, "http://h/api/v2/conversations/c%2F1%3Fx/suggestions/g%231");
    }

    #[test]
    fn attributes_are_prefixed_and_clipped() {
        let b = attributes_body("agentAssist.", &req());
        let a = b["attributes"].as_object().unwrap();
        assert_eq!(a["agentAssist.articleId"], "a1");
        assert_eq!(a["agentAssist.score"], "0.612");
        assert_eq!(a["agentAssist.title"].as_str().unwrap().chars().count(), MAX_ATTRIBUTE_CHARS);
        assert!(a.keys().all(|k| k.starts_with("agentAssist.")));
    }

    #[test]
    fn unknown_customer_participant_is_an_error() {
        let mut r = req();
        r.customer_participant = None;
        assert!(attributes_url("http://h", &r).unwrap_err().contains("customer participant"));
    }

    #[test]
    fn copilot_answer_has_title_text_and_sources() {
        let b = copilot_body(&req());
        assert_eq!(b["thirdPartySuggestion"]["text"], "body");
        assert_eq!(b["thirdPartySuggestion"]["sources"][0]["url"], "https://kb.example/a1");
    }
}
