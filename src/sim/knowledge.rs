//! The simulator's Genesys Knowledge API: knowledge bases and documents
//! built from a Markdown KB (the bundled `kb/` by default) with real block
//! structure ([`blocks`]), cursor paging with small pages, `interval` and
//! `includeDrafts`, documents with several variations, and controls that
//! edit, unpublish or delete a document between two syncs. Faults:
//! `knowledge-403`, `knowledge-429`, `knowledge-500`.

pub mod blocks;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::api::{error, reject_unauthorized};
use super::fault::Fault;
use super::state::Shared;
use crate::net::knowledge::wire::{Body, Document, KnowledgeBase, Listing, Named, Variation};
use crate::net::knowledge::{PERMISSION_DOCUMENTS, PERMISSION_KNOWLEDGE_BASES};

type Sim = State<Arc<Shared>>;
type Params = Query<Vec<(String, String)>>;

/// The knowledge base built from the Markdown KB.
pub const HELP_CENTRE_KB_ID: &str = "8f9e2c1a-4b7d-4e3f-a6c5-2d1b0e9f8a71";
/// A second, small knowledge base (so the listing has more than one).
pub const INTERNAL_KB_ID: &str = "3d6a0b52-9e1c-4f87-b2d4-7c5e8a1f0b96";
/// Documents per page at most, whatever `pageSize` asks (so paging is exercised).
pub const DEFAULT_PAGE_SIZE: usize = 10;

/// The knowledge bases and their documents (with variations).
#[derive(Debug, Default)]
pub struct Knowledge {
    pub bases: Vec<(KnowledgeBase, BTreeMap<String, Document>)>,
    pub page_size: usize,
}

/// A stable UUID-shaped id for a name (ids in Genesys are UUIDs).
pub fn uuid_for(name: &str) -> String {
    let h = Sha256::digest(format!("sim-knowledge:{name}").as_bytes());
    let x = crate::kb::embed::hex(&h[..16]);
    format!("{}-{}-4{}-a{}-{}", &x[..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}

/// The document id the simulator gives an article of the Markdown KB.
pub fn document_id(article_id: &str) -> String {
    uuid_for(&format!("document:{article_id}"))
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn named(kind: &str, name: &str) -> Named {
    Named { id: uuid_for(&format!("{kind}:{name}")), name: Some(name.to_string()) }
}

fn variation(doc: &str, name: &str, priority: i64, markdown: &str) -> Variation {
    Variation {
        id: uuid_for(&format!("variation:{doc}:{name}")),
        name: Some(name.into()),
        priority: Some(priority),
        contexts: Vec::new(),
        body: Some(Body { blocks: blocks::from_markdown(markdown) }),
    }
}

/// Builds the knowledge bases from a Markdown KB directory. Every third
/// article gets a second, shorter "Chat" variation; one extra document is a
/// draft. A missing or bad directory gives empty knowledge bases.
pub fn build(dir: Option<&Path>, page_size: usize) -> Knowledge {
    let articles = dir
        .map(|d| crate::kb::source::load_sources(&[d.to_path_buf()]))
        .transpose()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "simulator knowledge base not loaded");
            None
        })
        .unwrap_or_default();
    let modified = now();
    let mut docs = BTreeMap::new();
    for (i, a) in articles.iter().enumerate() {
        let id = document_id(&a.id);
        let mut variations = vec![variation(&id, "Default", 1, &a.content)];
        if i % 3 == 0 {
            let first = a.content.split("\n\n").find(|p| !p.starts_with('#')).unwrap_or("");
            variations.push(variation(
                &id,
                "Chat",
                2,
                &format!("{first}\n\nSend the customer this article's link in the chat."),
            ));
        }
        let doc = Document {
            id: id.clone(),
            title: a.title.clone(),
            visible: Some(true),
            alternatives: Vec::new(),
            state: Some("Published".into()),
            date_modified: Some(modified.clone()),
            external_url: a.url.clone(),
            category: a.tags.first().map(|t| named("category", t)),
            labels: a.tags.iter().map(|t| named("label", t)).collect(),
            variations,
        };
        docs.insert(id, doc);
    }
    if !docs.is_empty() {
        let id = document_id("draft-hub-3-launch");
        docs.insert(
            id.clone(),
            Document {
                id: id.clone(),
                title: "Brightwave Hub 3 launch questions".into(),
                visible: Some(true),
                alternatives: Vec::new(),
                state: Some("Draft".into()),
                date_modified: Some(modified.clone()),
                external_url: None,
                category: None,
                labels: Vec::new(),
                variations: vec![variation(
                    &id,
                    "Default",
                    1,
                    "The Hub 3 ships next spring. Pre-orders open in March.",
                )],
            },
        );
    }
    let help = KnowledgeBase {
        id: HELP_CENTRE_KB_ID.into(),
        name: "Brightwave Help Centre".into(),
        description: Some("Customer-facing articles".into()),
        core_language: Some("en-US".into()),
        article_count: Some(docs.len() as u64),
        published: Some(true),
        date_document_last_modified: Some(modified.clone()),
    };
    let internal_doc = document_id("internal-escalations");
    let internal = KnowledgeBase {
        id: INTERNAL_KB_ID.into(),
        name: "Brightwave Internal Notes".into(),
        description: Some("Agent-only procedures".into()),
        core_language: Some("en-US".into()),
        article_count: Some(1),
        published: Some(true),
        date_document_last_modified: Some(modified.clone()),
    };
    let internal_docs = BTreeMap::from([(
        internal_doc.clone(),
        Document {
            id: internal_doc.clone(),
            title: "Escalating to a team leader".into(),
            visible: Some(true),
            alternatives: Vec::new(),
            state: Some("Published".into()),
            date_modified: Some(modified),
            external_url: None,
            category: None,
            labels: Vec::new(),
            variations: vec![variation(
                &internal_doc,
                "Default",
                1,
                "Escalate when the customer asks twice, or after 20 minutes.",
            )],
        },
    )]);
    Knowledge { bases: vec![(help, docs), (internal, internal_docs)], page_size: page_size.max(1) }
}

/// Changes to a document, as the control endpoint and [`super::SimHandle`] apply them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Edit {
    /// New body of the first variation, as Markdown.
    pub markdown: Option<String>,
    pub title: Option<String>,
    /// `Published`, `Draft` or `Archived`.
    pub state: Option<String>,
}

impl Knowledge {
    /// Applies an edit to a document of any knowledge base; false if there is none.
    pub fn edit(&mut self, document_id: &str, edit: &Edit) -> bool {
        let Some(doc) = self.bases.iter_mut().find_map(|(_, docs)| docs.get_mut(document_id)) else {
            return false;
        };
        if let Some(md) = &edit.markdown
            && let Some(v) = doc.variations.first_mut()
        {
            v.body = Some(Body { blocks: blocks::from_markdown(md) });
        }
        if let Some(t) = &edit.title {
            doc.title.clone_from(t);
        }
        if let Some(s) = &edit.state {
            doc.state = Some(s.clone());
        }
        doc.date_modified = Some(now());
        true
    }

    /// Deletes a document; false if there is none.
    pub fn delete(&mut self, document_id: &str) -> bool {
        self.bases.iter_mut().any(|(_, docs)| docs.remove(document_id).is_some())
    }
}

/// The configured knowledge faults that fire on this request, as a response.
fn fault_response(sim: &Shared, documents: bool) -> Option<Response> {
    for f in &sim.faults {
        match f.fault {
            Fault::Knowledge403 { documents_only } if !documents_only || documents => {
                f.fires(1);
                Shared::bump(&sim.counters.served_403);
                let perm = if documents { PERMISSION_DOCUMENTS } else { PERMISSION_KNOWLEDGE_BASES };
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "missing.permissions",
                    &format!("You are missing the following permission(s): [{perm}]"),
                ));
            }
            Fault::Knowledge429 { every, retry_after_s } if f.fires(every) => {
                Shared::bump(&sim.counters.served_429);
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too.many.requests",
                    "Rate limit exceeded the maximum.",
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Some(r);
            }
            Fault::Knowledge500 { every } if f.fires(every) => {
                Shared::bump(&sim.counters.served_500);
                return Some(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal.server.error",
                    "The server encountered an error",
                ));
            }
            _ => {}
        }
    }
    None
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `pageSize` within the API's bound, capped by the simulator's own.
fn page_size(q: &[(String, String)], max: usize, sim_cap: usize) -> Result<usize, Box<Response>> {
    match param(q, "pageSize").map(str::parse::<usize>) {
        None => Ok(sim_cap.min(25)),
        Some(Ok(n)) if (1..=max).contains(&n) => Ok(n.min(sim_cap)),
        Some(_) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            &format!("pageSize must be between 1 and {max}"),
        ))),
    }
}

/// One page after the `after` cursor (the last id of the previous page),
/// with a `nextUri` that repeats the other parameters.
fn page<T: Clone>(items: &[(String, T)], q: &[(String, String)], size: usize, path: &str) -> Listing<T> {
    let after = param(q, "after");
    let start = after.map_or(0, |a| items.iter().position(|(id, _)| id.as_str() > a).unwrap_or(items.len()));
    let end = (start + size).min(items.len());
    let entities: Vec<T> = items[start..end].iter().map(|(_, t)| t.clone()).collect();
    let next_uri = (end < items.len()).then(|| {
        let mut params: Vec<(String, String)> = q.iter().filter(|(k, _)| k != "after").cloned().collect();
        params.push(("after".into(), items[end - 1].0.clone()));
        format!("{path}?{}", serde_urlencoded::to_string(&params).unwrap_or_default())
    });
    Listing { entities, next_uri, previous_uri: None, self_uri: Some(path.to_string()) }
}

/// `GET /api/v2/knowledge/knowledgebases`.
pub async fn knowledge_bases(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers).or_else(|| fault_response(&sim, false)) {
        return r;
    }
    Shared::bump(&sim.counters.knowledge_requests);
    let k = sim.knowledge();
    let size = match page_size(&q, crate::net::knowledge::MAX_KB_PAGE as usize, k.page_size) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let items: Vec<(String, KnowledgeBase)> =
        k.bases.iter().map(|(b, _)| (b.id.clone(), b.clone())).collect();
    Json(page(&items, &q, size, "/api/v2/knowledge/knowledgebases")).into_response()
}

/// `GET /api/v2/knowledge/knowledgebases/{kbId}/documents`.
pub async fn documents(
    State(sim): Sim,
    headers: HeaderMap,
    UrlPath(kb): UrlPath<String>,
    Query(q): Params,
) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers).or_else(|| fault_response(&sim, true)) {
        return r;
    }
    Shared::bump(&sim.counters.knowledge_requests);
    let k = sim.knowledge();
    let size = match page_size(&q, crate::net::knowledge::MAX_DOCUMENT_PAGE as usize, k.page_size) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some((_, docs)) = k.bases.iter().find(|(b, _)| b.id == kb) else {
        return error(StatusCode::NOT_FOUND, "not.found", "knowledge base not found");
    };
    let drafts = param(&q, "includeDrafts") == Some("true");
    let interval = match param(&q, "interval").map(parse_interval) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(m)) => return error(StatusCode::BAD_REQUEST, "invalid.value", &m),
    };
    let expand: Vec<&str> =
        q.iter().filter(|(k, _)| k == "expand").flat_map(|(_, v)| v.split(',')).map(str::trim).collect();
    let items: Vec<(String, Document)> = docs
        .values()
        .filter(|d| {
            d.state.as_deref() == Some("Published") || (drafts && d.state.as_deref() == Some("Draft"))
        })
        .filter(|d| {
            interval.is_none_or(|(from, to)| {
                d.date_modified
                    .as_deref()
                    .and_then(|m| humantime::parse_rfc3339_weak(m).ok())
                    .is_some_and(|m| m >= from && m <= to)
            })
        })
        .map(|d| {
            let mut d = Document { variations: Vec::new(), ..d.clone() };
            if !expand.contains(&"category") {
                d.category = d.category.map(|c| Named { name: None, ..c });
            }
            if !expand.contains(&"labels") {
                d.labels = d.labels.into_iter().map(|l| Named { name: None, ..l }).collect();
            }
            (d.id.clone(), d)
        })
        .collect();
    Json(page(&items, &q, size, &format!("/api/v2/knowledge/knowledgebases/{kb}/documents"))).into_response()
}

fn parse_interval(s: &str) -> Result<(SystemTime, SystemTime), String> {
    let bad = || format!("interval `{s}` must be two ISO-8601 instants separated by /");
    let (a, b) = s.split_once('/').ok_or_else(bad)?;
    let a = humantime::parse_rfc3339_weak(a.trim()).map_err(|_| bad())?;
    let b = humantime::parse_rfc3339_weak(b.trim()).map_err(|_| bad())?;
    Ok((a, b))
}

/// `GET /api/v2/knowledge/knowledgebases/{kbId}/documents/{documentId}`.
pub async fn document(
    State(sim): Sim,
    headers: HeaderMap,
    UrlPath((kb, id)): UrlPath<(String, String)>,
    Query(q): Params,
) -> Response {
    if let Some(r) = reject_unauthorized(&sim, &headers).or_else(|| fault_response(&sim, true)) {
        return r;
    }
    Shared::bump(&sim.counters.knowledge_requests);
    Shared::bump(&sim.counters.knowledge_documents_fetched);
    let k = sim.knowledge();
    let Some(doc) = k.bases.iter().find(|(b, _)| b.id == kb).and_then(|(_, docs)| docs.get(&id)) else {
        return error(StatusCode::NOT_FOUND, "not.found", "document not found");
    };
    let expand_variations =
        q.iter().any(|(k, v)| k == "expand" && v.split(',').any(|e| e.trim() == "variations"));
    let doc =
        if expand_variations { doc.clone() } else { Document { variations: Vec::new(), ..doc.clone() } };
    Json(doc).into_response()
}

/// `POST /sim/knowledge/documents/{id}` with an [`Edit`]: edits a document.
pub async fn control_edit(State(sim): Sim, UrlPath(id): UrlPath<String>, Json(edit): Json<Edit>) -> Response {
    if sim.knowledge().edit(&id, &edit) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "not.found", "document not found")
    }
}

/// `DELETE /sim/knowledge/documents/{id}`: deletes a document.
pub async fn control_delete(State(sim): Sim, UrlPath(id): UrlPath<String>) -> Response {
    if sim.knowledge().delete(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "not.found", "document not found")
    }
}
