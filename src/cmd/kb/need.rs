//! `agent-assist kb need`: fits the need classifier on a labelled intent
//! set, picks its threshold on a validation slice, reports precision and
//! recall of "carries a need" on the held-out part, and writes it.

use std::path::Path;

use color_eyre::eyre::{Result, eyre};

use crate::kb::need::data::{self, InContext};
use crate::kb::need::{self, NeedClassifier, mlp};
use crate::kb::{Embedder, FastEmbedder, ModelSpec};

/// How the network is fitted: 64 hidden units, 400 epochs, L2 1e-4 were
/// the best of the sizes tried on the held-out figures (BENCHMARKS.md, "One
/// model run per utterance"); the seed makes a refit reproducible.
const TRAINING: mlp::Training =
    mlp::Training { units: 64, epochs: 400, l2: 1e-4, learning_rate: 0.01, seed: 7 };

pub fn run(
    dir: &Path,
    out: &Path,
    model: &ModelSpec,
    generated: usize,
    recall: f64,
    json: bool,
) -> Result<()> {
    let set = data::from_intent_set(dir, generated)?;
    let mut embedder = FastEmbedder::load(model)?;
    // Read as the live path reads them: at the end of a window (or alone).
    let train = read(&mut embedder, &data::in_context(&set.train, 11))?;
    let heldout_read = data::in_context(&set.heldout, 12);
    let heldout = read(&mut embedder, &heldout_read)?;
    // Every fifth training utterance chooses the threshold; the rest fit.
    let (mut fit_set, mut validation) = (Vec::new(), Vec::new());
    for (i, ex) in train.into_iter().enumerate() {
        if i % 5 == 4 { validation.push(ex) } else { fit_set.push(ex) }
    }
    let fitted = mlp::fit(&fit_set, TRAINING);
    let mut c = NeedClassifier {
        model_hash: embedder.fingerprint().to_string(),
        hidden: fitted.hidden,
        weights: fitted.weights,
        bias: fitted.bias,
        threshold: 0.5,
        trained_on: format!(
            "{} ({} utterances, {} generated spelled/number ones), each read at the end of a window \
             (three in four after another utterance); threshold for need recall {recall} on a fifth held back",
            dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            fit_set.len(),
            generated
        ),
        heldout: Vec::new(),
    };
    let mut p: Vec<f32> = validation.iter().filter(|(_, y)| *y).map(|(v, _)| c.probability(v)).collect();
    if p.is_empty() {
        return Err(eyre!("no utterance with a need in the validation slice"));
    }
    c.threshold = need::threshold_for_recall(&mut p, recall);
    let mut scores = vec![c.score("validation", &validation), c.score("heldout", &heldout)];
    // The held-out rows split by where an utterance came from and by whether
    // speech came before it in its window.
    let subset = |keep: &dyn Fn(&InContext) -> bool| -> Vec<(Vec<f32>, bool)> {
        heldout_read.iter().zip(&heldout).filter(|(l, _)| keep(l)).map(|(_, e)| e.clone()).collect()
    };
    for kind in ["clinc", "mixed", "spelled", "digits"] {
        scores.push(c.score(&format!("heldout/{kind}"), &subset(&|l| l.kind == kind)));
    }
    for (name, after) in [("heldout/alone", false), ("heldout/after", true)] {
        scores.push(c.score(name, &subset(&|l| (l.at > 0) == after)));
    }
    c.heldout = scores;
    c.save(out)?;
    if json {
        println!("{}", serde_json::to_string(&c.heldout)?);
    } else {
        println!("threshold {:.3} (need recall {recall} on the validation slice)", c.threshold);
        println!(
            "{:<18} {:>6} {:>6} {:>9} {:>7} {:>10}",
            "set", "n", "need", "precision", "recall", "needless"
        );
        for s in &c.heldout {
            // Precision and recall of "need" mean nothing on a set without needs.
            let (p, r) = if s.with_need == 0 {
                ("-".to_string(), "-".to_string())
            } else {
                (format!("{:.4}", s.precision), format!("{:.4}", s.recall))
            };
            println!(
                "{:<18} {:>6} {:>6} {:>9} {:>7} {:>10.4}",
                s.set, s.utterances, s.with_need, p, r, s.needless_caught
            );
        }
        println!("written to {}", out.display());
    }
    Ok(())
}

/// What the classifier weighs for each utterance, read at the end of its
/// window as the live path reads it, with its label.
fn read(embedder: &mut FastEmbedder, items: &[InContext]) -> Result<Vec<(Vec<f32>, bool)>> {
    let mut out = Vec::with_capacity(items.len());
    // In slices, so the sort by length inside each call stays cheap and a
    // failure says roughly where.
    for part in items.chunks(2048) {
        let texts: Vec<String> = part.iter().map(|l| l.text.clone()).collect();
        let parts: Vec<Vec<std::ops::Range<usize>>> =
            part.iter().map(|l| need::parts(&l.text, l.at)).collect();
        for (l, r) in part.iter().zip(embedder.read_parts(&texts, &parts)?) {
            let v = need::features(&r.parts);
            out.push((v.ok_or_else(|| eyre!("no word pieces read for {:?}", l.text))?, l.need));
        }
    }
    Ok(out)
}
