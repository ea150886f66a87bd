//! Labelled utterances for fitting and checking need detection.
//!
//! The base is a public intent set in `kb eval`'s layout (CLINC150's
//! development split: `kb.jsonl` holds the training utterances, and
//! `queries.jsonl` the validation ones, each naming every record of its
//! intent). An intent is the set of records a query names. The needless
//! intents are CLINC's own `small_talk` domain plus the conversational
//! `yes`, `no`, `maybe` and `repeat`; each is named below by one of its
//! records. Everything else, out-of-scope requests included, carries a need.
//!
//! CLINC has no names spelled out or numbers read out, which callers do
//! all the time to identify themselves; those are generated: words of the
//! set's own vocabulary spelled letter by letter, and random digit strings
//! (as digits, digit names, or an order-number shape). Nor does it have a
//! greeting and a request in one breath, which is how calls open; those are
//! made from its own utterances ([`mix`]). A fixed seed makes the set
//! reproducible; the held-out part uses another seed.

use std::collections::HashMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::kb::KbError;
use crate::kb::eval::load_queries;

/// One record of each needless intent of CLINC150 (its name in the comment).
pub const NEEDLESS_INTENTS: [&str; 19] = [
    "c150-11800", // greeting
    "c150-09600", // goodbye
    "c150-06500", // thank_you
    "c150-04600", // yes
    "c150-05300", // no
    "c150-02200", // maybe
    "c150-04300", // repeat
    "c150-13800", // tell_joke
    "c150-01900", // where_are_you_from
    "c150-14000", // how_old_are_you
    "c150-12000", // what_is_your_name
    "c150-02900", // who_made_you
    "c150-02100", // what_can_i_ask_you
    "c150-12400", // what_are_your_hobbies
    "c150-08200", // do_you_have_pets
    "c150-13300", // are_you_a_bot
    "c150-00400", // meaning_of_life
    "c150-09000", // who_do_you_work_for
    "c150-01000", // fun_fact
];

/// A labelled utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub text: String,
    pub need: bool,
    /// Where it came from ("clinc", "mixed", "spelled", "digits"), for per-kind figures.
    pub kind: &'static str,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    content: String,
}

/// Training and held-out utterances from an intent set directory.
pub struct NeedData {
    pub train: Vec<Labelled>,
    pub heldout: Vec<Labelled>,
}

/// Reads `kb.jsonl` and `queries.jsonl` from `dir`, labels them, and adds
/// `generated` spelled/number utterances and half as many small-talk-then-
/// request ones ([`mix`]) to training (a quarter as many to the held-out
/// part, each from its own part's utterances).
pub fn from_intent_set(dir: &Path, generated: usize) -> Result<NeedData, KbError> {
    let queries = load_queries(&dir.join("queries.jsonl"))?;
    // Intent of each record: the first id of the set naming it.
    let mut intent_of: HashMap<String, String> = HashMap::new();
    for q in &queries {
        if let Some(first) = q.expected.first() {
            for id in &q.expected {
                intent_of.entry(id.clone()).or_insert_with(|| first.clone());
            }
        }
    }
    let needless: Vec<&String> = NEEDLESS_INTENTS.iter().filter_map(|id| intent_of.get(*id)).collect();
    if needless.len() != NEEDLESS_INTENTS.len() {
        return Err(KbError::Record {
            at: crate::kb::Location::new(dir.join("queries.jsonl"), 1),
            message: format!(
                "not the CLINC150 layout: {} of the {} needless intents found",
                needless.len(),
                NEEDLESS_INTENTS.len()
            ),
        });
    }
    let is_needless = |id: &str| intent_of.get(id).is_some_and(|i| needless.contains(&i));
    let path = dir.join("kb.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|source| KbError::Io { path: path.clone(), source })?;
    let mut train = Vec::new();
    let mut vocabulary = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: Record = serde_json::from_str(line).map_err(|e| KbError::Record {
            at: crate::kb::Location::new(&path, i + 1),
            message: e.to_string(),
        })?;
        vocabulary.extend(
            r.content
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| (3..=10).contains(&w.len()))
                .map(str::to_string),
        );
        train.push(Labelled { need: !is_needless(&r.id), text: r.content, kind: "clinc" });
    }
    vocabulary.sort();
    vocabulary.dedup();
    let mut heldout: Vec<Labelled> = queries
        .iter()
        .map(|q| Labelled {
            text: q.query.clone(),
            need: q.expected.first().is_none_or(|id| !is_needless(id)),
            kind: "clinc",
        })
        .collect();
    let mixed = (mix(&train, generated / 2, 3), mix(&heldout, generated / 8, 4));
    train.extend(mixed.0);
    heldout.extend(mixed.1);
    train.extend(generate(&vocabulary, generated, 1));
    heldout.extend(generate(&vocabulary, generated / 4, 2));
    Ok(NeedData { train, heldout })
}

/// `n` utterances that open with small talk and go on to ask for something
/// ("hi" then a request), built from `items`' own needless and needful
/// utterances: callers often greet and ask in one breath, and CLINC's
/// utterances each carry one intent, so without these a greeting that opens
/// a request reads as needless.
pub fn mix(items: &[Labelled], n: usize, seed: u64) -> Vec<Labelled> {
    let (needless, needs) = (clinc(items, false), clinc(items, true));
    if needless.is_empty() || needs.is_empty() {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (a, b) =
                (needless[rng.random_range(0..needless.len())], needs[rng.random_range(0..needs.len())]);
            Labelled { text: format!("{a}, {b}"), need: true, kind: "mixed" }
        })
        .collect()
}

/// The texts of `items`' own (not generated) utterances with or without a need.
fn clinc(items: &[Labelled], need: bool) -> Vec<&str> {
    items.iter().filter(|l| l.need == need && l.kind == "clinc").map(|l| l.text.as_str()).collect()
}

const DIGIT_NAMES: [&str; 10] =
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// `n` needless utterances: half spelled words, half numbers read out.
pub fn generate(vocabulary: &[String], n: usize, seed: u64) -> Vec<Labelled> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let end = if rng.random_bool(0.5) { "." } else { "" };
        if i % 2 == 0 && !vocabulary.is_empty() {
            let word = &vocabulary[rng.random_range(0..vocabulary.len())];
            let sep = ["-", " ", ", ", ". "][rng.random_range(0..4)];
            let letters: Vec<String> = word.chars().map(|c| c.to_ascii_uppercase().to_string()).collect();
            let spelled = letters.join(sep);
            let text = if rng.random_bool(0.5) { format!("{word}, {spelled}{end}") } else { spelled + end };
            out.push(Labelled { text, need: false, kind: "spelled" });
        } else {
            let digits: Vec<usize> = (0..rng.random_range(4..=12)).map(|_| rng.random_range(0..10)).collect();
            let text = match rng.random_range(0..4) {
                0 => digits.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" "),
                1 => digits.iter().map(|d| DIGIT_NAMES[*d]).collect::<Vec<_>>().join(" "),
                2 => {
                    let a = char::from(b'A' + rng.random_range(0..26u8));
                    let b = char::from(b'A' + rng.random_range(0..26u8));
                    format!("{a}{b}-{}", digits.iter().map(|d| d.to_string()).collect::<String>())
                }
                _ => digits.iter().map(|d| d.to_string()).collect::<String>(),
            };
            out.push(Labelled { text: text + end, need: false, kind: "digits" });
        }
    }
    out
}

/// An utterance as the live path reads it: at the end of its call's search
/// window, after `text[..at]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InContext {
    pub text: String,
    pub at: usize,
    pub need: bool,
    pub kind: &'static str,
}

/// Share of utterances put after an earlier one: the window holds the
/// newest two customer utterances with a need (`policy.window`), so most
/// utterances are judged with one before them; the first of a call alone.
const WITH_CONTEXT: f64 = 0.75;

/// Each utterance of `items`, after a random utterance with a need from
/// `items` (three in four) or alone, as a window would hold it.
pub fn in_context(items: &[Labelled], seed: u64) -> Vec<InContext> {
    let needs = clinc(items, true);
    let mut rng = StdRng::seed_from_u64(seed);
    items
        .iter()
        .map(|l| {
            let before = (!needs.is_empty() && rng.random_bool(WITH_CONTEXT))
                .then(|| needs[rng.random_range(0..needs.len())]);
            let (text, at) = match before {
                Some(b) => (format!("{b} {}", l.text), b.len() + 1),
                None => (l.text.clone(), 0),
            };
            InContext { text, at, need: l.need, kind: l.kind }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_utterances_are_reproducible_and_needless() {
        let vocab = vec!["lindqvist".to_string(), "router".to_string()];
        let a = generate(&vocab, 40, 7);
        assert_eq!(a, generate(&vocab, 40, 7));
        assert_ne!(a, generate(&vocab, 40, 8));
        assert!(a.iter().all(|l| !l.need));
        assert_eq!(a.iter().filter(|l| l.kind == "spelled").count(), 20);
        assert!(a.iter().any(|l| l.text.contains("L-I-N-D-Q-V-I-S-T") || l.text.contains("R-O-U-T-E-R")));
    }

    #[test]
    fn small_talk_then_a_request_carries_a_need() {
        let items = vec![
            Labelled { text: "hello there".into(), need: false, kind: "clinc" },
            Labelled { text: "my card was declined".into(), need: true, kind: "clinc" },
            Labelled { text: "3 3 7".into(), need: false, kind: "digits" },
        ];
        let m = mix(&items, 5, 1);
        assert_eq!(m.len(), 5);
        assert!(m.iter().all(|l| l.need && l.text == "hello there, my card was declined"));
        assert!(mix(&items[..1], 5, 1).is_empty());
    }

    #[test]
    fn in_context_utterances_end_their_window() {
        let items: Vec<Labelled> = (0..200)
            .map(|i| Labelled { text: format!("utterance {i}"), need: i % 3 != 0, kind: "clinc" })
            .collect();
        let read = in_context(&items, 3);
        assert_eq!(read, in_context(&items, 3));
        for (r, l) in read.iter().zip(&items) {
            assert_eq!(&r.text[r.at..], l.text);
            assert_eq!(r.need, l.need);
        }
        let with = read.iter().filter(|r| r.at > 0).count();
        assert!((120..=180).contains(&with), "{with} of 200 after another utterance");
    }

    #[test]
    fn a_directory_of_another_layout_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("queries.jsonl"), "{\"query\":\"hi\",\"expected\":[\"x\"]}\n")
            .unwrap();
        std::fs::write(dir.path().join("kb.jsonl"), "{\"id\":\"x\",\"content\":\"hi\"}\n").unwrap();
        let Err(e) = from_intent_set(dir.path(), 10) else { panic!("accepted") };
        assert!(e.to_string().contains("needless intents"), "{e}");
    }
}
