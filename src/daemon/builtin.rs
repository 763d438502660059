//! The built-in workload: a heartbeat, the template a user replaces with real work.
//!
//! Every `--interval` it logs a heartbeat (fields `MYDAEMON_EVENT=heartbeat`,
//! `MYDAEMON_COUNT=n`), counts it in `STATUS=` ("heartbeat 42, up 7m") and, when
//! systemd provides `$STATE_DIRECTORY`, rewrites `state.json` there atomically (temp
//! file + rename). On SIGHUP it re-reads its configuration file, `KEY=VALUE` lines:
//! `INTERVAL=30s` and `MESSAGE=text` (by default `$CONFIGURATION_DIRECTORY/NAME.conf`
//! when systemd provides that directory; `--config` names another).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::service::{Context, Service, ServiceResult};
use super::signals::Received;
use crate::time::{format_duration, format_span, parse_positive_duration};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Service name.
    pub name: String,
    /// PID of the process that wrote it.
    pub pid: u32,
    /// Heartbeats in this run.
    pub heartbeats: u64,
    /// Heartbeats over every run that kept this state directory.
    pub total_heartbeats: u64,
    /// Runs that started with this state directory (this one included).
    pub runs: u64,
    /// Reloads in this run.
    pub reloads: u64,
    /// Heartbeat interval in milliseconds.
    pub interval_ms: u64,
    /// When this run started (seconds since the epoch).
    pub started_unix: u64,
    /// When the file was written (seconds since the epoch).
    pub updated_unix: u64,
    /// Whether the run ended cleanly (written on stop).
    pub stopped: bool,
}

/// The configuration file's settings; what is absent keeps the command-line value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Config {
    /// `INTERVAL=`: heartbeat interval.
    pub interval: Option<Duration>,
    /// `MESSAGE=`: text added to each heartbeat line.
    pub message: Option<String>,
}

impl Config {
    /// Parses `KEY=VALUE` lines; `#` starts a comment line; values may be quoted.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut c = Config::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected KEY=VALUE", i + 1))?;
            let value = unquote(value.trim());
            match key.trim() {
                "INTERVAL" => {
                    c.interval = Some(
                        parse_positive_duration(value)
                            .map_err(|e| format!("line {}: {e}", i + 1))?,
                    )
                }
                "MESSAGE" => c.message = Some(value.to_owned()),
                other => return Err(format!("line {}: unknown key {other:?}", i + 1)),
            }
        }
        Ok(c)
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// The heartbeat service.
#[derive(Debug)]
pub struct Heartbeat {
    default_interval: Duration,
    interval: Duration,
    message: String,
    config_path: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    state: State,
    next: Option<Instant>,
}

impl Heartbeat {
    /// A heartbeat every `interval`, configured from `config_path` (if it exists) and
    /// keeping its state in `state_dir` (if given).
    pub fn new(
        name: &str,
        interval: Duration,
        config_path: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> Heartbeat {
        Heartbeat {
            default_interval: interval,
            interval,
            message: String::new(),
            config_path,
            state_dir,
            state: State {
                name: name.to_owned(),
                pid: std::process::id(),
                started_unix: unix_now(),
                ..State::default()
            },
            next: None,
        }
    }

    /// Like [`Heartbeat::new`], with the paths systemd provides: the config file
    /// `$CONFIGURATION_DIRECTORY/NAME.conf` unless `config` is given, and the first
    /// directory of `$STATE_DIRECTORY`.
    pub fn from_env(name: &str, interval: Duration, config: Option<PathBuf>) -> Heartbeat {
        let config = config.or_else(|| {
            first_dir("CONFIGURATION_DIRECTORY").map(|d| d.join(format!("{name}.conf")))
        });
        Heartbeat::new(name, interval, config, first_dir("STATE_DIRECTORY"))
    }

    /// The state as last written.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Reads the configuration file; a missing file means defaults.
    ///
    /// Opened `O_NONBLOCK` and checked to be a regular file before it is read: a FIFO
    /// (or a device) named by `--config` is an error, never an `open(2)` that blocks
    /// with SIGTERM pending. (Symlinks are followed: the path is the administrator's.)
    fn load_config(&mut self) -> Result<(), String> {
        let Some(path) = &self.config_path else {
            return Ok(());
        };
        let config = match read_config(path) {
            Ok(text) => Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!(
                    "no configuration file at {}; using defaults",
                    path.display()
                );
                Config::default()
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        self.interval = config.interval.unwrap_or(self.default_interval);
        self.message = config.message.unwrap_or_default();
        log::info!(
            mydaemon_event = "config", mydaemon_config = path.display().to_string().as_str();
            "configuration {}: interval {}, message {:?}",
            path.display(),
            format_duration(self.interval),
            self.message
        );
        Ok(())
    }

    /// Saves the state; `durable` (start, reload, stop) also syncs it to disk, which
    /// the heartbeats skip: losing the last few counts to a crash is fine, a sync on
    /// every beat is not.
    fn write_state(&mut self, durable: bool) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        self.state.updated_unix = unix_now();
        self.state.interval_ms = self.interval.as_millis() as u64;
        if let Err(e) = write_atomically(dir, STATE_FILE, &self.state, durable) {
            log::warn!("cannot write the state file in {}: {e}", dir.display());
        }
    }

    fn status_line(&self, ctx: &Context) -> String {
        format!(
            "heartbeat {}, up {}",
            self.state.heartbeats,
            format_span(ctx.uptime())
        )
    }

    fn schedule(&mut self, ctx: &mut Context, from: Instant) {
        let next = from + self.interval;
        self.next = Some(next);
        ctx.wake_at(next);
    }
}

/// Reads a configuration file without ever blocking in `open(2)`; refuses anything
/// but a regular file.
fn read_config(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "a device"
        };
        return Err(std::io::Error::other(format!("{what}, not a regular file")));
    }
    let mut text = String::new();
    f.by_ref().take(1 << 20).read_to_string(&mut text)?;
    Ok(text)
}

impl Service for Heartbeat {
    fn start(&mut self, ctx: &mut Context) -> ServiceResult {
        self.load_config()?;
        if let Some(dir) = &self.state_dir {
            match std::fs::read(dir.join(STATE_FILE)) {
                Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                    Ok(prev) => {
                        log::info!(
                            "previous run (pid {}): {} heartbeats, {}",
                            prev.pid,
                            prev.heartbeats,
                            if prev.stopped {
                                "stopped cleanly"
                            } else {
                                "did not stop cleanly"
                            }
                        );
                        self.state.total_heartbeats = prev.total_heartbeats;
                        self.state.runs = prev.runs;
                    }
                    Err(e) => log::warn!("ignoring an unreadable state file: {e}"),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("cannot read the state file: {e}"),
            }
        }
        self.state.runs += 1;
        self.write_state(true);
        self.schedule(ctx, Instant::now());
        ctx.set_status(format!(
            "heartbeat 0, every {}",
            format_duration(self.interval)
        ));
        ctx.ready();
        Ok(())
    }

    fn run(&mut self, ctx: &mut Context) -> ServiceResult {
        let now = Instant::now();
        let Some(next) = self.next else {
            return Ok(());
        };
        if next > now + super::runner::SLACK {
            ctx.wake_at(next);
            return Ok(());
        }
        self.state.heartbeats += 1;
        self.state.total_heartbeats += 1;
        let n = self.state.heartbeats;
        log::info!(mydaemon_event = "heartbeat", mydaemon_count = n; "heartbeat {n}{}{}",
            if self.message.is_empty() { "" } else { ": " }, self.message);
        self.write_state(false);
        ctx.set_status(self.status_line(ctx));
        // Keep the cadence (no drift) unless far behind (suspend, a stall).
        let base = if now.duration_since(next) > self.interval {
            now
        } else {
            next
        };
        self.schedule(ctx, base);
        Ok(())
    }

    fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
        let before = self.interval;
        self.load_config()?;
        self.state.reloads += 1;
        self.write_state(true);
        if self.interval != before {
            self.schedule(ctx, Instant::now());
        } else if let Some(next) = self.next {
            ctx.wake_at(next);
        }
        ctx.set_status(self.status_line(ctx));
        Ok(())
    }

    fn stop(&mut self, ctx: &mut Context, _signal: Received) -> ServiceResult {
        self.state.stopped = true;
        self.write_state(true);
        log::info!(mydaemon_event = "stopped", mydaemon_count = self.state.heartbeats;
            "stopped after {} heartbeats", self.state.heartbeats);
        ctx.exit(super::service::Exit::Code(0));
        Ok(())
    }

    fn signal(&mut self, ctx: &mut Context, signal: Received) -> ServiceResult {
        log::info!("received {}: {}", signal.signal, self.status_line(ctx));
        Ok(())
    }
}

/// The first directory of a colon-separated list in `var` (systemd's
/// `$STATE_DIRECTORY` and friends), if set and not empty.
fn first_dir(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var)?;
    let s = v.to_str()?;
    s.split(':').find(|p| !p.is_empty()).map(PathBuf::from)
}

/// Writes `value` as JSON to `dir/name` in one write, through a temp file and a
/// rename, so a reader sees the old file or the new one, never half of one; `durable`
/// syncs it to disk too (see [`crate::install::replace_file`]).
pub fn write_atomically<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable: bool,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    crate::install::replace_file(dir, name, &bytes, 0o600, durable)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_keys_comments_and_quotes() {
        let c = Config::parse("# comment\nINTERVAL = 30s\nMESSAGE=\"hello world\"\n\n").unwrap();
        assert_eq!(c.interval, Some(Duration::from_secs(30)));
        assert_eq!(c.message.as_deref(), Some("hello world"));
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn config_errors_name_the_line() {
        assert!(Config::parse("A=1").unwrap_err().contains("line 1"));
        assert!(Config::parse("\nINTERVAL=0s")
            .unwrap_err()
            .contains("line 2"));
        assert!(Config::parse("INTERVAL").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn state_is_written_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = State {
            name: "x".into(),
            heartbeats: 3,
            ..State::default()
        };
        write_atomically(dir.path(), STATE_FILE, &s, false).unwrap();
        write_atomically(dir.path(), STATE_FILE, &s, false).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![STATE_FILE], "temp files left behind");
        let back: State =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn reload_reads_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("hb.conf");
        let mut hb = Heartbeat::new("hb", Duration::from_secs(10), Some(conf.clone()), None);
        hb.load_config().unwrap();
        assert_eq!(hb.interval, Duration::from_secs(10));
        std::fs::write(&conf, "INTERVAL=2s\nMESSAGE=hi\n").unwrap();
        hb.load_config().unwrap();
        assert_eq!(
            (hb.interval, hb.message.as_str()),
            (Duration::from_secs(2), "hi")
        );
        std::fs::write(&conf, "MESSAGE=only\n").unwrap();
        hb.load_config().unwrap();
        assert_eq!(hb.interval, Duration::from_secs(10), "back to the default");
        std::fs::write(&conf, "INTERVAL=soon\n").unwrap();
        assert!(hb.load_config().is_err());
    }
}
