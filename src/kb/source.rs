//! Knowledge-base sources: Markdown files with YAML front matter, JSON Lines
//! and CSV record files, HTML pages ([`html`]), or directories holding any of them. Turns them into
//! [`Article`]s, and every defect into a [`KbError`] that names the file and
//! line, so an operator can fix a KB without guessing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{KbError, Location};

mod html;

/// One knowledge-base article as loaded from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub id: String,
    /// Empty for a record without a title: it is embedded as its text alone,
    /// and shown under its id.
    pub title: String,
    pub tags: Vec<String>,
    pub url: Option<String>,
    pub content: String,
    /// Where it came from, for error messages and `kb stats`.
    pub origin: Location,
}

/// Loads every article from the given paths, in a stable order, and checks
/// that ids are unique and that there is at least one article.
pub fn load_sources(paths: &[PathBuf]) -> Result<Vec<Article>, KbError> {
    let mut articles = Vec::new();
    for path in source_files(paths)? {
        load_file(&path, &mut articles)?;
    }
    if articles.is_empty() {
        return Err(KbError::EmptyKb { sources: paths.to_vec() });
    }
    let mut seen: std::collections::HashMap<&str, &Location> = std::collections::HashMap::new();
    for a in &articles {
        if let Some(first) = seen.insert(&a.id, &a.origin) {
            return Err(KbError::DuplicateId {
                id: a.id.clone(),
                first: first.clone(),
                second: a.origin.clone(),
            });
        }
    }
    Ok(articles)
}

/// Expands directories (recursively, sorted) into the files the loader reads.
/// Files named explicitly are read whatever their extension says; inside a
/// directory only `.md`, `.markdown`, `.jsonl`, `.ndjson`, `.csv`, `.html`
/// and `.htm` count.
pub fn source_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, KbError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(KbError::SourceMissing { path: p.clone() });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), KbError> {
    let io = |source| KbError::Io { path: dir.to_path_buf(), source };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if Kind::of(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Markdown,
    JsonLines,
    Csv,
    Html,
}

impl Kind {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            "csv" => Some(Self::Csv),
            "html" | "htm" => Some(Self::Html),
            _ => None,
        }
    }
}

fn load_file(path: &Path, out: &mut Vec<Article>) -> Result<(), KbError> {
    let bytes = std::fs::read(path).map_err(|source| KbError::Io { path: path.into(), source })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| KbError::NotUtf8 { at: Location::new(path, line_of_offset(&bytes, e.valid_up_to())) })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match Kind::of(path).unwrap_or(Kind::Markdown) {
        Kind::Markdown => out.push(parse_markdown(path, text)?),
        Kind::JsonLines => parse_jsonl(path, text, out)?,
        Kind::Csv => parse_csv(path, text, out)?,
        Kind::Html => out.push(html::parse_html(path, text)?),
    }
    Ok(())
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Front matter keys; others are ignored so KBs exported from other tools load.
#[derive(Deserialize)]
struct FrontMatter {
    id: Option<Scalar>,
    title: Option<Scalar>,
    #[serde(default)]
    tags: Tags,
    url: Option<String>,
}

/// A YAML scalar that may have been written unquoted as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s.trim().to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
        }
    }
}

/// Tags as a list (`[a, b]`) or one comma/semicolon separated string.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::List(v) => v.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            Self::Text(s) => split_tags(&s),
        }
    }
}

fn split_tags(s: &str) -> Vec<String> {
    s.split([',', ';', '|']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// A Markdown article. With front matter, `id` and `title` are required; a
/// file without front matter takes its id from the file name and its title
/// from the first `# ` heading.
fn parse_markdown(path: &Path, text: &str) -> Result<Article, KbError> {
    let bad = |line: usize, message: String| KbError::FrontMatter { at: Location::new(path, line), message };
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    let (meta, body, body_line) = if first.trim_end() == "---" {
        // Keep the opening `---` (a YAML document marker) so the parser's
        // line numbers are the file's.
        let mut yaml = first.to_string();
        let mut closed_at = None;
        for (i, line) in lines.by_ref().enumerate() {
            let t = line.trim_end();
            if t == "---" || t == "..." {
                closed_at = Some(i + 2);
                break;
            }
            yaml.push_str(line);
        }
        let Some(close_line) = closed_at else {
            return Err(bad(1, "front matter opened here is never closed by a `---` line".into()));
        };
        let fm: FrontMatter = serde_yaml_ng::from_str(&yaml).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            bad(line, e.to_string())
        })?;
        let body: String = lines.collect();
        (Some(fm), body, close_line + 1)
    } else {
        (None, text.to_string(), 1)
    };
    let (id, title, tags, url) = match meta {
        Some(fm) => {
            let id = fm.id.map(Scalar::into_string).filter(|s| !s.is_empty());
            let id = id.ok_or_else(|| bad(1, "front matter has no `id`".into()))?;
            let title = fm.title.map(Scalar::into_string).filter(|s| !s.is_empty());
            let title = title.ok_or_else(|| bad(1, format!("article `{id}` has no `title`")))?;
            (id, title, fm.tags.into_vec(), fm.url)
        }
        None => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("article").to_string();
            let title = body
                .lines()
                .find_map(|l| l.strip_prefix("# "))
                .map_or_else(|| stem.clone(), |t| t.trim().to_string());
            (stem, title, Vec::new(), None)
        }
    };
    let content = strip_title_heading(&body, &title).trim().to_string();
    if content.is_empty() {
        return Err(KbError::Record {
            at: Location::new(path, body_line),
            message: format!("article `{id}` has no content after its front matter"),
        });
    }
    Ok(Article { id, title, tags, url, content, origin: Location::new(path, 1) })
}

/// Drops a leading `# Title` heading that repeats the title: every chunk is
/// prefixed with the title already.
fn strip_title_heading<'a>(body: &'a str, title: &str) -> &'a str {
    let trimmed = body.trim_start();
    if let Some(rest) = trimmed.strip_prefix("# ") {
        let (heading, after) = rest.split_once('\n').unwrap_or((rest, ""));
        if heading.trim().eq_ignore_ascii_case(title.trim()) {
            return after;
        }
    }
    body
}

/// One record of a JSON Lines or CSV source.
#[derive(Deserialize)]
struct Record {
    id: Option<Scalar>,
    title: Option<String>,
    content: Option<String>,
    url: Option<String>,
    #[serde(default)]
    tags: Tags,
}

impl Record {
    fn into_article(self, at: Location) -> Result<Article, KbError> {
        let bad = |message: String| KbError::Record { at: at.clone(), message };
        let id = self.id.map(Scalar::into_string).filter(|s| !s.is_empty());
        let id = id.ok_or_else(|| bad("record has no `id`".into()))?;
        let content = self.content.map(|c| c.trim().to_string()).unwrap_or_default();
        if content.is_empty() {
            return Err(bad(format!("record `{id}` has no `content`")));
        }
        let title = self.title.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        Ok(Article {
            title: title.unwrap_or_default(),
            id,
            tags: self.tags.into_vec(),
            url: self.url.filter(|u| !u.trim().is_empty()),
            content,
            origin: at,
        })
    }
}

fn parse_jsonl(path: &Path, text: &str, out: &mut Vec<Article>) -> Result<(), KbError> {
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location::new(path, i + 1);
        let record: Record = serde_json::from_str(line)
            .map_err(|e| KbError::Record { at: at.clone(), message: e.to_string() })?;
        out.push(record.into_article(at)?);
    }
    Ok(())
}

fn parse_csv(path: &Path, text: &str, out: &mut Vec<Article>) -> Result<(), KbError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::Headers).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| KbError::Record { at: Location::new(path, 1), message: e.to_string() })?
        .clone();
    for name in ["id", "content"] {
        if !headers.iter().any(|h| h == name) {
            return Err(KbError::Record {
                at: Location::new(path, 1),
                message: format!(
                    "CSV header has no `{name}` column (found: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
            KbError::Record { at: Location::new(path, line), message: e.to_string() }
        })?;
        let line = row.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let at = Location::new(path, line);
        let record: Record = row
            .deserialize(Some(&headers))
            .map_err(|e| KbError::Record { at: at.clone(), message: e.to_string() })?;
        out.push(record.into_article(at)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> Result<Article, KbError> {
        parse_markdown(Path::new("kb/x.md"), text)
    }

    #[test]
    fn front_matter_fields_and_title_heading_are_read() {
        let a = md("---\nid: pw\ntitle: Reset\ntags: [a, b]\nurl: https://x\n---\n# Reset\n\nBody text.\n")
            .unwrap();
        assert_eq!((a.id.as_str(), a.title.as_str()), ("pw", "Reset"));
        assert_eq!(a.tags, vec!["a", "b"]);
        assert_eq!(a.url.as_deref(), Some("https://x"));
        assert_eq!(a.content, "Body text.");
    }

    #[test]
    fn numeric_ids_and_string_tags_are_accepted() {
        let a = md("---\nid: 42\ntitle: T\ntags: x; y\n---\nBody\n").unwrap();
        assert_eq!(a.id, "42");
        assert_eq!(a.tags, vec!["x", "y"]);
    }

    #[test]
    fn bad_front_matter_names_the_line() {
        let err = md("---\nid: a\ntitle: [unclosed\ntags: [a]\n---\nBody\n").unwrap_err();
        let KbError::FrontMatter { at, .. } = &err else { panic!("{err}") };
        assert!(at.line >= 3, "{err}");
        assert!(err.to_string().contains("kb/x.md:"), "{err}");
    }

    #[test]
    fn unclosed_front_matter_and_missing_keys_are_errors() {
        assert!(matches!(md("---\nid: a\nBody\n"), Err(KbError::FrontMatter { .. })));
        let err = md("---\ntitle: T\n---\nBody\n").unwrap_err();
        assert!(err.to_string().contains("no `id`"), "{err}");
        let err = md("---\nid: a\n---\nBody\n").unwrap_err();
        assert!(err.to_string().contains("no `title`"), "{err}");
        let err = md("---\nid: a\ntitle: T\n---\n\n").unwrap_err();
        assert!(err.to_string().contains("no content"), "{err}");
    }

    #[test]
    fn markdown_without_front_matter_uses_file_name_and_heading() {
        let a = md("# Pairing help\n\nHold the button.\n").unwrap();
        assert_eq!(
            (a.id.as_str(), a.title.as_str(), a.content.as_str()),
            ("x", "Pairing help", "Hold the button.")
        );
    }

    #[test]
    fn jsonl_records_with_errors_on_their_line() {
        let mut out = Vec::new();
        let text = "{\"id\": 1, \"content\": \"c1\", \"tags\": [\"t\"]}\n\n{\"id\": \"b\", \"title\": \"B\", \"content\": \"c2\"}\n";
        parse_jsonl(Path::new("r.jsonl"), text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].id.as_str(), out[0].title.as_str()), ("1", ""), "untitled stays untitled");
        assert_eq!(out[1].origin.line, 3);
        let err =
            parse_jsonl(Path::new("r.jsonl"), "{\"id\":1,\"content\":\"x\"}\n{oops\n", &mut out).unwrap_err();
        assert!(err.to_string().starts_with("r.jsonl:2:"), "{err}");
        let err = parse_jsonl(Path::new("r.jsonl"), "{\"id\":1}\n", &mut out).unwrap_err();
        assert!(err.to_string().contains("no `content`"), "{err}");
    }

    #[test]
    fn csv_records_and_missing_columns() {
        let mut out = Vec::new();
        let text = "id,title,content,url,tags\na,A,\"first, with comma\",,x;y\nb,,second,https://b,\n";
        parse_csv(Path::new("r.csv"), text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].content, "first, with comma");
        assert_eq!(out[0].tags, vec!["x", "y"]);
        assert_eq!((out[1].title.as_str(), out[1].origin.line), ("", 3));
        let err = parse_csv(Path::new("r.csv"), "id,body\na,b\n", &mut out).unwrap_err();
        assert!(err.to_string().contains("no `content` column"), "{err}");
    }
}
