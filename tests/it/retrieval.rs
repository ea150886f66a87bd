//! Retrieval quality work with the real model and real FAISS: untitled
//! records, hybrid ranking and its explanation, abstention in `kb eval`,
//! and calibration.

use agent_assist::kb::calibration::Calibration;
use agent_assist::kb::eval::{self, LabelledQuery};
use agent_assist::kb::rank::Fusion;
use agent_assist::kb::store::BuildProgress;
use agent_assist::kb::{IndexKind, Retriever};

use crate::support::{kb_options, repo, temp_paths, write_tree};

fn no_progress(_: BuildProgress) {}

fn lq(query: &str, expected: &[&str]) -> LabelledQuery {
    LabelledQuery { query: query.into(), expected: expected.iter().map(|s| s.to_string()).collect() }
}

#[test]
fn untitled_records_are_embedded_as_their_text_alone() {
    let (tmp, paths) = temp_paths();
    let text = "how do i say i love you in italian";
    let dir = write_tree(
        &tmp.path().join("records"),
        &[(
            "r.jsonl",
            format!(
                "{{\"id\":\"c150-00000\",\"content\":\"{text}\"}}\n\
                 {{\"id\":\"c150-00001\",\"content\":\"what is my bank balance\"}}\n\
                 {{\"id\":\"t\",\"title\":\"Refunds\",\"content\":\"Refunds go back to the card.\"}}\n"
            )
            .as_bytes(),
        )],
    );
    let (mut r, report) =
        Retriever::open(&kb_options(vec![dir], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    // One vector per untitled record, two (title entry + passage) for the titled one.
    assert_eq!((report.articles, report.chunks), (3, 4));
    assert!(r.kb.chunks.iter().filter(|c| c.article < 2).all(|c| c.untitled && !c.title_only));
    // The stored vector is the text's own: the text finds itself at cosine 1,
    // which "<id>\n<text>" would not give.
    let v = r.embedder.embed_one(text).unwrap();
    let hits = r.kb.search(&v, 1).unwrap();
    assert_eq!(hits[0].article_id, "c150-00000");
    assert!(hits[0].score > 0.99, "cosine {} (an id prefix would lower it)", hits[0].score);
    // Shown under its id, as before.
    assert_eq!(hits[0].title, "c150-00000");
    // The id alone is not a document any more.
    let by_id = r.embedder.embed_one("c150-00001").unwrap();
    assert!(r.kb.search(&by_id, 1).unwrap()[0].score < 0.9);
}

#[test]
fn hybrid_hits_explain_themselves_and_exact_codes_count() {
    let (tmp, paths) = temp_paths();
    let dir = write_tree(
        &tmp.path().join("kb"),
        &[
            ("a.md", b"---\nid: e4107\ntitle: Hub error codes\n---\nError E4107 means the hub lost its pairing key; re-pair it from the app.\n"),
            ("b.md", b"---\nid: e2210\ntitle: Hub status lights\n---\nA blinking amber light means the hub is looking for its network.\n"),
            ("c.md", b"---\nid: refund\ntitle: Refunds\n---\nRefunds go back to the original card within ten days.\n"),
        ],
    );
    let (mut r, _) =
        Retriever::open(&kb_options(vec![dir], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    r.kb.fusion = Fusion::Rrf { k: 60.0 };
    let hits = r.query("the hub shows E4107", 3).unwrap();
    assert_eq!(hits[0].article_id, "e4107");
    assert!(hits[0].dense.is_some() && hits[0].bm25.unwrap() > 0.0);
    assert!(hits[0].terms.contains(&"e4107".to_string()), "{:?}", hits[0].terms);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Dense-only search gives the cosine and no explanation.
    r.kb.fusion = Fusion::Dense;
    let dense = r.query("the hub shows E4107", 3).unwrap();
    assert!(dense[0].dense.is_none() && dense[0].terms.is_empty());
    assert!((dense[0].score - hits[0].dense.unwrap()).abs() < 1e-4, "the same cosine either way");
}

#[test]
fn eval_reports_abstention_for_unanswerable_queries() {
    let (_tmp, paths) = temp_paths();
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let queries = [
        lq("I forgot my password and the reset email never arrives", &["password-reset"]),
        lq("I was charged twice for the same order this month", &["double-charge"]),
        lq("my left earbud plays but the right one is silent", &["earbuds-one-side"]),
        lq("the camera keeps saying it's offline", &["camera-offline"]),
        lq("what's a good recipe for banana bread", &[]),
        lq("who won the football game last night", &[]),
        lq("is the pharmacy on main street open on sunday", &[]),
    ];
    let report = eval::evaluate(&mut r, &queries, 3).unwrap();
    assert_eq!((report.queries, report.answerable), (7, 4));
    assert!(report.top1 >= 0.75, "top-1 over answerable queries: {}", report.top1);
    let a = report.abstention.expect("unanswerable queries give an abstention block");
    assert_eq!((a.answerable, a.unanswerable), (4, 3));
    assert!(a.auroc >= 0.9, "AUROC {}", a.auroc);
    assert_eq!(a.at.len(), 2);
    assert!(a.candidates.iter().any(|(n, _)| n == "margin"));
    assert_eq!(report.per_query.len(), 7);
    assert!(report.per_query.iter().filter(|q| !q.answerable).all(|q| !q.correct));
    // Without unanswerable queries there is nothing to report.
    let report = eval::evaluate(&mut r, &queries[..4], 3).unwrap();
    assert!(report.abstention.is_none());
}

#[test]
fn calibration_on_the_labelled_set_orders_probabilities_and_reaches_targets() {
    let (_tmp, paths) = temp_paths();
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let queries = eval::load_queries(&repo("tests/fixtures/kb_queries.jsonl")).unwrap();
    assert!(queries.iter().filter(|q| q.expected.is_empty()).count() >= 30, "out-of-scope speech present");
    let report = eval::evaluate(&mut r, &queries, 3).unwrap();
    let samples: Vec<(f32, bool)> = report.per_query.iter().map(|q| (q.score, q.correct)).collect();
    let cal = Calibration::fit(&samples).unwrap();
    assert!(cal.holdout.iter().all(|h| h.log_loss.is_finite() && h.brier < 0.25), "{:?}", cal.holdout);
    let t90 = cal.threshold_for(0.9).expect("0.9 is reachable on the sample KB");
    let pushed: Vec<_> = report.per_query.iter().filter(|q| q.score >= t90).collect();
    let right = pushed.iter().filter(|q| q.correct).count() as f64 / pushed.len() as f64;
    assert!(right >= 0.85, "precision above the 0.9 threshold {right}");
    assert!(cal.probability(t90 + 0.1) >= cal.probability(t90 - 0.1));
}
