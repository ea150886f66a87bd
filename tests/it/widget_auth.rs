//! Who may see what, against the simulator's login: the agent on a call
//! gets its feed; another call's feed, a wrong, revoked or missing token, an
//! expired or foreign session are refused with 401/403 and never show a
//! suggestion; `auth = "none"` off loopback is refused at start; TLS with a
//! self-signed certificate serves the page.

use std::collections::BTreeMap;

use agent_assist::config::Config;
use agent_assist::sim::SimHandle;
use agent_assist::widget::{AuthMode, WidgetConfig, WidgetError, WidgetHub, serve};
use serde_json::Value;

use crate::support::net::{script, sim_config, start};
use crate::widget::{
    SseReader, feed, genesys_config, open_session, participants_via_stream, session_token, start_widget,
    suggestion,
};

pub const MINE: &str = "call-mine";
pub const THEIRS: &str = "call-theirs";

/// A simulator whose test agent (`sim-agent`) takes `MINE` while another
/// agent takes `THEIRS`.
pub async fn two_agent_sim() -> SimHandle {
    let lines = [("EXTERNAL", "my internet keeps dropping"), ("INTERNAL", "let me check that for you")];
    let mut config = sim_config(vec![script(MINE, &lines, 300), script(THEIRS, &lines, 300)]);
    config.call_agents = BTreeMap::from([(THEIRS.to_string(), "other-agent".to_string())]);
    start(config).await
}

/// Signs the simulator's test agent in by the implicit grant, as the page
/// does, and returns the token from the redirect's fragment.
pub async fn sim_login(sim: &SimHandle, redirect_uri: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .get(format!("{}/oauth/authorize", sim.base_url))
        .query(&[
            ("client_id", "widget-test-client"),
            ("response_type", "token"),
            ("redirect_uri", redirect_uri),
        ])
        .query(&[("state", "n0nce")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(&location[..url::Position::AfterPath], redirect_uri);
    let fragment: BTreeMap<String, String> =
        serde_urlencoded::from_str(location.fragment().unwrap()).unwrap();
    assert_eq!(fragment["token_type"], "bearer");
    assert_eq!(fragment["state"], "n0nce");
    assert!(fragment["expires_in"].parse::<u64>().unwrap() > 0);
    fragment["access_token"].clone()
}

async fn refusal(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["message"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn only_an_agent_on_the_call_gets_its_feed() {
    let sim = two_agent_sim().await;
    let (server, hub, _signals) = start_widget(genesys_config(&sim)).await;
    let stream = participants_via_stream(&sim, &hub, &[MINE, THEIRS]).await;
    assert_eq!(hub.agents(MINE), Some(vec!["sim-agent".to_string()]));
    assert_eq!(hub.agents(THEIRS), Some(vec!["other-agent".to_string()]));
    hub.publish(suggestion(MINE, "m1", "Mine", "for me"));
    hub.publish(suggestion(THEIRS, "t1", "Theirs", "not for me"));
    let token = sim_login(&sim, &format!("{}/agent", server.url)).await;

    // The right agent: a session, and the call's suggestions.
    let session = session_token(&server, MINE, Some(&token)).await;
    let mut page = SseReader::new(feed(&server, MINE, &session, None).await);
    assert_eq!(page.next().await.unwrap().data["suggestion_id"], "m1");

    // Not an agent on the other call: 403 with a reason, and the session
    // for one call does not open another.
    let (status, why) = refusal(open_session(&server, THEIRS, Some(&token)).await).await;
    assert_eq!(status, 403);
    assert!(why.contains("not an agent on this call"), "{why}");
    let (status, why) = refusal(feed(&server, THEIRS, &session, None).await).await;
    assert_eq!((status, why.as_str()), (403, "this session is for another call"));

    // No token, a made-up one, a client-credentials one: 401.
    for bad in [None, Some("not-a-genesys-token")] {
        let (status, _) = refusal(open_session(&server, MINE, bad).await).await;
        assert_eq!(status, 401, "token {bad:?}");
    }
    let (status, _) = refusal(feed(&server, MINE, "forged-session", None).await).await;
    assert_eq!(status, 401);
    let unsigned = reqwest::Client::new()
        .get(format!("{}/agent/events?conversationId={MINE}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // A revoked (as good as expired) Genesys token: 401 from then on.
    sim.revoke_tokens();
    let (status, why) = refusal(open_session(&server, MINE, Some(&token)).await).await;
    assert_eq!(status, 401);
    assert!(why.contains("did not accept the sign-in"), "{why}");
    stream.stop().await;
    server.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn an_expired_session_ends_the_feed_and_is_refused() {
    let config = WidgetConfig { session_ttl_s: 1, ..crate::widget::open_config() };
    let (server, hub, _signals) = start_widget(config).await;
    hub.publish(suggestion("c", "s1", "T", "x"));
    let session = session_token(&server, "c", None).await;
    let mut page = SseReader::new(feed(&server, "c", &session, None).await);
    assert_eq!(page.next().await.unwrap().data["suggestion_id"], "s1");
    // The server ends the stream when the session runs out...
    assert_eq!(page.next().await, None);
    // ...and refuses it from then on.
    let (status, why) = refusal(feed(&server, "c", &session, None).await).await;
    assert_eq!(status, 401);
    assert!(why.contains("expired"), "{why}");
    server.stop().await;
}

#[tokio::test]
async fn auth_none_is_refused_off_loopback_at_start_and_at_load() {
    let config = WidgetConfig { auth: AuthMode::None, bind: "0.0.0.0:0".into(), ..WidgetConfig::default() };
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err = serve(config.clone(), WidgetHub::new(&config), tx).await.err().expect("refused");
    assert!(matches!(&err, WidgetError::Config(e) if e.key == "auth"), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[widget]\nauth = \"none\"\nbind = \"0.0.0.0:8443\"\n").unwrap();
    let err = Config::load(Some(&file), &file, &|_| None).unwrap_err().to_string();
    assert!(err.contains("widget.auth") && err.contains("loopback"), "{err}");

    // And `genesys` cannot start without the page's OAuth client.
    let no_client = WidgetConfig::default();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err = serve(no_client.clone(), WidgetHub::new(&no_client), tx).await.err().expect("refused");
    assert!(err.to_string().contains("widget.client_id"), "{err}");
}

#[tokio::test]
async fn a_self_signed_certificate_serves_the_page_over_https() {
    let config = WidgetConfig { self_signed: true, ..crate::widget::open_config() };
    let (server, _hub, _signals) = start_widget(config).await;
    assert!(server.url.starts_with("https://localhost:"), "{}", server.url);
    let strict = reqwest::Client::new();
    assert!(strict.get(format!("{}/agent", server.url)).send().await.is_err(), "an unknown CA is refused");
    let trusting = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let page = trusting.get(server.page_url("c1")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Suggestions"));
    server.stop().await;
}
