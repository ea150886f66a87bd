//! Need detection with the real model and the shipped classifier: what
//! callers say to identify themselves, small talk and thanks start no
//! search, and what they ask for does.

use agent_assist::kb::need::NeedClassifier;
use agent_assist::kb::need::verdict::{NeedJob, judge};
use agent_assist::kb::{Embedder, FastEmbedder};

use crate::support::{bundled_scripts, installed_model};

fn judged(texts: &[&str]) -> Vec<(String, bool, f32)> {
    let model = installed_model();
    let mut e = FastEmbedder::load(&model).unwrap();
    let c = NeedClassifier::bundled_for(e.fingerprint()).expect("a classifier for the installed model");
    texts
        .iter()
        .map(|t| {
            let job = NeedJob { conversation_id: "c".into(), utterance_id: "u".into(), text: t.to_string() };
            let a = judge(&mut e, &c, job);
            (t.to_string(), a.need, a.probability.unwrap())
        })
        .collect()
}

#[test]
fn the_shipped_classifier_fits_the_installed_model_and_reports_heldout_figures() {
    let e = FastEmbedder::load(&installed_model()).unwrap();
    let c = NeedClassifier::bundled_for(e.fingerprint()).unwrap();
    assert_eq!(c.weights.len(), e.dimension());
    let heldout = c.heldout.iter().find(|s| s.set == "heldout").unwrap();
    assert!(heldout.recall >= 0.98 && heldout.precision >= 0.98, "{heldout:?}");
}

#[test]
fn identification_and_small_talk_are_needless_and_requests_are_not() {
    // ("Cheers, Sam, have a good day." scores 0.48, above the 0.30
    // threshold: farewells with a name are not all caught.)
    let needless = [
        "3 3 7 1 0 5.",
        "It says 2 2 9 4 0 7.",
        "Hi Sam.",
        "Yes, T-H-E-O. And Brandt is B-R-A-N-D-T.",
        "CS-5520931.",
    ];
    let needful = [
        "I want to cancel my Brightwave Plus subscription, I just don't use it enough anymore.",
        "My Wave Speaker was delivered this morning and the box was smashed in.",
        "Can I get the nine ninety-nine back?",
    ];
    for (t, need, p) in judged(&needless) {
        assert!(!need, "judged needful ({p:.3}): {t}");
    }
    for (t, need, p) in judged(&needful) {
        assert!(need, "judged needless ({p:.3}): {t}");
    }
}

/// Prints the verdict on every customer line of the sample calls (run with
/// `--nocapture` to read them); checks that each call keeps lines to search.
#[test]
fn every_sample_call_keeps_customer_lines_with_a_need() {
    for s in bundled_scripts() {
        let lines: Vec<&str> =
            s.utterances.iter().filter(|u| u.channel == "EXTERNAL").map(|u| u.text.as_str()).collect();
        let verdicts = judged(&lines);
        for (t, need, p) in &verdicts {
            println!("{} {:.3} {}", if *need { "NEED" } else { "----" }, p, t);
        }
        assert!(verdicts.iter().filter(|v| v.1).count() >= 2, "{}: too few lines kept", s.id);
    }
}

/// The search worker judges and searches from one model run: a verdict
/// asked for before a search comes back before that search's answer, for a
/// needless line and a needful one, with the same verdict `judge` gives.
#[test]
fn the_search_worker_answers_verdicts_before_the_searches_queued_behind_them() {
    use agent_assist::kb::worker::{Answer, SearchJob, spawn_worker};
    use agent_assist::kb::{IndexKind, Retriever};
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::support::{kb_options, repo, temp_paths};

    let (_tmp, paths) = temp_paths();
    let opts = kb_options(vec![repo("kb")], IndexKind::Flat);
    let (retriever, _) = Retriever::open(&opts, &paths, &mut |_| {}).unwrap();
    let classifier = NeedClassifier::bundled_for(&retriever.kb.manifest.model_hash).unwrap();
    let (tx, answers) = mpsc::channel();
    let worker = spawn_worker(retriever, Some(classifier), Box::new(move |a| tx.send(a).is_ok()));
    let lines = [
        ("u1", "3 3 7 1 0 5."),
        ("u2", "My Wave Speaker was delivered this morning and the box was smashed in."),
    ];
    for (i, (uid, text)) in lines.iter().enumerate() {
        let job =
            NeedJob { conversation_id: "c".into(), utterance_id: uid.to_string(), text: text.to_string() };
        assert!(worker.judge(job));
        let search =
            SearchJob { request: i as u64, conversation_id: format!("c{i}"), query: text.to_string(), k: 3 };
        assert!(worker.submit(search));
    }
    let mut verdicts = Vec::new();
    for _ in 0..4 {
        match answers.recv_timeout(Duration::from_secs(60)).expect("an answer") {
            Answer::Need(n) => verdicts.push((n.utterance_id, n.need)),
            Answer::Search(s) => {
                let uid = lines[s.request as usize].0;
                assert!(
                    verdicts.iter().any(|(u, _)| u == uid),
                    "search {} answered before its verdict",
                    s.request
                );
                assert!(!s.result.unwrap().is_empty());
            }
        }
    }
    assert_eq!(verdicts, vec![("u1".to_string(), false), ("u2".to_string(), true)]);
    let expected: Vec<(String, bool)> = judged(&[lines[0].1, lines[1].1])
        .into_iter()
        .zip(["u1", "u2"])
        .map(|((_, n, _), u)| (u.to_string(), n))
        .collect();
    assert_eq!(verdicts, expected, "the worker and `judge` disagree");
}
