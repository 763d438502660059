//! The [`Service`] trait a workload implements, and the [`Context`] the runner hands it.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sys::signal::Signal;

use super::signals::Received;
use crate::notify::Notifier;

/// The error a service callback returns: anything that implements `std::error::Error`,
/// so `?` works on I/O errors, `mydaemon::Error` and your own types alike.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a service callback.
pub type ServiceResult = Result<(), BoxError>;

/// A long-running workload driven by [`Runner`](super::Runner).
///
/// The runner owns the event loop: it blocks in `poll(2)` on a signalfd, the
/// descriptors from [`fds`](Service::fds) (or [`poll_fds`](Service::poll_fds)) and the earliest deadline (the one set with
/// [`Context::wake_at`] and the watchdog's), and calls back into the service. Callbacks
/// must not block for long: the watchdog pings come from the same loop, which is the
/// point — a service stuck in a callback stops the pings and systemd restarts it.
///
/// Lifecycle: [`start`](Service::start) (call [`Context::ready`] once initialised,
/// there or later from `run`) → [`run`](Service::run) on every wake-up →
/// [`reload`](Service::reload) on SIGHUP → [`stop`](Service::stop) on SIGTERM/SIGINT,
/// which ends with [`Context::exit`].
pub trait Service {
    /// Initialises the service. Call [`Context::ready`] when it can do its job — here
    /// when initialisation is synchronous, or later from [`run`](Service::run) when
    /// readiness must be awaited. `READY=1` goes out when you do, not before. An error
    /// fails the start (exit status 1).
    fn start(&mut self, ctx: &mut Context) -> ServiceResult;

    /// Does the work. Called on every wake-up: the deadline set with
    /// [`Context::wake_at`] passed, one of [`fds`](Service::fds) became readable (or
    /// one of [`poll_fds`](Service::poll_fds) ready), or a
    /// child process changed state (SIGCHLD). The runner forgets the previous deadline
    /// before each call: set the next one here. Check your own state; several causes
    /// may coincide. An error ends the service (exit status 1).
    fn run(&mut self, ctx: &mut Context) -> ServiceResult;

    /// SIGHUP after the service is ready: re-read the configuration. The runner has
    /// sent `RELOADING=1`; `READY=1` goes out when the reload is over: when this
    /// returns `Ok`, or — if you called [`Context::reload_pending`] here — when you
    /// later call [`Context::reloaded`] or [`Context::reload_failed`] (from `run`, say).
    /// An error fails the reload: the service keeps running with what it had, its
    /// `STATUS=` says `reload failed: …`, and `mydaemon reload` exits non-zero with
    /// those words.
    fn reload(&mut self, _ctx: &mut Context) -> ServiceResult {
        log::info!("reload requested; nothing to reload");
        Ok(())
    }

    /// SIGTERM or SIGINT (the first one): `STOPPING=1` has been sent. Finish, then call
    /// [`Context::exit`] — here, or later from [`run`](Service::run) (waiting for a
    /// child, say). The default exits 0 at once.
    fn stop(&mut self, ctx: &mut Context, _signal: Received) -> ServiceResult {
        ctx.exit(Exit::Code(0));
        Ok(())
    }

    /// Whether the service is healthy. Called before each watchdog ping; the ping goes
    /// out only when this is true, so systemd restarts a service that stays unhealthy
    /// past `WatchdogSec=`. Keep it quick.
    fn health(&mut self, _ctx: &mut Context) -> bool {
        true
    }

    /// Any other signal the runner reads: SIGUSR1, SIGUSR2, SIGHUP before ready, and
    /// SIGTERM/SIGINT again while stopping. The default logs it.
    fn signal(&mut self, _ctx: &mut Context, signal: Received) -> ServiceResult {
        log::info!("received {}; nothing to do", signal.signal);
        Ok(())
    }

    /// Descriptors the runner should poll for readability (a socket, a pipe); `run` is
    /// called when one is readable. Read them there, and stop returning one that stays
    /// readable for good (a pipe at end of file, a hung-up socket): it would have `run`
    /// called again at once, forever. Default: none.
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }

    /// What the runner actually polls: descriptors with the `poll(2)` events to wait
    /// for. Override it instead of [`fds`](Service::fds) when a descriptor needs more
    /// than readability (a connecting socket: `POLLOUT`). Default: `fds` for `POLLIN`.
    fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        self.fds()
            .into_iter()
            .map(|fd| (fd, PollFlags::POLLIN))
            .collect()
    }
}

/// How the service process should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Code(u8),
    /// End as if killed by this signal (exec mode: the child was): re-raise it, or exit
    /// 128+N when it would dump core. See [`Exit::terminate`].
    Signal(Signal),
}

impl Exit {
    /// The shell-style status: the code, or 128+N for a signal.
    pub fn code(self) -> u8 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => (128 + s as i32).min(255) as u8,
        }
    }

    /// Ends the process with this outcome (for `Exit::Signal`, by re-raising the
    /// signal so the parent sees the same death; see
    /// `signals::exit_like_signal`).
    pub fn terminate(self) -> ! {
        match self {
            Exit::Code(c) => std::process::exit(c.into()),
            Exit::Signal(s) => super::signals::exit_like_signal(s),
        }
    }
}

/// What a service can see and ask of the runner during a callback.
#[derive(Debug)]
pub struct Context {
    pub(super) name: String,
    pub(super) started: Instant,
    pub(super) notifier: Notifier,
    pub(super) ready: bool,
    pub(super) ready_sent: bool,
    pub(super) stopping: bool,
    pub(super) status: String,
    pub(super) status_sent: String,
    pub(super) wake_at: Option<Instant>,
    pub(super) exit: Option<Exit>,
    pub(super) watchdog: Option<Duration>,
    pub(super) watchdog_delegated: bool,
    pub(super) reload: super::reload::Reload,
    pub(super) listeners: super::listen::Listeners,
    /// The descriptors the last `poll(2)` found ready (see [`Context::fd_ready`]).
    pub(super) polled_ready: Vec<RawFd>,
    /// Lines to pass on to the service manager with the next notification
    /// ([`Context::pass_on`]), newline-terminated.
    pub(super) passed_on: String,
}

impl Context {
    pub(super) fn new(name: &str, notifier: Notifier, watchdog: Option<Duration>) -> Self {
        Context {
            name: name.to_owned(),
            started: Instant::now(),
            notifier,
            ready: false,
            ready_sent: false,
            stopping: false,
            status: String::new(),
            status_sent: String::new(),
            wake_at: None,
            exit: None,
            watchdog,
            watchdog_delegated: false,
            reload: super::reload::Reload::default(),
            listeners: super::listen::Listeners::none(),
            polled_ready: Vec::new(),
            passed_on: String::new(),
        }
    }

    /// The service name (`--name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time since the runner started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Marks the service ready: `READY=1` goes out after this callback returns.
    pub fn ready(&mut self) {
        self.ready = true;
    }

    /// Whether [`ready`](Context::ready) was called.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the service is stopping (SIGTERM/SIGINT received, or
    /// [`begin_stopping`](Context::begin_stopping) called).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Starts stopping on the service's own decision: `STOPPING=1` with `status` goes
    /// out now, and `READY=1` never will. Later calls do nothing.
    pub fn begin_stopping(&mut self, status: impl Into<String>) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.status = status.into();
        self.notifier.stopping(&self.status);
        self.status_sent = self.status.clone();
    }

    /// Sets the `STATUS=` line; sent after this callback returns, when it changed.
    pub fn set_status(&mut self, text: impl Into<String>) {
        self.status = text.into();
    }

    /// The current status line.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Asks to be woken (`run` called) at `when`; the earliest request wins.
    pub fn wake_at(&mut self, when: Instant) {
        self.wake_at = Some(self.wake_at.map_or(when, |t| t.min(when)));
    }

    /// Asks to be woken after `after`.
    pub fn wake_in(&mut self, after: Duration) {
        self.wake_at(Instant::now() + after);
    }

    /// Ends the service with `exit` after this callback returns.
    pub fn exit(&mut self, exit: Exit) {
        self.exit = Some(exit);
    }

    /// In [`Service::reload`]: the reload finishes later, when [`reloaded`] or
    /// [`reload_failed`] is called; `READY=1` waits until then.
    ///
    /// [`reloaded`]: Context::reloaded
    /// [`reload_failed`]: Context::reload_failed
    ///
    /// A pending reload not finished within the runner's reload timeout (90 s unless
    /// [`Runner::with_reload_timeout`](super::Runner::with_reload_timeout)) fails.
    pub fn reload_pending(&mut self) {
        if let super::reload::Phase::Running { pending } = &mut self.reload.phase {
            *pending = true;
            self.reload.deadline = Some(Instant::now() + self.reload.timeout);
        }
    }

    /// The pending reload is done: `READY=1` goes out after this callback returns.
    pub fn reloaded(&mut self) {
        if let super::reload::Phase::Running { .. } = self.reload.phase {
            self.reload.phase = super::reload::Phase::Done(Ok(()));
        }
    }

    /// The pending reload failed because of `why`: `READY=1` goes out after this
    /// callback with `STATUS=reload failed: WHY`, and whoever asked is told.
    pub fn reload_failed(&mut self, why: impl Into<String>) {
        if let super::reload::Phase::Running { .. } = self.reload.phase {
            self.reload.phase = super::reload::Phase::Done(Err(why.into()));
        }
    }

    /// Whether a reload is under way (`RELOADING=1` sent, not yet over).
    pub fn is_reloading(&self) -> bool {
        matches!(self.reload.phase, super::reload::Phase::Running { .. })
    }

    /// The listening sockets passed to the service (socket activation: systemd's
    /// `LISTEN_FDS`, or those the PID-file backend bound), in `--listen` order; see
    /// [`Listener::tcp_listener`](super::listen::Listener::tcp_listener) and friends.
    pub fn listeners(&self) -> &super::listen::Listeners {
        &self.listeners
    }

    /// Whether the `poll(2)` the runner woke from found `fd` (one of
    /// [`Service::poll_fds`]) ready: read or reap it only then, rather than trying every
    /// descriptor on every wake-up. False in [`Service::start`] (nothing polled yet).
    pub fn fd_ready(&self, fd: BorrowedFd<'_>) -> bool {
        self.polled_ready.contains(&fd.as_raw_fd())
    }

    /// Queues `line` (`KEY=VALUE`, already checked) to go to the service manager in the
    /// datagram the runner sends after this callback, with `STATUS=` and a due
    /// `WATCHDOG=1` (exec mode relaying its command's messages).
    pub(crate) fn pass_on(&mut self, line: &str) {
        self.passed_on.push_str(line);
        self.passed_on.push('\n');
    }

    /// The notifier, to send what the runner does not (relayed messages, say).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The watchdog interval systemd expects pings within, if it is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Stops (or resumes) the runner's own watchdog pings because the service sends
    /// them itself (exec mode relaying a child that pings).
    pub fn delegate_watchdog(&mut self, delegated: bool) {
        self.watchdog_delegated = delegated;
    }
}
