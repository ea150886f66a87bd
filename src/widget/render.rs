//! Article text to what an agent page may show: Markdown rendered to HTML
//! that cannot carry markup or script of the article's own, and links
//! limited to web addresses. Done once per suggestion, on the server, so the
//! page only ever inserts HTML that went through here.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser};

/// The passage of an article as safe HTML.
///
/// Two layers: raw HTML in the article is shown as text (an article that
/// says `<script>` means the words, and an agent should read them), then
/// ammonia keeps only a small set of tags and `http`/`https`/`mailto`/`tel`
/// links, so a `javascript:` link or an event attribute cannot survive
/// whatever the Markdown parser lets through.
pub fn passage_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 5 / 4 + 16);
    pulldown_cmark::html::push_html(&mut html, events);
    sanitizer().clean(&html).to_string()
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let tags: HashSet<&str> = [
            "p",
            "br",
            "hr",
            "strong",
            "em",
            "b",
            "i",
            "del",
            "code",
            "pre",
            "blockquote",
            "ul",
            "ol",
            "li",
            "a",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
        ]
        .into_iter()
        .collect();
        let mut b = ammonia::Builder::default();
        b.tags(tags)
            .url_schemes(["http", "https", "mailto", "tel"].into_iter().collect())
            .link_rel(Some("noopener noreferrer nofollow"))
            // Articles open beside the agent desktop, not inside the widget.
            .set_tag_attribute_value("a", "target", "_blank")
            .url_relative(ammonia::UrlRelative::Deny);
        b
    })
}

/// An article link the page may offer: absolute `http(s)` only.
pub fn safe_url(url: Option<&str>) -> Option<String> {
    let parsed = url::Url::parse(url?.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// Escapes text for an HTML attribute or element body (the page template's
/// few server-filled values).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_article_markup_stays_text() {
        let html = passage_html("**Reset** the router:\n\n1. unplug\n2. wait `30 s`\n");
        assert!(html.contains("<strong>Reset</strong>"), "{html}");
        assert!(html.contains("<ol>") && html.contains("<code>30 s</code>"), "{html}");
        let evil =
            "Hi <script>alert(1)</script> and <img src=x onerror=\"alert(2)\">\n\n<div onclick=x>block</div>";
        let html = passage_html(evil);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text: {html}");
        assert!(html.contains("&lt;img src=x onerror="), "shown as text: {html}");
    }

    #[test]
    fn only_web_links_survive() {
        let html =
            passage_html("[click](javascript:alert(1)) [data](data:text/html,x) [ok](https://kb.example/a)");
        assert!(!html.contains("javascript:") && !html.contains("data:text"), "{html}");
        assert!(html.contains(r#"href="https://kb.example/a""#), "{html}");
        assert!(html.contains(r#"target="_blank""#) && html.contains("noopener"), "{html}");
        assert_eq!(safe_url(Some("javascript:alert(1)")), None);
        assert_eq!(safe_url(Some("/relative")), None);
        assert_eq!(safe_url(Some(" https://kb.example/x?y=1 ")).as_deref(), Some("https://kb.example/x?y=1"));
        assert_eq!(escape_html(r#"<a href="x">'&'"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;");
    }
}
