//! The daemon process of the PID-file backend: a small service manager for one
//! service, doing what systemd does for a `Type=notify`, `Restart=on-failure` unit.
//!
//! It holds the PID file, runs `mydaemon run …` (the same service process systemd
//! would run) as its child and gives it a private `$NOTIFY_SOCKET`, so readiness,
//! `STATUS=` and watchdog pings arrive exactly as under systemd: the built-in
//! workload, exec mode and its `--ready` probes need no code of their own here.
//! The socket is a path socket in a 0700 directory next to the PID file (only its
//! owner, and root, can reach it); only when that path is too long for a socket
//! address is it an abstract one with a hashed name. `SO_PASSCRED` is on: the
//! sender's credentials are checked before anything is parsed or logged, and only
//! datagrams from the current child are believed (systemd's `NotifyAccess=main`).
//! Lines an outsider can cause are rate-limited, with a count of what was dropped.
//!
//! - The first `READY=1` is passed on to the launcher (the readiness pipe, see
//!   [`super::daemonize`](mod@super::daemonize)). A child that exits before it fails the start, with its
//!   last `STATUS=` and exit status as the reason.
//! - SIGTERM/SIGINT are passed on and the supervisor exits once the child has;
//!   SIGHUP, SIGUSR1 and SIGUSR2 are passed on.
//! - After the service was ready once, an exit that systemd counts as a failure
//!   (non-zero status, a signal other than HUP/INT/TERM/PIPE, a watchdog timeout)
//!   is followed by a restart after `restart_sec`, doubling with each restart within
//!   `window`, at most `restart_max`; more than `restart_burst` restarts within the
//!   window and it gives up, logging why, and leaves the PID file unlocked behind it
//!   (`status` then says "dead", exit 1). A clean exit ends the service.
//! - With a watchdog, the child gets `$WATCHDOG_USEC`; if no `WATCHDOG=1` arrives
//!   within that time after it was ready (the exec-mode `--health` probe withholds
//!   pings while it fails), the child is stopped (SIGTERM, SIGKILL after
//!   `kill_grace`) and restarted.
//!
//! Its own lines go to the log file in the service process's format, marked
//! `supervisor:`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::daemonize::Reporter;
use super::pidfile::Held;
use crate::daemon::signals::Signals;
use crate::notify_socket::{Access, NotifySocket};
use crate::sys::describe;
use crate::sys::prepare_child;
use crate::time::{format_duration, rfc3339};

/// The `sigqueue(3)` value that asks the supervisor for an in-place restart.
pub const RESTART_VALUE: u64 = 0x6d79_6453; // "mydS"

/// What the supervisor publishes next to the PID file for `status`, `reload` and the
/// next `start` (as JSON). Every field is optional when read: a daemon of an earlier
/// version may have written fewer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Published {
    /// The service's last `STATUS=` text.
    pub status_text: Option<String>,
    /// The service process, while it runs.
    pub service_pid: Option<i32>,
    /// How often the service was restarted.
    pub n_restarts: Option<u64>,
    /// Completed reloads (`RELOADING=1` then `READY=1`).
    pub reloads: Option<u64>,
    /// The watchdog interval, if any.
    pub watchdog_usec: Option<u64>,
    /// How the last reload ended (`ok`, `failed`), as the service process said.
    pub last_reload: Option<String>,
    /// The listening sockets the supervisor holds (`--listen`), described.
    pub listeners: Option<Vec<String>>,
    /// The current service process has sent `READY=1`.
    pub service_ready: Option<bool>,
    /// The service process's start time (clock ticks since boot), with its PID.
    pub service_start: Option<u64>,
    /// The supervisor itself.
    pub supervisor: Option<SupervisorId>,
}

/// The supervisor's identity and place, to find what a crashed one left.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SupervisorId {
    /// Its PID.
    pub pid: Option<u32>,
    /// Its process group.
    pub pgid: Option<i32>,
    /// Its session.
    pub sid: Option<i32>,
    /// Its start time (clock ticks since boot).
    pub start: Option<u64>,
}

impl Published {
    /// Reads what a daemon published (`None`: nothing readable).
    pub fn parse(text: &str) -> Option<Published> {
        serde_json::from_str(text).ok()
    }

    /// The JSON text to publish.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// When and how often to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Restarts allowed within `window` before giving up (0: never restart).
    pub restart_burst: u32,
    /// Delay before the first restart; doubles with each restart within `window`.
    pub restart_sec: Duration,
    /// Longest delay between restarts.
    pub restart_max: Duration,
    /// Restarts older than this are forgotten (systemd's `StartLimitIntervalSec`).
    pub window: Duration,
    /// The child must send `WATCHDOG=1` at least this often once ready.
    pub watchdog: Option<Duration>,
    /// Between SIGTERM and SIGKILL when the supervisor stops the child itself.
    pub kill_grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart_burst: 5,
            restart_sec: Duration::from_millis(100),
            restart_max: Duration::from_secs(30),
            window: Duration::from_secs(60),
            watchdog: None,
            kill_grace: Duration::from_secs(10),
        }
    }
}

impl Policy {
    /// The delay before restart number `n` (0-based) within the window.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.min(30));
        self.restart_sec
            .saturating_mul(factor)
            .min(self.restart_max)
    }
}

/// What to run: `program args…` (this binary's `run`).
#[derive(Debug, Clone)]
pub struct Spec {
    /// Service name (for log lines).
    pub name: String,
    /// The program (absolute).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Sockets to bind before the first start and hand on to every incarnation
    /// (`--listen`): clients queue in the kernel while the service restarts.
    pub listen: Vec<crate::unit::socket::ListenAddr>,
}

/// Whether systemd's `Restart=on-failure` would restart after `status`.
pub fn is_failure(status: ExitStatus) -> bool {
    !crate::sys::ProcessEnd::of(status).is_some_and(|e| e.is_clean())
}

/// How long processes the service left behind get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// The supervisor's children (from `/proc`); only the service process and adopted
/// orphans of it are ever its children.
fn children() -> Vec<Pid> {
    let me = std::process::id();
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// One line in the log, in the service process's format.
fn say(name: &str, level: &str, msg: &str) {
    let line = format!(
        "{} {name}[{}]: {level}: supervisor: {msg}\n",
        rfc3339(SystemTime::now()),
        std::process::id()
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

struct Supervisor<'a> {
    spec: &'a Spec,
    policy: &'a Policy,
    held: Held,
    reporter: Reporter,
    notify: NotifySocket,
    child: Option<Pid>,
    child_ready: bool,
    ever_ready: bool,
    last_status: String,
    last_ping: Instant,
    watchdog_fired: bool,
    stopping: bool,
    kill_at: Option<Instant>,
    restart_at: Option<Instant>,
    restarts: VecDeque<Instant>,
    n_restarts: u64,
    /// `RELOADING=1` seen, `READY=1` not yet.
    reloading: bool,
    /// Reloads completed (`RELOADING=1` … `READY=1`).
    reloads: u64,
    /// How the last reload ended (`ok`, `failed`), as the service process said.
    last_reload: Option<String>,
    /// The supervisor's own identity (published: after a crash, `start` and `stop`
    /// find what it left with it).
    me: Option<crate::sys::ProcStat>,
    /// The service process's start time (its identity, with its PID).
    child_start: Option<u64>,
    /// The listening sockets, bound once, kept open for the supervisor's life.
    listeners: crate::daemon::listen::Listeners,
    /// `restart` asked for a new service process (its sockets stay open here).
    restart_now: bool,
}

/// Runs the service under supervision until it ends; never returns.
pub fn supervise(spec: &Spec, policy: &Policy, held: Held, mut reporter: Reporter) -> ! {
    let fail = |reporter: &mut Reporter, held: &Held, msg: String| -> ! {
        say(&spec.name, "error", &msg);
        // Files first: once the launcher hears, `status` must find them gone.
        held.remove();
        reporter.failed(&msg);
        std::process::exit(1)
    };
    // Orphans of the service become our children, so none outlives its incarnation.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        say(
            &spec.name,
            "warn",
            &format!("cannot become a subreaper: {e}"),
        );
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => fail(&mut reporter, &held, format!("cannot set up signals: {e}")),
    };
    let notify = match notify_socket(&spec.name, &held) {
        Ok(s) => s,
        Err(e) => fail(
            &mut reporter,
            &held,
            format!("cannot create the notify socket: {e}"),
        ),
    };
    let listeners = match crate::daemon::listen::Listeners::bind(&spec.listen, &spec.name) {
        Ok(l) => l,
        Err(e) => fail(&mut reporter, &held, e),
    };
    let mut s = Supervisor {
        spec,
        policy,
        held,
        reporter,
        notify,
        child: None,
        child_ready: false,
        ever_ready: false,
        last_status: String::new(),
        last_ping: Instant::now(),
        watchdog_fired: false,
        stopping: false,
        kill_at: None,
        restart_at: None,
        restarts: VecDeque::new(),
        n_restarts: 0,
        reloading: false,
        reloads: 0,
        last_reload: None,
        me: crate::sys::stat_of(std::process::id() as i32),
        child_start: None,
        listeners,
        restart_now: false,
    };
    if let Err(e) = s.spawn() {
        let (reporter, held) = (&mut s.reporter, &s.held);
        fail(reporter, held, e);
    }
    loop {
        s.wait(&signals);
        if let Ok(list) = signals.drain() {
            for r in list {
                if r.signal == Signal::SIGHUP && r.value == Some(RESTART_VALUE) {
                    s.restart_in_place();
                } else {
                    s.on_signal(r.signal);
                }
            }
        }
        s.read_notify();
        s.reap();
        s.timers();
    }
}

/// The notify socket (see [`NotifySocket`]; only the service process is believed):
/// a path socket in the private directory `held` provides, or, when that path does
/// not fit a socket address, an abstract name derived from a hash.
fn notify_socket(name: &str, held: &Held) -> std::io::Result<NotifySocket> {
    let path = held
        .notify_socket_path()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (addr, env) = if path.as_os_str().len() < 108 {
        (SocketAddr::from_pathname(&path)?, path.into_os_string())
    } else {
        let abs = format!(
            "mydaemon/{:016x}/{}/{:016x}",
            super::paths::name_hash(name.as_bytes()),
            std::process::id(),
            super::paths::random_u64()
        );
        (
            SocketAddr::from_abstract_name(abs.as_bytes())?,
            format!("@{abs}").into(),
        )
    };
    NotifySocket::bind_addr(&addr, env, Access::Main, "the service process")
}

impl Supervisor<'_> {
    fn say(&self, level: &str, msg: &str) {
        say(&self.spec.name, level, msg);
    }

    fn child_pid(&self) -> Option<Pid> {
        self.child
    }

    fn send(&self, sig: Signal) {
        if let Some(pid) = self.child_pid() {
            let _ = kill(pid, sig);
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.spec.program);
        cmd.args(&self.spec.args);
        crate::notify::scrub_notify_env(&mut cmd);
        // And what the supervisor's own manager gave it (sockets, stream, invocation).
        for var in [
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "JOURNAL_STREAM",
            "INVOCATION_ID",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NOTIFY_SOCKET", self.notify.addr());
        if let Some(w) = self.policy.watchdog {
            cmd.env("WATCHDOG_USEC", w.as_micros().to_string());
        }
        // An empty signal mask for the child; and if the supervisor dies (SIGKILL),
        // the service is told to stop rather than left running unsupervised.
        prepare_child(&mut cmd, Some(Signal::SIGTERM));
        crate::daemon::listen::hand_on(&mut cmd, &self.listeners)
            .map_err(|e| format!("cannot run {}: {e}", self.spec.program.display()))?;
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.spec.program.display()))?;
        let pid = Pid::from_raw(child.id() as i32);
        // Reaped by `reap` with waitpid(-1): the supervisor is a subreaper.
        drop(child);
        self.say("info", &format!("started the service process (pid {pid})"));
        self.child = Some(pid);
        self.notify.set_main(Some(pid.as_raw()));
        self.child_start = crate::sys::stat_of(pid.as_raw()).map(|s| s.start);
        self.child_ready = false;
        self.watchdog_fired = false;
        self.kill_at = None;
        self.last_status.clear();
        self.publish();
        Ok(())
    }

    fn watchdog_deadline(&self) -> Option<Instant> {
        let w = self.policy.watchdog?;
        (self.child_ready && !self.stopping && !self.watchdog_fired && self.child.is_some())
            .then(|| self.last_ping + w)
    }

    fn wait(&self, signals: &Signals) {
        let now = Instant::now();
        let next = [self.restart_at, self.kill_at, self.watchdog_deadline()]
            .into_iter()
            .flatten()
            .min();
        let timeout = match next {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(now)
                    .as_nanos()
                    .div_ceil(1_000_000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.notify.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                self.say("error", &format!("poll: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `restart` with sockets: stop the service process (SIGTERM, SIGKILL after the
    /// grace) and start the next one as soon as it has exited; the sockets stay open,
    /// so connections wait in the kernel meanwhile.
    fn restart_in_place(&mut self) {
        if self.stopping {
            return;
        }
        self.say(
            "info",
            "restart requested: a new service process, the sockets stay open",
        );
        if self.child.is_some() {
            self.restart_now = true;
            self.send(Signal::SIGTERM);
            self.kill_at = Some(Instant::now() + self.policy.kill_grace);
        } else {
            self.restart_at = Some(Instant::now());
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGTERM | Signal::SIGINT => {
                if !self.stopping {
                    self.say("info", &format!("received {sig}: stopping"));
                    self.stopping = true;
                    self.restart_at = None;
                }
                if self.child.is_some() {
                    self.send(sig);
                } else {
                    self.finish(0, true);
                }
            }
            other => {
                if self.child.is_some() {
                    self.say("info", &format!("passing {other} on to the service"));
                    self.send(other);
                }
            }
        }
    }

    fn read_notify(&mut self) {
        let name = &self.spec.name;
        let datagrams = match self.notify.drain(|line| say(name, "warn", line)) {
            Ok(d) => d,
            Err(e) => {
                self.say("warn", &format!("reading the notify socket: {e}"));
                return;
            }
        };
        for text in datagrams {
            // READY=1 last: the launcher returns on it, and `status` must then show
            // the STATUS= that came in the same datagram (sd_notify puts READY first).
            let (ready, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| *l == "READY=1");
            for line in rest.into_iter().chain(ready) {
                self.on_notify(line);
            }
        }
    }

    fn on_notify(&mut self, line: &str) {
        match line.split_once('=') {
            Some(("RELOADING", "1")) => self.reloading = true,
            Some((crate::daemon::reload::RESULT_KEY, how)) => {
                self.last_reload = Some(how.to_owned())
            }
            Some(("READY", "1")) => {
                if !self.child_ready {
                    self.child_ready = true;
                    self.publish();
                }
                self.last_ping = Instant::now();
                if self.reloading {
                    self.reloading = false;
                    self.reloads += 1;
                    self.publish();
                }
                if !self.ever_ready {
                    self.ever_ready = true;
                    self.held.ready();
                    self.reporter.ready();
                    self.say("info", "the service is ready");
                }
            }
            Some(("STATUS", text)) if self.last_status != text => {
                self.last_status = text.to_owned();
                self.publish();
            }
            Some(("WATCHDOG", "1")) => self.last_ping = Instant::now(),
            Some(("WATCHDOG", "trigger")) => self.fire_watchdog("the service asked for it"),
            _ => {}
        }
    }

    /// Tells `status` what systemd would show: the service's `STATUS=` text, its
    /// process and how often it was restarted.
    fn publish(&self) {
        let v = Published {
            status_text: Some(self.last_status.clone()),
            service_pid: self.child.map(|p| p.as_raw()),
            n_restarts: Some(self.n_restarts),
            reloads: Some(self.reloads),
            watchdog_usec: self.policy.watchdog.map(|w| w.as_micros() as u64),
            last_reload: self.last_reload.clone(),
            listeners: Some(self.listeners.iter().map(|l| l.describe()).collect()),
            service_ready: Some(self.child_ready),
            service_start: self.child.and(self.child_start),
            supervisor: self.me.map(|m| SupervisorId {
                pid: Some(std::process::id()),
                pgid: Some(m.pgid),
                sid: Some(m.sid),
                start: Some(m.start),
            }),
        };
        self.held.publish(&v.to_json());
    }

    fn fire_watchdog(&mut self, why: &str) {
        if self.watchdog_fired || self.child.is_none() {
            return;
        }
        self.say(
            "warn",
            &format!("watchdog timeout ({why}); stopping the service process to restart it"),
        );
        self.watchdog_fired = true;
        self.send(Signal::SIGTERM);
        self.kill_at = Some(Instant::now() + self.policy.kill_grace);
    }

    fn reap(&mut self) {
        let Some(status) = self.reap_all() else {
            return;
        };
        // Late notifications (READY=1 just before exiting) still count.
        self.read_notify();
        self.child = None;
        self.notify.set_main(None);
        self.kill_at = None;
        self.clean_leftovers();
        let how = describe(status);
        if std::mem::take(&mut self.restart_now) && !self.stopping {
            self.say(
                "info",
                &format!("the service process {how}; starting it again"),
            );
            self.n_restarts += 1;
            if let Err(e) = self.spawn() {
                self.say("error", &format!("{e}; giving up"));
                self.finish(1, false);
            }
            return;
        }
        if self.stopping {
            self.say("info", &format!("the service process {how}; stopped"));
            if self.reporter.pending() {
                self.held.remove();
                self.reporter.failed(&format!(
                    "stopped before it was ready (the service process {how})"
                ));
            }
            self.finish(0, true);
        }
        if !self.ever_ready {
            let mut msg = format!("the service process {how} before it was ready");
            if !self.last_status.is_empty() {
                msg.push_str(&format!(" (its status: {})", self.last_status));
            }
            self.say("error", &msg);
            // Files first: once the launcher hears, `status` must find them gone.
            self.held.remove();
            self.reporter.failed(&msg);
            self.finish(1, true);
        }
        if !self.watchdog_fired && !is_failure(status) {
            self.say(
                "info",
                &format!("the service process {how}; a clean exit is not restarted"),
            );
            self.finish(0, true);
        }
        let why = if self.watchdog_fired {
            "after a watchdog timeout".to_owned()
        } else {
            how
        };
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.restarts.pop_front();
        }
        let n = self.restarts.len() as u32;
        if n >= self.policy.restart_burst {
            self.say(
                "error",
                &format!(
                    "the service process {why}; giving up: {n} restarts within {} (limit {})",
                    format_duration(self.policy.window),
                    self.policy.restart_burst
                ),
            );
            // The PID file stays, unlocked: `status` says the service died.
            self.finish(1, false);
        }
        let delay = self.policy.delay(n);
        self.say(
            "warn",
            &format!(
                "the service process {why}; restart {} of {} in {}",
                n + 1,
                self.policy.restart_burst,
                format_duration(delay)
            ),
        );
        self.restarts.push_back(now);
        self.n_restarts += 1;
        self.restart_at = Some(now + delay);
    }

    /// Reaps every child that ended: the service process (its status is returned)
    /// and orphans of the service adopted by this subreaper.
    fn reap_all(&mut self) -> Option<ExitStatus> {
        let mut main = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    if Some(pid) == self.child {
                        main = Some(ExitStatus::from_raw((code & 0xff) << 8));
                    }
                }
                Ok(WaitStatus::Signaled(pid, sig, core)) => {
                    if Some(pid) == self.child {
                        main = Some(ExitStatus::from_raw(
                            sig as i32 | if core { 0x80 } else { 0 },
                        ));
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return main,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => return main,
            }
        }
    }

    /// Processes the service left behind (adopted by this subreaper): SIGTERM, then
    /// SIGKILL for those still there after a second, as systemd does with the rest of
    /// a unit's control group; the next incarnation never runs beside the old one.
    fn clean_leftovers(&mut self) {
        let left = children();
        if left.is_empty() {
            return;
        }
        self.say(
            "warn",
            &format!(
                "the service left {} process(es) behind ({}); stopping them",
                left.len(),
                left.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
        for p in &left {
            let _ = kill(*p, Signal::SIGTERM);
        }
        let deadline = Instant::now() + LEFTOVER_GRACE;
        loop {
            self.reap_all();
            let left = children();
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                for p in &left {
                    let _ = kill(*p, Signal::SIGKILL);
                }
                self.reap_all();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            if let Err(e) = self.spawn() {
                self.say("error", &format!("{e}; giving up"));
                self.finish(1, false);
            }
        }
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            self.say(
                "warn",
                &format!(
                    "the service process did not stop within {}; killing it",
                    format_duration(self.policy.kill_grace)
                ),
            );
            self.send(Signal::SIGKILL);
        }
        if self.watchdog_deadline().is_some_and(|t| t <= now) {
            let w = self.policy.watchdog.unwrap_or_default();
            self.fire_watchdog(&format!("no WATCHDOG=1 for {}", format_duration(w)));
        }
    }

    /// Ends the supervisor: removes the PID file (unless the service failed for good).
    fn finish(&mut self, code: i32, remove: bool) -> ! {
        if remove {
            self.held.remove();
        }
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy {
            restart_sec: Duration::from_millis(100),
            restart_max: Duration::from_secs(1),
            ..Policy::default()
        };
        let d: Vec<u128> = (0..6).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(1000), Duration::from_secs(1));
    }

    #[test]
    fn failures_follow_systemd_on_failure() {
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        let sig = |s: Signal| ExitStatus::from_raw(s as i32);
        assert!(!is_failure(code(0)));
        assert!(is_failure(code(1)));
        assert!(!is_failure(sig(Signal::SIGTERM)));
        assert!(!is_failure(sig(Signal::SIGPIPE)));
        assert!(is_failure(sig(Signal::SIGSEGV)));
        assert!(is_failure(sig(Signal::SIGKILL)));
        assert_eq!(
            describe(sig(Signal::SIGSEGV)),
            "was killed by signal SIGSEGV"
        );
    }
}
