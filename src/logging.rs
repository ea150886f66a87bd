//! Logging to a file in the data dir, never to the terminal: the console
//! draws on the terminal, and stderr output would tear its screen.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts logging to `dir/agent-assist.log`. Keep the guard alive for the
/// whole run; dropping it flushes the log. Returns `None` (logging off) if
/// the directory cannot be created or the filter does not parse, since a
/// tool should not refuse to run for want of a log file.
pub fn init(dir: &Path, filter: &str) -> Option<WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    let filter = EnvFilter::try_new(filter).ok()?;
    let appender = tracing_appender::rolling::never(dir, "agent-assist.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init().ok()?;
    Some(guard)
}
