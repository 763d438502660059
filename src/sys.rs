//! Process primitives, shared by the service process ([`crate::daemon`]) and the
//! PID-file backend ([`crate::fallback`]): pidfds, the child's signal set-up between fork
//! and exec, `/proc/PID/stat`, exit statuses in words; and the other few calls into
//! the C library that need `unsafe` (fork, `_exit`, byte-range locks, `getrandom`,
//! local time). The only module allowed `unsafe` (`#![deny(unsafe_code)]` elsewhere);
//! every block says why it is sound.
//!
//! Signalling and waiting for a process that is not our child, without PID races:
//! a pidfd (`pidfd_open(2)`, Linux 5.3) names one process for good, so a PID reused
//! after the process died is never signalled, and `poll(2)` on it wakes the moment
//! the process exits (no sleep-and-check loop).

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
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
        let fd = pidfd_open(pid)?;
        Ok(PidFd { fd, pid })
    }

    /// The PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `sig` to exactly this process (`ESRCH` once it has exited).
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        let sig = rustix::process::Signal::from_named_raw(sig as i32).ok_or(Errno::EINVAL)?;
        rustix::process::pidfd_send_signal(&self.fd, sig).map_err(errno)
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

/// pidfd_open(2) (nix does not wrap it; rustix does): a close-on-exec handle on process `pid`
/// (`ESRCH` if it is gone).
pub fn pidfd_open(pid: nix::unistd::Pid) -> nix::Result<OwnedFd> {
    // pidfd_open(2) refuses PIDs that are not positive with EINVAL.
    let pid = rustix::process::Pid::from_raw(pid.as_raw()).ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(errno)
}

/// rustix's error as nix's.
fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// How a process ended: from a wait status, or from systemd's `ExecMainCode` and
/// `ExecMainStatus` (a `si_code` and its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal (its number) killed it; `core`: it dumped core.
    Killed {
        /// The signal's number.
        signal: i32,
        /// Whether it dumped core.
        core: bool,
    },
}

impl ProcessEnd {
    /// From a wait status (`None`: neither exited nor killed).
    pub fn of(status: ExitStatus) -> Option<ProcessEnd> {
        if let Some(code) = status.code() {
            return Some(ProcessEnd::Exited(code));
        }
        Some(ProcessEnd::Killed {
            signal: status.signal()?,
            core: status.core_dumped(),
        })
    }

    /// From a `si_code` (1 exited, 2 killed, 3 dumped core) and its status, as systemd
    /// reports a main process's end (`None`: it has not ended).
    pub fn from_si_code(code: i32, status: i32) -> Option<ProcessEnd> {
        match code {
            1 => Some(ProcessEnd::Exited(status)),
            2 | 3 => Some(ProcessEnd::Killed {
                signal: status,
                core: code == 3,
            }),
            _ => None,
        }
    }

    /// Whether systemd counts it as a clean end (`Restart=on-failure` does not
    /// restart): status 0, or SIGHUP, SIGINT, SIGTERM or SIGPIPE (what `stop` sends,
    /// and what a service re-raises to end "the same way" as its command).
    pub fn is_clean(self) -> bool {
        match self {
            ProcessEnd::Exited(code) => code == 0,
            ProcessEnd::Killed { signal, .. } => matches!(
                Signal::try_from(signal),
                Ok(Signal::SIGHUP | Signal::SIGINT | Signal::SIGTERM | Signal::SIGPIPE)
            ),
        }
    }

    /// "exited with status 3", "was killed by signal SIGTERM", "was killed by signal
    /// SIGABRT (core dumped)".
    pub fn describe(self) -> String {
        match self {
            ProcessEnd::Exited(code) => format!("exited with status {code}"),
            ProcessEnd::Killed { signal, core } => format!(
                "was killed by signal {}{}",
                signal_name(signal),
                if core { " (core dumped)" } else { "" }
            ),
        }
    }
}

/// `SIGTERM`, or `signal 99` for a number with no name.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// "exited with status 3", "was killed by signal SIGTERM" (see [`ProcessEnd::describe`]).
pub fn describe(status: ExitStatus) -> String {
    match ProcessEnd::of(status) {
        Some(end) => end.describe(),
        None => format!("ended: {status}"),
    }
}

/// Restores the default action of `sig` (`SIG_DFL`).
pub fn default_disposition(sig: Signal) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no handler code, so none of sigaction's
    // requirements on handler functions apply.
    unsafe { sigaction(sig, &default) }.map(drop)
}

/// An `fcntl(2)` lock request of `kind` (`F_WRLCK`, `F_UNLCK`, ...) on byte `byte`.
pub fn flock_struct(kind: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl
}

/// `fork(2)`, for a process known to have one thread (the caller checks): the child
/// then starts with consistent memory and locks.
pub fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller guarantees a single thread, so the child inherits no lock held
    // by another thread; it only makes system calls and runs our own code.
    unsafe { nix::unistd::fork() }
}

/// Closes a raw descriptor that no object of this process owns (one inherited and
/// never wrapped); errors are ignored.
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller guarantees nothing in this process owns `fd` or uses it
    // later, so closing it invalidates no `OwnedFd`/`File`.
    unsafe { libc::close(fd) };
}

/// `_exit(2)`: leaves without running exit handlers or flushing buffers that belong
/// to the process forked from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process; it is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// Gives the C allocator's free memory back to the kernel (`malloc_trim(3)`): what
/// start-up used and freed (argument parsing, the logger, spawning) stops counting
/// as this long-running process's private memory. A no-op outside glibc.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// 64 unpredictable bits from the kernel (`getrandom(2)`), for temporary names.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Unpredictable enough as a fallback, and O_EXCL still guards the create.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32);
    }
    u64::from_ne_bytes(b)
}

/// Seconds since the epoch of a local date and time (the C library's `mktime`, which
/// follows `TZ` and daylight saving time).
pub fn local_epoch(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    // SAFETY: `tm` is a plain C struct; zeroed is a valid value, and mktime only reads
    // and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(y - 1900).ok()?;
    tm.tm_mon = mo as i32 - 1;
    tm.tm_mday = d as i32;
    tm.tm_hour = h as i32;
    tm.tm_min = mi as i32;
    tm.tm_sec = s as i32;
    tm.tm_isdst = -1;
    // SAFETY: a valid, exclusively borrowed `tm`.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t)
}

/// Today's local date.
pub fn local_today(now: SystemTime) -> (i64, u32, u32) {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: zeroed `tm` is valid; localtime_r writes it from a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid, exclusively borrowed arguments; localtime_r writes only `tm`.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    (
        tm.tm_year as i64 + 1900,
        tm.tm_mon as u32 + 1,
        tm.tm_mday as u32,
    )
}

/// Whether `sig` is pending for this thread or the process (`sigpending(2)`).
pub fn signal_pending(sig: Signal) -> bool {
    // SAFETY: sigpending(2) fills the set it is given (all-zero is a valid sigset_t to
    // start from); sigismember(3) reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        libc::sigismember(&set, sig as libc::c_int) == 1
    }
}

/// zbus's own parse of raw message bytes (tests of the private-socket filter compare
/// their output with it). Test-only: zbus's parser is an `unsafe fn`.
#[cfg(test)]
pub(crate) fn parse_dbus_message(bytes: Vec<u8>, big_endian: bool) -> zbus::Result<zbus::Message> {
    use zbus::wire::{
        serialized::{Context, Data},
        Endian,
    };
    let endian = if big_endian {
        Endian::Big
    } else {
        Endian::Little
    };
    let data = Data::new(bytes, Context::new(endian, 0));
    // SAFETY: `from_bytes` is unsafe only because a message may carry file descriptors
    // whose validity it cannot check; these test messages carry none (no UNIX_FDS
    // field), and zbus validates everything else itself.
    unsafe { zbus::Message::from_bytes(data) }
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

/// `sigqueue(3)`, which nix does not wrap: `sig` with `value`, which the receiver's
/// signalfd reads as `ssi_ptr` (see [`crate::daemon::Received::value`]).
pub fn sigqueue(pid: Pid, sig: Signal, value: u64) -> nix::Result<()> {
    let value = libc::sigval {
        sival_ptr: value as usize as *mut libc::c_void,
    };
    // SAFETY: sigqueue(3) takes a PID, a signal number and a value passed by copy (the
    // pointer is never dereferenced: it carries the number); no memory is shared.
    let r = unsafe { libc::sigqueue(pid.as_raw(), sig as libc::c_int, value) };
    Errno::result(r).map(drop)
}

/// Takes over descriptor `raw`, inherited from the process that started us (socket
/// activation: `LISTEN_FDS`): `None` if it is not open; made close-on-exec.
///
/// The caller must own `raw` by protocol (sd_listen_fds: fds 3… are passed to the
/// process `LISTEN_PID` names) and call this once per descriptor.
pub fn take_inherited_fd(raw: RawFd) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl(2) on a descriptor number; an unopened one answers EBADF.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: as above, on a descriptor just seen open.
    unsafe { libc::fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open and, by the activation protocol, ours to own;
    // nothing else in the process refers to it (the caller takes each one once).
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Everything `execve(2)` needs, prepared before the fork, for a child that receives
/// descriptors at fixed numbers and its own PID in an environment variable (socket
/// activation: `LISTEN_PID` can only be known after the fork). See [`exec_with_fds`].
#[derive(Debug)]
pub struct ExecPlan {
    /// The program (a path).
    pub program: std::ffi::CString,
    /// `argv`, `argv[0]` first.
    pub argv: Vec<std::ffi::CString>,
    /// The environment, without the PID variable.
    pub envp: Vec<std::ffi::CString>,
    /// The PID variable's `NAME=` (the child's PID is appended in the child).
    pub pid_var: Vec<u8>,
    /// Descriptors of this process that the child gets at `first_fd`, `first_fd + 1`, …
    pub fds: Vec<RawFd>,
    /// Where they go.
    pub first_fd: RawFd,
}

/// Makes `cmd`'s child run `plan` by itself: its last `pre_exec` hook puts
/// `plan.fds` at `plan.first_fd`… (not close-on-exec), appends its own PID to
/// `plan.pid_var`, and calls `execve(2)`. Register it after every other hook; the
/// descriptors must stay open until `spawn` returns.
pub fn exec_with_fds(cmd: &mut std::process::Command, plan: ExecPlan) {
    use std::os::unix::process::CommandExt;
    let ExecPlan {
        program,
        argv,
        envp,
        mut pid_var,
        fds,
        first_fd,
    } = plan;
    // Room for any PID and its NUL; pointer arrays (as integers: the hook must be
    // Send) and the moved descriptors' slots, all allocated now.
    let digits_at = pid_var.len();
    pid_var.resize(digits_at + 24, 0);
    let mut argv_ptrs: Vec<usize> = vec![0; argv.len() + 1];
    let mut envp_ptrs: Vec<usize> = vec![0; envp.len() + 2];
    let mut moved: Vec<RawFd> = vec![0; fds.len()];
    // SAFETY: the hook runs in the child between fork and exec. It allocates nothing
    // and takes no lock: it writes into the buffers allocated above, and calls
    // getpid(2), fcntl(2), dup2(2) and execve(2), all async-signal-safe. The pointers
    // handed to execve point into `argv`, `envp` and `pid_var`, owned by the hook and
    // NUL-terminated, and the arrays end with a null pointer (their last slot stays 0).
    unsafe {
        cmd.pre_exec(move || {
            let mut pid = libc::getpid() as u64;
            let mut tmp = [0u8; 20];
            let mut n = 0;
            loop {
                tmp[n] = b'0' + (pid % 10) as u8;
                n += 1;
                pid /= 10;
                if pid == 0 {
                    break;
                }
            }
            for i in 0..n {
                pid_var[digits_at + i] = tmp[n - 1 - i];
            }
            pid_var[digits_at + n] = 0;
            // Above the target range first, so that none is overwritten before it has
            // moved; then into place, without close-on-exec.
            let top = first_fd + fds.len() as RawFd;
            for (i, &src) in fds.iter().enumerate() {
                let fd = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, top);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            for (i, &fd) in moved.iter().enumerate() {
                if libc::dup2(fd, first_fd + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (slot, a) in argv_ptrs.iter_mut().zip(&argv) {
                *slot = a.as_ptr() as usize;
            }
            for (slot, e) in envp_ptrs.iter_mut().zip(&envp) {
                *slot = e.as_ptr() as usize;
            }
            envp_ptrs[envp.len()] = pid_var.as_ptr() as usize;
            libc::execve(
                program.as_ptr(),
                argv_ptrs.as_ptr() as *const *const libc::c_char,
                envp_ptrs.as_ptr() as *const *const libc::c_char,
            );
            Err(std::io::Error::last_os_error())
        });
    }
}
