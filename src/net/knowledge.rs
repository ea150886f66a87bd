//! The Genesys Knowledge API client: knowledge bases, documents (cursor
//! paging, `interval` for changes) and a document's variations. Read-only.
//!
//! Every call goes through [`super::policy::classify`], like pushes: a 401
//! refreshes the token once, 429 waits for `Retry-After` (or the rate-limit
//! reset, or a backoff), 5xx backs off and retries up to a bound, and a 403
//! names the missing permission (from the server's body, or else the one
//! the endpoint is documented to need). Its own module so the REST client
//! of the stream can change without touching this one.

pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::auth::TokenSource;
use super::policy::{RateHints, Verdict, classify, missing_permissions, server_message};
use super::{Backoff, NetError};
use wire::{Document, KnowledgeBase, Listing};

/// Permission to list knowledge bases.
pub const PERMISSION_KNOWLEDGE_BASES: &str = "knowledge:knowledgebase:view";
/// Permission to list and read documents.
pub const PERMISSION_DOCUMENTS: &str = "knowledge:document:view";
/// The API's largest page of documents.
pub const MAX_DOCUMENT_PAGE: u32 = 200;
/// The API's largest page of knowledge bases.
pub const MAX_KB_PAGE: u32 = 100;
/// A listing that has not ended after this many pages is a server bug.
const MAX_PAGES: usize = 100_000;

/// Which documents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentQuery {
    pub include_drafts: bool,
    /// Only documents modified in `start/end` (ISO-8601 instants).
    pub interval: Option<String>,
}

/// A listing's entities and how many pages it took.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub entities: Vec<T>,
    pub pages: usize,
}

/// Read access to one org's Genesys Knowledge.
#[derive(Clone)]
pub struct KnowledgeClient {
    http: reqwest::Client,
    base: String,
    auth: Arc<TokenSource>,
    backoff: Backoff,
    max_attempts: u32,
}

impl KnowledgeClient {
    pub fn new(http: reqwest::Client, api_base: &str, auth: Arc<TokenSource>) -> Self {
        Self {
            http,
            base: api_base.trim_end_matches('/').to_string(),
            auth,
            backoff: Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10) },
            max_attempts: 6,
        }
    }

    /// Sets the retry policy (tests use short backoffs).
    pub fn with_retries(mut self, backoff: Backoff, max_attempts: u32) -> Self {
        self.backoff = backoff;
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Every knowledge base the client may see.
    pub async fn knowledge_bases(&self) -> Result<Paged<KnowledgeBase>, NetError> {
        let first = format!("/api/v2/knowledge/knowledgebases?pageSize={MAX_KB_PAGE}");
        self.all_pages(first, PERMISSION_KNOWLEDGE_BASES).await
    }

    /// Every document of a knowledge base matching `q`, with its category
    /// and labels (no variations).
    pub async fn documents(&self, kb_id: &str, q: &DocumentQuery) -> Result<Paged<Document>, NetError> {
        let mut params: Vec<(&str, String)> = vec![
            ("pageSize", MAX_DOCUMENT_PAGE.to_string()),
            ("expand", "category".into()),
            ("expand", "labels".into()),
        ];
        if q.include_drafts {
            params.push(("includeDrafts", "true".into()));
        }
        if let Some(i) = &q.interval {
            params.push(("interval", i.clone()));
        }
        let query = serde_urlencoded::to_string(&params)
            .map_err(|e| NetError::Protocol { message: format!("document query: {e}") })?;
        let first = format!("/api/v2/knowledge/knowledgebases/{}/documents?{query}", segment(kb_id));
        self.all_pages(first, PERMISSION_DOCUMENTS).await
    }

    /// One document with its variations; `None` if it no longer exists.
    pub async fn document(&self, kb_id: &str, document_id: &str) -> Result<Option<Document>, NetError> {
        let path = format!(
            "/api/v2/knowledge/knowledgebases/{}/documents/{}?expand=variations",
            segment(kb_id),
            segment(document_id)
        );
        match self.get::<Document>(&path, PERMISSION_DOCUMENTS).await {
            Ok(d) => Ok(Some(d)),
            Err(NetError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Follows `nextUri` from `first` to the end of a listing.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        first: String,
        permission: &str,
    ) -> Result<Paged<T>, NetError> {
        let mut entities = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = next.take() {
            if pages >= MAX_PAGES || !seen.insert(path.clone()) {
                return Err(NetError::Protocol {
                    message: format!("the listing does not end (page {pages} repeats {path})"),
                });
            }
            let page: Listing<T> = self.get(&path, permission).await?;
            pages += 1;
            let empty = page.entities.is_empty();
            entities.extend(page.entities);
            // An empty page ends the listing whatever nextUri says.
            next = if empty { None } else { page.next_uri.as_deref().map(next_path).transpose()?.flatten() };
        }
        Ok(Paged { entities, pages })
    }

    /// One GET with the retry policy; the parsed body of a 2xx answer.
    async fn get<T: DeserializeOwned>(&self, path: &str, permission: &str) -> Result<T, NetError> {
        let url = format!("{}{path}", self.base);
        let mut token = self.auth.token().await?;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent =
                self.http.get(&url).header(reqwest::header::AUTHORIZATION, token.header()).send().await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if attempt < self.max_attempts => {
                    let wait = super::policy::backoff_delay(&self.backoff, attempt, rand::random());
                    tracing::warn!(%path, error = %NetError::from(e), ?wait, "knowledge request failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = resp.status().as_u16();
            let header =
                |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let hints =
                RateHints::parse(header("retry-after").as_deref(), header("inin-ratelimit-reset").as_deref());
            let body = resp.text().await.unwrap_or_default();
            match classify(status, hints, &body, attempt, refreshed, &self.backoff, rand::random()) {
                Verdict::Done => {
                    return serde_json::from_str(&body).map_err(|e| NetError::Protocol {
                        message: format!("GET {}: {e}", strip_query(path)),
                    });
                }
                Verdict::RefreshToken => {
                    token = self.auth.refresh_after_401(&token).await?;
                    refreshed = true;
                }
                Verdict::Retry { after, reason } if attempt < self.max_attempts => {
                    tracing::warn!(path = %strip_query(path), %reason, ?after, attempt, "knowledge request will be retried");
                    tokio::time::sleep(after).await;
                }
                Verdict::Retry { reason, .. } => {
                    return Err(NetError::Status {
                        status,
                        message: format!("GET {}: {reason}, {attempt} attempts", strip_query(path)),
                    });
                }
                Verdict::Forbidden { .. } => {
                    let perms = missing_permissions(&body);
                    let named = if perms.is_empty() { permission.to_string() } else { perms.join(", ") };
                    return Err(NetError::Forbidden {
                        message: format!(
                            "GET {} needs permission {named}; grant it to the OAuth client's role ({})",
                            strip_query(path),
                            server_message(&body)
                        ),
                    });
                }
                Verdict::Fail { message } if status == 401 => return Err(NetError::Unauthorized { message }),
                Verdict::Fail { .. } => {
                    return Err(NetError::Status {
                        status,
                        message: format!("GET {}: {}", strip_query(path), server_message(&body)),
                    });
                }
            }
        }
    }
}

/// An id as one URL path segment (ids are UUIDs; anything else is
/// percent-encoded so it cannot change the path).
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The path and query of a `nextUri`, which may be relative or absolute;
/// only Knowledge API paths are followed (a listing cannot send the token
/// elsewhere).
fn next_path(uri: &str) -> Result<Option<String>, NetError> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Ok(None);
    }
    let path = if uri.starts_with('/') {
        uri.to_string()
    } else {
        let u = url::Url::parse(uri)
            .map_err(|e| NetError::Protocol { message: format!("nextUri `{uri}`: {e}") })?;
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    };
    if !path.starts_with("/api/v2/knowledge/") {
        return Err(NetError::Protocol { message: format!("nextUri `{uri}` leaves the Knowledge API") });
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_uris_are_followed_only_within_the_knowledge_api() {
        assert_eq!(
            next_path("/api/v2/knowledge/knowledgebases/k/documents?after=abc").unwrap().as_deref(),
            Some("/api/v2/knowledge/knowledgebases/k/documents?after=abc")
        );
        assert_eq!(
            next_path("https://api.mypurecloud.com/api/v2/knowledge/knowledgebases?after=x")
                .unwrap()
                .as_deref(),
            Some("/api/v2/knowledge/knowledgebases?after=x")
        );
        assert_eq!(next_path("  ").unwrap(), None);
        assert!(next_path("https://elsewhere.example/steal").is_err());
        assert!(next_path("/api/v2/users/me").is_err());
    }

    #[test]
    fn ids_are_escaped_as_path_segments() {
        assert_eq!(segment("5f0c-1"), "5f0c-1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
