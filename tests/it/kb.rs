//! Knowledge-base core with the real model and real FAISS: chunking,
//! grouping, persistence, cache invalidation, bad inputs, retrieval quality.

use std::collections::HashSet;

use agent_assist::kb::eval::{self, LabelledQuery};
use agent_assist::kb::index::FaissIndex;
use agent_assist::kb::store::{self, BuildProgress};
use agent_assist::kb::{
    BuildOutcome, FastEmbedder, HnswParams, IndexKind, KbError, ModelSpec, Retriever, VectorIndex,
};

use crate::support::{kb_options, repo, temp_paths, write_tree};

fn no_progress(_: BuildProgress) {}

fn article(id: &str, title: &str, body: &str) -> Vec<u8> {
    format!("---\nid: {id}\ntitle: {title}\ntags: [test]\n---\n{body}\n").into_bytes()
}

#[test]
fn sample_kb_chunks_fit_the_model_and_search_groups_by_article() {
    let (_tmp, paths) = temp_paths();
    let opts = kb_options(vec![repo("kb")], IndexKind::Flat);
    let (mut r, report) = Retriever::open(&opts, &paths, &mut no_progress).unwrap();
    assert!(report.articles >= 60, "sample KB has {} articles", report.articles);
    let passages = r.kb.chunks.iter().filter(|c| !c.title_only).count();
    assert_eq!(report.chunks, passages + report.articles, "one title entry per article");
    assert!(passages > report.articles, "long articles should need several chunks");
    let multi: HashSet<u32> = r.kb.chunks.iter().filter(|c| c.ordinal > 0).map(|c| c.article).collect();
    assert!(multi.len() >= 5, "only {} articles span several chunks", multi.len());
    for c in &r.kb.chunks {
        let title = &r.kb.articles[c.article as usize].title;
        let pieces = r.embedder.count_tokens(&c.embed_text(title)) + 2;
        assert!(pieces <= 256, "chunk {}#{} has {pieces} word pieces", title, c.ordinal);
    }
    // One hit per article, best first, even when many chunks of one article match.
    let hits = r.query("how do I cancel my subscription and will I get a refund", 10).unwrap();
    assert_eq!(hits.len(), 10);
    let ids: HashSet<&str> = hits.iter().map(|h| h.article_id.as_str()).collect();
    assert_eq!(ids.len(), hits.len(), "duplicate articles in {hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.iter().all(|h| !h.text.is_empty() && h.score <= 1.0001));
    // Asking for more articles than exist returns each article once.
    let all = r.query("anything at all", 10_000).unwrap();
    assert_eq!(all.len(), report.articles);
}

#[test]
fn index_persists_and_reloads_with_identical_results() {
    let (_tmp, paths) = temp_paths();
    let opts = kb_options(vec![repo("kb")], IndexKind::Flat);
    let (mut first, report) = Retriever::open(&opts, &paths, &mut no_progress).unwrap();
    assert!(matches!(report.outcome, BuildOutcome::Built { .. }));
    let q = "my earbuds won't pair with my phone";
    let before = first.query(q, 5).unwrap();
    drop(first);
    let (mut second, report) = Retriever::open(&opts, &paths, &mut no_progress).unwrap();
    assert_eq!(report.outcome, BuildOutcome::Loaded);
    assert_eq!(second.query(q, 5).unwrap(), before);
    assert!(report.cache_dir.join("manifest.json").is_file());
}

#[test]
fn hnsw_index_finds_the_same_top_article_as_flat() {
    let (_tmp, paths) = temp_paths();
    let (mut flat, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let (mut hnsw, report) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Hnsw), &paths, &mut no_progress).unwrap();
    assert_eq!(report.index_kind, IndexKind::Hnsw);
    for q in [
        "I was charged twice this month",
        "the camera says it's offline",
        "I want to return a broken speaker",
    ] {
        assert_eq!(flat.query(q, 1).unwrap()[0].article_id, hnsw.query(q, 1).unwrap()[0].article_id, "{q}");
    }
}

#[test]
fn changed_sources_or_model_rebuild_and_corrupt_caches_are_replaced() {
    let (tmp, paths) = temp_paths();
    let kb = write_tree(
        &tmp.path().join("kb"),
        &[
            ("a.md", &article("a", "Resetting a password", "Use the reset link sent by email.")),
            ("b.md", &article("b", "Pairing earbuds", "Hold the button until the light flashes blue.")),
        ],
    );
    let mut opts = kb_options(vec![kb.clone()], IndexKind::Flat);
    let reopen =
        |opts: &agent_assist::kb::KbOptions| Retriever::open(opts, &paths, &mut no_progress).unwrap().1;
    assert!(matches!(reopen(&opts).outcome, BuildOutcome::Built { .. }));
    assert_eq!(reopen(&opts).outcome, BuildOutcome::Loaded);

    // A changed source rebuilds.
    std::fs::write(kb.join("b.md"), article("b", "Pairing earbuds", "Hold both buttons for ten seconds."))
        .unwrap();
    let BuildOutcome::Built { reason } = reopen(&opts).outcome else { panic!("expected a rebuild") };
    assert!(reason.contains("sources changed"), "{reason}");

    // A changed model (same tokenizer, different bytes) rebuilds.
    let model_copy = tmp.path().join("model");
    std::fs::create_dir_all(&model_copy).unwrap();
    for f in std::fs::read_dir(&opts.model.model_dir).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, model_copy.join(f.file_name().unwrap())).unwrap();
    }
    let mut tok = std::fs::read(model_copy.join("tokenizer.json")).unwrap();
    tok.push(b'\n');
    std::fs::write(model_copy.join("tokenizer.json"), tok).unwrap();
    opts.model = ModelSpec { model_dir: model_copy, ..opts.model.clone() };
    let BuildOutcome::Built { reason } = reopen(&opts).outcome else { panic!("expected a rebuild") };
    assert!(reason.contains("model changed"), "{reason}");

    // A truncated index file is detected and rebuilt.
    let dir = store::cache_dir_for(&paths, &opts.sources, opts.kind);
    std::fs::write(dir.join("index.faiss"), b"not an index").unwrap();
    let BuildOutcome::Built { reason } = reopen(&opts).outcome else { panic!("expected a rebuild") };
    assert!(reason.contains("unusable"), "{reason}");

    // An index of another dimension is a dimension mismatch, then rebuilt.
    let mut wrong = FaissIndex::new(IndexKind::Flat, 8, HnswParams::default()).unwrap();
    wrong.add(&[0.5f32; 8 * 2]).unwrap();
    wrong.save(&dir.join("index.faiss")).unwrap();
    let BuildOutcome::Built { reason } = reopen(&opts).outcome else { panic!("expected a rebuild") };
    assert!(reason.contains("dimension mismatch"), "{reason}");

    // Garbage in the manifest is a rebuild too.
    std::fs::write(dir.join("manifest.json"), b"{").unwrap();
    assert!(matches!(reopen(&opts).outcome, BuildOutcome::Built { .. }));
    assert_eq!(reopen(&opts).outcome, BuildOutcome::Loaded);
}

#[test]
fn a_query_vector_of_the_wrong_dimension_is_an_error_not_a_crash() {
    let (_tmp, paths) = temp_paths();
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let err = r.kb.search(&[0.1; 17], 3).unwrap_err();
    assert!(matches!(err, KbError::DimensionMismatch { model: 17, index: 384 }), "{err}");
    assert!(matches!(r.query("   ", 3), Err(KbError::EmptyQuery)));
}

#[test]
fn bad_knowledge_bases_are_clear_errors() {
    let (tmp, paths) = temp_paths();
    let model = crate::support::installed_model();
    let mut embedder = FastEmbedder::load(&model).unwrap();
    let open = |dir: std::path::PathBuf, embedder: &mut FastEmbedder| {
        let opts = kb_options(vec![dir], IndexKind::Flat);
        store::open(&opts, &paths, embedder, &mut no_progress).err().expect("should fail").to_string()
    };

    let bad_fm =
        write_tree(&tmp.path().join("fm"), &[("x.md", b"---\nid: x\ntitle: [oops\ntags: []\n---\nbody\n")]);
    let msg = open(bad_fm, &mut embedder);
    assert!(msg.contains("x.md:4: bad front matter") && msg.contains("flow sequence at line 3"), "{msg}");

    let dup = write_tree(
        &tmp.path().join("dup"),
        &[("a.md", &article("same", "A", "one")), ("b.md", &article("same", "B", "two"))],
    );
    let msg = open(dup, &mut embedder);
    assert!(
        msg.contains("duplicate article id `same`") && msg.contains("a.md:1") && msg.contains("b.md:1"),
        "{msg}"
    );

    let empty = write_tree(&tmp.path().join("empty"), &[("notes.txt", b"not an article")]);
    assert!(open(empty, &mut embedder).contains("knowledge base is empty"));

    let latin1 =
        write_tree(&tmp.path().join("latin1"), &[("c.md", b"---\nid: c\ntitle: Caf\xe9\n---\nbody\n")]);
    let msg = open(latin1, &mut embedder);
    assert!(msg.contains("c.md:3") && msg.contains("not valid UTF-8"), "{msg}");

    let jsonl = write_tree(
        &tmp.path().join("j"),
        &[("r.jsonl", b"{\"id\":\"a\",\"content\":\"x\"}\n{\"id\":\"b\"\n")],
    );
    assert!(open(jsonl, &mut embedder).contains("r.jsonl:2"));

    assert!(open(tmp.path().join("nowhere"), &mut embedder).contains("source not found"));
}

#[test]
fn missing_model_or_runtime_names_the_install_command() {
    let tmp = tempfile::tempdir().unwrap();
    let real = crate::support::installed_model();
    let no_model = ModelSpec { model_dir: tmp.path().join("models"), ..real.clone() };
    let err = FastEmbedder::load(&no_model).err().unwrap().to_string();
    assert!(err.contains("model.onnx") && err.contains("scripts/setup.sh"), "{err}");
    let no_runtime = ModelSpec { ort_library: tmp.path().join("libonnxruntime.so"), ..real };
    let err = FastEmbedder::load(&no_runtime).err().unwrap().to_string();
    assert!(err.contains("ONNX Runtime not found") && err.contains("scripts/setup.sh"), "{err}");
}

#[test]
fn json_lines_and_csv_sources_build_together() {
    let (tmp, paths) = temp_paths();
    let dir = write_tree(
        &tmp.path().join("records"),
        &[
            ("a.jsonl", b"{\"id\":\"wifi\",\"title\":\"Wi-Fi setup\",\"content\":\"Connect the hub to a 2.4 GHz network.\",\"tags\":[\"wifi\"]}\n"),
            ("b.csv", b"id,title,content,url\nrefund,Refunds,\"Refunds go back to the original card within 10 days.\",https://r\n"),
        ],
    );
    let (mut r, report) =
        Retriever::open(&kb_options(vec![dir], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    assert_eq!((report.articles, report.chunks), (2, 4));
    let top = &r.query("when will my money come back", 1).unwrap()[0];
    assert_eq!((top.article_id.as_str(), top.url.as_deref()), ("refund", Some("https://r")));
}

#[test]
fn labelled_queries_reach_recall_at_3_of_at_least_0_9() {
    let (_tmp, paths) = temp_paths();
    let queries: Vec<LabelledQuery> = eval::load_queries(&repo("tests/fixtures/kb_queries.jsonl")).unwrap();
    assert!(queries.len() >= 40, "only {} labelled queries", queries.len());
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let report = eval::evaluate(&mut r, &queries, 3).unwrap();
    assert!(report.unknown_ids.is_empty(), "labels name unknown articles: {:?}", report.unknown_ids);
    assert!(report.recall_at_k >= 0.9, "recall@3 {:.3}; misses: {:#?}", report.recall_at_k, report.misses);
    assert!(report.mrr_at_k <= report.recall_at_k && report.top1 <= report.mrr_at_k);
}

#[test]
fn batched_queries_rank_like_single_ones() {
    let (_tmp, paths) = temp_paths();
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut no_progress).unwrap();
    let queries =
        ["I was charged twice this month", "", "the camera says it's offline", "my earbuds won't pair"];
    let batch: Vec<(String, usize)> = queries.iter().map(|q| (q.to_string(), 3)).collect();
    let results = r.query_many(&batch).unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(results[1], Err(KbError::EmptyQuery)));
    for (q, got) in queries.iter().zip(&results) {
        if q.is_empty() {
            continue;
        }
        let single = r.query(q, 3).unwrap();
        let got = got.as_ref().unwrap();
        assert_eq!(got[0].article_id, single[0].article_id, "{q}");
        // The int8 model quantises per batch: scores agree closely, not exactly.
        assert!(
            (got[0].score - single[0].score).abs() < 0.03,
            "{q}: {} vs {}",
            got[0].score,
            single[0].score
        );
    }
}
