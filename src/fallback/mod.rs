//! Without systemd: daemonize with a locked PID file, supervise, and the init.d script.
//!
//! The control verbs of the PID-file backend live here; `src/cli/` only dispatches.
//! - `start` ([`start`]): the launcher checks the PID file, opens the log, and
//!   `daemonize`s. The daemon process takes the PID file
//!   (`pidfile`) and `supervise`s `mydaemon run …`, the same service process
//!   systemd would run, speaking the notify protocol to it. The launcher exits 0 once
//!   the service sent `READY=1`, or prints the daemon's own error and exits 1.
//! - `stop`, `reload`: the lock names the daemon; a [`PidFd`] signals exactly
//!   that process. `stop` waits for it to exit (SIGKILL to its process group after
//!   `--timeout`) and leaves no PID file behind.
//! - `status`: the lock decides (0 running, 1 dead with a stale PID file, 3 stopped).
//! - `logs`: `logfile` tails and follows `NAME.log`.
//! - `install --sysv`: `sysv` writes the LSB init script.

pub(crate) mod daemonize;
pub(crate) mod inplace;
pub(crate) mod logfile;
pub mod paths;
pub(crate) mod pidfile;
mod service_manager;
pub(crate) mod since;
pub(crate) mod supervise;
pub(crate) mod sysv;

use std::ffi::OsString;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgid, getpid, Pid};
use serde_json::json;

pub use self::service_manager::PidfileManager;

use self::daemonize::{daemonize, Report};
use self::paths::{PathArgs, Paths};
use self::pidfile::{Acquired, PidFile, State};
use self::supervise::{Policy, Published, Spec};
use crate::backend::Target;
use crate::daemon::options::RunArgs;
use crate::daemon::probe::{Probe, Readiness};
use crate::error::{exit, Error, Result};
use crate::sys::PidFd;
use crate::time::{format_duration, format_span, parse_duration, rfc3339};
use crate::unit::command::absolute;

/// How long `stop` waits after SIGTERM before SIGKILL, by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start` waits for readiness, by default (systemd's `TimeoutStartSec=`).
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `stop` waits for the process group after SIGKILL.
/// How long `reload` waits for the service's answer, by default: longer than the
/// service's own reload timeout, after which it reports a failure itself.
pub const DEFAULT_RELOAD_WAIT: Duration = Duration::from_secs(100);
/// How long `stop` waits for the process group after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The watchdog given to a service with `--health` when `--watchdog-sec` is not set.
pub const DEFAULT_HEALTH_WATCHDOG: Duration = Duration::from_secs(30);

/// Options of the control verbs that only the PID-file backend uses.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "PID-file backend")]
pub struct PidfileArgs {
    /// PID file and log directory.
    #[command(flatten)]
    pub paths: PathArgs,
    /// PID-file backend only: how long `stop` waits after SIGTERM before it kills the
    /// service's process group [default: 10s]; how long `start` waits for readiness
    /// [default: 90s]; how long `reload` waits for the service to reload [default: 100s].
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_positive_duration)]
    pub timeout: Option<Duration>,
}

/// Supervision options of `start`/`restart` (PID-file backend only; systemd takes
/// them from the unit).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "PID-file backend")]
pub struct SuperviseArgs {
    /// PID-file backend only: restarts after failures (within a minute) before giving
    /// up; 0 never restarts.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub restart_burst: u32,
    /// PID-file backend only: delay before the first restart, doubling with each
    /// further one (at most 30s).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub restart_sec: Duration,
    /// PID-file backend only: restart the service when it sends no WATCHDOG=1 for this
    /// long (0 disables) [default: 30s with --health, else off].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub watchdog_sec: Option<Duration>,
}

impl Default for SuperviseArgs {
    fn default() -> Self {
        SuperviseArgs {
            restart_burst: 5,
            restart_sec: Duration::from_millis(100),
            watchdog_sec: None,
        }
    }
}

impl SuperviseArgs {
    /// The supervision policy for a service run with `run`.
    pub fn policy(&self, run: &RunArgs) -> Policy {
        let watchdog = match self.watchdog_sec {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => run.health.as_ref().map(|_| DEFAULT_HEALTH_WATCHDOG),
        };
        Policy {
            restart_burst: self.restart_burst,
            restart_sec: self.restart_sec,
            watchdog,
            ..Policy::default()
        }
    }
}

fn say(g: &Target, text: impl AsRef<str>) {
    if !g.quiet {
        println!("{}", text.as_ref());
    }
}

fn absolute_probe(opt: &str, p: &Probe) -> Result<Probe> {
    Ok(match p {
        Probe::Unix(path) => Probe::Unix(absolute(opt, path)?),
        Probe::File(path) => Probe::File(absolute(opt, path)?),
        other => other.clone(),
    })
}

/// The arguments of `mydaemon run` that do what `run` describes, for the daemon (which
/// runs in `/`: relative paths are made absolute, `CMD` is resolved now so that a
/// missing program is reported before anything starts). The options themselves are
/// written back by [`RunArgs::to_args`], which round-trips through clap.
pub fn run_argv(g: &Target, a: &RunArgs) -> Result<Vec<OsString>> {
    let mut a = a.clone();
    if let Some(c) = &a.config {
        a.config = Some(absolute("--config", c)?);
    }
    if let Some(Readiness::Probe(p)) = &a.ready {
        a.ready = Some(Readiness::Probe(absolute_probe("--ready", p)?));
    }
    if let Some(p) = &a.health {
        a.health = Some(absolute_probe("--health", p)?);
    }
    if let Some(first) = a.command.first_mut() {
        *first = crate::unit::command::resolve_program(first)?;
    }
    // `-q` quiets the launcher's terminal output only; `-v` makes the daemon's log
    // more detailed too.
    let mut v: Vec<OsString> = vec!["--name".into(), g.name.clone().into()];
    for _ in 0..g.verbose {
        v.push("-v".into());
    }
    v.push("run".into());
    v.extend(a.to_args());
    Ok(v)
}

/// What the log gained since `offset`: its last lines, indented, for error messages.
fn log_excerpt(paths: &Paths, offset: u64) -> String {
    let lines = logfile::since(paths, offset, 15).unwrap_or_default();
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!("\n  log ({}):", paths.log_file.display());
    for l in lines {
        out.push_str("\n    ");
        out.push_str(&l);
    }
    out
}

/// `start`: daemonize the service and wait until it is ready.
pub fn start(g: &Target, run: &RunArgs, pf: &PidfileArgs, sup: &SuperviseArgs) -> Result<u8> {
    run.check()?;
    let paths = Paths::resolve(&g.name, &pf.paths)?;
    let args = run_argv(g, run)?;
    let program = std::env::current_exe()
        .map_err(|e| Error::generic(format!("cannot find this program's own path: {e}")))?;
    let timeout = pf.timeout.unwrap_or(DEFAULT_START_TIMEOUT);
    let pidfile = PidFile::open(&paths, true)?;
    match pidfile.state()? {
        State::Running { pid, starting, .. } => {
            return already_running(g, &pidfile, pid, starting, timeout)
        }
        State::Elsewhere => return Err(pidfile.elsewhere()),
        State::Stale { .. } => {
            // A crashed daemon's service must not run beside the new one.
            let ended = end_orphans(g, &pidfile, Duration::from_secs(1))?;
            if !ended.is_empty() {
                say(
                    g,
                    format!(
                        "ended {} process(es) the dead {} left: {}",
                        ended.len(),
                        g.name,
                        join_pids(&ended)
                    ),
                );
            }
        }
        State::Absent => {}
    }
    let log = paths::open_log(&paths)?;
    let log_start = nix::sys::stat::fstat(&log)
        .map(|s| s.st_size.max(0) as u64)
        .unwrap_or(0);
    let spec = Spec {
        name: g.name.to_string(),
        program,
        args,
        listen: run.listen.clone(),
    };
    let policy = sup.policy(run);
    let keep = [pidfile.dir_fd()];
    let report = daemonize(log, &keep, timeout, move |mut reporter| {
        let me = getpid();
        match pidfile.acquire(me) {
            Ok(Acquired::Held(held)) => {
                reporter.pid(me);
                supervise::supervise(&spec, &policy, held, reporter)
            }
            Ok(Acquired::Busy { pid, starting }) => {
                reporter.busy(pid, starting);
                std::process::exit(0)
            }
            Err(e) => {
                reporter.failed(&e.to_string());
                std::process::exit(1)
            }
        }
    })?;
    match report {
        Report::Ready { pid } => {
            say(g, format!("started {} (pid {pid})", g.name));
            Ok(exit::OK)
        }
        Report::Busy { pid, starting } => {
            let pidfile = PidFile::open(&paths, false)?;
            already_running(g, &pidfile, pid, starting, timeout)
        }
        Report::Failed { message, .. } => Err(Error::generic(format!(
            "{} failed to start: {message}{}",
            g.name,
            log_excerpt(&paths, log_start)
        ))),
        Report::Timeout { pid } => {
            // Only the process that holds the lock (the PID could be reused).
            if let Some(pid) = pid {
                let pidfile = PidFile::open(&paths, false)?;
                if let Some(fd) = holder_handle(&pidfile, pid)? {
                    let _ = fd.signal(Signal::SIGTERM);
                }
            }
            Err(Error::generic(format!(
                "{} was not ready within {}; it was told to stop{}",
                g.name,
                format_duration(timeout),
                log_excerpt(&paths, log_start)
            )))
        }
    }
}

/// Another daemon holds the PID file: success once it is ready (LSB: starting a
/// running service succeeds); failure if it dies while starting.
fn already_running(
    g: &Target,
    pidfile: &PidFile,
    pid: Pid,
    starting: bool,
    timeout: Duration,
) -> Result<u8> {
    if starting {
        let deadline = Instant::now() + timeout;
        loop {
            match pidfile.state()? {
                State::Running {
                    starting: false, ..
                } => break,
                State::Running { starting: true, .. } if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                State::Elsewhere => return Err(pidfile.elsewhere()),
                State::Running { .. } => {
                    return Err(Error::generic(format!(
                        "{} (pid {pid}) is starting and was not ready within {}",
                        g.name,
                        format_duration(timeout)
                    )))
                }
                _ => {
                    return Err(Error::generic(format!(
                        "{} was being started by another command (pid {pid}), which failed; see `mydaemon --name {} logs`",
                        g.name, g.name
                    )))
                }
            }
        }
    }
    say(g, format!("{} is already running (pid {pid})", g.name));
    Ok(exit::OK)
}

/// `stop`: SIGTERM, wait up to `--timeout`, then SIGKILL to the process group;
/// no PID file is left behind. Stopping a stopped service succeeds.
pub fn stop(g: &Target, pf: &PidfileArgs) -> Result<u8> {
    let paths = Paths::resolve(&g.name, &pf.paths)?;
    let timeout = pf.timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
    let Some(pidfile) = PidFile::open_existing(&paths)? else {
        say(g, format!("{} is not running", g.name));
        return Ok(exit::OK);
    };
    // The daemon to signal, confirmed by the lock; if the holder changes meanwhile (it
    // exited, or a new start took over), look again rather than report a stop.
    let mut target = None;
    for _ in 0..10 {
        let pid = match pidfile.state()? {
            State::Absent => {
                say(g, format!("{} is not running", g.name));
                return Ok(exit::OK);
            }
            State::Stale { pid } => {
                let ended = end_orphans(g, &pidfile, timeout)?;
                pidfile.remove_stale()?;
                let named = pid.map(|p| format!(" naming pid {p}")).unwrap_or_default();
                let what = if ended.is_empty() {
                    "nothing was signalled".to_owned()
                } else {
                    format!(
                        "ended {} process(es) the dead daemon left: {}",
                        ended.len(),
                        join_pids(&ended)
                    )
                };
                say(
                    g,
                    format!(
                        "{} is not running (removed the stale PID file{named}; {what})",
                        g.name
                    ),
                );
                return Ok(exit::OK);
            }
            State::Running { pid, .. } => pid,
            State::Elsewhere => return Err(pidfile.elsewhere()),
        };
        if let Some(fd) = holder_handle(&pidfile, pid)? {
            target = Some((pid, fd));
            break;
        }
    }
    let Some((pid, fd)) = target else {
        return Err(Error::generic(format!(
            "{} keeps changing hands; try again",
            paths.pid_file.display()
        )));
    };
    signal_or_fail(&fd, Signal::SIGTERM)?;
    if !fd.wait_exit(timeout) {
        log::warn!(
            "{} (pid {pid}) did not stop within {}; killing it",
            g.name,
            format_duration(timeout)
        );
        // The daemon leads its process group: the service process and its
        // command go with it. The group is the daemon's as long as the daemon (our
        // pidfd) has not exited: a PID that leads a live group is not reused.
        if !fd.wait_exit(Duration::ZERO) && getpgid(Some(pid)) == Ok(pid) {
            let _ = killpg(pid, Signal::SIGKILL);
        } else {
            let _ = fd.signal(Signal::SIGKILL);
        }
        if !fd.wait_exit(KILL_WAIT) {
            return Err(Error::generic(format!(
                "{} (pid {pid}) survived SIGKILL",
                g.name
            )));
        }
        say(
            g,
            format!(
                "killed {} (pid {pid}) after {}",
                g.name,
                format_duration(timeout)
            ),
        );
        // Had the daemon exited just before the SIGKILL, its group was not killed:
        // whatever of it remains is ended as after a crash.
        end_orphans(g, &pidfile, Duration::from_secs(1))?;
        pidfile.remove_stale()?;
        return Ok(exit::OK);
    }
    pidfile.remove_stale()?;
    say(g, format!("stopped {} (pid {pid})", g.name));
    Ok(exit::OK)
}

/// Processes a crashed daemon left behind, each proven by a pidfd and its start time:
/// the service process it published (same PID, same start time), and members of its
/// process group and session that started after it (the group's ID cannot have been
/// reused while they are in it). Only to be asked when nobody holds the lock.
fn orphans(pidfile: &PidFile) -> Vec<PidFd> {
    let Some(v) = pidfile.published().and_then(|t| Published::parse(&t)) else {
        return Vec::new();
    };
    let sup = v.supervisor.unwrap_or_default();
    let group = match (sup.pgid.map(i64::from), sup.sid.map(i64::from), sup.start) {
        (Some(pgid), Some(sid), Some(start)) if pgid > 1 && sid > 1 => Some((pgid, sid, start)),
        _ => None,
    };
    let service = v.service_pid.map(i64::from).zip(v.service_start);
    let me = std::process::id() as i64;
    let mut out = Vec::new();
    for (pid, st) in crate::sys::all_processes() {
        let p = i64::from(pid);
        if st.dead || p == me {
            continue;
        }
        let is_service = service == Some((p, st.start));
        let in_group = group.is_some_and(|(pgid, sid, start)| {
            i64::from(st.pgid) == pgid && i64::from(st.sid) == sid && st.start >= start
        });
        if is_service || in_group {
            if let Some(fd) = PidFd::open_proven(Pid::from_raw(pid), st.start) {
                out.push(fd);
            }
        }
    }
    out
}

/// Ends what a crashed daemon left (see [`orphans`]): SIGTERM, SIGKILL after `grace`.
/// Returns the PIDs it ended.
fn end_orphans(g: &Target, pidfile: &PidFile, grace: Duration) -> Result<Vec<Pid>> {
    let list = orphans(pidfile);
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let pids: Vec<Pid> = list.iter().map(|f| f.pid()).collect();
    log::warn!(
        "{}: the daemon died and left {} process(es) running ({}); ending them",
        g.name,
        pids.len(),
        join_pids(&pids)
    );
    for fd in &list {
        signal_or_fail(fd, Signal::SIGTERM)?;
    }
    let deadline = Instant::now() + grace;
    for fd in &list {
        if !fd.wait_exit(deadline.saturating_duration_since(Instant::now())) {
            signal_or_fail(fd, Signal::SIGKILL)?;
        }
    }
    for fd in &list {
        if !fd.wait_exit(KILL_WAIT) {
            return Err(Error::generic(format!(
                "pid {} (left by the dead {}) survived SIGKILL",
                fd.pid(),
                g.name
            )));
        }
    }
    Ok(pids)
}

fn join_pids(pids: &[Pid]) -> String {
    pids.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A pidfd on `pid`, once the lock confirms `pid` still holds it (so the handle
/// names the daemon, not a later process with its PID). `None`: it is gone.
fn holder_handle(pidfile: &PidFile, pid: Pid) -> Result<Option<PidFd>> {
    let fd = match PidFd::open(pid) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(None),
        Err(e) => {
            return Err(Error::generic(format!(
                "cannot open a handle on pid {pid}: {e}"
            )))
        }
    };
    match pidfile.state()? {
        State::Running { pid: now, .. } if now == pid => Ok(Some(fd)),
        _ => Ok(None),
    }
}

/// Sends `sig`; a process that has just exited is fine, a refusal is an error (exit 4
/// for another user's daemon).
fn signal_or_fail(fd: &PidFd, sig: Signal) -> Result<()> {
    match fd.signal(sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::io(
            &format!("send {sig} to"),
            format!("pid {}", fd.pid()),
            std::io::Error::from(e),
        )),
    }
}

/// `restart`: stop, then start.
pub fn restart(g: &Target, run: &RunArgs, pf: &PidfileArgs, sup: &SuperviseArgs) -> Result<u8> {
    // With sockets, the supervisor keeps them and replaces only the service process.
    if let Some(code) = inplace::try_restart(g, pf)? {
        return Ok(code);
    }
    // `--timeout` bounds each half, as its help says.
    stop(g, pf)?;
    start(g, run, pf, sup)
}

/// `reload`: SIGHUP to the daemon, which passes it on to the service; returns once
/// the service reports it reloaded, fails with the service's words when it reports
/// the reload failed (or after `--timeout`, 100s, with an error).
pub fn reload(g: &Target, pf: &PidfileArgs) -> Result<u8> {
    let paths = Paths::resolve(&g.name, &pf.paths)?;
    let not_running = || Error::not_running(format!("{} is not running", g.name));
    let pidfile = PidFile::open_existing(&paths)?.ok_or_else(not_running)?;
    let pid = match pidfile.state()? {
        State::Running { pid, .. } => pid,
        State::Elsewhere => return Err(pidfile.elsewhere()),
        _ => return Err(not_running()),
    };
    let Some(fd) = holder_handle(&pidfile, pid)? else {
        return Err(not_running());
    };
    // As systemd does for a notify service: done when the service, having sent
    // RELOADING=1, is READY=1 again (the supervisor counts completed reloads and
    // publishes how the last one ended).
    let published = |p: &PidFile| -> Option<Published> { Published::parse(&p.published()?) };
    let before = published(&pidfile).and_then(|v| v.reloads);
    signal_or_fail(&fd, Signal::SIGHUP)?;
    if let Some(before) = before {
        let timeout = pf.timeout.unwrap_or(DEFAULT_RELOAD_WAIT);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = published(&pidfile).filter(|v| v.reloads > Some(before)) {
                if v.last_reload.as_deref() == Some("failed") {
                    let words = v.status_text.as_deref().unwrap_or("reload failed");
                    return Err(Error::generic(format!("{} (pid {pid}): {words}", g.name))
                        .with_hint(format!("see `mydaemon --name {} logs`", g.name)));
                }
                break;
            }
            if fd.wait_exit(Duration::ZERO) {
                return Err(Error::generic(format!(
                    "{} (pid {pid}) exited while reloading; see `mydaemon --name {} logs`",
                    g.name, g.name
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::generic(format!(
                    "{} (pid {pid}) did not finish reloading within {}",
                    g.name,
                    format_duration(timeout)
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    say(g, format!("reloaded {} (pid {pid})", g.name));
    Ok(exit::OK)
}

/// `status`: 0 running (or starting), 1 dead with a stale PID file, 3 stopped.
pub fn status(g: &Target, pa: &PathArgs, json: bool, lines: usize) -> Result<u8> {
    let paths = Paths::resolve(&g.name, pa)?;
    let pidfile = PidFile::open_existing(&paths)?;
    let state = match &pidfile {
        None => State::Absent,
        Some(p) => p.state()?,
    };
    if let (State::Elsewhere, Some(p)) = (&state, &pidfile) {
        return Err(p.elsewhere());
    }
    let (word, code) = match &state {
        State::Running { starting: true, .. } => ("starting", exit::OK),
        State::Running { .. } => ("running", exit::OK),
        State::Stale { .. } => ("dead", exit::GENERIC),
        State::Absent | State::Elsewhere => ("stopped", exit::NOT_RUNNING_STATUS),
    };
    let (pid, since) = match &state {
        State::Running { pid, since, .. } => (Some(pid.as_raw()), Some(*since)),
        State::Stale { pid } => (*pid, None),
        State::Absent | State::Elsewhere => (None, None),
    };
    let uptime = since.and_then(|s| SystemTime::now().duration_since(s).ok());
    // What a crashed daemon left running (`stop` or `start` ends them).
    let left: Vec<i32> = match (&state, &pidfile) {
        (State::Stale { .. }, Some(p)) => orphans(p).iter().map(|f| f.pid().as_raw()).collect(),
        _ => Vec::new(),
    };
    // What the running daemon published: the service's STATUS= text, restarts.
    let published = match (&state, &pidfile) {
        (State::Running { .. }, Some(p)) => p
            .published()
            .and_then(|t| Published::parse(&t))
            .unwrap_or_default(),
        _ => Published::default(),
    };
    if json {
        let v = json!({
            "name": g.name,
            "backend": "pidfile",
            "state": word,
            "running": code == exit::OK,
            "pid": pid,
            // The systemd backend's names for the same facts.
            "active_state": match word {
                "running" => "active",
                "starting" => "activating",
                "dead" => "failed",
                _ => "inactive",
            },
            "main_pid": if code == exit::OK { pid.unwrap_or(0) } else { 0 },
            "status_text": published.status_text,
            "service_pid": published.service_pid,
            "n_restarts": published.n_restarts,
            "reloads": published.reloads,
            "last_reload": published.last_reload,
            "listeners": published.listeners,
            "watchdog_usec": published.watchdog_usec,
            "since": since.map(rfc3339),
            "uptime_sec": uptime.map(|u| u.as_secs()),
            "pid_file": paths.pid_file,
            "log_file": paths.log_file,
            "exit_code": code,
            "orphans": left,
        });
        println!("{v}");
        return Ok(code);
    }
    let what = match &state {
        State::Running { .. } => format!("{word} (pid {})", pid.unwrap_or(0)),
        State::Stale { pid: Some(p) } => {
            format!("dead: the PID file names pid {p}, which does not hold its lock")
        }
        State::Stale { pid: None } => "dead: a PID file without a daemon remains".into(),
        State::Absent | State::Elsewhere => "not running".into(),
    };
    println!("{} - {what}", g.name);
    println!("  backend:  pidfile");
    if !left.is_empty() {
        let pids: Vec<String> = left.iter().map(|p| p.to_string()).collect();
        println!(
            "  orphans:  {} process(es) of the dead daemon still run (pid {}); `stop` ends them",
            left.len(),
            pids.join(" ")
        );
    }
    if let Some(t) = published.status_text.as_deref().filter(|t| !t.is_empty()) {
        println!("  status:   {}", crate::output::visible(t));
    }
    for (i, l) in published.listeners.iter().flatten().enumerate() {
        let key = if i == 0 { "listen:" } else { "" };
        println!("  {key:<9} {l} (held by the supervisor across restarts)");
    }
    if let Some(p) = published.service_pid {
        let restarts = published.n_restarts.unwrap_or(0);
        println!("  service:  pid {p} (under the supervisor), restarted {restarts} time(s)");
    }
    if let (Some(s), Some(u)) = (since, uptime) {
        println!("  since:    {} ({} ago)", rfc3339(s), format_span(u));
    }
    println!("  pid file: {}", paths.pid_file.display());
    println!("  log:      {}", paths.log_file.display());
    if lines > 0 {
        if let Ok(tail) = logfile::tail(&paths, lines) {
            if !tail.is_empty() {
                println!();
                // The service's words: shown, not obeyed (see `output::visible`).
                for l in tail {
                    println!("{}", crate::output::visible(&l));
                }
            }
        }
    }
    Ok(code)
}

/// `logs [-f] [-n N]`: the log file's last lines, then (with `-f`) what follows.
pub fn logs(
    g: &Target,
    pa: &PathArgs,
    lines: usize,
    follow: bool,
    since: Option<&str>,
) -> Result<u8> {
    let since = since
        .map(|t| since::parse(t, std::time::SystemTime::now()).map_err(Error::usage))
        .transpose()?;
    let paths = Paths::resolve(&g.name, pa)?;
    logfile::show(&paths, lines, follow, since)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_implies_a_watchdog() {
        let run = RunArgs {
            health: Some(Probe::Exec("true".into())),
            ..RunArgs::default()
        };
        let sup = SuperviseArgs::default();
        assert_eq!(sup.policy(&run).watchdog, Some(DEFAULT_HEALTH_WATCHDOG));
        assert_eq!(sup.policy(&RunArgs::default()).watchdog, None);
        let off = SuperviseArgs {
            watchdog_sec: Some(Duration::ZERO),
            ..SuperviseArgs::default()
        };
        assert_eq!(off.policy(&run).watchdog, None);
    }
}
