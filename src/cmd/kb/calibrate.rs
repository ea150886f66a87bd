//! `agent-assist kb calibrate`: evaluates a labelled query set, fits the
//! score→probability map, stores it with the index, and prints the
//! thresholds that reach the asked precisions.

use std::path::Path;

use color_eyre::eyre::{Result, eyre};
use serde::Serialize;

use crate::kb::Retriever;
use crate::kb::calibration::{Calibration, CallFit, Method};
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
    // A call-window fit of this index stays (`--calls` made it).
    cal.calls = r.calibration.as_ref().and_then(|c| c.calls.clone());
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
        print_json(&cal, &targets, &r.kb.dir);
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

/// `kb calibrate --calls DIR`: replays the labelled call scripts through the
/// engine on the loaded KB (simulated clock, default policy, need
/// detection as configured by default), fits the window map with the
/// agreement of successive searches, stores it with the index and prints
/// the thresholds, for a first-time and for a confirmed best article.
pub fn run_calls(
    r: &mut Retriever,
    paths: &crate::paths::AppPaths,
    dir: &Path,
    precisions: &[f64],
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let opts = crate::bench::replay::Options {
        need_detection: true,
        every_search: false,
        auto: None,
        fusion: None,
        calls: Some(dir.to_path_buf()),
        dump: None,
        agreement: None,
        lead: None,
        all_ranks: false,
    };
    let report = crate::bench::replay::run_with(r, paths, &opts)?;
    let windows = &report.windows;
    let fit = CallFit::fit(windows, report.calls).ok_or_else(|| {
        eyre!(
            "cannot calibrate: the calls made {} searches; at least 8 are needed, some of whose best \
             article the call expects and some not",
            windows.len()
        )
    })?;
    // Kept beside the single-question map, which the console shows; without
    // one, the window map (before credit) stands in for it.
    let mut cal = r.calibration.clone().unwrap_or_else(|| Calibration {
        method: Method::Platt,
        knots: Vec::new(),
        platt: fit.platt,
        samples: fit.samples,
        source_hash: String::new(),
        model_hash: String::new(),
        fusion: String::new(),
        holdout: Vec::new(),
        calls: None,
    });
    cal.calls = Some(fit.clone());
    cal.source_hash = r.kb.manifest.source_hash.clone();
    cal.model_hash = r.kb.manifest.model_hash.clone();
    cal.fusion = format!("{:?}", r.kb.fusion);
    cal.save(&r.kb.dir)?;
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(&cal)? + "\n")?;
    }
    // Window-level precision at each threshold, each window credited for
    // its votes and lead as the engine does.
    let targets: Vec<serde_json::Value> = precisions
        .iter()
        .map(|&p| {
            let t = fit.threshold_for(p);
            let passed: Vec<_> = windows
                .iter()
                .filter(|w| t.is_some_and(|t| w.score + fit.credit(w.votes, w.lead) >= t))
                .collect();
            let right = passed.iter().filter(|w| w.relevant).count();
            serde_json::json!({
                "precision": p,
                "threshold": t,
                "windows_passed": passed.len(),
                "observed_precision": (!passed.is_empty()).then(|| right as f64 / passed.len() as f64),
            })
        })
        .collect();
    r.calibration = Some(cal.clone());
    if json {
        print_json(&cal, &targets, &r.kb.dir);
        return Ok(());
    }
    let relevant = windows.iter().filter(|w| w.relevant).count();
    println!(
        "fitted on {} search windows of {} calls ({} with a relevant best article, {} whose best was best before)",
        windows.len(),
        report.calls,
        relevant,
        windows.iter().filter(|w| w.votes > 0).count()
    );
    for h in &fit.holdout {
        println!("  held-out half: {:?} log-loss {:.4}  Brier {:.4}", h.method, h.log_loss, h.brier);
    }
    println!(
        "kept {:?}: p = σ({:.3}·(score + credit) {:+.3}); credit {:.3} per earlier search with the same best \
         (policy `agreement_bonus`), {:.3} per unit of lead over the runner-up (`lead_weight`)",
        Method::PlattAgreement,
        fit.platt.0,
        fit.platt.1,
        fit.agreement,
        fit.lead
    );
    println!("stored in {}", r.kb.dir.display());
    println!("precision  auto threshold  windows passed  observed");
    for t in &targets {
        match t["threshold"].as_f64() {
            Some(th) => println!(
                "  {:>5.2}     {:>7.3}         {:>5}         {}",
                t["precision"].as_f64().unwrap_or_default(),
                th,
                t["windows_passed"],
                t["observed_precision"].as_f64().map_or("-".into(), |o| format!("{o:.3}"))
            ),
            None => println!("  {:>5.2}     not reachable", t["precision"].as_f64().unwrap_or_default()),
        }
    }
    Ok(())
}

/// `--json`: the stored calibration, the thresholds for the targets, and
/// where it was stored, as one line.
fn print_json(cal: &Calibration, targets: &impl Serialize, dir: &Path) {
    println!("{}", serde_json::json!({ "calibration": cal, "targets": targets, "dir": dir }));
}
