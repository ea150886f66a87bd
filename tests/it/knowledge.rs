//! Genesys Knowledge sync against the simulator on loopback: listing and
//! paging, a full then an incremental sync (edits, deletions,
//! unpublishing), every block type, retries on 429/500, permission
//! errors, and a synced knowledge base searched with the real model.

use std::time::Duration;

use agent_assist::config::Config;
use agent_assist::kb::genesys::{self, SyncOptions};
use agent_assist::kb::source::load_sources;
use agent_assist::kb::store::BuildProgress;
use agent_assist::kb::{IndexKind, Retriever};
use agent_assist::net::auth::TokenSource;
use agent_assist::net::knowledge::KnowledgeClient;
use agent_assist::net::rest::http_client;
use agent_assist::net::{Backoff, Dialect, NetError, Secret};
use agent_assist::sim::knowledge::{Edit, HELP_CENTRE_KB_ID, INTERNAL_KB_ID, document_id};
use agent_assist::sim::{Fault, SimConfig, SimHandle};

use crate::support::net::{endpoint, start};
use crate::support::{kb_options, repo, temp_paths};

fn sim_config(page_size: usize, faults: Vec<Fault>) -> SimConfig {
    let mut c = SimConfig::new(Vec::new());
    c.knowledge_page_size = page_size;
    c.faults = faults;
    c
}

fn client(sim: &SimHandle) -> KnowledgeClient {
    let http = http_client(Duration::from_secs(10)).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, Dialect::Notifications));
    KnowledgeClient::new(http, &sim.base_url, auth)
        .with_retries(Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50) }, 6)
}

fn opts(kb: &str) -> SyncOptions {
    SyncOptions { knowledge_base_id: kb.into(), include_drafts: false, labels: vec![] }
}

fn sample_articles() -> usize {
    load_sources(&[repo("kb")]).unwrap().len()
}

#[tokio::test]
async fn a_full_sync_pages_through_every_document_and_makes_a_searchable_source() {
    let sim = start(sim_config(4, vec![])).await;
    let c = client(&sim);
    let (_tmp, paths) = temp_paths();

    let bases = c.knowledge_bases().await.unwrap();
    let ids: Vec<&str> = bases.entities.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&HELP_CENTRE_KB_ID) && ids.contains(&INTERNAL_KB_ID));

    let n = sample_articles();
    let report = genesys::sync(&c, &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    assert!(!report.incremental);
    assert_eq!((report.documents, report.added, report.fetched), (n, n, n), "published only: {report:?}");
    assert_eq!(report.pages, n.div_ceil(4), "pages of four");
    assert_eq!(sim.stats().knowledge_documents_fetched, n as u64);

    // The copy is an ordinary JSON Lines source: ids, titles, URLs, labels.
    let articles = load_sources(std::slice::from_ref(&report.source)).unwrap();
    assert_eq!(articles.len(), n);
    let billing = articles.iter().find(|a| a.id == document_id("billing-dispute")).unwrap();
    assert_eq!(billing.title, "Disputing a charge on your bill");
    assert_eq!(billing.url.as_deref(), Some("https://help.brightwave.example/articles/billing-dispute"));
    assert!(billing.tags.contains(&"refunds".to_string()), "{:?}", billing.tags);
    assert!(billing.content.contains("- **Trial ended.** A 30-day free trial"), "{}", billing.content);

    // `genesys:ID` reads the copy; the real model finds articles in it.
    let sources =
        genesys::local_sources(&[format!("genesys:{HELP_CENTRE_KB_ID}").into()], &paths.data_dir).unwrap();
    let (mut r, _) =
        Retriever::open(&kb_options(sources, IndexKind::Flat), &paths, &mut |_: BuildProgress| {}).unwrap();
    let hits = r.query("there is a charge on my statement I think is wrong", 3).unwrap();
    assert!(hits.iter().any(|h| h.article_id == document_id("billing-dispute")), "{hits:?}");
    sim.stop().await;
}

#[tokio::test]
async fn an_incremental_sync_fetches_only_changes_and_drops_deleted_and_unpublished_documents() {
    let sim = start(sim_config(10, vec![])).await;
    let c = client(&sim);
    let (_tmp, paths) = temp_paths();
    let n = sample_articles();
    genesys::sync(&c, &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    let fetched_before = sim.stats().knowledge_documents_fetched;

    let edited = document_id("billing-dispute");
    assert!(sim.knowledge_edit(
        &edited,
        &Edit { markdown: Some("Disputes now have a **90-day** window.".into()), ..Edit::default() }
    ));
    assert!(sim.knowledge_delete(&document_id("battery-drain")));
    let unpublished = document_id("account-locked");
    assert!(sim.knowledge_edit(&unpublished, &Edit { state: Some("Draft".into()), ..Edit::default() }));

    let report = genesys::sync(&c, &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    assert!(report.incremental);
    assert_eq!(
        (report.changed, report.removed, report.added, report.unchanged, report.documents),
        (1, 2, 0, n - 3, n - 2),
        "{report:?}"
    );
    assert_eq!(
        sim.stats().knowledge_documents_fetched - fetched_before,
        1,
        "only the edited document is fetched"
    );
    let articles = load_sources(std::slice::from_ref(&report.source)).unwrap();
    let billing = articles.iter().find(|a| a.id == edited).unwrap();
    assert!(billing.content.contains("**90-day** window"), "{}", billing.content);
    assert!(articles.iter().all(|a| a.id != unpublished && a.id != document_id("battery-drain")));

    // Nothing changed: nothing fetched.
    let again = genesys::sync(&c, &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    assert_eq!((again.fetched, again.changed, again.removed), (0, 0, 0));

    // Other options are a different copy: a full sync, drafts included.
    let drafts = SyncOptions { include_drafts: true, ..opts(HELP_CENTRE_KB_ID) };
    let with_drafts = genesys::sync(&c, &paths.data_dir, &drafts).await.unwrap();
    assert!(!with_drafts.incremental);
    assert_eq!(with_drafts.documents, n, "the unpublished one and the draft are back");
    let titles: Vec<String> = load_sources(std::slice::from_ref(&with_drafts.source))
        .unwrap()
        .into_iter()
        .map(|a| a.title)
        .collect();
    assert!(titles.iter().any(|t| t == "Brightwave Hub 3 launch questions"), "{titles:?}");

    // A label filter keeps only the documents carrying it.
    let labelled = SyncOptions { labels: vec!["refunds".into()], ..opts(HELP_CENTRE_KB_ID) };
    let only = genesys::sync(&c, &paths.data_dir, &labelled).await.unwrap();
    let kept = load_sources(std::slice::from_ref(&only.source)).unwrap();
    assert!(!kept.is_empty() && kept.len() < n - 2);
    assert!(kept.iter().all(|a| a.tags.iter().any(|t| t == "refunds")));
    sim.stop().await;
}

#[tokio::test]
async fn every_block_type_becomes_markdown() {
    let mut config = sim_config(10, vec![]);
    config.knowledge_dir = Some(repo("tests/fixtures/knowledge"));
    let sim = start(config).await;
    let (_tmp, paths) = temp_paths();
    let report = genesys::sync(&client(&sim), &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    assert_eq!(report.documents, 2);
    let articles = load_sources(std::slice::from_ref(&report.source)).unwrap();
    let doc = articles.iter().find(|a| a.id == document_id("every-block")).unwrap();
    assert_eq!(doc.title, "Restarting the Brightwave Hub");
    assert_eq!(doc.url.as_deref(), Some("https://help.brightwave.example/articles/restart-hub"));
    assert_eq!(doc.tags, vec!["hub", "restart"]);
    // The first article has a second variation, each under its name.
    let expected_default = "## Default\n\n## Before you start\n\n\
        Press **Reset** for *ten* seconds, then read [the setup guide](https://help.brightwave.example/guide). \
        ~~Do not unplug it~~ unplugging is fine.\n\n\
        1. Unplug the hub.\n2. Wait thirty seconds, then:\n   - plug it back in\n   - watch the status light\n3. Sign in again.\n\n\
        | Light | Meaning |\n| --- | --- |\n| White | Connected |\n| Orange | No internet |\n\n\
        The hub's status light on the front panel\n\n\
        Video: https://video.brightwave.example/restart-hub.mp4\n\n## Chat\n\n";
    assert!(doc.content.starts_with(expected_default), "{}", doc.content);
    sim.stop().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let faults =
        vec![Fault::Knowledge429 { every: 3, retry_after_s: 0.05 }, Fault::Knowledge500 { every: 5 }];
    let sim = start(sim_config(10, faults)).await;
    let (_tmp, paths) = temp_paths();
    let report = genesys::sync(&client(&sim), &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap();
    assert_eq!(report.documents, sample_articles());
    let stats = sim.stats();
    assert!(stats.served_429 > 0 && stats.served_500 > 0, "{stats:?}");
    sim.stop().await;
}

#[tokio::test]
async fn a_missing_permission_is_named() {
    let sim = start(sim_config(10, vec![Fault::Knowledge403 { documents_only: false }])).await;
    let err = client(&sim).knowledge_bases().await.unwrap_err();
    assert!(matches!(err, NetError::Forbidden { .. }) && err.is_permanent(), "{err}");
    assert!(err.to_string().contains("knowledge:knowledgebase:view"), "{err}");
    sim.stop().await;

    let sim = start(sim_config(10, vec![Fault::Knowledge403 { documents_only: true }])).await;
    let (_tmp, paths) = temp_paths();
    let err = genesys::sync(&client(&sim), &paths.data_dir, &opts(HELP_CENTRE_KB_ID)).await.unwrap_err();
    assert!(err.to_string().contains("knowledge:document:view"), "{err}");
    assert_eq!(sim.stats().served_403, 1, "a 403 is not retried");
    assert!(!genesys::records_path(&paths.data_dir, HELP_CENTRE_KB_ID).exists(), "nothing half-written");
    sim.stop().await;
}

fn console_config(sim: &SimHandle) -> Config {
    let mut c = Config::default();
    c.genesys.api_base.clone_from(&sim.base_url);
    c.genesys.login_base.clone_from(&sim.base_url);
    c.genesys.client_id = "test-client".into();
    c.genesys.client_secret = Secret::new("test-secret");
    c.kb.paths = vec![format!("genesys:{INTERNAL_KB_ID}").into(), repo("kb")];
    c
}

#[tokio::test]
async fn configured_genesys_sources_sync_at_start_and_fall_back_to_the_last_copy() {
    let (_tmp, paths) = temp_paths();
    let sim = start(sim_config(10, vec![])).await;
    let sources = genesys::resolve_sources(&console_config(&sim), &paths).await.unwrap();
    assert_eq!(sources, vec![genesys::records_path(&paths.data_dir, INTERNAL_KB_ID), repo("kb")]);
    sim.stop().await;

    // The org refuses now: the last good copy is used.
    let refusing = start(sim_config(10, vec![Fault::Knowledge403 { documents_only: false }])).await;
    let again = genesys::resolve_sources(&console_config(&refusing), &paths).await.unwrap();
    assert_eq!(again, sources);
    // Without a copy the refusal is the error.
    let (_tmp2, fresh) = temp_paths();
    let err = genesys::resolve_sources(&console_config(&refusing), &fresh).await.unwrap_err();
    assert!(err.to_string().contains("knowledge:document:view"), "{err}");
    refusing.stop().await;
}
