//! The agent widget in a real browser: Debian's headless Chromium driven
//! through chromedriver (WebDriver, `fantoccini`). The agent signs in with
//! the simulator's implicit grant, sees a suggestion appear once it is
//! published, marks it useful by mouse and not useful by keyboard, and the
//! engine's channel receives each; an article carrying `<script>` and
//! `<img onerror>` renders inert; the page of a call the agent is not on is
//! refused. `scripts/setup.sh` installs `chromium` and `chromium-driver`.
//!
//! Set `AA_WIDGET_SCREENSHOTS=DIR` to keep screenshots of the page, and
//! `AA_WIDGET_DARK=1` to see it in the dark theme.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_assist::widget::{AgentSignal, FeedEvent, FeedbackKind, WidgetHub};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::widget::{WAIT, genesys_config, participants_via_stream, start_widget, suggestion};
use crate::widget_auth::{MINE, THEIRS, two_agent_sim};

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn start_browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/setup.sh installs chromium-driver)");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), _profile: profile };
    // Ready when its status endpoint answers.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready =
            reqwest::get(format!("{}/status", driver.url)).await.ok().map(|r| r.status().is_success());
        if ready == Some(true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        // The width of the agent desktop's side panel.
        "--window-size=380,900",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", driver._profile.path().display())])
    // To look at the dark theme too: the page follows prefers-color-scheme.
    .chain(std::env::var_os("AA_WIDGET_DARK").map(|_| "--force-dark-mode".to_string()))
    .collect::<Vec<_>>();
    let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
    let Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    (driver, client)
}

/// Evaluates `script` in the page until it returns `want`, or panics with
/// the last value after the timeout.
pub async fn until(client: &Client, script: &str, want: impl Fn(&Value) -> bool, what: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = client.execute(script, vec![]).await.unwrap_or(Value::Null);
        if want(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn signal(rx: &mut mpsc::Receiver<AgentSignal>) -> AgentSignal {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("a signal in time").expect("channel open")
}

pub async fn screenshot(client: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("AA_WIDGET_SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

pub const STATUS: &str = "return document.getElementById('status').textContent";

#[tokio::test]
async fn an_agent_signs_in_sees_suggestions_live_and_sends_feedback_from_a_real_browser() {
    let sim = two_agent_sim().await;
    let (server, hub, mut signals) = start_widget(genesys_config(&sim)).await;
    let stream = participants_via_stream(&sim, &hub, &[MINE, THEIRS]).await;
    let (_driver, client) = start_browser().await;

    // Sign-in: page → simulator's /oauth/authorize → back with a token → live.
    client.goto(&server.page_url(MINE)).await.unwrap();
    until(&client, STATUS, |v| v == "live", "the feed to go live").await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.query(), Some(format!("conversationId={MINE}").as_str()));
    assert_eq!(url.fragment(), None, "the token left the address bar");

    publish_and_use(&client, &hub, &mut signals).await;
    malicious_article_is_inert(&client, &hub).await;
    screenshot(&client, "widget-live").await;

    // The other agent's call: refused, and nothing of it shown.
    client.goto(&server.page_url(THEIRS)).await.unwrap();
    until(&client, STATUS, |v| v == "refused", "the page to be refused").await;
    let notice = client.find(Locator::Id("notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("not an agent on this call"), "{notice}");
    let shown =
        client.execute("return document.querySelectorAll('#list .card').length", vec![]).await.unwrap();
    assert_eq!(shown, json!(0));
    screenshot(&client, "widget-refused").await;

    client.close().await.unwrap();
    stream.stop().await;
    server.stop().await;
    sim.stop().await;
}

async fn publish_and_use(client: &Client, hub: &WidgetHub, signals: &mut mpsc::Receiver<AgentSignal>) {
    let text = "Ask the customer to **unplug the router** for 30 seconds, then:\n\n1. plug it in\n2. wait for the green light";
    hub.publish(suggestion(MINE, "m1", "Router keeps dropping", text));
    let card = client.wait().at_most(WAIT).for_element(Locator::Css(r#".card[data-id="m1"]"#)).await.unwrap();
    assert_eq!(
        card.find(Locator::Css(".title")).await.unwrap().text().await.unwrap(),
        "Router keeps dropping"
    );
    assert_eq!(card.find(Locator::Css(".likely")).await.unwrap().text().await.unwrap(), "87% likely");
    let strong = card.find(Locator::Css(".passage strong")).await.unwrap().text().await.unwrap();
    assert_eq!(strong, "unplug the router");
    let link = card.find(Locator::Css(".title a")).await.unwrap().attr("href").await.unwrap();
    assert_eq!(link.as_deref(), Some("https://kb.example.com/m1"));
    let user = Some("sim-agent".to_string());
    let ack = AgentSignal::Acknowledged {
        conversation_id: MINE.into(),
        suggestion_id: "m1".into(),
        user_id: user.clone(),
    };
    assert_eq!(signal(signals).await, ack);

    // Newest on top.
    hub.publish(suggestion(MINE, "m2", "Check the line", "Run a line test."));
    let order = r#"return [...document.querySelectorAll('#list .card')].map(c => c.dataset.id).join(',')"#;
    until(client, order, |v| v == "m2,m1", "the newer card on top").await;
    assert!(
        matches!(signal(signals).await, AgentSignal::Acknowledged { suggestion_id, .. } if suggestion_id == "m2")
    );

    card.find(Locator::Css(".useful")).await.unwrap().click().await.unwrap();
    let useful = AgentSignal::Feedback {
        conversation_id: MINE.into(),
        suggestion_id: "m1".into(),
        kind: FeedbackKind::Useful,
        user_id: user.clone(),
    };
    assert_eq!(signal(signals).await, useful);
    let pressed =
        r#"return document.querySelector('.card[data-id="m1"] .useful').getAttribute('aria-pressed')"#;
    until(client, pressed, |v| v == "true", "Useful to show pressed").await;

    // Keyboard: focus the card, `n` is Not useful.
    client.execute(r#"document.querySelector('.card[data-id="m2"]').focus()"#, vec![]).await.unwrap();
    client.active_element().await.unwrap().send_keys("n").await.unwrap();
    let not_useful = AgentSignal::Feedback {
        conversation_id: MINE.into(),
        suggestion_id: "m2".into(),
        kind: FeedbackKind::NotUseful,
        user_id: user,
    };
    assert_eq!(signal(signals).await, not_useful);

    // A state change from the engine shows on the card.
    hub.publish(FeedEvent::Update {
        conversation_id: MINE.into(),
        suggestion_id: "m1".into(),
        state: "superseded".into(),
    });
    let state = r#"return document.querySelector('.card[data-id="m1"] .state').textContent"#;
    until(client, state, |v| v == "superseded", "the new state").await;
}

async fn malicious_article_is_inert(client: &Client, hub: &WidgetHub) {
    let evil = "Type <script>window.__pwned = 'script'</script> and <img src=x onerror=\"window.__pwned = 'img'\">.\n\n\
                <img src=x onerror=\"window.__pwned = 'block'\">\n\n[Open](javascript:window.__pwned='link')";
    hub.publish(suggestion(MINE, "x1", "<img src=x onerror=\"window.__pwned='title'\">Evil title", evil));
    client.wait().at_most(WAIT).for_element(Locator::Css(r#".card[data-id="x1"]"#)).await.unwrap();
    // Let a failed image load run its handlers before looking (had an
    // `<img onerror>` been inserted, its handler would have run by now).
    let probe = r#"return new Promise(r => { const i = new Image(); i.onerror = i.onload = () => r(true); i.src = 'data:,'; })"#;
    client.execute(probe, vec![]).await.unwrap();
    let found = client
        .execute(
            r#"const c = document.querySelector('.card[data-id="x1"]');
               return { imgs: document.querySelectorAll('#list img').length,
                        scripts: document.querySelectorAll('#list script').length,
                        js_links: [...c.querySelectorAll('a')].filter(a => a.href.startsWith('javascript')).length,
                        pwned: window.__pwned || null,
                        title: c.querySelector('.title').textContent,
                        passage: c.querySelector('.passage').textContent };"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found["imgs"], 0, "{found}");
    assert_eq!(found["scripts"], 0, "{found}");
    assert_eq!(found["js_links"], 0, "{found}");
    assert_eq!(found["pwned"], Value::Null, "{found}");
    assert_eq!(found["title"], "<img src=x onerror=\"window.__pwned='title'\">Evil title");
    let passage = found["passage"].as_str().unwrap();
    assert!(passage.contains("<script>window.__pwned = 'script'</script>"), "shown as text: {passage}");
}
