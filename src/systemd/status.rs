//! A unit's state as `status` shows it, read from one `GetAll`, and the words for how its
//! main process ended.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys::{signal_name, ProcessEnd};
use crate::time::format_span;
use serde::Serialize;
use zbus::{OwnedVariant, Variant};

/// What `status` reports about a unit.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UnitStatus {
    /// Unit name.
    pub unit: String,
    /// `Description=`.
    pub description: String,
    /// loaded, not-found, bad-setting, error, masked.
    pub load_state: String,
    /// enabled, disabled, static, ... (empty when unknown).
    pub unit_file_state: String,
    /// active, inactive, failed, activating, deactivating, reloading.
    pub active_state: String,
    /// running, dead, exited, start, ...
    pub sub_state: String,
    /// Main process ID (0: none).
    pub main_pid: u32,
    /// When the unit entered its current active state (µs since the epoch; 0: never).
    pub since_usec: u64,
    /// [`Self::since_usec`] as `YYYY-MM-DD HH:MM:SS UTC`.
    pub since: Option<String>,
    /// Memory in use, bytes (None: not accounted).
    pub memory_bytes: Option<u64>,
    /// Tasks in the unit's cgroup (None: not accounted).
    pub tasks: Option<u64>,
    /// The service's own `STATUS=` text.
    pub status_text: String,
    /// How often systemd restarted it.
    pub n_restarts: u32,
    /// `Result` of the last run: success, exit-code, signal, timeout, watchdog, ...
    pub result: String,
    /// Watchdog interval, µs (0: none).
    pub watchdog_usec: u64,
    /// The unit file.
    pub fragment_path: String,
    /// How the main process last ended, in words (empty while it never ended).
    pub main_exit: String,
    /// Why the unit could not be loaded (`LoadError`'s message; empty when loaded).
    pub load_error: String,
}

fn get<'a>(props: &'a HashMap<String, OwnedVariant>, key: &str) -> Option<&'a Variant<'static>> {
    props.get(key).map(|v| &**v)
}

fn string(props: &HashMap<String, OwnedVariant>, key: &str) -> String {
    match get(props, key) {
        Some(Variant::Str(s)) => s.as_str().to_string(),
        Some(Variant::ObjectPath(p)) => p.as_str().to_string(),
        _ => String::new(),
    }
}

fn u64_of(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<u64> {
    match get(props, key)? {
        Variant::U64(v) => Some(*v),
        Variant::U32(v) => Some(u64::from(*v)),
        Variant::I32(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn i32_of(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<i32> {
    match get(props, key)? {
        Variant::I32(v) => Some(*v),
        _ => None,
    }
}

/// `u64::MAX` is systemd's "not set" for counters.
fn counter(v: Option<u64>) -> Option<u64> {
    v.filter(|&x| x != u64::MAX)
}

/// The path of the first `ExecStart=` command (for "executable not found: PATH").
fn exec_start_path(props: &HashMap<String, OwnedVariant>) -> String {
    if let Some(Variant::Array(a)) = get(props, "ExecStart") {
        if let Some(Variant::Structure(s)) = a.inner().first() {
            if let Some(Variant::Str(p)) = s.fields().first() {
                return p.as_str().to_string();
            }
        }
    }
    String::new()
}

/// The message of `LoadError` (a `(ss)`: error name, message).
fn load_error(props: &HashMap<String, OwnedVariant>) -> String {
    if let Some(Variant::Structure(st)) = get(props, "LoadError") {
        if let Some(Variant::Str(m)) = st.fields().get(1) {
            return m.as_str().to_string();
        }
    }
    String::new()
}

impl UnitStatus {
    /// Builds the status from a unit's `GetAll("")` map.
    pub fn from_properties(unit: &str, props: &HashMap<String, OwnedVariant>) -> Self {
        let active_state = string(props, "ActiveState");
        let since_key = match active_state.as_str() {
            "active" | "reloading" | "refreshing" => "ActiveEnterTimestamp",
            "activating" => "InactiveExitTimestamp",
            "deactivating" => "ActiveExitTimestamp",
            _ => "InactiveEnterTimestamp",
        };
        let since_usec = u64_of(props, since_key)
            .filter(|&t| t != 0)
            .or_else(|| u64_of(props, "StateChangeTimestamp"))
            .unwrap_or(0);
        let code = i32_of(props, "ExecMainCode").unwrap_or(0);
        let status = i32_of(props, "ExecMainStatus").unwrap_or(0);
        let result = string(props, "Result");
        let main_exit = if result == "success" {
            clean_exit_in_words(code, status)
        } else {
            None
        }
        .unwrap_or_else(|| exit_in_words(code, status, &exec_start_path(props)));
        UnitStatus {
            unit: unit.to_string(),
            description: string(props, "Description"),
            load_state: string(props, "LoadState"),
            unit_file_state: string(props, "UnitFileState"),
            active_state,
            sub_state: string(props, "SubState"),
            main_pid: u64_of(props, "MainPID").unwrap_or(0) as u32,
            since_usec,
            since: (since_usec > 0).then(|| format_utc(since_usec)),
            memory_bytes: counter(u64_of(props, "MemoryCurrent")),
            tasks: counter(u64_of(props, "TasksCurrent")),
            status_text: string(props, "StatusText"),
            n_restarts: u64_of(props, "NRestarts").unwrap_or(0) as u32,
            result,
            watchdog_usec: counter(u64_of(props, "WatchdogUSec")).unwrap_or(0),
            fragment_path: string(props, "FragmentPath"),
            main_exit,
            load_error: load_error(props),
        }
    }

    /// systemd knows no unit of this name.
    pub fn not_found(&self) -> bool {
        self.load_state == "not-found"
    }

    /// Running in the sense of `systemctl status`: active or reloading.
    pub fn running(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "reloading" | "refreshing"
        )
    }

    /// Stopped cleanly: inactive after a successful run (not merely never started).
    pub fn stopped(&self) -> bool {
        self.active_state == "inactive" && self.result == "success" && !self.main_exit.is_empty()
    }

    /// `status`'s LSB exit code: 0 running, 3 not running, 4 unknown unit.
    pub fn exit_code(&self) -> u8 {
        if self.not_found() {
            crate::error::exit::PRIVILEGE
        } else if self.running() {
            0
        } else {
            crate::error::exit::NOT_RUNNING_STATUS
        }
    }

    /// The human-readable report (without journal lines); `now` for "for how long".
    pub fn render(&self, now: SystemTime) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:>10}: {v}\n"));
        let dot = if self.running() {
            "●"
        } else if self.active_state == "failed" {
            "×"
        } else {
            "○"
        };
        if self.description.is_empty() || self.description == self.unit {
            out.push_str(&format!("{dot} {}\n", self.unit));
        } else {
            out.push_str(&format!("{dot} {} - {}\n", self.unit, self.description));
        }
        let mut loaded = self.load_state.clone();
        if !self.fragment_path.is_empty() {
            loaded.push_str(&format!(" ({}", self.fragment_path));
            if !self.unit_file_state.is_empty() {
                loaded.push_str(&format!("; {}", self.unit_file_state));
            }
            loaded.push(')');
        }
        line(&mut out, "Loaded", &loaded);
        if self.load_state != "loaded" && !self.load_error.is_empty() {
            line(&mut out, "Error", &self.load_error);
        }
        let mut active = format!("{} ({})", self.active_state, self.sub_state);
        if self.active_state == "failed" && !self.result.is_empty() {
            active.push_str(&format!(" — {}", result_in_words(&self.result)));
        } else if self.stopped() {
            active.push_str(" — stopped");
        }
        if let Some(since) = &self.since {
            let ago = now
                .duration_since(UNIX_EPOCH + Duration::from_micros(self.since_usec))
                .unwrap_or_default();
            active.push_str(&format!(" since {since}; {} ago", format_span(ago)));
        }
        line(&mut out, "Active", &active);
        if self.main_pid != 0 {
            line(&mut out, "Main PID", &self.main_pid.to_string());
        } else if !self.main_exit.is_empty() && !self.running() {
            line(&mut out, "Main exit", &self.main_exit);
        }
        // systemd keeps the last STATUS= after the process is gone: while it runs it is
        // the service's word; after a failure, its last word; after a clean stop, only
        // what it said on the way out ("stopping (SIGTERM)"), which "stopped" replaces.
        if !self.status_text.is_empty() {
            if self.running() || matches!(self.active_state.as_str(), "activating" | "deactivating")
            {
                line(&mut out, "Status", &format!("\"{}\"", self.status_text));
            } else if !self.stopped() {
                line(
                    &mut out,
                    "Status",
                    &format!("\"{}\" (its last, before it ended)", self.status_text),
                );
            }
        }
        if let Some(t) = self.tasks {
            line(&mut out, "Tasks", &t.to_string());
        }
        if let Some(m) = self.memory_bytes {
            line(&mut out, "Memory", &format_bytes(m));
        }
        if self.n_restarts > 0 {
            line(&mut out, "Restarts", &self.n_restarts.to_string());
        }
        if !self.result.is_empty() {
            line(&mut out, "Result", &self.result);
        }
        if self.watchdog_usec > 0 {
            line(
                &mut out,
                "Watchdog",
                &format_span(Duration::from_micros(self.watchdog_usec)),
            );
        }
        out
    }
}

/// A unit's `Result` in words.
pub fn result_in_words(result: &str) -> String {
    match result {
        "success" => "succeeded".into(),
        "exit-code" => "the main process exited with a failure code".into(),
        "signal" => "the main process was killed by a signal".into(),
        "core-dump" => "the main process dumped core".into(),
        "timeout" => "a timeout was reached".into(),
        "watchdog" => "the watchdog timed out (no WATCHDOG=1 in time)".into(),
        "start-limit-hit" => "it was restarted too often (start limit hit)".into(),
        "resources" => "systemd could not set up the resources to run it".into(),
        "protocol" => "the service broke the start-up protocol (e.g. exited before READY=1)".into(),
        "exec-condition" => "ExecCondition= said not to start".into(),
        "oom-kill" => "the kernel's OOM killer killed it".into(),
        other => other.to_string(),
    }
}

/// The main process's end in words, from `ExecMainCode` (a `si_code`: 1 exited, 2 killed,
/// 3 dumped) and `ExecMainStatus`; `path` is the `ExecStart=` binary.
pub fn exit_in_words(code: i32, status: i32, path: &str) -> String {
    match ProcessEnd::from_si_code(code, status) {
        Some(ProcessEnd::Exited(203)) => {
            format!("exited with status 203/EXEC: executable not found or not executable: {path}")
        }
        Some(ProcessEnd::Exited(s)) if s != 0 => match systemd_exit_name(s) {
            Some((name, meaning)) => format!("exited with status {s}/{name}: {meaning}"),
            None => ProcessEnd::Exited(s).describe(),
        },
        Some(end) => end.describe(),
        None => String::new(),
    }
}

/// A successful run's end in words (`Result=success`): exit status 0, or death by a
/// signal systemd counts as clean (SIGHUP, SIGINT, SIGTERM, SIGPIPE: what `stop` sends,
/// and a service that re-raises it to end "the same way" as its command).
pub fn clean_exit_in_words(code: i32, status: i32) -> Option<String> {
    match ProcessEnd::from_si_code(code, status).filter(|e| e.is_clean())? {
        ProcessEnd::Exited(_) => Some("exited cleanly (status 0)".into()),
        ProcessEnd::Killed { signal, .. } => {
            Some(format!("exited cleanly after {}", signal_name(signal)))
        }
    }
}

/// systemd's own exit codes for failures before the command runs (`systemd.exec(5)`).
fn systemd_exit_name(status: i32) -> Option<(&'static str, &'static str)> {
    Some(match status {
        200 => ("CHDIR", "cannot change to WorkingDirectory="),
        201 => ("NICE", "cannot set the nice level"),
        202 => ("FDS", "cannot close file descriptors"),
        204 => ("MEMORY", "out of memory"),
        206 => ("OOM_ADJUST", "cannot set the OOM score"),
        207 => ("SIGNAL_MASK", "cannot set the signal mask"),
        208 => ("STDIN", "cannot set up standard input"),
        209 => ("STDOUT", "cannot set up standard output"),
        210 => ("CHROOT", "cannot change root directory"),
        214 => ("SETSID", "cannot create a session"),
        216 => ("GROUP", "the group of Group= does not exist or cannot be set"),
        217 => ("USER", "the user of User= does not exist or cannot be set"),
        218 => ("CAPABILITIES", "cannot set capabilities"),
        225 => ("NAMESPACE", "cannot set up the file system namespace (a path in the unit's ReadWritePaths=/BindPaths= may be missing)"),
        226 => ("NAMESPACE", "cannot set up the file system namespace"),
        228 => ("SECCOMP", "cannot apply the system call filter"),
        233 => ("RUNTIME_DIRECTORY", "cannot create RuntimeDirectory="),
        236 => ("CHOWN", "cannot change ownership"),
        238 => ("STATE_DIRECTORY", "cannot create StateDirectory="),
        239 => ("CACHE_DIRECTORY", "cannot create CacheDirectory="),
        240 => ("LOGS_DIRECTORY", "cannot create LogsDirectory="),
        241 => ("CONFIGURATION_DIRECTORY", "cannot create ConfigurationDirectory="),
        242 => ("NUMA", "cannot set the NUMA policy"),
        243 => ("CREDENTIALS", "cannot set up credentials"),
        _ => return None,
    })
}

/// `2026-11-27 00:14:33 UTC` for µs since the epoch.
pub fn format_utc(usec: u64) -> String {
    let secs = usec / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `12.3M`, `512K`, `900B`.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if b < 1024 {
        return format!("{b}B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_words() {
        assert_eq!(exit_in_words(1, 1, "/x"), "exited with status 1");
        assert_eq!(exit_in_words(2, 9, "/x"), "was killed by signal SIGKILL");
        assert_eq!(
            exit_in_words(3, 6, "/x"),
            "was killed by signal SIGABRT (core dumped)"
        );
        assert_eq!(
            exit_in_words(1, 203, "/opt/gone"),
            "exited with status 203/EXEC: executable not found or not executable: /opt/gone"
        );
        assert!(exit_in_words(1, 217, "/x").starts_with("exited with status 217/USER"));
        assert_eq!(exit_in_words(0, 0, "/x"), "");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC = 951827696
        assert_eq!(format_utc(951_827_696_000_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(format_utc(1_795_737_600_000_000), "2026-11-27 00:00:00 UTC");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(format_bytes(900), "900B");
        assert_eq!(format_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5M");
    }

    fn props(pairs: &[(&str, OwnedVariant)]) -> HashMap<String, OwnedVariant> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.try_clone().unwrap()))
            .collect()
    }

    fn s(v: &str) -> OwnedVariant {
        OwnedVariant::from(zbus::Str::from(v.to_string()))
    }

    #[test]
    fn status_from_properties_and_rendered() {
        let start = 1_795_737_600_000_000u64; // 2026-11-27 00:00:00 UTC
        let p = props(&[
            ("Description", s("demo service")),
            ("LoadState", s("loaded")),
            ("UnitFileState", s("enabled")),
            ("ActiveState", s("active")),
            ("SubState", s("running")),
            ("MainPID", OwnedVariant::from(4242u32)),
            ("ActiveEnterTimestamp", OwnedVariant::from(start)),
            ("MemoryCurrent", OwnedVariant::from(3u64 * 1024 * 1024)),
            ("TasksCurrent", OwnedVariant::from(u64::MAX)),
            ("StatusText", s("serving 3 clients")),
            ("NRestarts", OwnedVariant::from(2u32)),
            ("Result", s("success")),
            ("WatchdogUSec", OwnedVariant::from(30_000_000u64)),
            ("FragmentPath", s("/etc/systemd/system/demo.service")),
            ("ExecMainCode", OwnedVariant::from(0i32)),
        ]);
        let st = UnitStatus::from_properties("demo.service", &p);
        assert_eq!(st.main_pid, 4242);
        assert_eq!(st.since.as_deref(), Some("2026-11-27 00:00:00 UTC"));
        assert_eq!(st.memory_bytes, Some(3 * 1024 * 1024));
        assert_eq!(st.tasks, None, "u64::MAX means not accounted");
        assert_eq!(st.exit_code(), 0);
        let now = UNIX_EPOCH + Duration::from_micros(start) + Duration::from_secs(3725);
        let text = st.render(now);
        for want in [
            "● demo.service - demo service",
            "Loaded: loaded (/etc/systemd/system/demo.service; enabled)",
            "Active: active (running) since 2026-11-27 00:00:00 UTC; 1h 2min ago",
            "Main PID: 4242",
            "Status: \"serving 3 clients\"",
            "Memory: 3.0M",
            "Restarts: 2",
            "Watchdog: 30s",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("Tasks"), "{text}");
    }

    #[test]
    fn a_clean_stop_reads_as_stopped() {
        let p = props(&[
            ("LoadState", s("loaded")),
            ("ActiveState", s("inactive")),
            ("SubState", s("dead")),
            ("StatusText", s("stopping (SIGTERM)")),
            ("Result", s("success")),
            ("ExecMainCode", OwnedVariant::from(2i32)),
            ("ExecMainStatus", OwnedVariant::from(15i32)),
        ]);
        let st = UnitStatus::from_properties("demo.service", &p);
        assert_eq!(st.main_exit, "exited cleanly after SIGTERM");
        assert!(st.stopped());
        let text = st.render(UNIX_EPOCH);
        assert!(
            text.contains("Active: inactive (dead) — stopped\n"),
            "{text}"
        );
        assert!(
            text.contains("Main exit: exited cleanly after SIGTERM\n"),
            "{text}"
        );
        assert!(!text.contains("stopping"), "{text}");
        assert!(!text.contains("killed"), "{text}");

        // Exit status 0 is clean too.
        assert_eq!(
            clean_exit_in_words(1, 0).as_deref(),
            Some("exited cleanly (status 0)")
        );
        // SIGKILL is never clean; a failed run keeps its words and its last status.
        assert_eq!(clean_exit_in_words(2, 9), None);
        let p = props(&[
            ("LoadState", s("loaded")),
            ("ActiveState", s("failed")),
            ("SubState", s("failed")),
            ("StatusText", s("cannot bind :80")),
            ("Result", s("signal")),
            ("ExecMainCode", OwnedVariant::from(2i32)),
            ("ExecMainStatus", OwnedVariant::from(15i32)),
        ]);
        let st = UnitStatus::from_properties("demo.service", &p);
        let text = st.render(UNIX_EPOCH);
        assert!(!st.stopped());
        assert!(
            text.contains("Main exit: was killed by signal SIGTERM\n"),
            "{text}"
        );
        assert!(
            text.contains("    Status: \"cannot bind :80\" (its last, before it ended)\n"),
            "{text}"
        );
        // Never started: no "stopped".
        let st = UnitStatus {
            load_state: "loaded".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            ..Default::default()
        };
        assert!(!st.render(UNIX_EPOCH).contains("stopped"));
    }

    #[test]
    fn exit_codes_follow_lsb() {
        let mut s = UnitStatus {
            load_state: "loaded".into(),
            active_state: "active".into(),
            ..Default::default()
        };
        assert_eq!(s.exit_code(), 0);
        s.active_state = "failed".into();
        assert_eq!(s.exit_code(), 3);
        s.active_state = "activating".into();
        assert_eq!(s.exit_code(), 3);
        s.load_state = "not-found".into();
        s.active_state = "inactive".into();
        assert_eq!(s.exit_code(), 4);
    }
}
