//! Markdown articles to Genesys Knowledge body blocks, so the simulator
//! serves the sample KB with the real block structure: headings as
//! paragraphs with a `HeadingN` font type, text runs with `Bold` /
//! `Italic` / `Strikethrough` marks and hyperlinks, ordered and unordered
//! lists (nested), tables with header cells, images with alt text, and
//! videos (an image whose URL is a video file).

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::net::knowledge::wire::{
    Block, Cell, CellProperties, Image, List, Paragraph, ParagraphProperties, Row, Table, Text, Video, kind,
};

/// A container being filled.
enum Frame {
    Paragraph { blocks: Vec<Block>, font: Option<String> },
    List { ordered: bool, items: Vec<Block> },
    Item { blocks: Vec<Block> },
    Table { rows: Vec<Row> },
    Row { cells: Vec<Cell> },
    Cell { blocks: Vec<Block>, header: bool },
    Image { url: String, alt: String },
}

/// Converts one article body.
pub fn from_markdown(markdown: &str) -> Vec<Block> {
    let mut top: Vec<Block> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut marks: Vec<&'static str> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut in_head = false;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => stack.push(Frame::Paragraph { blocks: Vec::new(), font: None }),
                Tag::Heading { level, .. } => {
                    stack.push(Frame::Paragraph { blocks: Vec::new(), font: Some(heading(level)) });
                }
                Tag::List(start) => stack.push(Frame::List { ordered: start.is_some(), items: Vec::new() }),
                Tag::Item => stack.push(Frame::Item { blocks: Vec::new() }),
                Tag::Table(_) => stack.push(Frame::Table { rows: Vec::new() }),
                Tag::TableHead => {
                    in_head = true;
                    stack.push(Frame::Row { cells: Vec::new() });
                }
                Tag::TableRow => stack.push(Frame::Row { cells: Vec::new() }),
                Tag::TableCell => stack.push(Frame::Cell { blocks: Vec::new(), header: in_head }),
                Tag::Strong => marks.push("Bold"),
                Tag::Emphasis => marks.push("Italic"),
                Tag::Strikethrough => marks.push("Strikethrough"),
                Tag::Link { dest_url, .. } => links.push(dest_url.to_string()),
                Tag::Image { dest_url, .. } => {
                    stack.push(Frame::Image { url: dest_url.to_string(), alt: String::new() })
                }
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Strong | TagEnd::Emphasis | TagEnd::Strikethrough => {
                    marks.pop();
                }
                TagEnd::Link => {
                    links.pop();
                }
                TagEnd::TableHead => {
                    in_head = false;
                    close(&mut stack, &mut top);
                }
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::List(_)
                | TagEnd::Item
                | TagEnd::Table
                | TagEnd::TableRow
                | TagEnd::TableCell
                | TagEnd::Image => close(&mut stack, &mut top),
                _ => {}
            },
            Event::Text(t) | Event::Code(t) => {
                if let Some(Frame::Image { alt, .. }) = stack.last_mut() {
                    alt.push_str(&t);
                } else {
                    let text = Text {
                        text: t.to_string(),
                        marks: marks.iter().map(|m| (*m).to_string()).collect(),
                        hyperlink: links.last().cloned(),
                    };
                    inline(
                        &mut stack,
                        &mut top,
                        Block { kind: kind::TEXT.into(), text: Some(text), ..Block::default() },
                    );
                }
            }
            Event::SoftBreak => inline(&mut stack, &mut top, plain(" ")),
            Event::HardBreak => inline(&mut stack, &mut top, plain("\n")),
            _ => {}
        }
    }
    while !stack.is_empty() {
        close(&mut stack, &mut top);
    }
    top
}

fn heading(level: HeadingLevel) -> String {
    let n = match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    };
    format!("Heading{n}")
}

fn plain(s: &str) -> Block {
    Block {
        kind: kind::TEXT.into(),
        text: Some(Text { text: s.into(), ..Text::default() }),
        ..Block::default()
    }
}

/// Adds an inline block to the innermost container that holds inline content.
fn inline(stack: &mut [Frame], top: &mut Vec<Block>, b: Block) {
    match stack.last_mut() {
        Some(Frame::Paragraph { blocks, .. } | Frame::Item { blocks } | Frame::Cell { blocks, .. }) => {
            blocks.push(b)
        }
        _ => top.push(b),
    }
}

/// Closes the innermost frame and hands its block to its parent.
fn close(stack: &mut Vec<Frame>, top: &mut Vec<Block>) {
    let Some(frame) = stack.pop() else { return };
    match frame {
        Frame::Paragraph { blocks, font } => {
            match stack.last_mut() {
                // Inside a list item or a cell a paragraph's runs join it directly.
                Some(Frame::Item { blocks: parent } | Frame::Cell { blocks: parent, .. }) => {
                    if !parent.is_empty() {
                        parent.push(plain(" "));
                    }
                    parent.extend(blocks);
                }
                _ => {
                    let media_only = !blocks.is_empty()
                        && blocks.iter().all(|b| b.kind == kind::IMAGE || b.kind == kind::VIDEO);
                    if media_only && font.is_none() {
                        top.extend(blocks);
                    } else {
                        let properties = font.map(|f| ParagraphProperties { font_type: Some(f) });
                        top.push(Block {
                            kind: kind::PARAGRAPH.into(),
                            paragraph: Some(Paragraph { blocks, properties }),
                            ..Block::default()
                        });
                    }
                }
            }
        }
        Frame::List { ordered, items } => {
            let b = Block {
                kind: if ordered { kind::ORDERED_LIST } else { kind::UNORDERED_LIST }.into(),
                list: Some(List { blocks: items }),
                ..Block::default()
            };
            match stack.last_mut() {
                Some(Frame::Item { blocks }) => blocks.push(b),
                _ => top.push(b),
            }
        }
        Frame::Item { blocks } => {
            if let Some(Frame::List { items, .. }) = stack.last_mut() {
                items.push(Block { kind: kind::LIST_ITEM.into(), blocks, ..Block::default() });
            }
        }
        Frame::Table { rows } => {
            top.push(Block { kind: kind::TABLE.into(), table: Some(Table { rows }), ..Block::default() })
        }
        Frame::Row { cells } => {
            if let Some(Frame::Table { rows }) = stack.last_mut() {
                rows.push(Row { cells });
            }
        }
        Frame::Cell { blocks, header } => {
            if let Some(Frame::Row { cells }) = stack.last_mut() {
                let cell_type = if header { "HeaderCell" } else { "Cell" };
                let para = Block {
                    kind: kind::PARAGRAPH.into(),
                    paragraph: Some(Paragraph { blocks, properties: None }),
                    ..Block::default()
                };
                cells.push(Cell {
                    blocks: vec![para],
                    properties: Some(CellProperties { cell_type: Some(cell_type.into()) }),
                });
            }
        }
        Frame::Image { url, alt } => {
            let lower = url.to_ascii_lowercase();
            let video = [".mp4", ".webm", ".mov"].iter().any(|e| lower.ends_with(e))
                || lower.contains("youtube.com/");
            let b = if video {
                Block { kind: kind::VIDEO.into(), video: Some(Video { url }), ..Block::default() }
            } else {
                let properties =
                    (!alt.trim().is_empty()).then(|| serde_json::json!({ "altText": alt.trim() }));
                Block {
                    kind: kind::IMAGE.into(),
                    image: Some(Image { url, hyperlink: None, alt_text: None, properties }),
                    ..Block::default()
                }
            };
            inline(stack, top, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::genesys::markdown;

    #[test]
    fn markdown_round_trips_through_blocks() {
        let md = "## Steps\n\nPress **Reset** for *ten* seconds, see [the guide](https://help.example/g).\n\n1. Open the app.\n2. Tap Account, then:\n   - Security\n   - Sign-in\n3. Done.\n\n| Plan | Price |\n| --- | --- |\n| Basic | £5 |\n\n![The hub's light](https://img.example/hub.png)\n\n![](https://video.example/pair.mp4)";
        let blocks = from_markdown(md);
        let kinds: Vec<&str> = blocks.iter().map(|b| b.kind.as_str()).collect();
        assert_eq!(kinds, ["Paragraph", "Paragraph", "OrderedList", "Table", "Image", "Video"]);
        assert_eq!(
            markdown::body(&blocks),
            "## Steps\n\nPress **Reset** for *ten* seconds, see [the guide](https://help.example/g).\n\n1. Open the app.\n2. Tap Account, then:\n   - Security\n   - Sign-in\n3. Done.\n\n| Plan | Price |\n| --- | --- |\n| Basic | £5 |\n\nThe hub's light\n\nVideo: https://video.example/pair.mp4"
        );
    }
}
