//! Calibration on call windows: the labelled calibration calls replayed
//! through the engine and the real KB, the window map fitted on their
//! searches, and `kb calibrate --calls` storing it beside the question map.

use agent_assist::bench::replay::{self, Options};
use agent_assist::kb::calibration::{Calibration, CallFit};
use agent_assist::kb::{IndexKind, Retriever};
use agent_assist::paths::AppPaths;

use crate::support::{console_process, installed_model, kb_options, link_model, repo};

/// A few of the calibration calls, copied to `dir`: both outcomes, and one
/// call about nothing in the KB.
fn some_calls(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for name in [
        "night-vision-blurry",
        "change-email",
        "firmware-stuck",
        "out-of-scope-job",
        "mystery-purchase",
        "small-talk-heavy",
        "where-is-order",
        "speaker-crackle",
    ] {
        let from = repo(&format!("tests/fixtures/calibration-calls/{name}.json"));
        std::fs::copy(from, dir.join(format!("{name}.json"))).unwrap();
    }
}

fn opts(calls: &std::path::Path) -> Options {
    Options {
        need_detection: true,
        every_search: false,
        auto: None,
        fusion: None,
        calls: Some(calls.to_path_buf()),
        dump: None,
        agreement: None,
        lead: None,
        all_ranks: false,
    }
}

#[test]
fn call_windows_are_labelled_and_fit_a_map_whose_thresholds_rise_with_precision() {
    let tmp = tempfile::tempdir().unwrap();
    let model = installed_model();
    let paths = AppPaths {
        model_dir: model.model_dir.clone(),
        ort_library: model.ort_library.clone(),
        ..AppPaths::under(tmp.path())
    };
    let calls = tmp.path().join("calls");
    some_calls(&calls);
    let (mut r, _) =
        Retriever::open(&kb_options(vec![repo("kb")], IndexKind::Flat), &paths, &mut |_| {}).unwrap();
    let report = replay::run_with(&mut r, &paths, &opts(&calls)).unwrap();
    assert_eq!(report.calls, 8);
    assert_eq!(report.windows.len() as u64, report.searches, "one window per search");
    let relevant = report.windows.iter().filter(|w| w.relevant).count();
    assert!(relevant > 0 && relevant < report.windows.len(), "both outcomes: {relevant}");
    assert!(report.windows.iter().any(|w| w.votes > 0), "a need comes back within a call");
    let fit = CallFit::fit(&report.windows, report.calls).expect("fits");
    assert_eq!((fit.samples, fit.calls), (report.windows.len(), 8));
    let (t60, t90) = (fit.threshold_for(0.6).unwrap(), fit.threshold_for(0.9).unwrap());
    assert!(t90 > t60, "{t60} {t90}");
    assert!(fit.agreement.is_finite() && fit.lead.is_finite());
}

#[test]
fn kb_calibrate_calls_stores_the_window_map_beside_the_question_map() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    let calls = tmp.path().join("calls");
    some_calls(&calls);
    let cache = tmp.path().join("cache");
    let out = console_process(tmp.path())
        .env("AGENT_ASSIST_CACHE_DIR", &cache)
        .args(["kb", "calibrate", "--calls", calls.to_str().unwrap(), "--precision", "0.6,0.8", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fit = &v["calibration"]["calls"];
    assert_eq!(fit["calls"], 8, "{v}");
    assert!(fit["agreement"].is_number() && fit["lead"].is_number(), "{v}");
    assert_eq!(v["targets"].as_array().unwrap().len(), 2);
    // Stored with the index; the sample KB's question map is kept beside it.
    let dir = std::path::PathBuf::from(v["dir"].as_str().unwrap());
    let stored = Calibration::load(&dir).expect("stored");
    assert!(stored.calls.is_some() && stored.samples > 100, "question map kept: {} samples", stored.samples);
    assert_eq!(stored.threshold_for(0.8), stored.calls.as_ref().unwrap().threshold_for(0.8));

    // Neither a query file nor calls: a clear error.
    let out = console_process(tmp.path())
        .env("AGENT_ASSIST_CACHE_DIR", &cache)
        .args(["kb", "calibrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--queries"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
