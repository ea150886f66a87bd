//! The Genesys delivery sinks end to end against the simulator: participant
//! attributes on the customer participant and answers to Copilot's
//! third-party-action suggestions, beside the webhook, under push faults.
//! Each sink reports its own outcome; none delivers anything twice.

use std::collections::HashSet;

use agent_assist::domain::Sink;
use agent_assist::engine::Mode;
use agent_assist::sim::Fault;

use crate::pipeline::{fast, run_with};
use crate::support::bundled_scripts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sink_delivers_under_faults_and_nothing_twice() {
    let mut config = fast(bundled_scripts().into_iter().take(6).collect());
    // Slower than the pipeline test: this one is about delivery, not load.
    config.speed = 5.0;
    config.concurrency = 3;
    config.copilot_every = 3;
    config.faults = vec![Fault::Push429 { every: 4, retry_after_s: Some(0.1) }, Fault::Push500 { every: 5 }];
    let run = run_with(config, Mode::Auto, |c| {
        c.delivery.sinks = vec![Sink::Webhook, Sink::GenesysAttributes, Sink::GenesysCopilot];
    })
    .await;
    let stats = run.sim.stats();
    assert_eq!(stats.duplicate_suggestions, 0, "{stats:?}");
    assert!(stats.served_429 + stats.served_500 > 0, "faults were injected: {stats:?}");

    // Attributes: on the customer participant, prefixed, within 256 chars,
    // naming an article that was pushed to that call.
    let pushed: HashSet<(String, String)> = run
        .sim
        .pushes()
        .iter()
        .map(|p| (p.conversation_id.clone(), p.body["results"][0]["id"].as_str().unwrap().to_string()))
        .collect();
    let attrs = run.sim.attributes();
    assert!(!attrs.is_empty(), "no attributes written: {stats:?}");
    for a in &attrs {
        assert_eq!(a.participant_id, format!("{}-c", a.conversation_id), "not the customer participant");
        assert!(a.attributes.keys().all(|k| k.starts_with("agentAssist.")), "{a:?}");
        assert!(a.attributes.values().all(|v| v.chars().count() <= 256));
        let article = &a.attributes["agentAssist.articleId"];
        assert!(pushed.contains(&(a.conversation_id.clone(), article.clone())), "{a:?}");
        assert!(a.attributes.contains_key("agentAssist.suggestionId"));
    }

    // Copilot: raised on the calls' subscribed topics and answered with an
    // article's text; a repeated PATCH is a retry of the same answer.
    assert!(stats.copilot_raised > 0, "{stats:?}");
    let answered: Vec<_> = run.sim.copilot().into_iter().filter(|c| c.answer.is_some()).collect();
    assert!(!answered.is_empty(), "no Copilot suggestion answered: {stats:?}");
    for c in &answered {
        let a = c.answer.as_ref().unwrap();
        assert!(!a["title"].as_str().unwrap().is_empty() && !a["text"].as_str().unwrap().is_empty(), "{a}");
    }

    // Each sink's outcome is its own line, on the output and in the audit.
    for sink in ["webhook", "genesys-attributes", "genesys-copilot"] {
        assert!(
            run.lines.iter().any(|l| l["event"] == "push" && l["sink"] == sink && l["ok"] == true),
            "no successful {sink} push reported"
        );
    }
    let audit = agent_assist::audit::read_log(&run.audit).unwrap();
    assert_eq!(
        audit.iter().filter(|l| l["event"] == "push").count(),
        run.lines.iter().filter(|l| l["event"] == "push").count()
    );
}
