//! A Rust service built on the mydaemon library: a TCP greeter.
//!
//! It listens on ADDR (default 127.0.0.1:7070), answers every connection with a
//! greeting line and closes it. The [`Runner`] does the systemd side: `READY=1` once
//! the socket is bound, `STATUS=` with the number of greetings, reload on SIGHUP (the
//! greeting is re-read from GREETING_FILE), `STOPPING=1` and a clean exit on SIGTERM,
//! and watchdog pings while the listener is healthy.
//!
//! ```text
//! cargo run --example greeter -- 127.0.0.1:7070 /etc/greeting
//! ```
//! As a systemd unit: `Type=notify`, `ExecStart=/path/to/greeter`,
//! `ExecReload=/bin/kill -HUP $MAINPID`, `WatchdogSec=10`. Socket-activated (a
//! `greeter.socket` with `ListenStream=`), it serves from the socket it is passed
//! (`ctx.listeners()`, from `LISTEN_FDS`) instead of binding ADDR.

use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use mydaemon::{Context, Exit, Received, Runner, Service, ServiceResult};
use nix::errno::Errno;

/// The greeter's state.
struct Greeter {
    addr: String,
    greeting_file: Option<PathBuf>,
    greeting: String,
    listener: Option<TcpListener>,
    /// Out of descriptors: not accepting until this wake-up.
    paused: bool,
    served: u64,
}

impl Greeter {
    fn load_greeting(&mut self) -> ServiceResult {
        if let Some(path) = &self.greeting_file {
            self.greeting = std::fs::read_to_string(path)?.trim().to_owned();
            log::info!("greeting from {}: {:?}", path.display(), self.greeting);
        }
        Ok(())
    }

    fn status(&self) -> String {
        format!("{} greetings served on {}", self.served, self.addr)
    }
}

impl Service for Greeter {
    fn start(&mut self, ctx: &mut Context) -> ServiceResult {
        self.load_greeting()?;
        // Socket-activated (a NAME.socket, or `mydaemon --backend pidfile start
        // --listen`): the socket passed in; else bind ADDR ourselves.
        let listener = match ctx.listeners().iter().next() {
            Some(passed) => passed.tcp_listener()?,
            None => TcpListener::bind(&self.addr)?,
        };
        listener.set_nonblocking(true)?;
        log::info!("listening on {}", listener.local_addr()?);
        self.listener = Some(listener);
        ctx.set_status(self.status());
        ctx.ready(); // READY=1 goes out now, with the socket bound.
        Ok(())
    }

    /// Called when the listener is readable (see `fds`): accept what is waiting.
    fn run(&mut self, ctx: &mut Context) -> ServiceResult {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        self.paused = false;
        loop {
            match listener.accept() {
                Ok((mut conn, peer)) => {
                    // One short write to a fresh socket: it does not block.
                    let _ = writeln!(conn, "{}", self.greeting);
                    self.served += 1;
                    log::debug!("greeted {peer}");
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Out of descriptors: the listener stays readable, so stop polling it
                // for a moment rather than spin (see `fds`).
                Err(e)
                    if matches!(
                        e.raw_os_error().map(Errno::from_raw),
                        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
                    ) =>
                {
                    log::warn!("accept: {e}; pausing for 100 ms");
                    self.paused = true;
                    ctx.wake_in(std::time::Duration::from_millis(100));
                    break;
                }
                // One failed connection (aborted, reset, ...) is not the service's end;
                // the next readable listener brings the next one.
                Err(e) => {
                    log::warn!("accept: {e}");
                    break;
                }
            }
        }
        ctx.set_status(self.status());
        Ok(())
    }

    fn reload(&mut self, ctx: &mut Context) -> ServiceResult {
        self.load_greeting()?;
        ctx.set_status(self.status());
        Ok(())
    }

    fn stop(&mut self, ctx: &mut Context, _signal: Received) -> ServiceResult {
        self.listener = None; // close the socket: no new connections
        log::info!("stopped after {} greetings", self.served);
        ctx.exit(Exit::Code(0));
        Ok(())
    }

    fn health(&mut self, _ctx: &mut Context) -> bool {
        self.listener
            .as_ref()
            .is_some_and(|l| l.take_error().ok().flatten().is_none())
    }

    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        if self.paused {
            return Vec::new();
        }
        self.listener.iter().map(|l| l.as_fd()).collect()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut greeter = Greeter {
        addr: args.next().unwrap_or_else(|| "127.0.0.1:7070".into()),
        greeting_file: args.next().map(PathBuf::from),
        greeting: "hello from a mydaemon service".into(),
        listener: None,
        paused: false,
        served: 0,
    };
    // journald under systemd, timestamped stderr lines elsewhere.
    mydaemon::daemon::log::init("greeter", log::LevelFilter::Info);
    match Runner::new("greeter").run(&mut greeter) {
        Ok(exit) => exit.terminate(),
        Err(e) => {
            log::error!("{e}");
            std::process::exit(1);
        }
    }
}
