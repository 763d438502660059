//! The options of `mydaemon run` ([`RunArgs`]), shared by `run`, the PID-file
//! backend's `start` and the generated unit's `ExecStart=`.

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::probe::parse_health;
use crate::daemon::{ExecOptions, Probe, Readiness};
use crate::error::{Error, Result};
use crate::time::parse_positive_duration;

/// Options of `run` (also taken by `start` for the PID-file backend).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Built-in workload: time between heartbeats (500ms, 10s, 1m, 1h30m) [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub interval: Option<Duration>,

    /// Built-in workload: configuration file re-read on reload (KEY=VALUE lines:
    /// INTERVAL=, MESSAGE=) [default: $CONFIGURATION_DIRECTORY/NAME.conf when set].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Exec mode: when the command counts as ready (and `start`, `install --now`
    /// return): immediate (as soon as it is started: before a server listens),
    /// tcp:HOST:PORT (a connect succeeds: use this for a server), unix:PATH, file:PATH,
    /// exec:CMD (exits 0), or notify (it sends READY=1 to the $NOTIFY_SOCKET it is given;
    /// its STATUS/WATCHDOG/... are relayed). In tcp:, an IP address such as 127.0.0.1 is
    /// best: a host name is looked up at every check, and mydaemon waits for DNS. With
    /// --listen, immediate is right: the socket accepts before the command starts
    /// [default: immediate].
    #[arg(long, value_name = "HOW", requires = "command")]
    pub ready: Option<Readiness>,

    /// Exec mode: stop the command and exit 1 if it is not ready within this time
    /// [default: 90s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "command")]
    pub ready_timeout: Option<Duration>,

    /// Exec mode with --ready notify: a reload (SIGHUP passed on) that the command has
    /// not confirmed with READY=1 within this time failed [default: 90s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "command")]
    pub reload_timeout: Option<Duration>,

    /// Exec mode: health probe, tcp:HOST:PORT (an IP address is best, see --ready),
    /// unix:PATH or exec:CMD; watchdog pings go out only while it passes, so systemd
    /// restarts a hung command.
    #[arg(long, value_name = "PROBE", value_parser = parse_health, requires = "command")]
    pub health: Option<Probe>,

    /// Exec mode: time between health probes [default: half the watchdog interval,
    /// at most 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "health")]
    pub health_interval: Option<Duration>,

    /// Exec mode: a health probe that takes longer fails [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "health")]
    pub health_timeout: Option<Duration>,

    /// Socket activation: an address the service listens on (repeatable): tcp:PORT
    /// or tcp:HOST:PORT (an IP address), tcp6:…, udp:…, udp6:…, unix:PATH, each with an
    /// optional ,name=NAME (its LISTEN_FDNAMES entry). Under systemd, NAME.socket binds
    /// them; the PID-file backend binds them itself and keeps them across restarts.
    /// The command gets them at fds 3, 4, … with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID.
    #[arg(long, value_name = "ADDR", value_parser = crate::unit::socket::parse_listen)]
    pub listen: Vec<crate::unit::socket::ListenAddr>,

    /// The command to run instead of the built-in workload.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}

/// Default heartbeat interval of the built-in workload.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl RunArgs {
    /// Refuses combinations `run` would refuse: the built-in workload's options with
    /// `-- CMD`.
    pub fn check(&self) -> Result<()> {
        if !self.command.is_empty() && (self.interval.is_some() || self.config.is_some()) {
            return Err(Error::usage(
                "--interval and --config belong to the built-in workload, not to `-- CMD`",
            ));
        }
        Ok(())
    }

    /// These options as `run` arguments again (for a launcher that starts
    /// `mydaemon run` itself, such as the PID-file backend): parsing the result gives
    /// back the same `RunArgs`. The command, if any, comes last after `--`.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        use crate::time::format_duration;
        let mut out: Vec<std::ffi::OsString> = Vec::new();
        let mut opt = |name: &str, value: std::ffi::OsString| {
            out.push(name.into());
            out.push(value);
        };
        if let Some(d) = self.interval {
            opt("--interval", format_duration(d).into());
        }
        if let Some(p) = &self.config {
            opt("--config", p.clone().into_os_string());
        }
        if let Some(r) = &self.ready {
            opt("--ready", r.to_string().into());
        }
        if let Some(d) = self.ready_timeout {
            opt("--ready-timeout", format_duration(d).into());
        }
        if let Some(d) = self.reload_timeout {
            opt("--reload-timeout", format_duration(d).into());
        }
        if let Some(h) = &self.health {
            opt("--health", h.to_string().into());
        }
        if let Some(d) = self.health_interval {
            opt("--health-interval", format_duration(d).into());
        }
        if let Some(d) = self.health_timeout {
            opt("--health-timeout", format_duration(d).into());
        }
        for l in &self.listen {
            opt("--listen", l.to_string().into());
        }
        if !self.command.is_empty() {
            out.push("--".into());
            out.extend(self.command.iter().map(Into::into));
        }
        out
    }

    /// The exec-mode options these arguments describe (`None` without a command).
    /// `watchdog` is the interval systemd expects pings within, if any.
    pub fn exec_options(&self, watchdog: Option<Duration>) -> Option<ExecOptions> {
        if self.command.is_empty() {
            return None;
        }
        let d = ExecOptions::default();
        let health_interval = self.health_interval.unwrap_or_else(|| {
            watchdog.map_or(d.health_interval, |w| (w / 2).min(d.health_interval))
        });
        Some(ExecOptions {
            command: self.command.clone(),
            ready: self.ready.clone().unwrap_or_default(),
            ready_timeout: self.ready_timeout.unwrap_or(d.ready_timeout),
            health: self.health.clone(),
            health_interval,
            health_timeout: self.health_timeout.unwrap_or(d.health_timeout),
            reload_timeout: self.reload_timeout.unwrap_or(d.reload_timeout),
            ..d
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn exec_options_follow_flags_and_watchdog() {
        let t = T::parse_from([
            "t",
            "--ready",
            "tcp:127.0.0.1:8080",
            "--health",
            "exec:true",
            "--",
            "srv",
            "-x",
        ]);
        let o = t.run.exec_options(Some(Duration::from_secs(4))).unwrap();
        assert_eq!(o.command, vec!["srv", "-x"]);
        assert_eq!(
            o.ready,
            Readiness::Probe(Probe::Tcp("127.0.0.1:8080".into()))
        );
        assert_eq!(o.health_interval, Duration::from_secs(2));
        let o = t.run.exec_options(None).unwrap();
        assert_eq!(o.health_interval, Duration::from_secs(10));
    }

    #[test]
    fn to_args_round_trips() {
        let cases: &[&[&str]] = &[
            &[],
            &["--interval", "1m30s", "--config", "/etc/x y.conf"],
            &[
                "--ready",
                "exec:test -e /x",
                "--ready-timeout",
                "500ms",
                "--health",
                "unix:/run/s",
                "--health-interval",
                "2s",
                "--health-timeout",
                "1s",
                "--reload-timeout",
                "2s",
                "--listen",
                "tcp:127.0.0.1:8080,name=web",
                "--listen",
                "unix:/run/x.sock",
                "--",
                "srv",
                "--flag",
                "a b",
            ],
            &["--ready", "notify", "--", "-x"],
        ];
        for case in cases {
            let parsed = T::try_parse_from(std::iter::once("t").chain(case.iter().copied()))
                .unwrap()
                .run;
            let again = T::try_parse_from(
                std::iter::once(std::ffi::OsString::from("t")).chain(parsed.to_args()),
            )
            .unwrap()
            .run;
            assert_eq!(format!("{again:?}"), format!("{parsed:?}"), "{case:?}");
        }
    }

    #[test]
    fn exec_flags_need_a_command() {
        assert!(T::try_parse_from(["t", "--ready", "notify"]).is_err());
        assert!(T::try_parse_from(["t", "--interval", "1s"])
            .unwrap()
            .run
            .exec_options(None)
            .is_none());
        assert!(T::try_parse_from(["t", "--interval", "0s"]).is_err());
    }
}
