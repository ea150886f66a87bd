//! Auto mode's rule: only the best article, credited for the earlier
//! searches of the same call that had it best and for its lead.

use super::*;

fn sent(fx: &[Effect]) -> Vec<String> {
    pushes(fx).iter().map(|p| p.items[0].article_id.clone()).collect()
}

fn auto(per_vote: f32, per_lead: f32) -> Engine {
    engine(|p| {
        p.mode = Mode::Auto;
        p.auto = 0.60;
        p.push = 0.45;
        p.agreement_bonus = per_vote;
        p.lead_weight = per_lead;
        // These tests are about votes and lead; the call context has its own.
        p.context_weight = 0.0;
    })
}

fn note(e: &Engine, c: &str) -> String {
    e.conversation(c).unwrap().auto_note.clone().unwrap_or_default()
}

#[test]
fn a_best_article_seen_before_needs_less_score() {
    let mut e = auto(0.15, 0.0);
    // First time best at 0.50: below auto 0.60, waits.
    let fx = search_with(&mut e, "c", "u1", "my earbuds", vec![hit("a", 0.50), hit("b", 0.50)], 0);
    assert!(sent(&fx).is_empty());
    assert!(note(&e, "c").starts_with("not auto-sent a: 0.50 < 0.60"), "{}", note(&e, "c"));
    // Best again at 0.48: one vote, needs 0.45, goes out.
    let fx = search_with(&mut e, "c", "u2", "won't pair", vec![hit("a", 0.48), hit("b", 0.48)], 5_000);
    assert_eq!(sent(&fx), vec!["a"]);
    assert!(note(&e, "c").starts_with("auto-sent a: 0.48 ≥ 0.45"), "{}", note(&e, "c"));
    assert!(note(&e, "c").contains("best in 1 earlier searches"), "{}", note(&e, "c"));
    // b is best for the first time: no credit.
    let fx = search_with(&mut e, "c", "u3", "something else", vec![hit("b", 0.50), hit("c", 0.50)], 10_000);
    assert!(sent(&fx).is_empty());
    // Votes need not be consecutive: b again, after a different best.
    search_with(&mut e, "c", "u4", "more", vec![hit("c", 0.40), hit("b", 0.40)], 15_000);
    let fx = search_with(&mut e, "c", "u5", "again", vec![hit("b", 0.46), hit("c", 0.46)], 20_000);
    assert_eq!(sent(&fx), vec!["b"], "{}", note(&e, "c"));
}

#[test]
fn a_clear_lead_over_the_runner_up_earns_credit_even_below_push() {
    let mut e = auto(0.0, 1.0);
    // Lead 0.20 at 0.42: needs 0.60 - 0.20 = 0.40, though below push 0.45.
    let fx = search_with(&mut e, "c", "u1", "x", vec![hit("a", 0.42), hit("b", 0.22)], 0);
    assert_eq!(sent(&fx), vec!["a"], "{}", note(&e, "c"));
    // The same score with the runner-up close behind waits.
    let fx = search_with(&mut e, "c", "u2", "y", vec![hit("d", 0.42), hit("e", 0.41)], 5_000);
    assert!(sent(&fx).is_empty(), "{}", note(&e, "c"));
}

#[test]
fn without_credit_the_threshold_is_plain_and_runners_up_are_never_auto_sent() {
    let mut e = auto(0.0, 0.0);
    let fx = search_with(&mut e, "c", "u1", "x", vec![hit("a", 0.55)], 0);
    assert!(sent(&fx).is_empty());
    let fx = search_with(&mut e, "c", "u2", "y", vec![hit("a", 0.55)], 5_000);
    assert!(sent(&fx).is_empty(), "no credit: 0.55 stays below 0.60");
    // Runners-up above auto wait for the operator; the best goes.
    let fx =
        search_with(&mut e, "c", "u3", "z", vec![hit("b", 0.80), hit("c", 0.75), hit("d", 0.70)], 10_000);
    assert_eq!(sent(&fx), vec!["b"]);
    let queued: Vec<_> =
        states(&e, "c").into_iter().filter(|(_, s)| *s == "queued").map(|(a, _)| a).collect();
    assert!(queued.contains(&"c".to_string()) && queued.contains(&"d".to_string()), "{queued:?}");
    // Next search: b (sent) is best again; nothing open for it.
    search_with(&mut e, "c", "u4", "w", vec![hit("b", 0.80), hit("c", 0.75)], 15_000);
    assert!(note(&e, "c").contains("no open suggestion"), "{}", note(&e, "c"));
}

#[test]
fn votes_are_counted_per_call() {
    let mut e = auto(0.2, 0.0);
    search_with(&mut e, "c1", "u1", "x", vec![hit("a", 0.45)], 0);
    // Another call's search with the same best article is no vote for c2.
    let fx = search_with(&mut e, "c2", "v1", "x", vec![hit("a", 0.45)], 3_000);
    assert!(sent(&fx).is_empty());
    let fx = search_with(&mut e, "c1", "u2", "y", vec![hit("a", 0.45)], 6_000);
    assert_eq!(sent(&fx), vec!["a"]);
}

#[test]
fn the_policy_refuses_meaningless_credits() {
    for bad in [-0.1, 1.5, f32::NAN] {
        let p = Policy { agreement_bonus: bad, ..Policy::default() };
        assert!(p.validate().unwrap_err().contains("agreement_bonus"), "{bad}");
    }
    let p = Policy { lead_weight: -1.0, ..Policy::default() };
    assert!(p.validate().unwrap_err().contains("lead_weight"));
    for (p, name) in [
        (Policy { context_weight: -0.1, ..Policy::default() }, "context_weight"),
        (Policy { context_decay: 1.5, ..Policy::default() }, "context_decay"),
        (Policy { context_pool: 0, ..Policy::default() }, "context_pool"),
        (Policy { auto: 2.5, ..Policy::default() }, "auto"),
    ] {
        assert!(p.validate().unwrap_err().contains(name), "{name}");
    }
    // A calibrated auto threshold above 1 (score plus credits) is valid.
    assert_eq!(Policy { auto: 1.03, ..Policy::default() }.validate(), Ok(()));
}

#[test]
fn the_call_context_reorders_hits_and_credits_the_best_in_auto_mode() {
    let mut e = engine(|p| {
        p.mode = Mode::Auto;
        p.auto = 0.60;
        p.push = 0.45;
        (p.agreement_bonus, p.lead_weight) = (0.0, 0.0);
        (p.context_weight, p.context_decay, p.context_pool, p.top_k) = (0.2, 1.0, 10, 2);
    });
    // The KB is asked for the pool, not just top_k.
    e.handle(customer("c", "u1", "there are two payments on my card"), at(0));
    let fx = e.handle(Msg::Tick, at(1_000));
    assert!(fx.iter().any(|f| matches!(f, Effect::Search { k: 10, .. })), "{fx:?}");
    let (req, _) = searches(&fx)[0].clone();
    let fx = e.handle(done(req, "c", vec![hit("double", 0.50), hit("cancel", 0.30)], 1_001), at(1_010));
    assert!(sent(&fx).is_empty(), "0.50 < 0.60 and no context yet");
    // Next search: cancel edges ahead on its own (0.53 vs 0.52), but the
    // call spoke for double: 0.52 + 0.2 × 0.50 beats 0.53 + 0.2 × 0.30 ...
    let hits = vec![hit("cancel", 0.53), hit("x", 0.40), hit("double", 0.52)];
    let fx = search_with(&mut e, "c", "u3", "the same amount twice", hits, 5_000);
    let matches: Vec<_> = e.conversation("c").unwrap().matches.iter().map(|h| h.article_id.clone()).collect();
    assert_eq!(matches, ["double", "cancel"], "re-ranked, then cut to top_k");
    // ... and its credit (0.10) brings it over auto: 0.52 ≥ 0.60 - 0.10.
    assert_eq!(sent(&fx), vec!["double"], "{}", note(&e, "c"));
    assert!(note(&e, "c").contains("call context 0.10"), "{}", note(&e, "c"));
}
