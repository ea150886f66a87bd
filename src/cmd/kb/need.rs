//! `agent-assist kb need`: fits the need classifier on a labelled intent
//! set, picks its threshold on a validation slice, reports precision and
//! recall of "carries a need" on the held-out part, and writes it.

use std::path::Path;

use color_eyre::eyre::{Result, eyre};

use crate::kb::need::data::{self, Labelled};
use crate::kb::need::{self, NeedClassifier};
use crate::kb::{Embedder, FastEmbedder, ModelSpec};

/// Epochs of gradient descent and the L2 weight (measured: more epochs
/// change the held-out figures by less than 0.1 point).
const EPOCHS: usize = 400;
const L2: f32 = 1e-4;

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
    let embed = |e: &mut FastEmbedder, items: &[Labelled]| -> Result<Vec<(Vec<f32>, bool)>> {
        let texts: Vec<String> = items.iter().map(|l| l.text.clone()).collect();
        let flat = e.embed_many(&texts, &mut |_| {})?;
        let dim = e.dimension().max(1);
        Ok(flat.chunks(dim).map(<[f32]>::to_vec).zip(items.iter().map(|l| l.need)).collect())
    };
    let train = embed(&mut embedder, &set.train)?;
    let heldout = embed(&mut embedder, &set.heldout)?;
    // Every fifth training utterance chooses the threshold; the rest fit.
    let (mut fit_set, mut validation) = (Vec::new(), Vec::new());
    for (i, ex) in train.into_iter().enumerate() {
        if i % 5 == 4 { validation.push(ex) } else { fit_set.push(ex) }
    }
    let (weights, bias) = need::fit(&fit_set, EPOCHS, L2);
    let mut c = NeedClassifier {
        model_hash: embedder.fingerprint().to_string(),
        weights,
        bias,
        threshold: 0.5,
        trained_on: format!(
            "{} ({} utterances, {} generated spelled/number ones); threshold for need recall {recall} on a fifth held back",
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
    for kind in ["clinc", "spelled", "digits"] {
        let part: Vec<(Vec<f32>, bool)> = set
            .heldout
            .iter()
            .zip(&heldout)
            .filter(|(l, _)| l.kind == kind)
            .map(|(_, e)| e.clone())
            .collect();
        scores.push(c.score(&format!("heldout/{kind}"), &part));
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
