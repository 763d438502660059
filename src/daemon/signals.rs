//! Signals as readable events: TERM, INT, HUP, USR1, USR2 and CHLD are blocked and read
//! from a signalfd that the run loop polls with its other descriptors.
//!
//! Blocking must happen before any thread starts (threads inherit the mask). Children
//! inherit it too, and `std::process::Command` does not reset it: every command this
//! crate spawns goes through [`prepare_child`], which empties the mask between fork
//! and exec (a shell started with SIGTERM blocked would never die of SIGTERM).

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals the run loop handles.
pub const HANDLED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
];

/// `si_code` of a signal the kernel sent (a terminal's ^C, for instance).
const SI_KERNEL: i32 = 0x80;
/// `si_code` of a signal sent with `sigqueue(3)`.
const SI_QUEUE: i32 = -1;

/// One signal read from the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Which signal.
    pub signal: Signal,
    /// Sent by the kernel (a terminal's ^C or ^\), which also reached our children
    /// in the same process group, rather than by a process with kill(2).
    pub from_kernel: bool,
    /// The sending process (0 for the kernel).
    pub sender: i32,
    /// The value sent with `sigqueue(3)`, if it was sent that way.
    pub value: Option<u64>,
}

/// The blocked signals and the signalfd that reads them; restores the previous mask
/// when dropped, after consuming what is still pending.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
    previous: SigSet,
}

impl Signals {
    /// Blocks [`HANDLED`] in the calling thread and opens a non-blocking signalfd.
    pub fn install() -> std::io::Result<Signals> {
        let mut mask = SigSet::empty();
        for s in HANDLED {
            mask.add(s);
        }
        let previous = mask.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .inspect_err(|_| {
                let _ = previous.thread_set_mask();
            })?;
        Ok(Signals { fd, previous })
    }

    /// Every signal pending now (empty when none).
    pub fn drain(&self) -> std::io::Result<Vec<Received>> {
        let mut out = Vec::new();
        while let Some(info) = self.fd.read_signal()? {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            out.push(Received {
                signal,
                from_kernel: info.ssi_code == SI_KERNEL,
                sender: info.ssi_pid as i32,
                value: (info.ssi_code == SI_QUEUE).then_some(info.ssi_ptr),
            });
        }
        Ok(out)
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // The run is over and its exit decided: signals that came meanwhile (a late
        // SIGHUP, a second ^C) are consumed here, not delivered with their default
        // action by the unblocking, which would end the process another way.
        for r in self.drain().unwrap_or_default() {
            log::debug!("{} after the end of the run: ignored", r.signal);
        }
        let _ = self.previous.thread_set_mask();
    }
}

pub use crate::sys::{pidfd, prepare_child};

/// Whether dying of `sig` leaves a core dump (so re-raising it would dump our core).
pub fn dumps_core(sig: Signal) -> bool {
    use Signal::*;
    matches!(
        sig,
        SIGQUIT
            | SIGILL
            | SIGTRAP
            | SIGABRT
            | SIGBUS
            | SIGFPE
            | SIGSEGV
            | SIGSYS
            | SIGXCPU
            | SIGXFSZ
    )
}

/// Ends this process the way a child ended: by the same signal when that signal only
/// terminates (TERM, INT, HUP, KILL, ...), so a parent (systemd, a shell) sees exactly
/// what the child did; for signals that dump core, and if raising fails, by exiting
/// with 128+N, the shell convention, without a core of our own.
pub fn exit_like_signal(sig: Signal) -> ! {
    if !dumps_core(sig) {
        let _ = crate::sys::default_disposition(sig);
        let mut only = SigSet::empty();
        only.add(sig);
        let _ = only.thread_unblock();
        let _ = nix::sys::signal::raise(sig);
    }
    std::process::exit(128 + sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_pending_at_the_end_is_consumed_not_delivered() {
        let signals = Signals::install().unwrap();
        // Pending for this (blocking) thread; unblocked as it is, its default action
        // would end the whole test process.
        nix::sys::signal::raise(Signal::SIGHUP).unwrap();
        drop(signals);
        // Still here; and nothing is left pending either.
        assert!(!crate::sys::signal_pending(Signal::SIGHUP));
    }

    #[test]
    fn pidfd_turns_readable_when_the_child_exits() {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let fd = pidfd(child.id()).expect("pidfd_open");
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(
            poll(&mut fds, PollTimeout::ZERO).unwrap(),
            0,
            "readable while running"
        );
        assert_eq!(poll(&mut fds, PollTimeout::from(5000u16)).unwrap(), 1);
        assert!(child.try_wait().unwrap().is_some(), "exited when readable");
    }

    #[test]
    fn core_dumping_signals_are_known() {
        assert!(dumps_core(Signal::SIGABRT));
        assert!(dumps_core(Signal::SIGSEGV));
        assert!(!dumps_core(Signal::SIGTERM));
        assert!(!dumps_core(Signal::SIGKILL));
    }
}
