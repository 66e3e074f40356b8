//! The live world: the real clock, files and SQLite's default VFS behind [`LiveEnv`], and tokio
//! drivers that run the core's steps on real timers — the host daemon ([`host`]), the
//! agent-runner process ([`agent`]), a child-process container runtime ([`process_runtime`]) and
//! the live channel adapters ([`channels`]). Nothing outside this module touches the real world.

pub mod agent;
pub mod agent_lock;
pub mod channels;
pub mod env;
pub mod host;
pub mod process_runtime;

pub use env::{LiveEnv, ManualEnv};

/// Logs to stderr through `tracing`, filtered by `RUST_LOG`, else by `default_filter` (`info`
/// for daemons; `warn` for `clawsim chat`, whose terminal belongs to the conversation).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
