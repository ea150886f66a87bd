//! Splits articles into chunks the embedding model can see whole.
//!
//! MiniLM truncates its input at 256 word pieces, so anything past that in a
//! chunk would be invisible to search. Each chunk is the article title plus a
//! run of whole paragraphs (or sentences, or words, for oversized ones) whose
//! word-piece count, title included, stays within the limit. A heading is
//! kept with the paragraph after it. Each article also gets one title-only
//! entry: short customer phrases match a short title better than a long
//! passage (it lifted recall@3 on the labelled set from 0.968 to 0.989).
//! An untitled record (a JSON Lines / CSV row without `title`, whose
//! article title is empty) is embedded as its text alone, with no title-only
//! entry: prefixing its id taught the model nothing and cost 4 points of
//! top-1 on an intent set, and the id-only vectors doubled the build.
//! Pure: the word-piece counter is passed in.

use serde::{Deserialize, Serialize};

use super::source::Article;

/// Word pieces reserved for the `[CLS]` and `[SEP]` tokens the model adds.
const SPECIAL_TOKENS: usize = 2;
/// The smallest passage budget we accept, however long a title is.
const MIN_BUDGET: usize = 32;

/// A passage of one article, ready to embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Index of the article in the knowledge base's article list.
    pub article: u32,
    /// Position of this chunk within its article, from 0.
    pub ordinal: u32,
    /// The passage as written in the article (without the title prefix);
    /// empty for the title-only entry.
    pub text: String,
    /// The article's title-only entry rather than a passage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub title_only: bool,
    /// The article has no title: the passage is embedded alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untitled: bool,
}

impl Chunk {
    /// The text the model embeds: the title, then the passage (the passage
    /// alone for an untitled article).
    pub fn embed_text(&self, title: &str) -> String {
        if self.title_only {
            title.to_string()
        } else if self.untitled {
            self.text.clone()
        } else {
            format!("{title}\n{}", self.text)
        }
    }
}

/// Chunks every article; `count` returns the word pieces of a text without
/// special tokens. `max_tokens` is the model's input limit (256 for MiniLM).
pub fn chunk_articles(articles: &[Article], max_tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (i, a) in articles.iter().enumerate() {
        let untitled = a.title.trim().is_empty();
        let title_cost = if untitled { 0 } else { count(&a.title) + 1 };
        let budget = max_tokens.saturating_sub(SPECIAL_TOKENS + title_cost).max(MIN_BUDGET);
        let article = u32::try_from(i).unwrap_or(u32::MAX);
        if !untitled {
            out.push(Chunk { article, ordinal: 0, text: String::new(), title_only: true, untitled });
        }
        for (ordinal, text) in split_text(&a.content, budget, count).into_iter().enumerate() {
            let ordinal = u32::try_from(ordinal).unwrap_or(u32::MAX);
            out.push(Chunk { article, ordinal, text, title_only: false, untitled });
        }
    }
    out
}

/// A piece of text with its word-piece count, and the separator that joins it
/// to the piece before it inside a chunk.
struct Unit {
    text: String,
    tokens: usize,
    sep: &'static str,
}

/// Splits one text into passages of at most `budget` word pieces.
pub fn split_text(text: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut units: Vec<Unit> = Vec::new();
    let mut pending_heading: Option<Unit> = None;
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let tokens = count(block);
        let is_heading = block.starts_with('#') && !block.contains('\n');
        let mut pieces = if tokens <= budget {
            vec![Unit { text: block.to_string(), tokens, sep: "\n\n" }]
        } else {
            split_oversized(block, budget, count)
        };
        if let Some(h) = pending_heading.take() {
            // Keep a heading with what follows it when both fit together.
            if let Some(first) = pieces.first_mut().filter(|p| p.tokens + h.tokens <= budget) {
                first.text = format!("{}\n\n{}", h.text, first.text);
                first.tokens += h.tokens;
            } else {
                units.push(h);
            }
        }
        if is_heading && tokens <= budget {
            pending_heading = pieces.pop();
        }
        units.extend(pieces);
    }
    units.extend(pending_heading);
    pack(units, budget)
}

/// Greedily packs units into passages without exceeding the budget.
fn pack(units: Vec<Unit>, budget: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for u in units {
        if !current.is_empty() && used + u.tokens > budget {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        if !current.is_empty() {
            current.push_str(u.sep);
        }
        current.push_str(&u.text);
        used += u.tokens;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Breaks a block that is over budget into sentences, and a sentence that is
/// still over budget into runs of words.
fn split_oversized(block: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<Unit> {
    let mut units = Vec::new();
    for sentence in sentences(block) {
        let tokens = count(sentence);
        if tokens <= budget {
            units.push(Unit { text: sentence.to_string(), tokens, sep: " " });
            continue;
        }
        let mut run = String::new();
        let mut used = 0;
        for word in sentence.split_whitespace() {
            // A single word can never be split further; it gets a run of its own.
            let t = count(word);
            if !run.is_empty() && used + t > budget {
                units.push(Unit { text: std::mem::take(&mut run), tokens: used, sep: " " });
                used = 0;
            }
            if !run.is_empty() {
                run.push(' ');
            }
            run.push_str(word);
            used += t;
        }
        if !run.is_empty() {
            units.push(Unit { text: run, tokens: used, sep: " " });
        }
    }
    units
}

/// Sentence boundaries: `.`, `?`, `!` followed by whitespace, and line breaks.
fn sentences(block: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = block.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let boundary = b == b'\n'
            || (matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace));
        if boundary {
            out.push(&block[start..=i]);
            start = i + 1;
        }
    }
    out.push(&block[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_text("one two\n\nthree", 10, &words), vec!["one two\n\nthree"]);
    }

    #[test]
    fn paragraphs_pack_greedily_within_budget() {
        let text = "a b c d\n\ne f g h\n\ni j k l";
        let out = split_text(text, 9, &words);
        assert_eq!(out, vec!["a b c d\n\ne f g h", "i j k l"]);
        assert!(out.iter().all(|c| words(c) <= 9));
    }

    #[test]
    fn headings_stay_with_the_next_paragraph() {
        let text = "a b c d e\n\n## Steps\n\nf g h i";
        let out = split_text(text, 7, &words);
        assert_eq!(out, vec!["a b c d e", "## Steps\n\nf g h i"]);
    }

    #[test]
    fn oversized_paragraphs_split_by_sentence_then_words() {
        let text = "one two three. four five six seven eight nine ten eleven twelve. end";
        let out = split_text(text, 4, &words);
        assert!(out.iter().all(|c| words(c) <= 4), "{out:?}");
        let rejoined: Vec<&str> = out.iter().flat_map(|c| c.split_whitespace()).collect();
        assert_eq!(rejoined.join(" "), text, "no word lost or reordered");
    }

    #[test]
    fn every_chunk_fits_with_its_title() {
        let body = (0..600).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let a = Article {
            id: "x".into(),
            title: "A title of five words".into(),
            tags: vec![],
            url: None,
            content: body,
            origin: super::super::Location::new("x.md", 1),
        };
        let chunks = chunk_articles(&[a], 256, &words);
        assert_eq!(chunks.len(), 4, "a title entry and three passages");
        assert!(chunks[0].title_only && chunks[0].embed_text("T") == "T");
        for c in &chunks {
            assert!(words(&c.embed_text("A title of five words")) + SPECIAL_TOKENS <= 256);
        }
        let passages: Vec<u32> = chunks.iter().filter(|c| !c.title_only).map(|c| c.ordinal).collect();
        assert_eq!(passages, vec![0, 1, 2]);
    }

    fn article(id: &str, title: &str, content: &str) -> Article {
        Article {
            id: id.into(),
            title: title.into(),
            tags: vec![],
            url: None,
            content: content.into(),
            origin: super::super::Location::new("r.jsonl", 1),
        }
    }

    #[test]
    fn untitled_records_embed_their_text_alone_without_a_title_entry() {
        let arts =
            [article("c-1", "", "how do i say hello in french"), article("p", "Pairing", "Hold the button.")];
        let chunks = chunk_articles(&arts, 256, &words);
        let untitled: Vec<&Chunk> = chunks.iter().filter(|c| c.article == 0).collect();
        assert_eq!(untitled.len(), 1, "one passage, no title-only entry: {chunks:?}");
        assert!(!untitled[0].title_only && untitled[0].untitled);
        assert_eq!(untitled[0].embed_text(""), "how do i say hello in french");
        assert_eq!(untitled[0].embed_text("c-1"), "how do i say hello in french", "the id never leaks in");
        // A titled article keeps its title entry and title prefix.
        let titled: Vec<String> =
            chunks.iter().filter(|c| c.article == 1).map(|c| c.embed_text("Pairing")).collect();
        assert_eq!(titled, vec!["Pairing".to_string(), "Pairing\nHold the button.".to_string()]);
    }

    #[test]
    fn untitled_records_get_the_whole_budget() {
        let body = (0..254).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let chunks = chunk_articles(&[article("x", "", &body)], 256, &words);
        assert_eq!(chunks.len(), 1, "254 words + 2 special tokens fit in one passage");
    }
}
