//! The tracing subscriber: text or JSON lines on stderr, filtered by `RUST_LOG` or `[log] level`.

use std::io::IsTerminal as _;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{Log, LogFormat};

pub(crate) fn init(log: &Log) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: in a file or a journal the escape codes are noise.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // Already installed (tests, or an embedding program): keep the existing one.
    let _ = result;
}
