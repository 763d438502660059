//! Exec mode: `mydaemon run -- CMD ARGS` supervises a command as a [`Service`].
//!
//! The command is spawned at start; readiness follows `--ready` (at once, a probe that
//! must pass, or `READY=1` on the notify socket it is given); TERM, INT, HUP, USR1 and
//! USR2 are forwarded to it (except a terminal's ^C, which reached it already); when it
//! ends, mydaemon ends the same way (its exit code, or its death by signal). With
//! `--health`, a probe runs every `--health-interval` and watchdog pings go out only
//! while it passes.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::probe::{Check, Probe, Readiness};
use super::relay::Relay;
use super::service::{Context, Exit, Service, ServiceResult};
use super::signals::Received;
use crate::sys::describe;
use crate::time::format_duration;

/// First wait between readiness probe attempts; doubles up to [`PROBE_BACKOFF_MAX`].
pub const PROBE_BACKOFF_MIN: Duration = Duration::from_millis(25);
/// Longest wait between readiness probe attempts.
pub const PROBE_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// After a stop that mydaemon started itself (readiness timed out), how long the
/// command has between SIGTERM and SIGKILL, by default.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// How to run and watch the command.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Program and arguments.
    pub command: Vec<String>,
    /// When the service counts as ready.
    pub ready: Readiness,
    /// Give up (stop the command, exit 1) if not ready by then.
    pub ready_timeout: Duration,
    /// Health probe gating the watchdog pings.
    pub health: Option<Probe>,
    /// Time between health probes.
    pub health_interval: Duration,
    /// A health probe that takes longer fails.
    pub health_timeout: Duration,
    /// After mydaemon itself stops the command (readiness timed out): time between
    /// SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// With `--ready notify`: a reload (SIGHUP passed on) the command has not
    /// confirmed with `READY=1` within this time failed.
    pub reload_timeout: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            command: Vec::new(),
            ready: Readiness::Immediate,
            ready_timeout: Duration::from_secs(90),
            health: None,
            health_interval: Duration::from_secs(10),
            health_timeout: Duration::from_secs(5),
            kill_grace: KILL_GRACE,
            reload_timeout: super::reload::DEFAULT_RELOAD_TIMEOUT,
        }
    }
}

/// The supervised command.
#[derive(Debug)]
pub struct ExecService {
    opts: ExecOptions,
    child: Option<Child>,
    /// Readable once the command exits (pidfd); dropped when it is reaped.
    child_exited: Option<OwnedFd>,
    relay: Option<Relay>,
    started: Instant,
    // Readiness.
    ready_deadline: Option<Instant>,
    next_probe: Option<Instant>,
    backoff: Duration,
    probe: Option<Check>,
    last_probe_error: String,
    // Health.
    next_health: Option<Instant>,
    health_check: Option<Check>,
    healthy: bool,
    child_pings: bool,
    // Stopping.
    stop_requested: bool,
    /// The exit to use instead of the command's (readiness timed out).
    forced_exit: Option<Exit>,
    kill_at: Option<Instant>,
    /// A reload passed on, awaiting the command's `READY=1` until then.
    reload_deadline: Option<Instant>,
}

impl ExecService {
    /// A service that will run `opts.command` when started.
    pub fn new(opts: ExecOptions) -> ExecService {
        ExecService {
            opts,
            child: None,
            child_exited: None,
            relay: None,
            started: Instant::now(),
            ready_deadline: None,
            next_probe: None,
            backoff: PROBE_BACKOFF_MIN,
            probe: None,
            last_probe_error: String::new(),
            next_health: None,
            health_check: None,
            healthy: true,
            child_pings: false,
            stop_requested: false,
            forced_exit: None,
            kill_at: None,
            reload_deadline: None,
        }
    }

    fn program(&self) -> &str {
        self.opts.command.first().map(String::as_str).unwrap_or("")
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    fn send(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            match kill(pid, sig) {
                Ok(()) => log::debug!("sent {sig} to {} (pid {pid})", self.program()),
                Err(e) => log::debug!("cannot send {sig} to pid {pid}: {e}"),
            }
        }
    }

    fn command(&self, ctx: &Context) -> Command {
        let mut c = Command::new(&self.opts.command[0]);
        crate::notify::scrub_notify_env(&mut c).args(&self.opts.command[1..]);
        if let Some(relay) = &self.relay {
            c.env("NOTIFY_SOCKET", relay.path());
            if let Some(w) = ctx.watchdog_interval() {
                c.env("WATCHDOG_USEC", OsString::from(w.as_micros().to_string()));
            }
        }
        // Under systemd, the command's output goes to a journal stream of its own,
        // tagged with its name rather than mydaemon's (see `journal_stream`).
        let journal = super::journal_stream::connected();
        if journal.stdout || journal.stderr {
            let id = super::journal_stream::identifier_of(self.program());
            match super::journal_stream::open(
                std::path::Path::new(super::journal_stream::STDOUT_SOCKET),
                &id,
            ) {
                Ok(stream) => {
                    if journal.stdout {
                        match stream.try_clone() {
                            Ok(s) => {
                                c.stdout(std::os::fd::OwnedFd::from(s));
                            }
                            Err(e) => log::debug!("cannot share the journal stream: {e}"),
                        }
                    }
                    if journal.stderr {
                        c.stderr(std::os::fd::OwnedFd::from(stream));
                    }
                }
                Err(e) => {
                    log::debug!("no journal stream of its own for {id} ({e}): it shares mydaemon's")
                }
            }
        }
        // If mydaemon dies without a chance to stop the command (SIGKILL), the command
        // gets SIGTERM rather than living on unsupervised.
        super::signals::prepare_child(&mut c, Some(Signal::SIGTERM));
        c
    }

    /// The command, ready to spawn: with the service's listening sockets handed on
    /// (last: that hook ends in exec).
    fn command_with_sockets(&self, ctx: &Context) -> std::io::Result<Command> {
        let mut c = self.command(ctx);
        super::listen::hand_on(&mut c, ctx.listeners())?;
        Ok(c)
    }

    /// Reaps the command if it ended; decides how mydaemon exits.
    fn reap(&mut self, ctx: &mut Context) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                // Someone else reaped it (a library user's waitpid(-1)?): it is gone,
                // and its exit status with it.
                log::error!("waiting for {}: {e}; giving up on it", self.program());
                self.child = None;
                self.child_exited = None;
                ctx.exit(self.forced_exit.unwrap_or(Exit::Code(1)));
                return;
            }
        };
        let pid = child.id();
        self.child = None;
        self.child_exited = None;
        self.probe = None;
        self.health_check = None;
        let exit = exit_of(status);
        let how = describe(status);
        if self.reload_deadline.take().is_some() {
            ctx.reload_failed(format!("{} {how} while reloading", self.program()));
        }
        if self.stop_requested {
            log::info!(mydaemon_event = "child-exit", mydaemon_pid = pid; "{} (pid {pid}) {how}", self.program());
        } else if status.success() {
            log::info!(mydaemon_event = "child-exit", mydaemon_pid = pid; "{} (pid {pid}) {how}; nothing left to supervise", self.program());
        } else {
            log::warn!(mydaemon_event = "child-exit", mydaemon_pid = pid; "{} (pid {pid}) {how}", self.program());
        }
        ctx.set_status(format!("{} {how}", self.program()));
        ctx.exit(self.forced_exit.unwrap_or(exit));
    }

    /// Reads the child's notify messages and passes them on.
    fn relay_messages(&mut self, ctx: &mut Context) {
        let Some(relay) = &self.relay else {
            return;
        };
        let datagrams = match relay.drain() {
            Ok(d) => d,
            Err(e) => {
                log::warn!("reading the command's notify socket: {e}");
                return;
            }
        };
        for d in datagrams {
            for line in d.lines() {
                // Filtered here, once: what is not in RELAYED_KEYS is dropped.
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                if !crate::notify::RELAYED_KEYS.contains(&key) {
                    continue;
                }
                match (key, value) {
                    ("READY", "1") if !ctx.is_ready() => {
                        log::info!("{} reports ready", self.program());
                        ctx.ready();
                    }
                    // The reload mydaemon announced (RELOADING=1 went out on SIGHUP)
                    // is over when the command says READY=1 again; neither line is
                    // passed on, or systemd would see a second, unasked reload.
                    ("READY", "1") => {
                        if self.reload_deadline.take().is_some() {
                            log::info!("{} reports it has reloaded", self.program());
                            ctx.reloaded();
                        }
                    }
                    ("RELOADING", "1") => {}
                    ("STATUS", text) => ctx.set_status(text),
                    ("WATCHDOG", "1") => {
                        if !self.child_pings {
                            log::info!(
                                "{} pings the watchdog itself; relaying its pings",
                                self.program()
                            );
                            self.child_pings = true;
                            ctx.delegate_watchdog(true);
                        }
                        if self.healthy {
                            ctx.pass_on(line);
                        }
                    }
                    _ => ctx.pass_on(line),
                }
            }
        }
    }

    /// Runs readiness probes until one passes or the time is up.
    fn probe_readiness(&mut self, ctx: &mut Context, now: Instant) {
        let Readiness::Probe(probe) = &self.opts.ready else {
            return;
        };
        if ctx.is_ready() || ctx.is_stopping() || self.child.is_none() {
            return;
        }
        if self.probe.is_none() && self.next_probe.is_some_and(|t| due(t, now)) {
            let left = self
                .ready_deadline
                .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
            self.probe = Some(
                probe.begin(
                    left.min(Duration::from_secs(1))
                        .max(Duration::from_millis(10)),
                ),
            );
        }
        if let Some(result) = self.probe.as_mut().and_then(|c| finished(c, ctx, now)) {
            self.probe = None;
            match result {
                Ok(()) => {
                    log::info!(
                        "{probe} answers after {} ms",
                        self.started.elapsed().as_millis()
                    );
                    ctx.set_status(format!(
                        "running {} (pid {})",
                        self.program(),
                        self.pid().map_or(0, |p| p.as_raw())
                    ));
                    ctx.ready();
                    self.next_probe = None;
                    self.ready_deadline = None;
                    return;
                }
                Err(e) => {
                    log::debug!("not ready yet: {e}");
                    self.last_probe_error = e;
                    self.next_probe = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(PROBE_BACKOFF_MAX);
                }
            }
        }
        if self.ready_deadline.is_some_and(|d| due(d, now)) {
            log::error!(
                mydaemon_event = "ready-timeout";
                "{} not ready after {} ({probe}: {}); stopping it",
                self.program(),
                format_duration(self.opts.ready_timeout),
                self.last_probe_error
            );
            ctx.set_status(format!(
                "not ready after {}",
                format_duration(self.opts.ready_timeout)
            ));
            self.begin_own_stop(ctx, Exit::Code(1), now);
        }
    }

    /// Forgets the readiness and health probes and their deadlines: the command is
    /// being stopped.
    fn cancel_probes(&mut self) {
        self.ready_deadline = None;
        self.next_probe = None;
        self.probe = None;
        self.health_check = None;
        self.next_health = None;
    }

    /// Stops the command because mydaemon decided so: SIGTERM, SIGKILL after a grace.
    fn begin_own_stop(&mut self, ctx: &mut Context, exit: Exit, now: Instant) {
        ctx.begin_stopping(ctx.status().to_owned());
        self.forced_exit = Some(exit);
        self.stop_requested = true;
        self.cancel_probes();
        self.send(Signal::SIGTERM);
        self.kill_at = Some(now + self.opts.kill_grace);
    }

    /// Runs the health probe on its schedule.
    fn check_health(&mut self, ctx: &mut Context, now: Instant) {
        let Some(probe) = &self.opts.health else {
            return;
        };
        if !ctx.is_ready() || ctx.is_stopping() || self.child.is_none() {
            return;
        }
        if self.health_check.is_none() && self.next_health.is_none_or(|t| due(t, now)) {
            self.health_check = Some(probe.begin(self.opts.health_timeout));
            self.next_health = Some(now + self.opts.health_interval);
        }
        if let Some(result) = self
            .health_check
            .as_mut()
            .and_then(|c| finished(c, ctx, now))
        {
            self.health_check = None;
            match result {
                Ok(()) => {
                    if !self.healthy {
                        ctx.set_status(format!("running {} (healthy)", self.program()));
                    }
                    self.healthy = true;
                }
                Err(e) => {
                    if self.healthy {
                        log::warn!(mydaemon_event = "health-failed"; "health check {probe} fails: {e}");
                    } else {
                        log::debug!("health check {probe} still fails: {e}");
                    }
                    ctx.set_status(format!("unhealthy: {probe}: {e}"));
                    self.healthy = false;
                }
            }
        }
    }

    fn schedule(&self, ctx: &mut Context) {
        let candidates = [
            self.next_probe,
            self.ready_deadline,
            self.probe.as_ref().and_then(Check::deadline),
            self.health_check.as_ref().and_then(Check::deadline),
            self.next_health.filter(|_| self.health_check.is_none()),
            self.kill_at,
            self.reload_deadline,
        ];
        for t in candidates.into_iter().flatten() {
            ctx.wake_at(t);
        }
        // A command or exec probe that exits wakes the loop through its pidfd (and
        // SIGCHLD), a probe's socket through `poll_fds`; a probe's timeout is covered
        // above.
    }
}

impl Service for ExecService {
    fn start(&mut self, ctx: &mut Context) -> ServiceResult {
        if self.opts.command.is_empty() {
            return Err("no command given".into());
        }
        if self.opts.ready == Readiness::Notify {
            let relay = Relay::bind()
                .map_err(|e| format!("cannot create the command's notify socket: {e}"))?;
            log::debug!("notify socket for the command: {}", relay.path().display());
            self.relay = Some(relay);
        }
        self.started = Instant::now();
        let child = self
            .command_with_sockets(ctx)
            .and_then(|mut c| c.spawn())
            .map_err(|e| format!("cannot run {}: {e}", self.program()))?;
        let pid = child.id();
        if let Some(relay) = &mut self.relay {
            relay.set_command(pid);
        }
        log::info!(mydaemon_event = "child-start", mydaemon_pid = pid; "started {} (pid {pid})", self.opts.command.iter().map(|w| crate::unit::quote::shell_word(w)).collect::<Vec<_>>().join(" "));
        self.child_exited = super::signals::pidfd(pid);
        self.child = Some(child);
        match &self.opts.ready {
            Readiness::Immediate => {
                ctx.set_status(format!("running {} (pid {pid})", self.program()));
                ctx.ready();
            }
            Readiness::Notify => {
                ctx.set_status(format!(
                    "waiting for {} (pid {pid}) to notify READY=1",
                    self.program()
                ));
                self.ready_deadline = Some(self.started + self.opts.ready_timeout);
            }
            Readiness::Probe(p) => {
                ctx.set_status(format!("waiting for {p}"));
                self.ready_deadline = Some(self.started + self.opts.ready_timeout);
                self.next_probe = Some(self.started);
            }
        }
        self.run(ctx)
    }

    fn run(&mut self, ctx: &mut Context) -> ServiceResult {
        let now = Instant::now();
        // Only what poll(2) reported: no empty read of the notify socket, no wait4 for
        // a command still running, on a wake-up for a timer (a pidfd that could not be
        // opened, on an old kernel, leaves SIGCHLD: try every time then).
        if self.relay.as_ref().is_some_and(|r| ctx.fd_ready(r.as_fd())) {
            self.relay_messages(ctx);
        }
        if self
            .child_exited
            .as_ref()
            .is_none_or(|fd| ctx.fd_ready(fd.as_fd()))
        {
            self.reap(ctx);
        }
        if self.child.is_none() {
            return Ok(());
        }
        if self.stop_requested {
            // No more probes: a finished one would leave its pidfd readable for good.
            self.probe = None;
            self.health_check = None;
        }
        if self.opts.ready == Readiness::Notify && !ctx.is_ready() && !self.stop_requested {
            if self.ready_deadline.is_some_and(|d| due(d, now)) {
                log::error!(mydaemon_event = "ready-timeout"; "{} sent no READY=1 within {}; stopping it",
                    self.program(), format_duration(self.opts.ready_timeout));
                ctx.set_status(format!(
                    "not ready after {}",
                    format_duration(self.opts.ready_timeout)
                ));
                self.begin_own_stop(ctx, Exit::Code(1), now);
            }
        } else if ctx.is_ready() {
            self.ready_deadline = None;
        }
        if self.reload_deadline.is_some_and(|d| due(d, now)) {
            self.reload_deadline = None;
            let why = format!(
                "{} sent no READY=1 within {} of SIGHUP",
                self.program(),
                format_duration(self.opts.reload_timeout)
            );
            ctx.reload_failed(why);
        }
        self.probe_readiness(ctx, now);
        self.check_health(ctx, now);
        if self.kill_at.is_some_and(|t| due(t, now)) {
            log::warn!(
                "{} did not stop within {}; killing it",
                self.program(),
                format_duration(self.opts.kill_grace)
            );
            self.send(Signal::SIGKILL);
            self.kill_at = None;
        }
        self.schedule(ctx);
        Ok(())
    }

    fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
        log::info!("forwarding SIGHUP to {}", self.program());
        if self.child.is_none() {
            return Err(format!("{} is not running", self.program()).into());
        }
        self.send(Signal::SIGHUP);
        // With notify, reloaded means the command said READY=1 again; otherwise it
        // means the signal was delivered.
        if self.opts.ready == Readiness::Notify {
            // Our deadline first: the runner's (set by reload_pending, as long) comes
            // no earlier, so a timeout is reported in this service's words.
            self.reload_deadline = Some(Instant::now() + self.opts.reload_timeout);
            ctx.reload_pending();
        }
        self.schedule(ctx);
        Ok(())
    }

    fn stop(&mut self, ctx: &mut Context, signal: Received) -> ServiceResult {
        self.stop_requested = true;
        self.cancel_probes();
        if self.child.is_none() {
            ctx.exit(self.forced_exit.unwrap_or(Exit::Code(0)));
            return Ok(());
        }
        if signal.from_kernel && signal.signal == Signal::SIGINT {
            log::debug!(
                "SIGINT came from the terminal; {} has it too",
                self.program()
            );
        } else {
            self.send(signal.signal);
        }
        ctx.set_status(format!("stopping {} ({})", self.program(), signal.signal));
        self.schedule(ctx);
        Ok(())
    }

    fn health(&mut self, _ctx: &mut Context) -> bool {
        self.healthy
    }

    fn signal(&mut self, ctx: &mut Context, signal: Received) -> ServiceResult {
        if signal.signal == Signal::SIGCHLD {
            return Ok(());
        }
        if signal.from_kernel && signal.signal == Signal::SIGINT {
            return Ok(());
        }
        log::info!("forwarding {} to {}", signal.signal, self.program());
        self.send(signal.signal);
        self.schedule(ctx);
        Ok(())
    }

    fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let checks = [&self.probe, &self.health_check];
        self.relay
            .iter()
            .map(|r| r.as_fd())
            .chain(self.child_exited.iter().map(|f| f.as_fd()))
            .map(|fd| (fd, PollFlags::POLLIN))
            .chain(checks.into_iter().flatten().filter_map(Check::poll_fd))
            .collect()
    }
}

impl Drop for ExecService {
    fn drop(&mut self) {
        // mydaemon is leaving with the command still running (an error in the loop):
        // do not leave it unsupervised.
        // SIGTERM, then SIGKILL after the kill grace: a command deaf to SIGTERM must
        // not hang mydaemon's exit.
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let pid = Pid::from_raw(child.id() as i32);
                let _ = kill(pid, Signal::SIGTERM);
                let gone =
                    crate::sys::PidFd::open(pid).is_ok_and(|p| p.wait_exit(self.opts.kill_grace));
                if !gone {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                let _ = child.wait();
            }
        }
    }
}

/// Whether a timer at `t` is due at `now`: within the runner's [`SLACK`], as the
/// runner counts the service's deadline, so that a wake-up the runner serves early
/// (merged with a watchdog ping) does the work rather than ask for a second one.
///
/// [`SLACK`]: super::runner::SLACK
fn due(t: Instant, now: Instant) -> bool {
    t <= now + super::runner::SLACK
}

/// A probe's result, if it is over. An `exec:` probe is reaped only once its pidfd was
/// found ready (or its time is up); a `tcp:` probe's connect is looked at at once
/// (one zero-timeout poll: on loopback it is usually done already, which saves the
/// loop a round).
fn finished(check: &mut Check, ctx: &Context, now: Instant) -> Option<Result<(), String>> {
    let waiting =
        matches!(check, Check::Running { exited: Some(fd), .. } if !ctx.fd_ready(fd.as_fd()));
    let timed_out = check.deadline().is_some_and(|d| due(d, now));
    if waiting && !timed_out {
        return None;
    }
    // Its timeout counted with the slack too.
    check.poll(now + super::runner::SLACK)
}

/// How mydaemon ends after the command ended with `status`.
pub fn exit_of(status: ExitStatus) -> Exit {
    if let Some(code) = status.code() {
        return Exit::Code(code as u8);
    }
    match status.signal().map(Signal::try_from) {
        Some(Ok(sig)) => Exit::Signal(sig),
        _ => Exit::Code(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Runner;
    use crate::notify::Notifier;

    #[test]
    fn exit_follows_the_child() {
        assert_eq!(exit_of(ExitStatus::from_raw(3 << 8)), Exit::Code(3));
        assert_eq!(exit_of(ExitStatus::from_raw(0)), Exit::Code(0));
        assert_eq!(
            exit_of(ExitStatus::from_raw(15)),
            Exit::Signal(Signal::SIGTERM)
        );
        assert_eq!(Exit::Signal(Signal::SIGTERM).code(), 143);
        assert_eq!(
            describe(ExitStatus::from_raw(9)),
            "was killed by signal SIGKILL"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(2 << 8)),
            "exited with status 2"
        );
    }

    #[test]
    fn dropping_the_service_kills_a_command_deaf_to_sigterm() {
        let mut svc = ExecService::new(ExecOptions {
            command: vec!["sleep".into()],
            kill_grace: Duration::from_millis(200),
            ..ExecOptions::default()
        });
        let child = Command::new("/bin/sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        svc.child = Some(child);
        wait_until_ignores_sigterm(pid);
        let started = Instant::now();
        drop(svc);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "drop hung: {took:?}");
        assert!(took >= Duration::from_millis(150), "no grace: {took:?}");
        assert_eq!(
            kill(pid, None),
            Err(nix::errno::Errno::ESRCH),
            "still there"
        );
    }

    /// Waits (at most 10 s) until `pid` ignores SIGTERM (`SigIgn` in /proc), so that a test
    /// never sends the signal before the shell's `trap` is in place.
    fn wait_until_ignores_sigterm(pid: Pid) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let ign = status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
                .unwrap();
            if ign & (1 << (Signal::SIGTERM as i32 - 1)) != 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "process {pid} did not come to ignore SIGTERM within 10 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
        let mut svc = ExecService::new(ExecOptions {
            // SIGTERM ignored from exec on (env sets it before it execs sleep), and the
            // readiness deadline far from the command's start-up.
            command: ["env", "--ignore-signal=TERM", "sleep", "30"]
                .map(String::from)
                .to_vec(),
            ready: Readiness::Probe(Probe::File("/nonexistent/mydaemon-ready".into())),
            ready_timeout: Duration::from_millis(500),
            kill_grace: Duration::from_millis(300),
            ..ExecOptions::default()
        });
        let started = Instant::now();
        let exit = Runner::new("grace")
            .with_notifier(Notifier::to_socket(None))
            .with_watchdog(None)
            .run(&mut svc)
            .unwrap();
        let took = started.elapsed();
        // Not the command's death by SIGKILL: readiness failed, so exit 1.
        assert_eq!(exit, Exit::Code(1));
        assert!(
            took >= Duration::from_millis(800),
            "killed too early: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "not killed: {took:?}");
    }
}
