//! Signals as readable events: TERM, INT, HUP, USR1, USR2 and CHLD are blocked and read
//! from a signalfd that the run loop polls with its other descriptors.
//!
//! Blocking must happen before any thread starts (threads inherit the mask). Children
//! inherit it too, and `std::process::Command` does not reset it: every command this
//! crate spawns goes through [`prepare_child`], which empties the mask between fork
//! and exec (a shell started with SIGTERM blocked would never die of SIGTERM).

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Makes `cmd`'s process start with an empty signal mask (this process blocks the
/// handled signals) and, with `parent_death`, receive that signal if mydaemon dies
/// without having stopped it (killed by SIGKILL, say).
pub fn prepare_child(cmd: &mut std::process::Command, parent_death: Option<Signal>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec. It only calls
    // pthread_sigmask(3) and prctl(2), both async-signal-safe; it allocates nothing
    // and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            SigSet::empty().thread_set_mask()?;
            if let Some(sig) = parent_death {
                nix::sys::prctl::set_pdeathsig(sig)?;
            }
            Ok(())
        });
    }
}

/// A descriptor that becomes readable when process `pid` (a child of ours) exits:
/// `pidfd_open(2)`, Linux 5.3 and later. `None` where the kernel or a seccomp filter
/// refuses it; SIGCHLD still reports the exit then.
///
/// Unlike SIGCHLD, it cannot be lost to another thread of the process that does not
/// block the signal (a library user's threads, the test harness). Drop it once the
/// child is reaped: it stays readable for good after the exit.
pub fn pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = nix::libc::pid_t::try_from(pid).ok()?;
    pidfd_open(nix::unistd::Pid::from_raw(pid)).ok()
}

/// pidfd_open(2), which nix does not wrap: a close-on-exec handle on process `pid`
/// (`ESRCH` if it is gone).
pub fn pidfd_open(pid: nix::unistd::Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a PID and flags (0) and returns a new descriptor or
    // -1; no memory is passed in or out.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: the syscall just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

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
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_DFL runs no handler code, so none of sigaction's
        // requirements on handler functions apply.
        let _ = unsafe { sigaction(sig, &default) };
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
        // SAFETY: sigpending(2) fills the set it is given; sigismember(3) reads it.
        let pending = unsafe {
            let mut set: nix::libc::sigset_t = std::mem::zeroed();
            nix::libc::sigpending(&mut set);
            nix::libc::sigismember(&set, nix::libc::SIGHUP)
        };
        assert_eq!(pending, 0);
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
