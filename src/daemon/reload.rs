//! Reloads that mean reloaded: the runner's side (`RELOADING=1` … `READY=1` only when
//! the service says it is done, failures reported) and the requester's side (the
//! `ExecReload=` helper that signals the main process and waits for the outcome).
//!
//! Protocol. A requester that wants an answer sends SIGHUP with `sigqueue(3)` and the
//! value [`REQUEST_VALUE`]; a plain `kill -HUP` reloads just the same, unanswered.
//! When the reload is over, the runner answers every queued requester that is waiting
//! with [`REPLY_OK`] or [`REPLY_FAILED`] (plain signals, sent only to processes that
//! asked for them). Before it answers, it has sent `READY=1` with the `STATUS=` of the
//! outcome and a [`RESULT_KEY`] line (`ok` or `failed`) for a supervisor that counts
//! reloads (the PID-file backend); systemd ignores that key. A failed reload's
//! `STATUS=` is `reload failed: WHY`.
//!
//! systemd 252 has no `Type=notify-reload`: the reload job of a `Type=notify` unit
//! ends when `ExecReload=` exits. The generated unit's `ExecReload=` is
//! `mydaemon reload-wait $MAINPID` ([`request`]), which returns only when the service
//! has reloaded, and fails when the reload failed.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

/// The `sigqueue(3)` value that marks a SIGHUP whose sender waits for an answer.
pub const REQUEST_VALUE: u64 = 0x6d79_6452; // "mydR"
/// The answer to a requester: the reload is done.
pub const REPLY_OK: Signal = Signal::SIGUSR1;
/// The answer to a requester: the reload failed (the `STATUS=` says why).
pub const REPLY_FAILED: Signal = Signal::SIGUSR2;
/// The notify key telling a supervisor how the reload ended (`ok`, `failed`).
pub const RESULT_KEY: &str = "MYDAEMON_RELOAD";
/// How long a reload may take, by default (systemd's `TimeoutStartSec=` default).
pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(90);

/// Where a reload stands (kept in the [`Context`](super::Context)).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No reload under way.
    #[default]
    Idle,
    /// `RELOADING=1` sent; `pending`: the service said it finishes later.
    Running {
        /// [`Context::reload_pending`](super::Context::reload_pending) was called.
        pending: bool,
    },
    /// Over: `Ok`, or `Err(why)`; `READY=1` goes out after the callback.
    Done(Result<(), String>),
}

/// The reload state of a run: its phase and who waits for the outcome.
#[derive(Debug)]
pub struct Reload {
    pub(super) phase: Phase,
    /// Processes that asked with [`REQUEST_VALUE`] and wait for the answer.
    pub(super) requesters: Vec<i32>,
    pub(super) started: Option<Instant>,
    /// A pending reload not over by then fails.
    pub(super) deadline: Option<Instant>,
    /// How long a pending reload may take.
    pub(super) timeout: Duration,
    /// SIGHUP came during a reload: another one follows it (what changed meanwhile
    /// may not have been read), for these requesters.
    pub(super) again: Option<Vec<i32>>,
}

impl Default for Reload {
    fn default() -> Self {
        Reload {
            phase: Phase::Idle,
            requesters: Vec::new(),
            started: None,
            deadline: None,
            timeout: DEFAULT_RELOAD_TIMEOUT,
            again: None,
        }
    }
}

impl Reload {
    /// Whether a reload is under way (not yet answered).
    pub fn in_progress(&self) -> bool {
        !matches!(self.phase, Phase::Idle)
    }

    /// Remembers `sender` if it asked for an answer (`value` is the sigqueue value).
    pub(super) fn add_requester(&mut self, sender: i32, value: Option<u64>) {
        if value == Some(REQUEST_VALUE) && sender > 0 && !self.requesters.contains(&sender) {
            self.requesters.push(sender);
        }
    }

    /// Answers every requester and forgets them.
    pub(super) fn answer(&mut self, ok: bool) {
        let sig = if ok { REPLY_OK } else { REPLY_FAILED };
        for pid in self.requesters.drain(..) {
            if let Err(e) = kill(Pid::from_raw(pid), sig) {
                log::debug!("cannot answer the reload request of pid {pid}: {e}");
            }
        }
    }
}

/// Answers a request that cannot be served (not ready yet, stopping): failure.
pub(super) fn refuse(sender: i32, value: Option<u64>, why: &str) {
    if value == Some(REQUEST_VALUE) && sender > 0 {
        log::info!("reload requested by pid {sender} refused: {why}");
        let _ = kill(Pid::from_raw(sender), REPLY_FAILED);
    }
}

/// The outcome of a [`request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service reloaded.
    Reloaded,
    /// The service reports the reload failed.
    Failed,
    /// The main process exited before answering.
    Exited,
    /// No answer within the time given.
    TimedOut,
}

/// Sends SIGHUP to `pid` as a request ([`REQUEST_VALUE`]) and waits at most `timeout`
/// for the answer (or the process's end).
///
/// Blocks [`REPLY_OK`] and [`REPLY_FAILED`] in the calling thread (call it before
/// starting threads).
pub fn request(pid: Pid, timeout: Duration) -> Result<Outcome, String> {
    let mut mask = SigSet::empty();
    mask.add(REPLY_OK);
    mask.add(REPLY_FAILED);
    mask.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    let pidfd = crate::sys::pidfd_open(pid).map_err(|e| format!("no process {pid}: {e}"))?;
    queue_hup(pid).map_err(|e| format!("cannot send SIGHUP to pid {pid}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        while let Some(info) = sfd.read_signal().map_err(|e| format!("signalfd: {e}"))? {
            if info.ssi_pid as i32 != pid.as_raw() {
                continue;
            }
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(s) if s == REPLY_OK => return Ok(Outcome::Reloaded),
                Ok(s) if s == REPLY_FAILED => return Ok(Outcome::Failed),
                _ => {}
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Outcome::TimedOut);
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        let answered = fds[0].revents().is_some_and(|r| !r.is_empty());
        if exited && !answered {
            return Ok(Outcome::Exited);
        }
    }
}

/// `sigqueue(pid, SIGHUP, REQUEST_VALUE)`.
fn queue_hup(pid: Pid) -> nix::Result<()> {
    queue_signal(pid, Signal::SIGHUP, REQUEST_VALUE)
}

/// `sigqueue(3)`: `sig` with `value` (the receiver's signalfd reads it as
/// [`Received::value`](super::Received::value)).
pub fn queue_signal(pid: Pid, sig: Signal, value: u64) -> nix::Result<()> {
    crate::sys::sigqueue(pid, sig, value)
}

/// The runner's SIGHUP: starts a reload (`RELOADING=1`, [`Service::reload`]) or, while
/// one is under way, adds the requester to those waiting for it.
pub(super) fn on_hup<S: super::Service + ?Sized>(
    ctx: &mut super::Context,
    service: &mut S,
    r: super::Received,
) {
    if ctx.reload.in_progress() {
        log::info!("received SIGHUP while reloading: another reload follows this one");
        let again = ctx.reload.again.get_or_insert_with(Vec::new);
        if r.value == Some(REQUEST_VALUE) && r.sender > 0 && !again.contains(&r.sender) {
            again.push(r.sender);
        }
        return;
    }
    log::info!(mydaemon_event = "reloading"; "received SIGHUP: reloading");
    ctx.reload.add_requester(r.sender, r.value);
    begin(ctx, service);
}

/// Before the runner waits: the reload asked for during the last one, now that it is
/// over (refused if the service is stopping).
pub(super) fn start_again<S: super::Service + ?Sized>(ctx: &mut super::Context, service: &mut S) {
    if ctx.reload.in_progress() || ctx.reload.again.is_none() {
        return;
    }
    let waiting = ctx.reload.again.take().unwrap_or_default();
    if ctx.stopping || !ctx.ready {
        for pid in waiting {
            let _ = kill(Pid::from_raw(pid), REPLY_FAILED);
        }
        return;
    }
    log::info!(mydaemon_event = "reloading"; "reloading again (SIGHUP during the last reload)");
    ctx.reload.requesters = waiting;
    begin(ctx, service);
}

/// `RELOADING=1`, then [`Service::reload`](super::Service::reload).
fn begin<S: super::Service + ?Sized>(ctx: &mut super::Context, service: &mut S) {
    ctx.notifier.reloading();
    ctx.status_sent = "reloading".into();
    ctx.reload.started = Some(Instant::now());
    ctx.reload.phase = Phase::Running { pending: false };
    match service.reload(ctx) {
        Err(e) => ctx.reload_failed(e.to_string()),
        Ok(()) => {
            if ctx.reload.phase == (Phase::Running { pending: false }) {
                ctx.reloaded();
            }
        }
    }
    finish(ctx);
}

/// After the service's turn: a pending reload past its deadline fails (the service's
/// own timeout, such as exec mode's, had its chance first). True if it did.
pub(super) fn expire(ctx: &mut super::Context, now: Instant) -> bool {
    let late = ctx.reload.deadline.is_some_and(|d| d <= now);
    if late && ctx.is_reloading() {
        let t = crate::time::format_duration(ctx.reload.timeout);
        ctx.reload_failed(format!("the reload did not finish within {t}"));
        return true;
    }
    false
}

/// After a callback: if the reload is over, `READY=1` with the outcome's `STATUS=`,
/// then the answers. A service that stops instead fails the reload.
pub(super) fn finish(ctx: &mut super::Context) {
    if ctx.stopping && ctx.reload.in_progress() {
        if let Phase::Running { .. } = ctx.reload.phase {
            ctx.reload.phase = Phase::Done(Err("the service is stopping".into()));
        }
    }
    if !matches!(ctx.reload.phase, Phase::Done(_)) {
        return;
    }
    let Phase::Done(result) = std::mem::take(&mut ctx.reload.phase) else {
        return;
    };
    ctx.reload.deadline = None;
    let took = ctx
        .reload
        .started
        .take()
        .map_or(0, |t| t.elapsed().as_millis());
    let ok = result.is_ok();
    let status = match result {
        Ok(()) => {
            log::info!(mydaemon_event = "reloaded"; "reload complete after {took} ms");
            ctx.status.clone()
        }
        Err(why) => {
            log::error!(mydaemon_event = "reload-failed"; "reload failed after {took} ms, keeping the previous configuration: {why}");
            ctx.status = format!("reload failed: {}", why.replace(['\n', '\r'], " "));
            ctx.status.clone()
        }
    };
    if !ctx.stopping {
        let result = format!("{RESULT_KEY}={}", if ok { "ok" } else { "failed" });
        ctx.notifier.send(
            "READY",
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
                sd_notify::NotifyState::Custom(&result),
            ],
        );
        ctx.status_sent = status;
    }
    ctx.reload.answer(ok);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{Context, Exit, Runner, ServiceResult};
    use crate::notify::Notifier;
    use std::os::unix::net::UnixDatagram;

    /// Ready at once, asks itself to reload; finishes the reload 200 ms later from
    /// `run`, with `outcome`, then stops.
    struct Later {
        outcome: Result<(), String>,
        reload_asked: Option<Instant>,
        done: bool,
    }

    impl crate::daemon::Service for Later {
        fn start(&mut self, ctx: &mut Context) -> ServiceResult {
            ctx.set_status("up");
            ctx.ready();
            nix::sys::signal::raise(Signal::SIGHUP)?;
            Ok(())
        }
        fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
            ctx.reload_pending();
            self.reload_asked = Some(Instant::now());
            ctx.wake_in(Duration::from_millis(200));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> ServiceResult {
            if self.done {
                ctx.exit(Exit::Code(0));
                return Ok(());
            }
            if self
                .reload_asked
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(200))
            {
                assert!(ctx.is_reloading());
                match &self.outcome {
                    Ok(()) => ctx.reloaded(),
                    Err(why) => ctx.reload_failed(why.clone()),
                }
                self.done = true;
                ctx.wake_in(Duration::from_millis(1));
            } else {
                ctx.wake_in(Duration::from_millis(20));
            }
            Ok(())
        }
    }

    fn run_later(outcome: Result<(), String>) -> Vec<(Instant, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let stamps = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let last = m.contains(RESULT_KEY);
                out.push((Instant::now(), m));
                if last {
                    break;
                }
            }
            out
        });
        let mut svc = Later {
            outcome,
            reload_asked: None,
            done: false,
        };
        let exit = Runner::new("later")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(None)
            .run(&mut svc)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        stamps.join().unwrap()
    }

    #[test]
    fn a_pending_reload_sends_ready_only_when_the_service_says_so() {
        let msgs = run_later(Ok(()));
        let reloading = msgs
            .iter()
            .find(|(_, m)| m.starts_with("RELOADING=1"))
            .expect("RELOADING=1 sent");
        let (t, last) = msgs.last().unwrap();
        assert_eq!(last, "READY=1\nSTATUS=up\nMYDAEMON_RELOAD=ok\n", "{msgs:?}");
        assert!(
            *t - reloading.0 >= Duration::from_millis(180),
            "READY=1 {:?} after RELOADING=1",
            *t - reloading.0
        );
        let readies = msgs.iter().filter(|(_, m)| m.contains("READY=1")).count();
        assert_eq!(readies, 2, "start and end of the reload only: {msgs:?}");
    }

    #[test]
    fn a_failed_reload_says_why_in_its_status() {
        let msgs = run_later(Err("line 3: unknown key".into()));
        let (_, last) = msgs.last().unwrap();
        assert_eq!(
            last,
            "READY=1\nSTATUS=reload failed: line 3: unknown key\nMYDAEMON_RELOAD=failed\n"
        );
    }

    /// Never finishes the reload it says is pending.
    struct Forgets;

    impl crate::daemon::Service for Forgets {
        fn start(&mut self, ctx: &mut Context) -> ServiceResult {
            ctx.set_status("up");
            ctx.ready();
            nix::sys::signal::raise(Signal::SIGHUP)?;
            Ok(())
        }
        fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
            ctx.reload_pending();
            ctx.wake_in(Duration::from_millis(20));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> ServiceResult {
            if ctx.is_reloading() {
                ctx.wake_in(Duration::from_millis(20));
            } else {
                ctx.exit(Exit::Code(0));
            }
            Ok(())
        }
    }

    #[test]
    fn a_pending_reload_never_finished_fails_after_the_reload_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let started = Instant::now();
        // The service exits on its first wake-up after the reload is over.
        let exit = Runner::new("forgets")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(None)
            .with_reload_timeout(Duration::from_millis(300))
            .run(&mut Forgets)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let mut msgs = Vec::new();
        while let Ok(n) = sock.recv(&mut buf) {
            msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let last = msgs
            .iter()
            .find(|m| m.contains(RESULT_KEY))
            .unwrap_or_else(|| panic!("no reload outcome: {msgs:?}"));
        assert_eq!(
            last,
            "READY=1\nSTATUS=reload failed: the reload did not finish within 300ms\nMYDAEMON_RELOAD=failed\n"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    /// Asks for a second reload during its first (pending for 100 ms each).
    struct Twice {
        reloads: u32,
        since: Option<Instant>,
    }

    impl crate::daemon::Service for Twice {
        fn start(&mut self, ctx: &mut Context) -> ServiceResult {
            ctx.ready();
            nix::sys::signal::raise(Signal::SIGHUP)?;
            Ok(())
        }
        fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
            self.reloads += 1;
            if self.reloads == 1 {
                nix::sys::signal::raise(Signal::SIGHUP)?;
            }
            ctx.reload_pending();
            self.since = Some(Instant::now());
            ctx.wake_in(Duration::from_millis(100));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> ServiceResult {
            if ctx.is_reloading() {
                if self
                    .since
                    .is_some_and(|t| t.elapsed() >= Duration::from_millis(100))
                {
                    ctx.set_status(format!("reloaded {}", self.reloads));
                    ctx.reloaded();
                }
                ctx.wake_in(Duration::from_millis(10));
            } else if self.reloads == 2 {
                ctx.exit(Exit::Code(0));
            } else {
                ctx.wake_in(Duration::from_millis(10));
            }
            Ok(())
        }
    }

    #[test]
    fn a_sighup_during_a_reload_gets_a_reload_of_its_own_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let mut svc = Twice {
            reloads: 0,
            since: None,
        };
        let exit = Runner::new("twice")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(None)
            .run(&mut svc)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let mut msgs = Vec::new();
        while let Ok(n) = sock.recv(&mut buf) {
            msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let kinds: Vec<&str> = msgs
            .iter()
            .filter_map(|m| {
                if m.starts_with("RELOADING=1") {
                    Some("RELOADING")
                } else if m.contains(RESULT_KEY) {
                    Some("DONE")
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(
            kinds,
            ["RELOADING", "DONE", "RELOADING", "DONE"],
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("STATUS=reloaded 2")),
            "{msgs:?}"
        );
    }
}
