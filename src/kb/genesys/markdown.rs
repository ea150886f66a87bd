//! Genesys Knowledge document bodies to Markdown: paragraphs (headings by
//! their font type), text with marks and hyperlinks, ordered and unordered
//! lists with nesting, tables as pipe tables, images by their alt text and
//! videos by their URL. Pure; unknown block types are skipped, so a new
//! kind of block costs its text, never the document.

use crate::net::knowledge::wire::{Block, Document, Table, Text, kind};

/// The whole document as article text: each variation's body in priority
/// order (under a `##` heading with its name when there are several), then
/// the title's alternative phrasings, which customers often use verbatim.
pub fn document(doc: &Document) -> String {
    let mut variations: Vec<_> = doc.variations.iter().collect();
    variations.sort_by_key(|v| v.priority.unwrap_or(i64::MAX));
    let several = variations.len() > 1;
    let mut parts = Vec::new();
    for v in variations {
        let text = v.body.as_ref().map(|b| body(&b.blocks)).unwrap_or_default();
        if text.is_empty() {
            continue;
        }
        match v.name.as_deref().map(str::trim).filter(|n| several && !n.is_empty()) {
            Some(name) => parts.push(format!("## {name}\n\n{text}")),
            None => parts.push(text),
        }
    }
    let alternatives: Vec<&str> =
        doc.alternatives.iter().map(|a| a.phrase.trim()).filter(|p| !p.is_empty()).collect();
    if !alternatives.is_empty() && !parts.is_empty() {
        parts.push(format!("Also asked as: {}.", alternatives.join("; ")));
    }
    parts.join("\n\n")
}

/// Top-level blocks, separated by blank lines.
pub fn body(blocks: &[Block]) -> String {
    blocks.iter().filter_map(block).filter(|b| !b.trim().is_empty()).collect::<Vec<_>>().join("\n\n")
}

fn block(b: &Block) -> Option<String> {
    match b.kind.as_str() {
        kind::PARAGRAPH => {
            let p = b.paragraph.as_ref()?;
            let text = inline(&p.blocks);
            let font = p.properties.as_ref().and_then(|p| p.font_type.as_deref()).unwrap_or("");
            match font.strip_prefix("Heading").and_then(|n| n.parse::<usize>().ok()) {
                Some(level @ 1..=6) => {
                    let flat = flatten(&text);
                    (!flat.is_empty()).then(|| format!("{} {flat}", "#".repeat(level)))
                }
                _ => Some(text.trim().to_string()),
            }
        }
        kind::ORDERED_LIST | kind::UNORDERED_LIST => {
            let mut lines = Vec::new();
            list(b, "", &mut lines);
            Some(lines.join("\n"))
        }
        kind::TABLE => b.table.as_ref().map(table),
        // A bare text, image or video at the top level reads as a paragraph.
        _ => Some(inline(std::slice::from_ref(b))),
    }
}

/// Inline content: texts with marks and links, images, videos; paragraphs
/// and lists met inline (in a table cell) are flattened to one line.
fn inline(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        let piece = match b.kind.as_str() {
            kind::TEXT => b.text.as_ref().map(text).unwrap_or_default(),
            kind::IMAGE => {
                b.image.as_ref().and_then(|i| i.alt()).map(|a| format!(" {a} ")).unwrap_or_default()
            }
            kind::VIDEO => b
                .video
                .as_ref()
                .filter(|v| !v.url.trim().is_empty())
                .map(|v| format!(" Video: {} ", v.url.trim()))
                .unwrap_or_default(),
            kind::PARAGRAPH => {
                let inner = b.paragraph.as_ref().map(|p| inline(&p.blocks)).unwrap_or_default();
                format!(" {inner} ")
            }
            kind::ORDERED_LIST | kind::UNORDERED_LIST | kind::LIST_ITEM => {
                let mut lines = Vec::new();
                list(b, "", &mut lines);
                format!(" {} ", lines.iter().map(|l| flatten(l)).collect::<Vec<_>>().join("; "))
            }
            _ => String::new(),
        };
        out.push_str(&piece);
    }
    // Texts carry their own spacing; collapse what the pieces above added.
    let mut collapsed = String::with_capacity(out.len());
    for line in out.split('\n') {
        if !collapsed.is_empty() {
            collapsed.push('\n');
        }
        collapsed.push_str(&line.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
    }
    collapsed
}

/// One text run: marks as Markdown emphasis (underline, sub- and superscript
/// have none and stay plain), a web or mail hyperlink as a Markdown link.
/// The emphasis wraps the words only, so " bold " stays spaced.
fn text(t: &Text) -> String {
    let core = t.text.trim();
    if core.is_empty() {
        return t.text.replace(['\t', '\r'], " ");
    }
    let lead = &t.text[..t.text.len() - t.text.trim_start().len()];
    let trail = &t.text[t.text.trim_end().len()..];
    let has = |m: &str| t.marks.iter().any(|x| x.eq_ignore_ascii_case(m));
    let mut s = core.to_string();
    if has("Bold") {
        s = format!("**{s}**");
    }
    if has("Italic") {
        s = format!("*{s}*");
    }
    if has("Strikethrough") {
        s = format!("~~{s}~~");
    }
    if let Some(link) = t.hyperlink.as_deref().map(str::trim)
        && (link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:"))
    {
        s = format!("[{s}]({link})");
    }
    format!("{}{s}{}", space(lead), space(trail))
}

fn space(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else if s.contains('\n') {
        "\n"
    } else {
        " "
    }
}

fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A list block (`OrderedList` / `UnorderedList` with `list.blocks` of
/// `ListItem`s) as indented lines.
fn list(b: &Block, indent: &str, lines: &mut Vec<String>) {
    let ordered = b.kind == kind::ORDERED_LIST;
    let items: &[Block] = match &b.list {
        Some(l) => &l.blocks,
        // A lone list item.
        None => std::slice::from_ref(b),
    };
    for (n, item) in items.iter().enumerate() {
        let marker = if ordered { format!("{}.", n + 1) } else { "-".to_string() };
        let nested_indent = format!("{indent}{}", " ".repeat(marker.len() + 1));
        let (own, nested): (Vec<&Block>, Vec<&Block>) = item
            .blocks
            .iter()
            .partition(|c| !matches!(c.kind.as_str(), kind::ORDERED_LIST | kind::UNORDERED_LIST));
        let own: Vec<Block> = own.into_iter().cloned().collect();
        let text = flatten(&inline(&own));
        if !text.is_empty() {
            lines.push(format!("{indent}{marker} {text}"));
        } else if !nested.is_empty() {
            lines.push(format!("{indent}{marker}"));
        }
        for n in nested {
            list(n, &nested_indent, lines);
        }
    }
}

/// A pipe table; header cells (or else the first row) make the header.
fn table(t: &Table) -> String {
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.cells.iter().map(|c| flatten(&inline(&c.blocks)).replace('|', "\\|")).collect())
        .filter(|r: &Vec<String>| r.iter().any(|c| !c.is_empty()))
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut cells = row.clone();
        cells.resize(width, String::new());
        out.push(format!("| {} |", cells.join(" | ")));
        if i == 0 {
            out.push(format!("|{}", " --- |".repeat(width)));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::knowledge::wire::{Alternative, Body, Variation};
    use serde_json::json;

    fn blocks(v: serde_json::Value) -> Vec<Block> {
        serde_json::from_value(v).unwrap()
    }

    fn t(text: &str) -> serde_json::Value {
        json!({"type": "Text", "text": {"text": text}})
    }

    fn para(content: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"type": "Paragraph", "paragraph": {"blocks": content}})
    }

    #[test]
    fn paragraphs_marks_links_and_headings() {
        let b = blocks(json!([
            {"type": "Paragraph", "paragraph": {"blocks": [t("Before you start")], "properties": {"fontType": "Heading2"}}},
            para(vec![
                t("Press "),
                json!({"type": "Text", "text": {"text": "Reset ", "marks": ["Bold"]}}),
                json!({"type": "Text", "text": {"text": "for ten seconds", "marks": ["Italic", "Underline"]}}),
                t(", then see "),
                json!({"type": "Text", "text": {"text": "the guide", "hyperlink": "https://help.example/guide"}}),
                t(" or "),
                json!({"type": "Text", "text": {"text": "another article", "hyperlink": "grn:knowledge:::document/kb/doc"}}),
                t("."),
            ]),
        ]));
        assert_eq!(
            body(&b),
            "## Before you start\n\nPress **Reset** *for ten seconds*, then see [the guide](https://help.example/guide) or another article."
        );
    }

    #[test]
    fn nested_lists_keep_their_markers_and_indentation() {
        let item = |content: Vec<serde_json::Value>| json!({"type": "ListItem", "blocks": content});
        let b = blocks(json!([{"type": "OrderedList", "list": {"blocks": [
            item(vec![t("Open the app.")]),
            item(vec![t("Tap Account, then:"), json!({"type": "UnorderedList", "list": {"blocks": [
                item(vec![t("Security on Android")]),
                item(vec![t("Sign-in on iPhone")]),
            ]}})]),
            item(vec![t("Choose a new password.")]),
        ]}}]));
        assert_eq!(
            body(&b),
            "1. Open the app.\n2. Tap Account, then:\n   - Security on Android\n   - Sign-in on iPhone\n3. Choose a new password."
        );
    }

    #[test]
    fn tables_images_and_videos() {
        let cell = |s: &str| json!({"blocks": [para(vec![t(s)])]});
        let b = blocks(json!([
            {"type": "Table", "table": {"rows": [
                {"cells": [cell("Plan"), cell("Price")]},
                {"cells": [cell("Basic | monthly"), cell("£5")]},
            ]}},
            {"type": "Image", "image": {"url": "https://img.example/hub.png", "properties": {"altText": "The hub's status light"}}},
            {"type": "Image", "image": {"url": "https://img.example/decor.png"}},
            {"type": "Video", "video": {"url": "https://video.example/pairing.mp4"}},
        ]));
        assert_eq!(
            body(&b),
            "| Plan | Price |\n| --- | --- |\n| Basic \\| monthly | £5 |\n\nThe hub's status light\n\nVideo: https://video.example/pairing.mp4"
        );
    }

    #[test]
    fn variations_in_priority_order_with_names_and_alternatives() {
        let variation = |name: &str, priority: i64, text: &str| Variation {
            id: name.into(),
            name: Some(name.into()),
            priority: Some(priority),
            contexts: vec![],
            body: Some(Body { blocks: blocks(json!([para(vec![t(text)])])) }),
        };
        let doc = Document {
            id: "d".into(),
            title: "T".into(),
            visible: Some(true),
            alternatives: vec![Alternative { phrase: "forgot my password".into(), autocomplete: None }],
            state: Some("Published".into()),
            date_modified: None,
            external_url: None,
            category: None,
            labels: vec![],
            variations: vec![variation("Chat", 2, "Short."), variation("Voice", 1, "Long.")],
        };
        assert_eq!(
            document(&doc),
            "## Voice\n\nLong.\n\n## Chat\n\nShort.\n\nAlso asked as: forgot my password."
        );
    }

    #[test]
    fn unknown_blocks_are_skipped() {
        let b = blocks(json!([{"type": "Hologram", "hologram": {}}, para(vec![t("kept")])]));
        assert_eq!(body(&b), "kept");
    }
}
