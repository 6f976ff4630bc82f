//! Structured logs with `tracing`: human-readable in a terminal, JSON when
//! asked. `RUST_LOG` filters (default `info`). Payloads and secrets are never logged.

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Colored, one line per event.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (once; later calls are ignored), at
/// `default_level` unless `RUST_LOG` says otherwise.
pub fn init(format: Format, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Pretty => builder.try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
}
