//! Logging setup: plain lines on stderr for the CLI verbs.
//!
//! The service process (`mydaemon run`) sets up its own logger in `crate::daemon`
//! (journald when under systemd, timestamped stderr otherwise).

use log::{LevelFilter, Log, Metadata, Record};

struct CliLogger;

impl Log for CliLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "mydaemon: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

static CLI_LOGGER: CliLogger = CliLogger;

/// Installs the CLI logger: warnings by default, `-v` info, `-vv` debug, `-q` errors.
pub fn init_cli(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::Error,
        (false, 0) => LevelFilter::Warn,
        (false, 1) => LevelFilter::Info,
        (false, 2) => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    if log::set_logger(&CLI_LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
