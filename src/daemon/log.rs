//! The service process's logger: journald under systemd, timestamped stderr otherwise.
//!
//! Under systemd, stderr is a stream to journald and `$JOURNAL_STREAM` names its
//! device and inode; then records go to journald natively (systemd-journal-logger)
//! with `SYSLOG_IDENTIFIER=NAME`, a `PRIORITY` per level (error 3, warn 4, info 5,
//! debug 6, trace 7) and every structured key-value of the record as a field
//! (`event = "heartbeat"` becomes `MYDAEMON_EVENT=heartbeat`, see [`FIELD_PREFIX`]).
//! Anywhere else each record is one line on stderr:
//! `2026-11-27T00:10:05.123Z NAME[PID]: info: message key=value`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::SystemTime;

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};

use crate::time::rfc3339;

/// Structured fields are logged with keys such as `mydaemon_event`; journald shows them
/// upper-cased (`MYDAEMON_EVENT`). Every key the daemon logs starts with this prefix.
pub const FIELD_PREFIX: &str = "mydaemon_";

/// Where the daemon's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Native journald protocol.
    Journal,
    /// Timestamped lines on stderr.
    Stderr,
}

/// The level for `-q` / `-v` counts: info by default, `-q` warnings, `-v` debug,
/// `-vv` trace.
pub fn level(quiet: bool, verbose: u8) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::Warn,
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the daemon logger for service `name`, journald when stderr is connected to
/// the journal, stderr lines otherwise. Returns the sink chosen. If a logger is already
/// installed (a library user set up their own), it is kept and only the level is set.
pub fn init(name: &str, level: LevelFilter) -> Sink {
    init_with_identifier(name, name, level)
}

/// [`init`], with `identifier` as `SYSLOG_IDENTIFIER` in the journal (exec mode marks
/// its own lines `mydaemon`: the service's name would pass them off as the command's).
/// Lines on stderr keep `name`.
pub fn init_with_identifier(name: &str, identifier: &str, level: LevelFilter) -> Sink {
    let sink = if systemd_journal_logger::connected_to_journal() {
        match systemd_journal_logger::JournalLog::new() {
            Ok(j) => {
                if j.with_syslog_identifier(identifier.to_owned())
                    .install()
                    .is_ok()
                {
                    log::set_max_level(level);
                }
                return Sink::Journal;
            }
            // journald's socket is missing (a container): the stream still works.
            Err(_) => Sink::Stderr,
        }
    } else {
        Sink::Stderr
    };
    let logger = StderrLogger {
        ident: format!("{name}[{}]", std::process::id()),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
    sink
}

/// One line per record on stderr, with a UTC timestamp, the identifier and PID.
struct StderrLogger {
    ident: String,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format_line(&self.ident, SystemTime::now(), r);
        // One write per line, so lines from concurrent writers do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// `TIMESTAMP IDENT: LEVEL: MESSAGE k=v ...\n`.
fn format_line(ident: &str, now: SystemTime, r: &Record<'_>) -> String {
    let mut line = format!(
        "{} {ident}: {}: {}",
        rfc3339(now),
        r.level().as_str().to_ascii_lowercase(),
        r.args()
    );
    let _ = r.key_values().visit(&mut KvLine(&mut line));
    line.push('\n');
    line
}

/// Appends ` key=value` for each structured field, without the common prefix.
struct KvLine<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for KvLine<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let k = key.as_str();
        let k = k.strip_prefix(FIELD_PREFIX).unwrap_or(k);
        let _ = write!(self.0, " {k}={value}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stderr_lines_have_time_ident_level_and_fields() {
        let kvs: &[(&str, u64)] = &[("mydaemon_count", 42)];
        let n = 42;
        let args = format_args!("heartbeat {n}");
        let record = Record::builder()
            .level(log::Level::Warn)
            .args(args)
            .key_values(&kvs)
            .build();
        let t = UNIX_EPOCH + Duration::from_millis(1_000_123);
        assert_eq!(
            format_line("svc[7]", t, &record),
            "1970-01-01T00:16:40.123Z svc[7]: warn: heartbeat 42 count=42\n"
        );
    }

    #[test]
    fn levels_follow_flags() {
        assert_eq!(level(false, 0), LevelFilter::Info);
        assert_eq!(level(true, 3), LevelFilter::Warn);
        assert_eq!(level(false, 1), LevelFilter::Debug);
        assert_eq!(level(false, 2), LevelFilter::Trace);
    }
}
