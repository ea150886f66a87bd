//! Live knowledge-base reload: the real model and FAISS, the real file
//! watcher, the headless console against the simulator on loopback. An
//! edited and an added article reach the index while calls run (the next
//! searches find the new text, no search fails); a bad file keeps the old
//! index and says where; a deleted article cannot be pushed by hand; a
//! Genesys knowledge base edited between two periodic syncs is reloaded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use agent_assist::kb::reload::{ReloadEvent, ReloadSink, Reloader};
use agent_assist::kb::watch::watch;
use agent_assist::kb::worker::{Answer, KbHandle, SearchJob, spawn_worker};
use agent_assist::kb::{IndexKind, Retriever};
use agent_assist::sim::knowledge::{Edit, HELP_CENTRE_KB_ID, document_id};
use agent_assist::sim::{Script, SimHandle};
use serde_json::Value;

use crate::restart::Headless;
use crate::support::net::{sim_config, start};
use crate::support::{bundled_scripts, kb_options, link_model, repo, temp_paths, write_tree};

const NEW_ARTICLE: &str = "porch-camera-new-router";

/// An article in the words the porch-camera caller uses, so her next
/// searches find it.
fn new_article() -> String {
    format!(
        "---\nid: {NEW_ARTICLE}\ntitle: Outdoor Wave Cam on the back porch offline after the router moved\n---\n\
         If the outdoor Wave Cam on the back porch shows offline in the app, is plugged in and its light is on, \
         and the router was moved upstairs into the office, the camera is too far from the router or the Wi-Fi \
         network has a new name. The app says signal none. Hold the reset with a paper clip until it flashes \
         yellow, then reconnect Wi-Fi to the new network and type the password.\n"
    )
}

/// The bundled call about a porch camera, played round and round.
fn camera_call() -> Vec<Script> {
    let script = bundled_scripts()
        .into_iter()
        .find(|s| s.title.as_deref().is_some_and(|t| t.contains("Porch camera")))
        .expect("the porch-camera call is bundled");
    vec![script]
}

async fn camera_sim() -> SimHandle {
    let mut config = sim_config(camera_call());
    config.speed = 12.0;
    config.repeat = true;
    config.concurrency = 2;
    start(config).await
}

/// A copy of the sample KB to edit.
fn kb_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("kb");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(repo("kb")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

/// Reads lines until one satisfies `want` (returned), or fails after `within`.
fn wait_for(h: &Headless, within: Duration, what: &str, mut want: impl FnMut(&Value) -> bool) -> Value {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Some(v) = h.next(left) else { panic!("no {what} within {within:?}") };
        assert_ne!(v["event"], "kb_reload_failed", "{v}");
        if want(&v) {
            return v;
        }
    }
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_and_an_added_article_are_searched_while_calls_run() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let kb = kb_copy(tmp.path());
    let sim = camera_sim().await;
    let h = Headless::start_with(tmp.path(), &sim, "manual", |c| {
        c.args(["--kb", kb.to_str().unwrap()]);
    });
    wait_for(&h, Duration::from_secs(120), "first suggestion", |v| v["event"] == "suggestion");

    // An edit and a new article, as an author saving two files.
    let edited = kb.join("camera-offline.md");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("\nA camera moved to a new network keeps its recordings.\n");
    std::fs::write(&edited, text).unwrap();
    std::fs::write(kb.join("porch-camera-new-router.md"), new_article()).unwrap();

    // One reload (or two, if the watcher saw the saves apart) with exactly these.
    let (mut added, mut removed, mut changed) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut version = 0;
    while added.len() + changed.len() < 2 {
        let r = wait_for(&h, Duration::from_secs(60), "kb_reloaded", |v| v["event"] == "kb_reloaded");
        added.extend(ids(&r["added"]));
        removed.extend(ids(&r["removed"]));
        changed.extend(ids(&r["changed"]));
        version = r["version"].as_u64().unwrap();
        assert!(r["took_ms"].as_u64().is_some(), "{r}");
    }
    assert_eq!(added, BTreeSet::from([NEW_ARTICLE.to_string()]));
    assert_eq!(changed, BTreeSet::from(["camera-offline".to_string()]));
    assert!(removed.is_empty(), "{removed:?}");
    assert!(version >= 2);

    // The caller's next searches find the new article.
    wait_for(&h, Duration::from_secs(120), "a suggestion of the new article", |v| {
        v["event"] == "suggestion" && v["article_id"] == NEW_ARTICLE
    });
    h.terminate();
    let audit = audit_lines(tmp.path());
    let summary = audit.iter().find(|v| v["event"] == "summary").expect("a summary at the end");
    assert_eq!(summary["search_errors"], 0, "{summary}");
    assert!(summary["searches"].as_u64().unwrap() > 0, "{summary}");
    // The audit log says which index answered each search.
    let versions: BTreeSet<u64> = audit
        .iter()
        .filter(|v| v["event"] == "search")
        .map(|v| v["kb_version"].as_u64().expect("every search names its index"))
        .collect();
    assert!(versions.contains(&1) && versions.contains(&version), "{versions:?}");
    let found = audit.iter().any(|v| {
        v["event"] == "search"
            && v["kb_version"] == version
            && v["results"].as_array().unwrap().iter().any(|r| r["article_id"] == NEW_ARTICLE)
    });
    assert!(found, "no search of the new index returned the new article");
    sim.stop().await;
}

fn audit_lines(tmp: &Path) -> Vec<Value> {
    let dir = tmp.join("data").join("audit");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        out.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_article_is_refused_for_manual_push() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let kb = kb_copy(tmp.path());
    let sim = camera_sim().await;
    let mut h = Headless::start_with(tmp.path(), &sim, "manual", |c| {
        c.args(["--kb", kb.to_str().unwrap()]);
    });
    let started = wait_for(&h, Duration::from_secs(120), "a call", |v| v["event"] == "conversation_started");
    let conversation = started["conversation_id"].as_str().unwrap().to_string();

    std::fs::remove_file(kb.join("camera-offline.md")).unwrap();
    let r = wait_for(&h, Duration::from_secs(60), "kb_reloaded", |v| v["event"] == "kb_reloaded");
    assert_eq!(ids(&r["removed"]), BTreeSet::from(["camera-offline".to_string()]), "{r}");

    h.send(&serde_json::json!({
        "command": "push_article",
        "conversation": conversation,
        "article": { "id": "camera-offline", "title": "Wave Cam shows offline", "content": "old text" }
    }));
    let refused = wait_for(&h, Duration::from_secs(30), "the refusal", |v| {
        assert!(
            !(v["event"] == "decision" && v["article_id"] == "camera-offline"),
            "a deleted article was pushed: {v}"
        );
        v["event"] == "refused"
    });
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("camera-offline") && message.contains("deleted"), "{message}");
    h.terminate();
    sim.stop().await;
}

/// Queues a search on its own conversation (so latest-wins drops none).
fn submit(worker: &KbHandle, submitted: &mut u64, query: &str) -> u64 {
    *submitted += 1;
    let job = SearchJob {
        request: *submitted,
        conversation_id: format!("c{submitted}"),
        query: query.into(),
        k: 2,
    };
    assert!(worker.submit(job), "the worker is running");
    *submitted
}

/// The search worker and the rebuild thread, without the console: a bad
/// file is reported with its line and the old index keeps answering every
/// search; once fixed, the new index is swapped in with no search lost.
#[test]
fn a_bad_file_keeps_the_old_index_and_the_fix_is_swapped_in_between_searches() {
    let (_tmp, paths) = temp_paths();
    let dir = write_tree(
        &paths.data_dir.join("kb"),
        &[
            (
                "refunds.md",
                b"---\nid: refunds\ntitle: Refunds\n---\nRefunds reach your card within five working days.\n",
            ),
            (
                "router.md",
                b"---\nid: router\ntitle: Restart the router\n---\nUnplug the router for thirty seconds.\n",
            ),
        ],
    );
    let opts = kb_options(vec![dir.clone()], IndexKind::Flat);
    let (retriever, _) = Retriever::open(&opts, &paths, &mut |_| {}).unwrap();
    let catalog = Arc::new(retriever.kb.articles.clone());
    let (answers_tx, answers) = mpsc::channel();
    let worker = spawn_worker(
        retriever,
        None,
        Box::new(move |a| match a {
            Answer::Search(s) => answers_tx.send(s).is_ok(),
            Answer::Need(n) => panic!("a verdict nobody asked for: {n:?}"),
        }),
    );
    let (events_tx, events) = mpsc::channel::<ReloadEvent>();
    let sink: ReloadSink = Arc::new(move |ev| {
        let _ = events_tx.send(ev);
    });
    let reloader = Reloader::spawn(opts, paths.clone(), catalog, worker.installer(), sink);
    let watcher = watch(std::slice::from_ref(&dir), reloader.trigger()).unwrap();

    // Bad front matter on line 2.
    std::fs::write(dir.join("parking.md"), "---\nid: [parking\ntitle: Parking\n---\nPark at the back.\n")
        .unwrap();
    let failed = events.recv_timeout(Duration::from_secs(60)).expect("the failure is reported");
    let ReloadEvent::Failed { reason } = failed else { panic!("expected a failure: {failed:?}") };
    assert!(reason.contains("parking.md:"), "the reason names the file and line: {reason}");

    let mut submitted = 0u64;
    let id = submit(&worker, &mut submitted, "how long does a refund take");
    let a = answers.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(a.request, id);
    assert_eq!(a.result.unwrap()[0].article_id, "refunds", "the old index still answers");
    let mut answered = 1u64;

    // Fixed, plus an edit: searches keep coming while it rebuilds.
    std::fs::write(
        dir.join("parking.md"),
        "---\nid: parking\ntitle: Parking\n---\nPark behind the depot, bay 7.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("refunds.md"),
        "---\nid: refunds\ntitle: Refunds\n---\nRefunds take ten days now.\n",
    )
    .unwrap();
    let report = loop {
        submit(&worker, &mut submitted, "how long does a refund take");
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(ReloadEvent::Reloaded(r)) => break r,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
        while let Ok(a) = answers.try_recv() {
            assert!(a.result.is_ok(), "{:?}", a.result);
            answered += 1;
        }
        assert!(submitted < 5_000, "no reload after {submitted} searches");
    };
    assert_eq!(report.version, 2);
    assert_eq!(report.diff.added, vec!["parking"]);
    assert_eq!(report.diff.changed, vec!["refunds"]);
    assert!(report.diff.removed.is_empty());
    assert!(report.reused > 0, "unchanged chunks come from the embedding cache: {report:?}");

    // Queued after the reload message: answered from the new index.
    let park = submit(&worker, &mut submitted, "where do I park at the depot");
    let refund = submit(&worker, &mut submitted, "how long does a refund take");
    let mut last = std::collections::HashMap::new();
    while answered < submitted {
        let a = answers.recv_timeout(Duration::from_secs(30)).expect("every search is answered");
        answered += 1;
        let hits = a.result.expect("no search fails during a reload");
        last.insert(a.request, hits);
    }
    assert_eq!(answered, submitted, "no search lost");
    assert_eq!(last[&park][0].article_id, "parking");
    assert!(last[&park][0].text.contains("bay 7"), "{:?}", last[&park]);
    assert_eq!(last[&refund][0].article_id, "refunds");
    assert!(last[&refund][0].text.contains("ten days"), "the edited text: {:?}", last[&refund]);
    drop(watcher);
    reloader.stop();
    worker.stop();
}

/// A `genesys:ID` source re-synced every second: a document edited in the
/// simulator between two syncs is reloaded while the console runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genesys_document_edited_between_syncs_is_reloaded() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    std::fs::create_dir_all(tmp.path().join("config")).unwrap();
    std::fs::write(tmp.path().join("config/config.toml"), "[kb]\nsync_interval = \"1s\"\n").unwrap();
    let sim = camera_sim().await;
    let source = format!("genesys:{HELP_CENTRE_KB_ID}");
    let h = Headless::start_with(tmp.path(), &sim, "manual", |c| {
        c.args(["--kb", &source]);
    });
    wait_for(&h, Duration::from_secs(120), "a search", |v| v["event"] == "conversation_started");

    let doc = document_id("camera-offline");
    let edit = Edit {
        markdown: Some("The Wave Cam now reconnects by itself after a router move.".into()),
        ..Edit::default()
    };
    assert!(sim.knowledge_edit(&doc, &edit));
    let r = wait_for(&h, Duration::from_secs(60), "kb_reloaded", |v| v["event"] == "kb_reloaded");
    assert_eq!(ids(&r["changed"]), BTreeSet::from([doc.clone()]), "{r}");
    assert!(ids(&r["added"]).is_empty() && ids(&r["removed"]).is_empty(), "{r}");
    h.terminate();
    sim.stop().await;
}
