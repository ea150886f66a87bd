//! `agent-assist kb ...` as a user runs it: real binary, real model, a
//! private cache dir.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{repo, write_tree};

fn run(cache: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-assist"))
        .args(args)
        .env("AGENT_ASSIST_CACHE_DIR", cache)
        .env("AGENT_ASSIST_CONFIG_DIR", cache.join("config"))
        .output()
        .expect("run agent-assist")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

#[test]
fn build_query_eval_and_stats_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let kb = repo("kb");
    let kb = kb.to_str().unwrap();

    let built = json_of(&run(tmp.path(), &["kb", "build", "--kb", kb, "--json"]));
    assert_eq!(built["outcome"], "built");
    assert!(built["articles"].as_u64().unwrap() >= 60);
    let again = json_of(&run(tmp.path(), &["kb", "build", "--kb", kb, "--json"]));
    assert_eq!(again["outcome"], "loaded");

    let q =
        json_of(&run(tmp.path(), &["kb", "query", "I forgot my password", "-k", "3", "--kb", kb, "--json"]));
    let hits = q["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["article_id"], "password-reset");
    assert!(hits[0]["score"].as_f64().unwrap() > hits[2]["score"].as_f64().unwrap());

    let queries = repo("tests/fixtures/kb_queries.jsonl");
    let e = json_of(&run(
        tmp.path(),
        &["kb", "eval", "--queries", queries.to_str().unwrap(), "--kb", kb, "--json"],
    ));
    assert!(e["recall_at_k"].as_f64().unwrap() >= 0.9, "{e}");
    assert!(e["latency_ms"]["p50"].as_f64().unwrap() > 0.0);

    let s = json_of(&run(tmp.path(), &["kb", "stats", "--kb", kb, "--json"]));
    assert_eq!(s["current"], true);
    assert_eq!(s["manifest"]["dimension"], 384);
}

#[test]
fn bad_input_exits_nonzero_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let kb =
        write_tree(&tmp.path().join("kb"), &[("bad.md", b"---\nid: a\ntitle: A\ntags: [x\n---\nbody\n")]);
    let out = run(tmp.path(), &["kb", "build", "--kb", kb.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.contains("bad.md:") && err.contains("front matter"), "{err}");
    assert!(out.stdout.is_empty());

    let out = run(tmp.path(), &["kb", "query", "", "--kb", repo("kb").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("query is empty"));
}
