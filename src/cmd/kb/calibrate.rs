//! `agent-assist kb calibrate`: evaluates a labelled query set, fits the
//! score→probability map, stores it with the index, and prints the
//! thresholds that reach the asked precisions.

use std::path::Path;

use color_eyre::eyre::{Result, eyre};
use serde::Serialize;

use crate::kb::Retriever;
use crate::kb::calibration::Calibration;
use crate::kb::eval::{self, LabelledQuery};

/// One asked precision and the threshold reaching it.
#[derive(Debug, Clone, Serialize)]
struct Target {
    precision: f64,
    /// `None` when no score is that likely to be right.
    threshold: Option<f32>,
    /// On the calibration set: share of pushes right at this threshold ...
    observed_precision: Option<f64>,
    /// ... and share of answerable queries pushed.
    answerable_pushed: f64,
}

pub fn run(
    r: &mut Retriever,
    queries: &[LabelledQuery],
    precisions: &[f64],
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let report = eval::evaluate(r, queries, 3)?;
    let samples: Vec<(f32, bool)> = report.per_query.iter().map(|q| (q.score, q.correct)).collect();
    let mut cal = Calibration::fit(&samples).ok_or_else(|| {
        eyre!("cannot calibrate: the queries need at least 4 lines, some answered right and some not")
    })?;
    cal.source_hash = r.kb.manifest.source_hash.clone();
    cal.model_hash = r.kb.manifest.model_hash.clone();
    cal.fusion = format!("{:?}", r.kb.fusion);
    cal.save(&r.kb.dir)?;
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(&cal)? + "\n")?;
    }
    let answerable = report.per_query.iter().filter(|q| q.answerable).count().max(1);
    let targets: Vec<Target> = precisions
        .iter()
        .map(|&p| {
            let threshold = cal.threshold_for(p);
            let pushed: Vec<_> =
                report.per_query.iter().filter(|q| threshold.is_some_and(|t| q.score >= t)).collect();
            let right = pushed.iter().filter(|q| q.correct).count();
            Target {
                precision: p,
                threshold,
                observed_precision: (!pushed.is_empty()).then(|| right as f64 / pushed.len() as f64),
                answerable_pushed: pushed.iter().filter(|q| q.answerable).count() as f64 / answerable as f64,
            }
        })
        .collect();
    r.calibration = Some(cal.clone());
    if json {
        let v = serde_json::json!({ "calibration": cal, "targets": targets, "dir": r.kb.dir });
        println!("{v}");
        return Ok(());
    }
    println!(
        "fitted on {} queries ({} answerable); top-1 {:.3}",
        cal.samples, report.answerable, report.top1
    );
    for h in &cal.holdout {
        println!("  held-out half: {:?} log-loss {:.4}  Brier {:.4}", h.method, h.log_loss, h.brier);
    }
    println!("kept {:?} (lower held-out log-loss), stored in {}", cal.method, r.kb.dir.display());
    println!("precision  threshold  observed  answerable pushed");
    for t in &targets {
        match (t.threshold, t.observed_precision) {
            (Some(th), obs) => println!(
                "  {:>5.2}     {:>7.3}    {:>6}    {:>5.1}%",
                t.precision,
                th,
                obs.map_or("-".into(), |o| format!("{o:.3}")),
                t.answerable_pushed * 100.0
            ),
            (None, _) => println!("  {:>5.2}     not reachable", t.precision),
        }
    }
    Ok(())
}
