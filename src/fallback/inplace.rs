//! `restart` of a service with sockets (`--listen`), PID-file backend: the supervisor
//! keeps its listening sockets and only replaces the service process, so clients that
//! connect meanwhile wait in the kernel's queue instead of being refused.
//!
//! The request is SIGHUP sent with `sigqueue(3)` and the value [`RESTART_VALUE`](super::supervise::RESTART_VALUE) (a
//! plain SIGHUP is a reload, passed on); `restart` then waits until the supervisor
//! publishes a new service process that is ready.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::paths::Paths;
use super::pidfile::{PidFile, State};
use super::supervise::{Published, RESTART_VALUE};
use super::{PidfileArgs, Target};
use crate::error::{exit, Error, Result};
use crate::time::format_duration;

/// Restarts the service process in place if the daemon runs and holds sockets;
/// `None`: it does not (the caller stops and starts instead).
pub fn try_restart(g: &Target, pf: &PidfileArgs) -> Result<Option<u8>> {
    let paths = Paths::resolve(&g.name, &pf.paths)?;
    let Some(pidfile) = PidFile::open_existing(&paths)? else {
        return Ok(None);
    };
    let State::Running {
        pid,
        starting: false,
        ..
    } = pidfile.state()?
    else {
        return Ok(None);
    };
    let published = |p: &PidFile| -> Published {
        p.published()
            .and_then(|t| Published::parse(&t))
            .unwrap_or_default()
    };
    let before = published(&pidfile);
    if before.listeners.as_ref().is_none_or(|l| l.is_empty()) {
        return Ok(None);
    }
    let Some(fd) = super::holder_handle(&pidfile, pid)? else {
        return Ok(None);
    };
    let old = before.service_pid;
    crate::daemon::reload::queue_signal(pid, Signal::SIGHUP, RESTART_VALUE).map_err(|e| {
        Error::io(
            "send SIGHUP to",
            format!("pid {pid}"),
            std::io::Error::from(e),
        )
    })?;
    let timeout = pf.timeout.unwrap_or(super::DEFAULT_START_TIMEOUT);
    let deadline = Instant::now() + timeout;
    loop {
        let v = published(&pidfile);
        let new = v.service_pid;
        if new.is_some() && new != old && v.service_ready == Some(true) {
            if !g.quiet {
                println!(
                    "restarted {} (pid {pid}): service process {}, its sockets kept open",
                    g.name,
                    new.unwrap_or(0)
                );
            }
            return Ok(Some(exit::OK));
        }
        if fd.wait_exit(Duration::ZERO) {
            return Err(Error::generic(format!(
                "{} (pid {pid}) exited while restarting; see `mydaemon --name {} logs`",
                g.name, g.name
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::generic(format!(
                "{} (pid {pid}): no new service process was ready within {}",
                g.name,
                format_duration(timeout)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
