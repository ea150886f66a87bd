//! The whole path an agent sees, with nothing stood in for: the real
//! `agent-assist console --headless` binary on a simulated call, the agent
//! widget signed in through the simulator's implicit grant in Debian's
//! headless Chromium, the operator approving on the console's command
//! input, the card appearing in the page, and the agent's click on Useful
//! coming back to the console as an `agent_feedback` event.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::restart::Headless;
use crate::support::net::{sim_config, start};
use crate::support::{bundled_scripts, link_model};
use crate::widget_browser::{STATUS, screenshot, start_browser, until};

/// Reads console lines until one satisfies `want`, or panics after `wait`.
fn line_where(h: &Headless, wait: Duration, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        if let Some(v) = h.next(left).filter(|v| want(v)) {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_approves_and_the_agent_sees_it_in_a_real_browser_and_says_it_helped() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    std::fs::create_dir_all(tmp.path().join("config")).unwrap();
    std::fs::write(
        tmp.path().join("config/config.toml"),
        "[delivery]\nsinks = [\"widget\", \"webhook\"]\n\n[widget]\nauth = \"genesys\"\nclient_id = \"widget-test-client\"\n",
    )
    .unwrap();
    let script = bundled_scripts()
        .into_iter()
        .find(|s| s.title.as_deref().is_some_and(|t| t.starts_with("Locked out")))
        .expect("the locked-out script");
    let mut sc = sim_config(vec![script]);
    // Slow enough that the page is open long before the call ends.
    sc.speed = 2.0;
    let sim = start(sc).await;
    let mut console = Headless::start_with(tmp.path(), &sim, "manual", |c| {
        c.env("GENESYS_LOGIN_BASE", &sim.base_url);
    });
    let wait = Duration::from_secs(90);
    let widget = line_where(&console, wait, "the widget's address", |v| v["event"] == "widget");
    let base = widget["url"].as_str().unwrap().to_string();

    // The engine queues a suggestion for the operator; the agent opens the
    // call's page meanwhile and signs in.
    let queued = line_where(&console, wait, "a queued suggestion", |v| {
        v["event"] == "suggestion" && v["state"] == "queued"
    });
    let call = queued["conversation_id"].as_str().unwrap().to_string();
    let sid = queued["suggestion_id"].as_str().unwrap().to_string();
    let (_driver, client) = start_browser().await;
    let page = format!("{base}/agent?{}", serde_urlencoded::to_string([("conversationId", &call)]).unwrap());
    client.goto(&page).await.unwrap();
    until(&client, STATUS, |v| v == "live", "the feed to go live").await;
    let cards = "return document.querySelectorAll('#list .card').length";
    assert_eq!(client.execute(cards, vec![]).await.unwrap(), json!(0), "nothing is shown before approval");

    // The operator approves: the page shows it under the same id.
    console.send(&json!({ "command": "approve", "suggestion": sid }));
    let selector = format!(r#".card[data-id="{sid}"]"#);
    let card =
        client.wait().at_most(wait).for_element(Locator::Css(&selector)).await.expect("the approved card");
    let title = card.find(Locator::Css(".title")).await.unwrap().text().await.unwrap();
    assert_eq!(title, queued["title"].as_str().unwrap());
    line_where(&console, wait, "the page's acknowledgement", |v| {
        v["event"] == "acknowledged" && v["suggestion_id"] == sid.as_str() && v["user_id"] == "sim-agent"
    });

    // The agent clicks Useful: the console hears it.
    card.find(Locator::Css(".useful")).await.unwrap().click().await.unwrap();
    let feedback = line_where(&console, wait, "the agent's feedback", |v| v["event"] == "agent_feedback");
    assert_eq!(feedback["suggestion_id"], sid.as_str());
    assert_eq!(feedback["feedback"], "useful");
    assert_eq!(feedback["article_id"], queued["article_id"]);
    screenshot(&client, "widget-engine").await;
    // The webhook got the same suggestion once, beside the widget.
    let pushed = sim.pushes().iter().filter(|p| p.suggestion_id.as_deref() == Some(sid.as_str())).count();
    assert_eq!(pushed, 1);

    client.close().await.unwrap();
    console.terminate();
    sim.stop().await;
}
