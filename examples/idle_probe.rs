//! How long work takes right after the machine sat idle: a CPU-only loop,
//! touching a 32 MiB buffer, and one search of the live retriever (embed,
//! dense + BM25, calibrated, top 3), each after idle gaps of the given
//! lengths (milliseconds), 15 rounds per gap, with the process's page
//! faults over each search.
//!
//! It separates the pipeline's own cost from the machine's: on the shared
//! virtual machines this project is measured on, memory left untouched for
//! a second or more is slow to touch again (with no page fault the guest
//! can see), so a search after a pause between utterances is several times
//! the same search back to back. See BENCHMARKS.md, "The pipeline against
//! its floor".
//!
//! ```sh
//! cargo run --release --example idle_probe -- 0 100 1000 3000
//! WARM=250 cargo run --release --example idle_probe -- 3000   # a tiny embed every 250 ms while idle
//! ```

use std::time::{Duration, Instant};

use agent_assist::kb::Retriever;
use agent_assist::paths::AppPaths;
use color_eyre::eyre::{Result, eyre};

const ROUNDS: usize = 15;
const QUERY: &str = "hi yes I was charged twice on my card for the same order last week and I would like \
    a refund of the second charge please it was the premium plan I think";

/// Minor and major page faults of this process so far.
fn faults() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let at = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    (at(7), at(9))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Arithmetic only: no memory beyond registers.
fn spin() -> Duration {
    let t = Instant::now();
    let mut x = 1u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(x);
    t.elapsed()
}

/// One read and write per cache line of `buf`.
fn touch(buf: &mut [u64]) -> Duration {
    let t = Instant::now();
    let mut x = 0u64;
    for i in (0..buf.len()).step_by(8) {
        x = x.wrapping_add(buf[i]);
        buf[i] = x;
    }
    std::hint::black_box(x);
    t.elapsed()
}

fn main() -> Result<()> {
    let gaps: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|e| eyre!("gap `{a}` (milliseconds): {e}")))
        .collect::<Result<_>>()?;
    let warm_every = std::env::var("WARM").ok().map(|w| w.parse::<u64>()).transpose()?.filter(|&w| w > 0);
    let paths = AppPaths::resolve()?;
    let opts = agent_assist::bench::sample_kb_options(&paths, None);
    let (mut retriever, _) = Retriever::open(&opts, &paths, &mut |_| {})?;
    retriever.query("warm up", 3)?;
    let mut buf = vec![1u64; 4 << 20];
    println!(
        "gap ms | cpu loop p50 | 32 MiB touch p50 | search p50 (min–max) | faults in searches (minor/major)"
    );
    for gap in gaps {
        let (mut cpu, mut mem, mut search) = (Vec::new(), Vec::new(), Vec::new());
        let mut fault_total = (0, 0);
        for _ in 0..ROUNDS {
            // The idle time is what is measured, not a wait for anything.
            std::thread::sleep(Duration::from_millis(gap));
            cpu.push(ms(spin()));
            std::thread::sleep(Duration::from_millis(gap));
            mem.push(ms(touch(&mut buf)));
            let mut left = gap;
            while left > 0 {
                let step = warm_every.unwrap_or(left).min(left);
                std::thread::sleep(Duration::from_millis(step));
                left -= step;
                if left > 0 && warm_every.is_some() {
                    retriever.embed_texts(&["ok".to_string()])?;
                }
            }
            let before = faults();
            let t = Instant::now();
            retriever.query(QUERY, 3)?;
            search.push(ms(t.elapsed()));
            let after = faults();
            fault_total = (fault_total.0 + after.0 - before.0, fault_total.1 + after.1 - before.1);
        }
        let (lo, hi) =
            (search.iter().copied().fold(f64::MAX, f64::min), search.iter().copied().fold(0.0, f64::max));
        println!(
            "{gap:>6} | {:>9.1} ms | {:>13.1} ms | {:>7.1} ms ({lo:.1}–{hi:.1}) | {}/{}",
            median(cpu),
            median(mem),
            median(search),
            fault_total.0,
            fault_total.1
        );
    }
    Ok(())
}
