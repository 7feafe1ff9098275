//! Logs of the examples that run many peers in one process (`demo`, `viz`).
//!
//! The one-peer-per-process examples (`node`, `chat`) set up theirs in `process.rs`, with a
//! default level of their own and colours only on a terminal.

/// Sends `tracing` logs to stderr, filtered by `RUST_LOG` (errors only when it is unset).
pub(crate) fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
}
