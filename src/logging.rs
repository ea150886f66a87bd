//! Logging to a file in the data dir, never to the terminal: the console
//! draws on the terminal, and stderr output would tear its screen.
//!
//! `--log-level` sets this crate's level; libraries log at `warn` (ONNX
//! Runtime alone writes hundreds of KB of `INFO` per run otherwise). The
//! HTTP and WebSocket stacks are held at `warn` whatever the filter says:
//! at debug and trace they print request lines and headers, which carry
//! bearer tokens and the tutorial socket's `access_token`.

use std::path::Path;

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Targets that may print credentials below `warn`.
const CAPPED: [&str; 8] =
    ["hyper", "hyper_util", "reqwest", "h2", "tungstenite", "tokio_tungstenite", "rustls", "axum"];

/// The filter directives for `--log-level`: a bare level applies to this
/// crate with libraries at `warn`; anything else is taken as written.
pub fn directives(level: &str) -> String {
    let level = level.trim();
    match level.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "info" => format!("warn,agent_assist={level}"),
        _ => level.to_string(),
    }
}

/// Whether an event from `target` at `level` may be written at all.
pub fn allowed(target: &str, level: &Level) -> bool {
    let capped =
        CAPPED.iter().any(|c| target == *c || target.strip_prefix(c).is_some_and(|r| r.starts_with("::")));
    !capped || *level <= Level::WARN
}

/// Starts logging to `dir/agent-assist.log`. Keep the guard alive for the
/// whole run; dropping it flushes the log. Returns `None` (logging off) if
/// the directory cannot be created or the filter does not parse, since a
/// tool should not refuse to run for want of a log file.
pub fn init(dir: &Path, filter: &str) -> Option<WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    let filter = EnvFilter::try_new(directives(filter)).ok()?;
    let cap = filter_fn(|meta| allowed(meta.target(), meta.level()));
    let appender = tracing_appender::rolling::never(dir, "agent-assist.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let layer =
        tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter.and(cap));
    tracing_subscriber::registry().with(layer).try_init().ok()?;
    Some(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_this_crates_and_libraries_stay_at_warn() {
        assert_eq!(directives("trace"), "warn,agent_assist=trace");
        assert_eq!(directives("info"), "warn,agent_assist=info");
        assert_eq!(directives("error"), "error");
        assert_eq!(directives("agent_assist=debug,ort=info"), "agent_assist=debug,ort=info");
    }

    #[test]
    fn http_and_socket_stacks_never_log_below_warn() {
        assert!(!allowed("hyper_util::client::legacy::pool", &Level::TRACE));
        assert!(!allowed("tungstenite::protocol", &Level::DEBUG));
        assert!(!allowed("reqwest::connect", &Level::INFO));
        assert!(allowed("reqwest::connect", &Level::WARN));
        assert!(allowed("agent_assist::net", &Level::TRACE));
        assert!(allowed("hyperion", &Level::TRACE));
    }
}
