//! Signalling and waiting for a process that is not our child, without PID races:
//! a pidfd (`pidfd_open(2)`, Linux 5.3) names one process for good, so a PID reused
//! after the process died is never signalled, and `poll(2)` on it wakes the moment
//! the process exits (no sleep-and-check loop).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// A process handle that cannot be confused with a later process of the same PID.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: Pid,
}

impl PidFd {
    /// Opens a handle on `pid` (`ESRCH` if it is gone).
    pub fn open(pid: Pid) -> nix::Result<PidFd> {
        let fd = crate::daemon::signals::pidfd_open(pid)?;
        Ok(PidFd { fd, pid })
    }

    /// The PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `sig` to exactly this process (`ESRCH` once it has exited).
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        // SAFETY: pidfd_send_signal(2) with a valid pidfd, a signal number, no siginfo
        // (NULL) and no flags; it only reads its arguments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    /// Waits until the process has exited or `timeout` passed; true if it exited.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// What `/proc/PID/stat` says about a process's identity and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Its parent.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// Its session.
    pub sid: i32,
    /// When it started, in clock ticks since boot: with the PID, a process's identity
    /// (a reused PID has a later start time).
    pub start: u64,
    /// A zombie (or dead) process: nothing to signal.
    pub dead: bool,
}

/// Reads `/proc/PID/stat` (`None`: no such process).
pub fn stat_of(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain anything, ')' included: the fields follow the last.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        dead: matches!(f.first(), Some(&"Z") | Some(&"X")),
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Every process visible in `/proc` with its stat.
pub fn all_processes() -> Vec<(i32, ProcStat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat_of(pid)?)))
        .collect()
}

impl PidFd {
    /// A handle on `pid` only if it is still the process that started at `start`
    /// (checked after the handle is open, so the handle names that very process).
    pub fn open_proven(pid: Pid, start: u64) -> Option<PidFd> {
        let fd = PidFd::open(pid).ok()?;
        let st = stat_of(pid.as_raw())?;
        (st.start == start && !st.dead).then_some(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stat_and_proof() {
        let me = std::process::id() as i32;
        let st = stat_of(me).unwrap();
        assert_eq!(st.pgid, nix::unistd::getpgrp().as_raw());
        assert!(!st.dead);
        assert!(PidFd::open_proven(Pid::from_raw(me), st.start).is_some());
        assert!(PidFd::open_proven(Pid::from_raw(me), st.start + 1).is_none());
    }
}
