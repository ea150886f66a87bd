//! Wire types of the Genesys Knowledge API (knowledge bases, documents,
//! variations and their body blocks), shared by the client and the
//! simulator. Every field the API may omit is optional or defaulted, and
//! unknown fields are ignored, so a newer server does not break the sync.

use serde::{Deserialize, Serialize};

/// One page of a cursor-paged listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    #[serde(default = "Vec::new")]
    pub entities: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_uri: Option<String>,
}

/// `GET /api/v2/knowledge/knowledgebases` entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBase {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_document_last_modified: Option<String>,
}

/// A category or label reference (`expand=category,labels` fills the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An alternative phrasing of a document's title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternative {
    pub phrase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<bool>,
}

/// A knowledge document, as listed (no variations) or fetched with
/// `expand=variations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// `Draft`, `Published` or `Archived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Named>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Named>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variations: Vec<Variation>,
}

/// One variation of a document's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variation {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub blocks: Vec<Block>,
}

/// Any block of a body, a paragraph, a list item or a table cell. The API
/// uses one shape per context, all `{type, <type-specific field>}`; one
/// recursive struct reads them all. `blocks` holds a list item's content.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Block {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paragraph: Option<Paragraph>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Video>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<List>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Paragraph {
    #[serde(default)]
    pub blocks: Vec<Block>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<ParagraphProperties>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParagraphProperties {
    /// `Paragraph`, `Heading1`…`Heading6` or `Preformatted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub text: String,
    /// `Bold`, `Italic`, `Underline`, `Strikethrough`, `Subscript`, `Superscript`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperlink: Option<String>,
}

/// An image. The documented fields are `url` and `hyperlink`; the alt text
/// is read from `altText` or `properties.altText` when present.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperlink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Value>,
}

impl Image {
    pub fn alt(&self) -> Option<&str> {
        self.alt_text
            .as_deref()
            .or_else(|| self.properties.as_ref()?.get("altText")?.as_str())
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Video {
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct List {
    /// `ListItem` blocks.
    #[serde(default)]
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    #[serde(default)]
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Row {
    #[serde(default)]
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cell {
    #[serde(default)]
    pub blocks: Vec<Block>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<CellProperties>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellProperties {
    /// `Cell` or `HeaderCell`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_type: Option<String>,
}

/// Block type names.
pub mod kind {
    pub const PARAGRAPH: &str = "Paragraph";
    pub const TEXT: &str = "Text";
    pub const IMAGE: &str = "Image";
    pub const VIDEO: &str = "Video";
    pub const ORDERED_LIST: &str = "OrderedList";
    pub const UNORDERED_LIST: &str = "UnorderedList";
    pub const LIST_ITEM: &str = "ListItem";
    pub const TABLE: &str = "Table";
}
