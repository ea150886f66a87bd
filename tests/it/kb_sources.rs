//! Knowledge-base sources and incremental builds with the real model and
//! FAISS: an HTML help-centre export as a source, bad HTML files, and the
//! embedding cache (an edit re-embeds only the edited chunks).

use agent_assist::kb::store::BuildProgress;
use agent_assist::kb::{BuildOutcome, IndexKind, Retriever};

use crate::support::{kb_options, repo, temp_paths, write_tree};

fn no_progress(_: BuildProgress) {}

#[test]
fn an_html_export_is_a_source() {
    let (_tmp, paths) = temp_paths();
    let opts = kb_options(vec![repo("tests/fixtures/html")], IndexKind::Flat);
    let (mut r, report) = Retriever::open(&opts, &paths, &mut no_progress).unwrap();
    assert_eq!(report.articles, 3);
    let titles: Vec<&str> = r.kb.articles.iter().map(|a| a.title.as_str()).collect();
    assert!(titles.contains(&"Resetting your Brightwave password"), "{titles:?}");
    assert!(titles.contains(&"Charging the Brightwave speaker"), "broken markup still parses: {titles:?}");
    for (query, want) in [
        ("I never got the email to reset my password", "reset-password"),
        ("the light on my router is orange", "router-lights"),
        ("how long does the speaker take to charge", "broken-markup"),
    ] {
        assert_eq!(r.query(query, 1).unwrap()[0].article_id, want, "{query}");
    }
    // The furniture of the page is not searchable text.
    assert!(r.kb.articles.iter().all(|a| !a.content.contains("Was this article helpful")));
}

#[test]
fn a_bad_html_file_fails_the_build_and_names_the_file() {
    let (tmp, paths) = temp_paths();
    let dir = write_tree(
        &tmp.path().join("export"),
        &[
            ("good.html", b"<html><body><main><h1>Good</h1><p>Some text.</p></main></body></html>"),
            ("empty.html", b"<html><head><title>Empty</title></head><body><nav>Home</nav></body></html>"),
        ],
    );
    let err = match Retriever::open(&kb_options(vec![dir], IndexKind::Flat), &paths, &mut no_progress) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an HTML page without text must fail the build"),
    };
    assert!(err.contains("empty.html:1:") && err.contains("no text"), "{err}");
}

fn md(id: &str, title: &str, body: &str) -> Vec<u8> {
    format!("---\nid: {id}\ntitle: {title}\n---\n{body}\n").into_bytes()
}

#[test]
fn an_edit_re_embeds_only_the_edited_chunks() {
    let (tmp, paths) = temp_paths();
    let topics = [
        "resetting a password",
        "pairing earbuds",
        "cancelling a subscription",
        "a late parcel",
        "a cracked screen",
        "a double charge",
        "a camera that is offline",
        "changing a delivery address",
        "a speaker that overheats",
        "a thermostat without a C wire",
    ];
    let files: Vec<(String, Vec<u8>)> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("a{i}.md"),
                md(
                    &format!("a{i}"),
                    &format!("Help with {t}"),
                    &format!("This article explains {t}, step by step."),
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let dir = write_tree(&tmp.path().join("kb"), &refs);
    let opts = kb_options(vec![dir.clone()], IndexKind::Flat);
    let open = |opts: &agent_assist::kb::KbOptions| Retriever::open(opts, &paths, &mut no_progress).unwrap();

    let (_, first) = open(&opts);
    assert!(matches!(first.outcome, BuildOutcome::Built { .. }));
    assert_eq!((first.embedded, first.reused), (first.chunks, 0), "a first build embeds everything");
    assert_eq!(first.chunks, 20, "a title entry and one passage per article");

    // One body edited: only its passage is new; its title entry is reused.
    std::fs::write(
        dir.join("a3.md"),
        md("a3", "Help with a late parcel", "Parcels late by five working days are refunded in full."),
    )
    .unwrap();
    let (mut r, edited) = open(&opts);
    assert!(matches!(edited.outcome, BuildOutcome::Built { .. }));
    assert_eq!((edited.embedded, edited.reused), (1, 19));
    assert_eq!(r.query("is a parcel five working days late refunded", 1).unwrap()[0].article_id, "a3");

    // A new title changes every chunk of that article; a new article adds its own.
    std::fs::write(
        dir.join("a5.md"),
        md("a5", "Charged twice for one order", "This article explains a double charge, step by step."),
    )
    .unwrap();
    std::fs::write(dir.join("b.md"), md("b", "Gift cards", "Gift cards never expire.")).unwrap();
    let (_, more) = open(&opts);
    assert_eq!((more.embedded, more.reused, more.chunks), (4, 18, 22));

    // Removing an article embeds nothing; the unchanged KB then loads.
    std::fs::remove_file(dir.join("b.md")).unwrap();
    let (_, removed) = open(&opts);
    assert_eq!((removed.embedded, removed.reused), (0, 20));
    assert_eq!(open(&opts).1.outcome, BuildOutcome::Loaded);

    // A forced rebuild embeds everything again.
    let forced = agent_assist::kb::KbOptions { force_rebuild: true, ..opts.clone() };
    let (_, f) = open(&forced);
    assert_eq!((f.embedded, f.reused), (20, 0));
}
