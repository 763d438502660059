//! The event loop that drives a [`Service`]: signals, deadlines, watchdog pings and
//! sd_notify state, all from one thread blocked in `poll(2)`.
//!
//! Idle, the loop sleeps until the earliest of its deadlines (the service's next
//! wake-up, the next watchdog ping at half `WATCHDOG_USEC`); deadlines that fall within
//! [`SLACK`] of each other are served by one wake-up, and a wake-up for any other
//! reason sends a due-soon ping early, so pings and the service's timers share
//! wake-ups instead of adding theirs. What one wake-up has to say (`READY=1`,
//! `STATUS=`, lines the service passes on, `WATCHDOG=1`) goes out in one datagram, and
//! the service learns which of its descriptors were ready ([`Context::fd_ready`]), so
//! that it reads only those.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::service::{BoxError, Context, Exit, Service};
use super::signals::{Received, Signals};
use crate::notify::Notifier;

/// Deadlines this close to the one that woke the loop are served by the same wake-up.
pub const SLACK: Duration = Duration::from_millis(25);

/// Runs a [`Service`] under systemd's notify protocol (or without it).
#[derive(Debug)]
pub struct Runner {
    name: String,
    notifier: Notifier,
    watchdog: Option<Duration>,
    listeners: Option<super::listen::Listeners>,
    reload_timeout: Duration,
}

impl Runner {
    /// A runner for service `name`, notifying `$NOTIFY_SOCKET` and pinging the watchdog
    /// when `$WATCHDOG_USEC` asks for it (and `$WATCHDOG_PID`, if set, is this process).
    pub fn new(name: &str) -> Runner {
        Runner {
            name: name.to_owned(),
            notifier: Notifier::from_env(),
            watchdog: crate::notify::watchdog_interval(),
            listeners: None,
            reload_timeout: super::reload::DEFAULT_RELOAD_TIMEOUT,
        }
    }

    /// How long a reload the service finishes later
    /// ([`Context::reload_pending`]) may take before it counts as failed (default 90 s).
    pub fn with_reload_timeout(mut self, timeout: Duration) -> Runner {
        self.reload_timeout = timeout;
        self
    }

    /// The listening sockets the service gets ([`Context::listeners`]); by default
    /// those passed to this process (`LISTEN_FDS` with `LISTEN_PID` ours).
    pub fn with_listeners(mut self, listeners: super::listen::Listeners) -> Runner {
        self.listeners = Some(listeners);
        self
    }

    /// Overrides where notifications go (tests, or a manager other than systemd).
    pub fn with_notifier(mut self, notifier: Notifier) -> Runner {
        self.notifier = notifier;
        self
    }

    /// Overrides the watchdog interval (`None`: no pings).
    pub fn with_watchdog(mut self, interval: Option<Duration>) -> Runner {
        self.watchdog = interval.filter(|d| !d.is_zero());
        self
    }

    /// Runs `service` until it exits. Errors from `start` or `run` end it with an error
    /// (the caller exits 1); everything else ends in the service's [`Exit`].
    ///
    /// Must be called before the process starts threads: it blocks the handled signals
    /// in the calling thread and reads them from a signalfd.
    pub fn run<S: Service + ?Sized>(self, service: &mut S) -> Result<Exit, BoxError> {
        let signals = Signals::install().map_err(|e| format!("cannot set up signals: {e}"))?;
        let mut ctx = Context::new(&self.name, self.notifier, self.watchdog);
        ctx.reload.timeout = self.reload_timeout;
        ctx.listeners = self
            .listeners
            .or_else(super::listen::Listeners::from_env)
            .unwrap_or_default();
        let mut dog = self.watchdog.map(Watchdog::new);
        ctx.set_status("starting");
        if let Err(e) = service.start(&mut ctx) {
            ctx.notifier.status(&format!("failed to start: {e}"));
            return Err(format!("failed to start: {e}").into());
        }
        flush(&mut ctx, false);
        // Idle from here on, mostly: what start-up allocated and freed goes back.
        crate::sys::release_free_memory();
        loop {
            if let Some(exit) = ctx.exit.take() {
                log::debug!("exiting: {exit:?}");
                return Ok(exit);
            }
            super::reload::start_again(&mut ctx, service);
            flush(&mut ctx, false);
            let now = Instant::now();
            let dog_next = dog
                .as_ref()
                .filter(|_| !ctx.watchdog_delegated)
                .map(|d| d.next);
            let deadline = [ctx.wake_at, dog_next, ctx.reload.deadline]
                .into_iter()
                .flatten()
                .min();
            let timeout = deadline.map(|d| d.saturating_duration_since(now));
            let (signal_ready, fd_ready) = wait(&signals, service, timeout, &mut ctx.polled_ready)?;

            let mut child = false;
            if signal_ready {
                for r in signals.drain()? {
                    child |= r.signal == Signal::SIGCHLD;
                    on_signal(&mut ctx, service, r)?;
                    flush(&mut ctx, false);
                }
            }
            let now = Instant::now();
            let timer_due = ctx.wake_at.is_some_and(|t| t <= now + SLACK);
            if (child || fd_ready || timer_due) && ctx.exit.is_none() {
                ctx.wake_at = None;
                service.run(&mut ctx)?;
            }
            super::reload::expire(&mut ctx, Instant::now());
            // READY=1 carries a ping: the pings' schedule starts where the service's
            // own timers (exec mode's health checks) start, and they share wake-ups.
            let becoming_ready = ctx.ready && !ctx.ready_sent && !ctx.stopping;
            let ping = match dog.as_mut().filter(|_| !ctx.watchdog_delegated) {
                Some(dog) => dog.maybe_ping(&mut ctx, service, Instant::now(), becoming_ready),
                None => false,
            };
            flush(&mut ctx, ping);
        }
    }
}

/// Blocks until a signal, a ready service descriptor or `timeout`; `ready` gets the
/// service descriptors found ready. Returns (signalfd readable, a service fd ready).
fn wait<S: Service + ?Sized>(
    signals: &Signals,
    service: &S,
    timeout: Option<Duration>,
    ready: &mut Vec<RawFd>,
) -> Result<(bool, bool), BoxError> {
    ready.clear();
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(d) => {
            // Round up: waking a little early would only cost a second wake-up.
            let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    };
    let service_fds = service.poll_fds();
    let mut fds = Vec::with_capacity(1 + service_fds.len());
    fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
    fds.extend(
        service_fds
            .iter()
            .map(|&(fd, events)| PollFd::new(fd, events)),
    );
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok((false, false)),
        Err(e) => return Err(format!("poll: {e}").into()),
    }
    let is_ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    ready.extend(
        fds[1..]
            .iter()
            .zip(&service_fds)
            .filter(|(p, _)| is_ready(p))
            .map(|(_, (fd, _))| fd.as_raw_fd()),
    );
    Ok((is_ready(&fds[0]), !ready.is_empty()))
}

/// Handles one signal: stop, reload, or pass it to the service.
fn on_signal<S: Service + ?Sized>(
    ctx: &mut Context,
    service: &mut S,
    r: Received,
) -> Result<(), BoxError> {
    match r.signal {
        Signal::SIGCHLD => Ok(()),
        Signal::SIGTERM | Signal::SIGINT if !ctx.stopping => {
            log::info!(mydaemon_event = "stopping", mydaemon_signal = r.signal.as_str(); "received {}: stopping", r.signal);
            ctx.begin_stopping(format!("stopping ({})", r.signal));
            service.stop(ctx, r)
        }
        Signal::SIGHUP if ctx.ready && !ctx.stopping => {
            super::reload::on_hup(ctx, service, r);
            Ok(())
        }
        Signal::SIGHUP => {
            let why = if ctx.stopping {
                "stopping"
            } else {
                "not ready yet"
            };
            super::reload::refuse(r.sender, r.value, why);
            service.signal(ctx, r)
        }
        _ => service.signal(ctx, r),
    }
}

/// Sends what is due in one datagram: `READY=1` once the service is ready (not once it
/// is stopping), `STATUS=` when it changed, the lines the service passes on, and
/// `WATCHDOG=1` when `ping`.
fn flush(ctx: &mut Context, ping: bool) {
    super::reload::finish(ctx);
    let mut msg = String::new();
    let mut what = "STATUS";
    if ctx.ready && !ctx.ready_sent && !ctx.stopping {
        ctx.ready_sent = true;
        log::info!(mydaemon_event = "ready"; "ready after {} ms", ctx.uptime().as_millis());
        msg.push_str("READY=1\n");
        what = "READY";
    }
    if what == "READY" || ctx.status != ctx.status_sent {
        msg.push_str("STATUS=");
        msg.push_str(&crate::notify::single_line(&ctx.status));
        msg.push('\n');
        ctx.status_sent = ctx.status.clone();
    }
    if !ctx.passed_on.is_empty() {
        if msg.is_empty() {
            what = "relay";
        }
        msg.push_str(&ctx.passed_on);
        ctx.passed_on.clear();
    }
    if ping {
        if msg.is_empty() {
            what = "WATCHDOG";
        }
        if !msg.lines().any(|l| l == "WATCHDOG=1") {
            msg.push_str("WATCHDOG=1\n");
        }
    }
    if !msg.is_empty() {
        ctx.notifier.send_text(what, &msg);
    }
}

/// Watchdog ping schedule: every half interval, earlier when already awake.
#[derive(Debug)]
struct Watchdog {
    interval: Duration,
    last: Instant,
    next: Instant,
    healthy: bool,
}

impl Watchdog {
    fn new(interval: Duration) -> Watchdog {
        let now = Instant::now();
        log::debug!("watchdog: {} ms, pinging every half", interval.as_millis());
        Watchdog {
            interval,
            last: now,
            next: now + interval / 2,
            healthy: true,
        }
    }

    /// Whether to ping now: when due, when awake anyway and a quarter interval has
    /// passed, or when the service becomes ready (`READY=1` carries the ping) — and the
    /// service is healthy. An unhealthy service is asked again on any wake-up, and by
    /// a wake-up of the watchdog's own only at the last moment a ping still keeps
    /// systemd's watchdog from firing (an eighth of the interval before), then every
    /// half interval: no more often than a healthy one.
    fn maybe_ping<S: Service + ?Sized>(
        &mut self,
        ctx: &mut Context,
        service: &mut S,
        now: Instant,
        becoming_ready: bool,
    ) -> bool {
        let due = self.next <= now + SLACK;
        let worth_it = now.duration_since(self.last) >= self.interval / 4;
        if !(due || worth_it || becoming_ready) {
            return false;
        }
        if service.health(ctx) {
            if !self.healthy {
                log::info!(mydaemon_event = "healthy"; "health check passes again: watchdog pings resume");
                self.healthy = true;
            }
            self.last = now;
            self.next = now + self.interval / 2;
            true
        } else {
            if self.healthy {
                log::warn!(mydaemon_event = "unhealthy"; "health check fails: withholding watchdog pings");
                self.healthy = false;
            }
            let last_chance = self.last + self.interval - self.interval / 8;
            self.next = if last_chance > now + SLACK {
                last_chance
            } else {
                now + self.interval / 2
            };
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// A service that becomes ready on its second wake-up and stops on SIGTERM.
    struct Probe {
        wakes: u32,
        healthy: bool,
    }

    impl Service for Probe {
        fn start(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            ctx.wake_in(Duration::from_millis(20));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            self.wakes += 1;
            ctx.set_status(format!("wake {}", self.wakes));
            if self.wakes == 2 {
                ctx.ready();
            }
            if self.wakes < 4 {
                ctx.wake_in(Duration::from_millis(20));
            } else {
                // Ask for SIGTERM: raise(3) signals the calling thread, where it is blocked.
                nix::sys::signal::raise(Signal::SIGTERM)?;
            }
            Ok(())
        }
        fn health(&mut self, _ctx: &mut Context) -> bool {
            self.healthy
        }
    }

    fn messages(sock: &UnixDatagram) -> Vec<String> {
        sock.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn lifecycle_notifications_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let mut svc = Probe {
            wakes: 0,
            healthy: true,
        };
        let exit = Runner::new("probe")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(Some(Duration::from_millis(60)))
            .run(&mut svc)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(svc.wakes, 4);
        let msgs = messages(&sock);
        let ready = msgs.iter().position(|m| m.starts_with("READY=1")).unwrap();
        // READY=1 carries a ping: the ping schedule starts at readiness.
        assert_eq!(msgs[ready], "READY=1\nSTATUS=wake 2\nWATCHDOG=1\n");
        assert!(
            msgs[..ready]
                .iter()
                .any(|m| m.starts_with("STATUS=wake 1\n")),
            "{msgs:?}"
        );
        assert!(
            msgs[ready + 1..]
                .iter()
                .any(|m| m.ends_with("WATCHDOG=1\n")),
            "{msgs:?}"
        );
        assert_eq!(
            msgs.last().unwrap(),
            "STOPPING=1\nSTATUS=stopping (SIGTERM)\n"
        );
    }

    /// Never ready before the stop; says so while stopping, waits a tick, exits.
    struct LateReady;

    impl Service for LateReady {
        fn start(&mut self, _ctx: &mut Context) -> crate::daemon::ServiceResult {
            nix::sys::signal::raise(Signal::SIGTERM)?;
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            ctx.exit(Exit::Code(3));
            Ok(())
        }
        fn stop(&mut self, ctx: &mut Context, _: Received) -> crate::daemon::ServiceResult {
            ctx.ready();
            ctx.wake_in(Duration::from_millis(10));
            Ok(())
        }
    }

    #[test]
    fn no_ready_once_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let exit = Runner::new("late")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(None)
            .run(&mut LateReady)
            .unwrap();
        assert_eq!(exit, Exit::Code(3));
        let msgs = messages(&sock);
        assert!(msgs.iter().any(|m| m.starts_with("STOPPING=1")), "{msgs:?}");
        assert!(msgs.iter().all(|m| !m.contains("READY=1")), "{msgs:?}");
    }

    /// Every wake-up does 300 ms of blocking "work" (a hung workload, in small).
    struct Stuck {
        wakes: u32,
    }

    impl Service for Stuck {
        fn start(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            ctx.ready();
            ctx.wake_in(Duration::from_millis(1));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            self.wakes += 1;
            std::thread::sleep(Duration::from_millis(300));
            if self.wakes == 4 {
                ctx.exit(Exit::Code(0));
            }
            ctx.wake_in(Duration::from_millis(1));
            Ok(())
        }
    }

    #[test]
    fn a_stuck_workload_stops_the_pings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Time-stamp the pings as they arrive, from another thread.
        let stamps = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 256];
            while let Ok(n) = sock.recv(&mut buf) {
                if &buf[..n] == b"WATCHDOG=1\n" {
                    out.push(Instant::now());
                }
                if buf[..n].starts_with(b"STOPPING") || out.len() > 100 {
                    break;
                }
            }
            out
        });
        // 100 ms watchdog: a separate ping thread would ping every 50 ms.
        let exit = Runner::new("stuck")
            .with_notifier(Notifier::to_socket(Some(path.clone().into())))
            .with_watchdog(Some(Duration::from_millis(100)))
            .run(&mut Stuck { wakes: 0 })
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        // Unblock the receiver (no STOPPING was sent: the service exited by itself).
        let _ = Notifier::to_socket(Some(path.into())).stopping("done");
        let stamps = stamps.join().unwrap();
        assert!(stamps.len() >= 2, "{} pings", stamps.len());
        for pair in stamps.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(250),
                "pinged {gap:?} apart while stuck"
            );
        }
    }

    /// Ready at once; a new status on every wake-up, every 50 ms, five times.
    struct Ticker {
        wakes: u32,
    }

    impl Service for Ticker {
        fn start(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            ctx.ready();
            ctx.wake_in(Duration::from_millis(50));
            Ok(())
        }
        fn run(&mut self, ctx: &mut Context) -> crate::daemon::ServiceResult {
            self.wakes += 1;
            ctx.set_status(format!("tick {}", self.wakes));
            if self.wakes == 5 {
                ctx.exit(Exit::Code(0));
            }
            ctx.wake_in(Duration::from_millis(50));
            Ok(())
        }
    }

    #[test]
    fn status_and_ping_due_together_go_in_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        // Pings every 50 ms, as the ticks: each wake-up has both to say.
        Runner::new("ticker")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(Some(Duration::from_millis(100)))
            .run(&mut Ticker { wakes: 0 })
            .unwrap();
        let msgs = messages(&sock);
        let ticks: Vec<_> = msgs.iter().filter(|m| m.contains("STATUS=tick")).collect();
        assert_eq!(ticks.len(), 5, "{msgs:?}");
        for m in &ticks[..4] {
            assert!(m.ends_with("\nWATCHDOG=1\n"), "a ping of its own: {msgs:?}");
        }
        assert!(!msgs.iter().any(|m| m == "WATCHDOG=1\n"), "{msgs:?}");
    }

    /// Always unhealthy.
    struct Sick;

    impl Service for Sick {
        fn start(&mut self, _ctx: &mut Context) -> crate::daemon::ServiceResult {
            Ok(())
        }
        fn run(&mut self, _ctx: &mut Context) -> crate::daemon::ServiceResult {
            Ok(())
        }
        fn health(&mut self, _ctx: &mut Context) -> bool {
            false
        }
    }

    #[test]
    fn an_unhealthy_service_is_asked_again_before_the_deadline_then_every_half() {
        let interval = Duration::from_secs(8);
        let mut ctx = Context::new("sick", Notifier::to_socket(None), Some(interval));
        let mut dog = Watchdog::new(interval);
        let t0 = dog.last;
        // The ping due at half the interval is withheld; asked again at 7/8, the last
        // chance before systemd's watchdog fires (not every eighth).
        assert!(!dog.maybe_ping(&mut ctx, &mut Sick, t0 + interval / 2, false));
        assert_eq!(dog.next, t0 + interval * 7 / 8);
        // Past it: every half interval, as a healthy service's pings.
        let t = t0 + interval * 7 / 8;
        assert!(!dog.maybe_ping(&mut ctx, &mut Sick, t, false));
        assert_eq!(dog.next, t + interval / 2);
        // Healthy again on any wake-up: pinged at once.
        let t = t + Duration::from_secs(1);
        assert!(dog.maybe_ping(&mut ctx, &mut Ticker { wakes: 0 }, t, false));
        assert_eq!((dog.last, dog.next), (t, t + interval / 2));
    }

    #[test]
    fn unhealthy_service_gets_no_pings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let mut svc = Probe {
            wakes: 0,
            healthy: false,
        };
        Runner::new("probe")
            .with_notifier(Notifier::to_socket(Some(path.into())))
            .with_watchdog(Some(Duration::from_millis(30)))
            .run(&mut svc)
            .unwrap();
        let msgs = messages(&sock);
        assert!(msgs.iter().all(|m| !m.contains("WATCHDOG")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("READY=1")), "{msgs:?}");
    }
}
