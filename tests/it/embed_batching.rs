//! Index-build batching with the real model: token-budget batches and
//! parallel one-thread sessions give every text the vector it gets alone,
//! in input order, with progress up to the end. With float products that
//! is within float noise; with integer products (the default) within the
//! activations' quantisation, whose range is the whole batch's.

use agent_assist::kb::embed::batch::Batching;
use agent_assist::kb::embed::models;
use agent_assist::kb::source::load_sources;
use agent_assist::kb::{Embedder, FastEmbedder};

use crate::support::{installed_model, repo};

/// Short utterances and long help-article passages, shuffled together so
/// every batch plan has to sort and restore the order.
fn mixed_texts() -> Vec<String> {
    let articles = load_sources(&[repo("kb")]).unwrap();
    let mut texts: Vec<String> = Vec::new();
    for (i, a) in articles.iter().enumerate().take(24) {
        let words: Vec<&str> = a.content.split_whitespace().collect();
        // A whole passage (truncated by the model past its limit), a
        // medium one, and a short utterance-like run of words.
        texts.push(words.iter().take(400).copied().collect::<Vec<_>>().join(" "));
        texts.push(words.iter().skip(i).take(40).copied().collect::<Vec<_>>().join(" "));
        texts.push(words.iter().skip(2 * i).take(4 + i % 9).copied().collect::<Vec<_>>().join(" "));
    }
    texts.push("refund".into());
    texts
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Embeds the mixed texts alone and under every batch plan; returns, per
/// plan, the worst and the mean cosine of a batched vector to its own.
fn drift(model: &'static str) -> Vec<(&'static str, f32, f32)> {
    let spec = agent_assist::kb::ModelSpec { info: models::by_name(model).unwrap(), ..installed_model() };
    let mut e = FastEmbedder::load(&spec).unwrap();
    let texts = mixed_texts();
    let d = e.dimension();
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| e.embed_one(t).unwrap()).collect();
    let plans = [
        // Enough batches (9) for the parallel one-thread sessions to run.
        ("tokens 1024, two sessions", Batching::Tokens { budget: 1024, max_texts: 128 }, 2, true),
        ("one session, tokens", Batching::default(), 1, true),
        ("fixed 8", Batching::Fixed(8), 1, true),
        ("small budget, unsorted", Batching::Tokens { budget: 300, max_texts: 16 }, 2, false),
    ];
    let mut out = Vec::new();
    for (name, batching, sessions, sorted) in plans {
        e.batching = batching;
        e.build_sessions = sessions;
        e.sort_by_length = sorted;
        let mut seen = Vec::new();
        let flat = e.embed_many(&texts, &mut |n| seen.push(n)).unwrap();
        assert_eq!(flat.len(), texts.len() * d, "{name}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{name}: progress goes up: {seen:?}");
        assert_eq!(seen.last(), Some(&texts.len()), "{name}: progress reaches the end");
        // Each batched vector is nearer its own text's than any other's:
        // nothing was mixed up or put back out of order.
        for (i, v) in flat.chunks(d).enumerate() {
            let nearest =
                (0..alone.len()).max_by(|&a, &b| cosine(v, &alone[a]).total_cmp(&cosine(v, &alone[b])));
            let own = cosine(v, &alone[i]);
            assert!(
                nearest == Some(i) || (cosine(v, &alone[nearest.unwrap()]) - own).abs() < 1e-6,
                "{model}, {name}: text {i}'s vector is nearest text {nearest:?}'s"
            );
        }
        let cosines: Vec<f32> = flat.chunks(d).zip(&alone).map(|(v, a)| cosine(v, a)).collect();
        let worst = cosines.iter().copied().fold(f32::INFINITY, f32::min);
        let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
        out.push((name, worst, mean));
    }
    out
}

#[test]
fn float_products_embed_a_text_the_same_alone_and_in_any_batch_plan() {
    for (name, worst, _) in drift("all-MiniLM-L6-v2-int8-float") {
        assert!(worst >= 1.0 - 1e-3, "{name}: a text's batched vector drifted from its own (cosine {worst})");
    }
}

#[test]
fn integer_products_stay_within_their_quantisation_in_any_batch_plan() {
    // Measured: worst 0.979, mean 0.992 on these texts (BENCHMARKS.md,
    // "Integer matrix products"); the order check above catches mix-ups.
    for (name, worst, mean) in drift(models::DEFAULT_MODEL) {
        assert!(worst >= 0.95 && mean >= 0.99, "{name}: worst cosine {worst}, mean {mean}");
    }
}

#[test]
fn an_empty_list_embeds_to_nothing_without_loading_sessions() {
    let mut e = FastEmbedder::load(&installed_model()).unwrap();
    e.build_sessions = 2;
    let mut calls = 0;
    let out = e.embed_many(&[], &mut |_| calls += 1).unwrap();
    assert!(out.is_empty());
    assert_eq!(calls, 0);
}
