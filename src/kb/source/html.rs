//! HTML pages (a help-centre export) as articles.
//!
//! html5ever (through `scraper`) parses the page as a browser would, so
//! entities, unclosed tags and stray markup need no special care. The title
//! is the page's `<title>` (or the first heading when there is none; when the
//! main heading is contained in the `<title>`, as in "Resetting your password
//! – Help Centre", the heading wins, which drops the site suffix). The text
//! is the main content (`<main>`, else `<article>`, else `[role=main]`, else
//! `<body>`) turned into Markdown-ish text: headings as `#` lines, lists as
//! `-` / `1.` lines indented by nesting, tables as pipe tables; navigation,
//! banners, footers, scripts, styles, forms and hidden elements are left out.
//! The id is the file name, as for Markdown without front matter; `<link
//! rel=canonical>` (or `og:url`) gives the URL and `<meta name=keywords>` the tags.

use std::path::Path;

use scraper::{ElementRef, Html, Node, Selector};

use super::{Article, KbError, Location, split_tags, strip_title_heading};

/// Elements that never hold article text.
const SKIPPED: [&str; 19] = [
    "head", "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "button",
    "select", "input", "textarea", "svg", "iframe", "canvas", "dialog", "object",
];
/// ARIA roles of page furniture.
const SKIPPED_ROLES: [&str; 5] = ["navigation", "banner", "contentinfo", "search", "complementary"];
/// Elements that start and end a paragraph of their own.
const BLOCKS: [&str; 16] = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
    "center",
    "fieldset",
    "body",
];

/// Parses one page. A page without any text in its main content is an
/// error naming the file, as an empty Markdown article is.
pub(super) fn parse_html(path: &Path, text: &str) -> Result<Article, KbError> {
    let doc = Html::parse_document(text);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("article").to_string();
    let root = content_root(&doc);
    let mut w = Writer::default();
    if let Some(root) = root {
        blocks(root, &mut w);
    }
    w.flush();
    let body = w.blocks.join("\n\n");
    let title = title(&doc, root).unwrap_or_else(|| stem.clone());
    let content = strip_title_heading(&body, &title).trim().to_string();
    if content.is_empty() {
        return Err(KbError::Record {
            at: Location::new(path, 1),
            message: format!(
                "HTML page `{stem}` has no text in its main content (<main>, <article>, [role=main] or <body>)"
            ),
        });
    }
    let url = first_attr(&doc, "link[rel=canonical]", "href")
        .or_else(|| first_attr(&doc, "meta[property='og:url']", "content"));
    let tags = first_attr(&doc, "meta[name=keywords]", "content").map(|k| split_tags(&k)).unwrap_or_default();
    Ok(Article { id: stem, title, tags, url, content, origin: Location::new(path, 1) })
}

fn selector(css: &str) -> Option<Selector> {
    // The selectors are constants of this file; a typo would show in tests.
    Selector::parse(css).ok()
}

fn first<'a>(doc: &'a Html, css: &str) -> Option<ElementRef<'a>> {
    doc.select(&selector(css)?).next()
}

fn first_attr(doc: &Html, css: &str, attr: &str) -> Option<String> {
    let v = first(doc, css)?.attr(attr)?.trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// Where the article is: the first of `<main>`, `<article>`, `[role=main]`, `<body>`.
fn content_root(doc: &Html) -> Option<ElementRef<'_>> {
    ["main", "article", "[role=main]", "body"].into_iter().find_map(|css| first(doc, css))
}

/// The `<title>`, or the main heading when the title merely adds a site name
/// to it, or the first heading when there is no title.
fn title(doc: &Html, root: Option<ElementRef<'_>>) -> Option<String> {
    let heading = root
        .zip(selector("h1, h2, h3"))
        .and_then(|(r, s)| r.select(&s).next())
        .map(|h| clean(&inline_of(h)))
        .filter(|h| !h.is_empty());
    let title = first(doc, "title").map(|t| clean(&t.text().collect::<String>())).filter(|t| !t.is_empty());
    match (title, heading) {
        (Some(t), Some(h)) if t.to_lowercase().contains(&h.to_lowercase()) => Some(h),
        (Some(t), _) => Some(t),
        (None, h) => h,
    }
}

/// Whether an element is page furniture rather than article text.
fn skipped(el: ElementRef<'_>) -> bool {
    let e = el.value();
    SKIPPED.contains(&e.name())
        || e.attr("hidden").is_some()
        || e.attr("aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || e.attr("role").is_some_and(|r| SKIPPED_ROLES.contains(&r.to_ascii_lowercase().as_str()))
}

/// Paragraphs being assembled: finished blocks plus the current line.
#[derive(Default)]
struct Writer {
    blocks: Vec<String>,
    line: String,
}

impl Writer {
    /// Appends text, collapsing whitespace as a browser does.
    fn text(&mut self, t: &str) {
        push_collapsed(&mut self.line, t);
    }

    /// Ends the current paragraph.
    fn flush(&mut self) {
        let lines: Vec<&str> = self.line.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if !lines.is_empty() {
            self.blocks.push(lines.join("\n"));
        }
        self.line.clear();
    }

    fn push(&mut self, block: String) {
        self.flush();
        if !block.trim().is_empty() {
            self.blocks.push(block);
        }
    }
}

fn push_collapsed(out: &mut String, t: &str) {
    for c in t.chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Whitespace runs (line breaks included) become single spaces.
fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Walks block-level content.
fn blocks(el: ElementRef<'_>, w: &mut Writer) {
    for child in el.children() {
        let Some(c) = ElementRef::wrap(child) else {
            if let Node::Text(t) = child.value() {
                w.text(t);
            }
            continue;
        };
        if skipped(c) {
            continue;
        }
        let name = c.value().name();
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = usize::from(name.as_bytes()[1] - b'0');
                let text = clean(&inline_of(c));
                if !text.is_empty() {
                    w.push(format!("{} {text}", "#".repeat(level)));
                }
            }
            "ul" | "ol" => {
                let mut lines = Vec::new();
                list(c, "", &mut lines);
                w.push(lines.join("\n"));
            }
            "table" => w.push(table(c)),
            "pre" => w.push(c.text().collect::<String>().trim_end().to_string()),
            "blockquote" => {
                let mut inner = Writer::default();
                blocks(c, &mut inner);
                inner.flush();
                let quoted: Vec<String> = inner
                    .blocks
                    .iter()
                    .map(|b| b.lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n"))
                    .collect();
                w.push(quoted.join("\n>\n"));
            }
            "br" => w.line.push('\n'),
            "hr" => w.flush(),
            "img" => w.text(&format!(" {} ", c.attr("alt").unwrap_or(""))),
            _ if BLOCKS.contains(&name) => {
                w.flush();
                blocks(c, w);
                w.flush();
            }
            // Inline elements (a, strong, em, span, code...): their text joins the line.
            _ => blocks(c, w),
        }
    }
}

/// The text of an element on one line (images by their alt text), leaving
/// out nested lists when `skip_lists` (a list item's own text).
fn inline(el: ElementRef<'_>, out: &mut String, skip_lists: bool) {
    for child in el.children() {
        let Some(c) = ElementRef::wrap(child) else {
            if let Node::Text(t) = child.value() {
                push_collapsed(out, t);
            }
            continue;
        };
        if skipped(c) || (skip_lists && matches!(c.value().name(), "ul" | "ol")) {
            continue;
        }
        match c.value().name() {
            "img" => push_collapsed(out, &format!(" {} ", c.attr("alt").unwrap_or(""))),
            "br" => out.push(' '),
            name if BLOCKS.contains(&name)
                || matches!(name, "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6") =>
            {
                push_collapsed(out, " ");
                inline(c, out, skip_lists);
                push_collapsed(out, " ");
            }
            _ => inline(c, out, skip_lists),
        }
    }
}

fn inline_of(el: ElementRef<'_>) -> String {
    let mut s = String::new();
    inline(el, &mut s, false);
    s
}

/// One line per item, `-` or `N.`, nested lists indented under their item.
fn list(el: ElementRef<'_>, indent: &str, lines: &mut Vec<String>) {
    let ordered = el.value().name() == "ol";
    let mut n: i64 = el.attr("start").and_then(|s| s.trim().parse().ok()).unwrap_or(1);
    for item in el.children().filter_map(ElementRef::wrap).filter(|c| c.value().name() == "li") {
        if skipped(item) {
            continue;
        }
        let marker = if ordered { format!("{n}.") } else { "-".to_string() };
        n += 1;
        let mut text = String::new();
        inline(item, &mut text, true);
        let text = clean(&text);
        let nested_indent = format!("{indent}{}", " ".repeat(marker.len() + 1));
        let mut nested = Vec::new();
        nested_lists(item, &nested_indent, &mut nested);
        if !text.is_empty() {
            lines.push(format!("{indent}{marker} {text}"));
        } else if nested.is_empty() {
            continue;
        } else {
            lines.push(format!("{indent}{marker}"));
        }
        lines.extend(nested);
    }
}

/// Lists anywhere inside a list item (directly or within a wrapper).
fn nested_lists(el: ElementRef<'_>, indent: &str, lines: &mut Vec<String>) {
    for c in el.children().filter_map(ElementRef::wrap) {
        if skipped(c) {
            continue;
        }
        match c.value().name() {
            "ul" | "ol" => list(c, indent, lines),
            "li" => {}
            _ => nested_lists(c, indent, lines),
        }
    }
}

/// A pipe table; the first row is the header (Markdown tables need one).
fn table(el: ElementRef<'_>) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut caption = None;
    collect_rows(el, &mut rows, &mut caption);
    rows.retain(|r| r.iter().any(|c| !c.is_empty()));
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut out: Vec<String> = caption.into_iter().collect();
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

fn collect_rows(el: ElementRef<'_>, rows: &mut Vec<Vec<String>>, caption: &mut Option<String>) {
    for c in el.children().filter_map(ElementRef::wrap) {
        match c.value().name() {
            "caption" => *caption = Some(clean(&inline_of(c))).filter(|s| !s.is_empty()),
            "thead" | "tbody" | "tfoot" => collect_rows(c, rows, caption),
            "tr" => rows.push(
                c.children()
                    .filter_map(ElementRef::wrap)
                    .filter(|cell| matches!(cell.value().name(), "td" | "th"))
                    .map(|cell| clean(&inline_of(cell)).replace('|', "\\|"))
                    .collect(),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Result<Article, KbError> {
        parse_html(Path::new("export/page.html"), text)
    }

    fn fixture(name: &str) -> Article {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/html").join(name);
        let text = std::fs::read_to_string(&path).expect("fixture");
        parse_html(&path, &text).expect("fixture parses")
    }

    #[test]
    fn a_help_centre_page_keeps_its_article_and_drops_the_furniture() {
        let a = fixture("reset-password.html");
        assert_eq!(a.id, "reset-password");
        assert_eq!(a.title, "Resetting your Brightwave password");
        assert_eq!(a.url.as_deref(), Some("https://help.brightwave.example/articles/reset-password"));
        assert_eq!(a.tags, vec!["account", "password", "sign-in"]);
        for gone in
            ["Skip to content", "Sign in", "Was this article helpful", "© 2026", "gtag", "font-family"]
        {
            assert!(!a.content.contains(gone), "`{gone}` leaked into {}", a.content);
        }
        assert!(!a.content.starts_with("# Resetting"), "title heading repeated: {}", a.content);
        // Entities are decoded, whitespace collapsed.
        assert!(a.content.contains("You’ll get an email from Brightwave & Co."), "{}", a.content);
        assert!(a.content.contains("## Reset it from the app"), "{}", a.content);
        // Nested lists keep their numbering and indentation.
        assert!(
            a.content.contains(
                "1. Open the Brightwave app.\n2. Tap Account, then:\n   - Security on Android\n   - Sign-in & security on iPhone\n3. Choose a new password."
            ),
            "{}",
            a.content
        );
        assert!(
            a.content.contains(
                "| Problem | What to do |\n| --- | --- |\n| The email never arrives | Check spam, then ask for a new link. |\n| The link has expired | Links last 30 minutes \\| ask again. |"
            ),
            "{}",
            a.content
        );
        assert!(a.content.contains("Screenshot of the Security screen"), "image alt text: {}", a.content);
        assert!(a.content.contains("> Never share the code"), "blockquote: {}", a.content);
    }

    #[test]
    fn a_page_without_title_or_main_uses_role_main_and_its_first_heading() {
        let a = fixture("router-lights.html");
        assert_eq!(a.title, "What the lights on your router mean");
        assert!(a.content.contains("- Solid white: connected"), "{}", a.content);
        assert!(!a.content.contains("Related articles"), "{}", a.content);
        assert!(!a.content.contains("cookie"), "{}", a.content);
    }

    #[test]
    fn body_is_the_fallback_and_the_file_name_the_last_resort_title() {
        let a =
            page("<html><body><nav>Home</nav><p>Just a paragraph &lt;here&gt;.</p></body></html>").unwrap();
        assert_eq!((a.id.as_str(), a.title.as_str()), ("page", "page"));
        assert_eq!(a.content, "Just a paragraph <here>.");
    }

    #[test]
    fn a_page_without_text_is_an_error_naming_the_file() {
        let err = page(
            "<html><head><title>Empty</title></head><body><nav>Home</nav><script>x()</script></body></html>",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("export/page.html:1:"), "{err}");
        assert!(err.to_string().contains("no text"), "{err}");
    }

    #[test]
    fn line_breaks_hidden_elements_and_ordered_starts() {
        let a = page(
            "<main><h1>T</h1><p>one<br>two</p><p hidden>secret</p><ol start=\"4\"><li>four</li><li>five</li></ol></main>",
        )
        .unwrap();
        assert_eq!(a.content, "one\ntwo\n\n4. four\n5. five");
    }
}
