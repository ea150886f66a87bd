//! A full disk under the ledger: the console keeps following calls, says
//! delivery state cannot be saved, sends nothing automatically meanwhile,
//! and resumes once there is room. The disk is a small tmpfs this test
//! mounts (the test runs as root, as CI does); filling it is real ENOSPC.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::restart::Headless;
use crate::support::net::{sim_config, start};
use crate::support::{bundled_scripts, link_model};

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Self(at.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` with a file, leaving no room.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_auto_sending_and_says_so_until_there_is_room() {
    let tmp = tempfile::tempdir().unwrap();
    link_model(tmp.path());
    // Room for a ledger that grows for minutes on a loaded machine (redb
    // grows its file in regions), so freeing the filler always makes room.
    let disk = match Tmpfs::mount(&tmp.path().join("disk"), "32m") {
        Ok(d) => d,
        Err(e) => panic!("this test needs to mount a tmpfs (run as root, as CI does): {e}"),
    };
    let config = tmp.path().join("config/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("[ledger]\npath = \"{}\"\n", disk.0.join("ledger.redb").display()))
        .unwrap();

    let mut sc = sim_config(bundled_scripts());
    sc.speed = 15.0;
    sc.repeat = true;
    let sim = start(sc).await;
    let h = Headless::start(tmp.path(), &sim, "auto");
    let wait_for = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let mut recent: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = h.next(left).filter(|_| !left.is_zero());
            let Some(v) = v else { panic!("no {what} within 90 s; last lines:\n{}", recent.join("\n")) };
            if pred(&v) {
                return v;
            }
            if v["event"] != "transcript" {
                recent.push(v.to_string());
                if recent.len() > 15 {
                    recent.remove(0);
                }
            }
        }
    };
    wait_for("first push", &|v| v["event"] == "push" && v["ok"] == true);
    let filler = fill(&disk.0);
    let down = wait_for("ledger failure", &|v| v["event"] == "ledger" && v["ok"] == false);
    assert!(down["message"].as_str().unwrap().contains("cannot be saved"), "{down}");
    // While it cannot record, calls are still followed and nothing is sent.
    let mut transcripts = 0;
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        let Some(v) = h.next(Duration::from_millis(200)) else { continue };
        assert_ne!(v["event"], "decision", "sent while the ledger could not record: {v}");
        transcripts += usize::from(v["event"] == "transcript");
    }
    assert!(transcripts > 0, "live calls must keep flowing");
    std::fs::remove_file(filler).unwrap();
    wait_for("ledger recovery", &|v| v["event"] == "ledger" && v["ok"] == true);
    wait_for("a push after recovery", &|v| v["event"] == "push" && v["ok"] == true);
    h.terminate();
    sim.stop().await;
}
