//! How long the ledger's durable commit takes at the pace of a call's
//! searches (one commit every 100 ms), and whether keeping a core busy
//! while it waits for the disk shortens it: on these virtual machines the
//! first flush after a pause is slow to answer, and was measured faster
//! with both cores busy (BENCHMARKS.md, "The record stage").
//!
//! Modes, interleaved round by round so each sees the same machine:
//! - `plain`: a redb commit of a 9.5 KB value, as the ledger writes it;
//! - `spin`: the same with a second thread spinning until the commit returns;
//! - `raw`: a 9.5 KB `pwrite` and `fdatasync` of a plain file, for scale.
//!
//! ```sh
//! cargo run --release --example commit_probe -- 200   # rounds
//! ```

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use redb::{Database, Durability, TableDefinition};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("probe");
const GAP: Duration = Duration::from_millis(100);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn commit(db: &Database, value: &[u8], round: usize) -> Result<()> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut t = tx.open_table(TABLE)?;
        // A handful of calls, each rewritten in turn, as the ledger does.
        t.insert(format!("call-{}", round % 8).as_str(), value)?;
    }
    tx.commit()?;
    Ok(())
}

/// Runs `f` with another thread spinning until it returns.
fn spinning<T>(f: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let spinner = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    let out = f();
    done.store(true, Ordering::Relaxed);
    let _ = spinner.join();
    out
}

fn main() -> Result<()> {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let dir = tempfile::Builder::new().prefix("commit-probe").tempdir_in(".")?;
    let db = Database::create(dir.path().join("probe.redb"))?;
    let raw = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.path().join("raw"))?;
    let value = vec![7u8; 9_500];
    let (mut plain, mut spin, mut flat) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // The pace is what is measured against, not a wait for anything.
        std::thread::sleep(GAP);
        let t = Instant::now();
        commit(&db, &value, round)?;
        plain.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(GAP);
        let t = Instant::now();
        spinning(|| commit(&db, &value, round))?;
        spin.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(GAP);
        let t = Instant::now();
        raw.write_all_at(&value, ((round % 8) * 16_384) as u64)?;
        raw.sync_data()?;
        flat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "rounds {rounds}: redb commit p50 {:.3} ms, with a core spinning {:.3} ms, raw pwrite+fdatasync {:.3} ms",
        median(plain),
        median(spin),
        median(flat)
    );
    Ok(())
}
