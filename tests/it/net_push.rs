//! OAuth and the push client against the simulator: token caching under
//! concurrency, refresh, both token dialects, and the push retry policy
//! under every push fault, alone and mixed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agent_assist::domain::{PushAttempt, PushItem, PushRequest};
use agent_assist::net::auth::TokenSource;
use agent_assist::net::push::{PushClient, PushConfig};
use agent_assist::net::rest::http_client;
use agent_assist::net::{Backoff, Dialect, NetError, Secret};
use agent_assist::sim::{Fault, SimHandle};

use crate::support::net::{endpoint, eventually, sim_config, start};

fn request(n: usize) -> PushRequest {
    PushRequest {
        suggestion_id: format!("sugg-{n}"),
        conversation_id: format!("conv-{}", n % 3),
        items: vec![PushItem {
            // One article per suggestion: the same article again under a
            // new id would be a duplicate suggestion to the simulator.
            article_id: format!("article-{n}"),
            title: "Resetting a forgotten password".into(),
            content: "Use the reset link.".into(),
            score: 0.71,
        }],
        sinks: vec![agent_assist::domain::Sink::Webhook],
        operator: false,
        customer_participant: None,
        copilot_suggestion: None,
        url: None,
        probability: None,
    }
}

fn client(sim: &SimHandle, timeout: Duration) -> PushClient {
    let http = http_client(timeout).unwrap();
    let auth = TokenSource::new(http.clone(), endpoint(sim, Dialect::Notifications));
    let config = PushConfig {
        max_attempts: 6,
        backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(100) },
        ..PushConfig::default()
    };
    PushClient::new(http, auth, &sim.base_url, config)
}

#[tokio::test]
async fn tokens_are_cached_and_refreshed_once_however_many_ask() {
    let mut config = sim_config(vec![]);
    config.token_ttl = Duration::from_secs(1);
    let sim = start(config).await;
    let http = http_client(Duration::from_secs(5)).unwrap();
    let auth = TokenSource::new(http, endpoint(&sim, Dialect::Notifications));
    let first = futures_all(&auth, 20).await;
    assert!(first.iter().all(|t| t.generation == 1));
    assert_eq!(sim.stats().tokens_issued, 1);

    // Past 80% of the 1 s lifetime, the next callers share one refresh.
    // (Waiting here is the point of the test: the token has to age.)
    let watch = auth.watch();
    let refresh_due = tokio::time::Instant::now() + Duration::from_millis(800);
    tokio::time::sleep_until(refresh_due).await;
    let second = futures_all(&auth, 20).await;
    assert!(second.iter().all(|t| t.generation == 2), "{second:?}");
    assert_eq!(sim.stats().tokens_issued, 2);
    assert_eq!(watch.borrow().fetched, 2);

    // Many tasks hit a 401 with the same token: one refresh between them.
    let stale = second[0].clone();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (auth, stale) = (auth.clone(), stale.clone());
        tasks.push(tokio::spawn(async move { auth.refresh_after_401(&stale).await.unwrap() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().generation, 3);
    }
    assert_eq!(sim.stats().tokens_issued, 3);
    sim.stop().await;
}

async fn futures_all(auth: &Arc<TokenSource>, n: usize) -> Vec<agent_assist::net::auth::AccessToken> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move { auth.token().await.unwrap() }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn both_token_dialects_work_and_bad_credentials_are_permanent_errors() {
    let mut config = sim_config(vec![]);
    config.credentials = Some(("test-client".into(), "test-secret".into()));
    let sim = start(config).await;
    let http = http_client(Duration::from_secs(5)).unwrap();
    for dialect in [Dialect::Notifications, Dialect::Tutorial] {
        let auth = TokenSource::new(http.clone(), endpoint(&sim, dialect));
        assert!(auth.token().await.is_ok(), "{dialect}");
        let mut wrong = endpoint(&sim, dialect);
        wrong.client_secret = Secret::new("nope");
        let err = TokenSource::new(http.clone(), wrong).token().await.unwrap_err();
        assert!(
            matches!(&err, NetError::Auth { status: 401, message } if message.contains("authentication failed")),
            "{err}"
        );
        assert!(err.is_permanent());
        assert!(!format!("{err} {err:?}").contains("nope"), "secret leaked into the error");
    }
    sim.stop().await;
}

/// Pushes `n` suggestions concurrently; returns outcomes and reported attempts.
async fn push_all(c: &PushClient, n: usize) -> (Vec<agent_assist::domain::PushOutcome>, Vec<PushAttempt>) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            let outcome = c.push(&request(i), &mut |a| attempts.push(a)).await;
            (outcome, attempts)
        }));
    }
    let mut outcomes = Vec::new();
    let mut attempts = Vec::new();
    for t in tasks {
        let (o, a) = t.await.unwrap();
        outcomes.push(o);
        attempts.extend(a);
    }
    (outcomes, attempts)
}

/// The invariant: every push the client made is recorded exactly once.
fn assert_recorded_once(sim: &SimHandle, n: usize) {
    let pushes = sim.pushes();
    let ids: Vec<String> = pushes.iter().filter_map(|p| p.suggestion_id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a suggestion was recorded twice");
    let want: HashSet<String> = (0..n).map(|i| format!("sugg-{i}")).collect();
    assert_eq!(unique.into_iter().cloned().collect::<HashSet<_>>(), want);
    for p in &pushes {
        let r = &p.body["results"][0];
        assert_eq!(r["type"], "article");
        assert_eq!(r["metadata"]["suggestion_id"].as_str(), p.suggestion_id.as_deref());
        assert!(r["confidence"].as_f64().unwrap() <= 1.0);
    }
}

#[tokio::test]
async fn every_push_fault_alone_and_mixed_keeps_pushes_exactly_once() {
    let cases: Vec<Vec<Fault>> = vec![
        vec![],
        vec![Fault::Push429 { every: 2, retry_after_s: Some(0.05) }],
        vec![Fault::Push429 { every: 3, retry_after_s: None }],
        vec![Fault::Push500 { every: 2 }],
        vec![Fault::PushSlow { every: 3, delay: Duration::from_millis(600) }],
        vec![Fault::TokenExpire { after: Duration::from_millis(150) }],
        vec![
            Fault::Push429 { every: 4, retry_after_s: Some(0.02) },
            Fault::Push500 { every: 5 },
            Fault::PushSlow { every: 7, delay: Duration::from_millis(600) },
            Fault::TokenExpire { after: Duration::from_millis(200) },
        ],
    ];
    for faults in cases {
        let mut config = sim_config(vec![]);
        config.faults = faults.clone();
        let sim = start(config).await;
        // A 300 ms timeout makes push-slow look lost to the client.
        let c = client(&sim, Duration::from_millis(300));
        let n = 24;
        let (outcomes, attempts) = push_all(&c, n).await;
        for o in &outcomes {
            assert!(o.ok(), "{faults:?}: {o:?}");
            assert_eq!(o.status, Some(204));
        }
        assert_recorded_once(&sim, n);
        let stats = sim.stats();
        if faults.iter().any(|f| !matches!(f, Fault::TokenExpire { .. })) {
            assert!(!attempts.is_empty(), "{faults:?}: no retries were reported");
            assert!(stats.faults_injected.values().sum::<u64>() > 0, "{stats:?}");
        }
        if faults.iter().any(|f| matches!(f, Fault::PushSlow { .. })) {
            // The slow answer timed out, the retry repeated the suggestion id.
            assert!(stats.idempotent_replays > 0, "{stats:?}");
            assert_eq!(stats.duplicate_suggestions, 0, "{stats:?}");
            assert!(attempts.iter().any(|a| a.status.is_none()));
        }
        if faults.iter().any(|f| matches!(f, Fault::Push429 { retry_after_s: Some(_), .. })) {
            assert!(attempts.iter().any(|a| a.status == Some(429) && a.retry_in_ms.is_some()));
        }
        sim.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_pushes_go_through() {
    let sim = start(sim_config(vec![])).await;
    let c = client(&sim, Duration::from_secs(2));
    let (first, _) = push_all(&c, 5).await;
    assert!(first.iter().all(|o| o.ok()));
    sim.revoke_tokens();
    let mut attempts = Vec::new();
    let outcome = c.push(&request(5), &mut |a| attempts.push(a)).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
    assert!(attempts[0].status == Some(401) && attempts[0].reason.contains("refreshing"));
    let stats = sim.stats();
    assert_eq!((stats.tokens_issued, stats.served_401), (2, 1));
    sim.stop().await;
}

#[tokio::test]
async fn forbidden_stops_at_once_naming_the_permission_and_retries_are_bounded() {
    let mut config = sim_config(vec![]);
    config.faults = vec![Fault::Push403 { every: 1 }];
    let sim = start(config).await;
    let c = client(&sim, Duration::from_secs(2));
    let outcome = c.push(&request(0), &mut |_| {}).await;
    assert_eq!((outcome.status, outcome.attempts), (Some(403), 1));
    assert!(outcome.error.as_deref().unwrap().contains("agentAssist:suggestion:add"), "{outcome:?}");
    sim.stop().await;

    let mut config = sim_config(vec![]);
    config.faults = vec![Fault::Push500 { every: 1 }];
    let sim = start(config).await;
    let c = client(&sim, Duration::from_secs(2));
    let mut reported = 0;
    let outcome = c.push(&request(1), &mut |_| reported += 1).await;
    assert_eq!(outcome.attempts, 6);
    assert_eq!(reported, 5);
    assert!(outcome.error.as_deref().unwrap().contains("gave up after 6 attempts"), "{outcome:?}");
    eventually(Duration::from_secs(2), "500s counted", || sim.stats().served_500 == 6).await;
    sim.stop().await;
}
