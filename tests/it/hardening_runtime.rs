//! Hardening of the whole pipeline: a call the engine ends for idleness is
//! dropped by the stream too, `bench e2e`'s driver stops at its deadline
//! whatever arrives, and secrets stay out of the log file and the audit log
//! even at `--log-level trace`.

use std::process::{Command, Stdio};
use std::time::Duration;

use agent_assist::bench::e2e::drive;
use agent_assist::engine::Mode;
use agent_assist::net::protocol::transcription_topic;
use agent_assist::runtime::{Options, Runtime};

use crate::pipeline::{config_for, test_paths};
use crate::support::installed_model;
use crate::support::net::{script, sim_config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_call_is_unfollowed_and_the_driver_stops_at_its_deadline() {
    // A customer who says one thing and then nothing for a minute.
    let call = script("quiet-1", &[("EXTERNAL", "my router keeps dropping"), ("EXTERNAL", "hello?")], 60_000);
    let sim = start(sim_config(vec![call])).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_for(&sim, Mode::Manual);
    config.policy.idle_timeout = Duration::from_millis(500);
    let mut rt = Runtime::start(&config, &test_paths(&tmp), Options::default()).await.unwrap();
    let topic = transcription_topic("quiet-1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    loop {
        let subscribed = sim.subscribed(&topic);
        seen |= subscribed;
        let idle_ended = rt.engine().conversation("quiet-1").is_some_and(|c| c.ended_at.is_some());
        if seen && idle_ended && !subscribed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "topic still subscribed: seen={seen}");
        let msg = rt.next().await;
        rt.handle(msg);
    }
    // The call itself is still playing: the stream dropped it for the engine.
    assert_eq!(sim.stats().conversations_ended, 0);

    // Nothing more will arrive for a minute: the driver still stops on time.
    let started = tokio::time::Instant::now();
    let finished = drive(&mut rt, &sim, 1, Duration::from_millis(700)).await;
    assert!(!finished);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    rt.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_or_the_audit_log_even_at_trace() {
    const SECRET: &str = "s3cret-Cl13nt-V4lue";
    for dialect in ["notifications", "tutorial"] {
        let tmp = tempfile::tempdir().unwrap();
        let model = installed_model();
        let model_home = tmp.path().join("data/models");
        std::fs::create_dir_all(&model_home).unwrap();
        std::os::unix::fs::symlink(&model.model_dir, model_home.join("all-MiniLM-L6-v2")).unwrap();

        let call = script("leak-1", &[("EXTERNAL", "I forgot my password and I am locked out")], 50);
        let mut config = sim_config(vec![call]);
        config.credentials = Some(("leak-client".into(), SECRET.into()));
        // Short-lived tokens, so refreshes happen during the run too.
        config.token_ttl = Duration::from_secs(2);
        config.repeat = true;
        config.speed = 10.0;
        let sim = start(config).await;
        let out = Command::new(env!("CARGO_BIN_EXE_agent-assist"))
            .env("AGENT_ASSIST_CONFIG_DIR", tmp.path().join("config"))
            .env("AGENT_ASSIST_DATA_DIR", tmp.path().join("data"))
            .env("AGENT_ASSIST_CACHE_DIR", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kb-cache"))
            .env("ORT_DYLIB_PATH", &model.ort_library)
            .env("GENESYS_API_BASE", &sim.base_url)
            .env("GENESYS_LOGIN_BASE", &sim.base_url)
            .env("GENESYS_CLIENT_ID", "leak-client")
            .env("GENESYS_CLIENT_SECRET", SECRET)
            .env_remove("GENESYS_ORG_DOMAIN")
            .args(["--log-level", "trace", "console", "--headless", "--mode", "auto"])
            .args(["--dialect", dialect, "--queue", &sim.queue_id, "--exit-after", "8s"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{dialect}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let log = std::fs::read_to_string(tmp.path().join("data/logs/agent-assist.log")).unwrap();
        let mut audit = String::new();
        for entry in std::fs::read_dir(tmp.path().join("data/audit")).unwrap() {
            audit.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        assert!(log.contains("runtime started"), "{dialect}: the log is written");
        assert!(audit.contains("\"transcript\""), "{dialect}: the run did some work");
        let tokens = sim.issued_tokens();
        assert!(!tokens.is_empty(), "{dialect}: no token was issued");
        for secret in tokens.iter().map(String::as_str).chain([SECRET]) {
            for (name, text) in [("log", &log), ("audit log", &audit), ("stdout", &stdout)] {
                assert!(!text.contains(secret), "{dialect}: a secret is in the {name}");
            }
        }
        // Library chatter stays at warn: no ONNX Runtime INFO lines.
        assert!(
            !log.lines().any(|l| l.contains(" INFO ") && l.contains(" ort")),
            "{dialect}: ort INFO lines"
        );
        sim.stop().await;
    }
}
