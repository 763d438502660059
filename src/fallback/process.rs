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
