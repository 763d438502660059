//! The event loop that drives a [`Service`]: signals, deadlines, watchdog pings and
//! sd_notify state, all from one thread blocked in `poll(2)`.
//!
//! Idle, the loop sleeps until the earliest of its deadlines (the service's next
//! wake-up, the next watchdog ping at half `WATCHDOG_USEC`); deadlines that fall within
//! [`SLACK`] of each other are served by one wake-up, and a wake-up for any other
//! reason sends a due-soon ping early, so pings and the service's timers share
//! wake-ups instead of adding theirs.

use std::os::fd::AsFd;
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
        flush(&mut ctx);
        loop {
            if let Some(exit) = ctx.exit.take() {
                log::debug!("exiting: {exit:?}");
                return Ok(exit);
            }
            super::reload::start_again(&mut ctx, service);
            flush(&mut ctx);
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
            let (signal_ready, fd_ready) = wait(&signals, service, timeout)?;

            let mut child = false;
            if signal_ready {
                for r in signals.drain()? {
                    child |= r.signal == Signal::SIGCHLD;
                    on_signal(&mut ctx, service, r)?;
                    flush(&mut ctx);
                }
            }
            let now = Instant::now();
            let timer_due = ctx.wake_at.is_some_and(|t| t <= now + SLACK);
            if (child || fd_ready || timer_due) && ctx.exit.is_none() {
                ctx.wake_at = None;
                service.run(&mut ctx)?;
                flush(&mut ctx);
            }
            if super::reload::expire(&mut ctx, Instant::now()) {
                flush(&mut ctx);
            }
            if let Some(dog) = dog.as_mut().filter(|_| !ctx.watchdog_delegated) {
                dog.maybe_ping(&mut ctx, service, Instant::now());
            }
        }
    }
}

/// Blocks until a signal, a ready service descriptor or `timeout`.
/// Returns (signalfd readable, a service fd ready).
fn wait<S: Service + ?Sized>(
    signals: &Signals,
    service: &S,
    timeout: Option<Duration>,
) -> Result<(bool, bool), BoxError> {
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
    let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&fds[0]), fds[1..].iter().any(ready)))
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

/// Sends `READY=1` once the service is ready (not once it is stopping), and `STATUS=`
/// when it changed.
fn flush(ctx: &mut Context) {
    super::reload::finish(ctx);
    if ctx.ready && !ctx.ready_sent && !ctx.stopping {
        ctx.ready_sent = true;
        log::info!(mydaemon_event = "ready"; "ready after {} ms", ctx.uptime().as_millis());
        ctx.notifier.ready(Some(&ctx.status));
        ctx.status_sent = ctx.status.clone();
    } else if ctx.status != ctx.status_sent {
        ctx.notifier.status(&ctx.status);
        ctx.status_sent = ctx.status.clone();
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

    /// Pings when due (or when awake anyway and a quarter interval has passed), if the
    /// service is healthy; an unhealthy service is asked again an eighth later.
    fn maybe_ping<S: Service + ?Sized>(
        &mut self,
        ctx: &mut Context,
        service: &mut S,
        now: Instant,
    ) {
        let due = self.next <= now + SLACK;
        let worth_it = now.duration_since(self.last) >= self.interval / 4;
        if !(due || worth_it) {
            return;
        }
        if service.health(ctx) {
            if !self.healthy {
                log::info!(mydaemon_event = "healthy"; "health check passes again: watchdog pings resume");
                self.healthy = true;
            }
            ctx.notifier.watchdog();
            self.last = now;
            self.next = now + self.interval / 2;
        } else {
            if self.healthy {
                log::warn!(mydaemon_event = "unhealthy"; "health check fails: withholding watchdog pings");
                self.healthy = false;
            }
            self.next = now + self.interval / 8;
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
        assert_eq!(msgs[ready], "READY=1\nSTATUS=wake 2\n");
        assert!(
            msgs[..ready].contains(&"STATUS=wake 1\n".to_string()),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m == "WATCHDOG=1\n"), "{msgs:?}");
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
