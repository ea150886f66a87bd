//! Architecture guard: the engine stays pure. It may use std, serde,
//! hdrhistogram and the crate's plain domain types; never a runtime, UI,
//! network or ML crate, never the clock.

use std::path::Path;

const FORBIDDEN: [&str; 12] = [
    "tokio",
    "ratatui",
    "crossterm",
    "reqwest",
    "tokio_tungstenite",
    "fastembed",
    "faiss",
    "axum",
    "crate::net",
    "crate::kb",
    "crate::runtime",
    "crate::ui",
];

fn engine_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.join("engine.rs")];
    // Submodules (`engine/foo/bar.rs`) are the engine too.
    let mut dirs = vec![root.join("engine")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn the_engine_imports_no_runtime_ui_network_or_ml_crate_and_reads_no_clock() {
    let mut offences = Vec::new();
    for f in engine_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let is_tests = f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tests"));
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in FORBIDDEN {
                let used = code.contains(&format!("use {name}")) || code.contains(&format!("{name}::"));
                if used {
                    offences.push(format!("{}:{}: uses {name}", f.display(), i + 1));
                }
            }
            // Tests may take a base instant; the engine itself gets time as input.
            if !is_tests && (code.contains("Instant::now") || code.contains("SystemTime::now")) {
                offences.push(format!("{}:{}: reads the clock", f.display(), i + 1));
            }
        }
    }
    assert!(engine_files().len() >= 7, "engine files not found");
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

/// Modules that must not reach into others: the dashboard does not import
/// the commands that start it, the knowledge-base worker does not speak the
/// engine's language, and the keymap (config) knows nothing of terminals.
#[test]
fn no_import_cycles_or_misplaced_translations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: [(&str, &[&str]); 4] = [
        ("app.rs", &["crate::cmd"]),
        ("kb/worker.rs", &["crate::engine"]),
        ("config/keymap.rs", &["crossterm"]),
        ("config.rs", &["crossterm"]),
    ];
    let mut offences = Vec::new();
    for (file, banned) in rules {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for b in banned {
                if code.contains(b) {
                    offences.push(format!("{file}:{}: uses {b}", i + 1));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
