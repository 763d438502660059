//! The classic double fork, with a readiness pipe back to the launcher.
//!
//! [`daemonize`] forks; the child calls `setsid(2)` and forks again, so the daemon is
//! in a new session, is not a session leader (it can never acquire a controlling
//! terminal) and is reparented to init. The daemon then makes itself a process-group
//! leader (so `stop` can kill the whole group as a last resort), changes to `/`, sets
//! umask 027, points stdin at `/dev/null` and stdout/stderr at the log file (opened
//! by the launcher, so a permission problem is reported at once), closes every other
//! inherited descriptor, clears the signal mask and runs the daemon's code.
//!
//! # Readiness protocol
//! The launcher keeps the read end of a close-on-exec pipe; the daemon gets the write
//! end as a [`Reporter`]. It writes, one line each: `PID n` once it holds the PID file,
//! then exactly one of `READY`, `BUSY n running|starting` (another daemon holds the PID
//! file) or `FAIL` followed by the error text, and closes the pipe. The launcher reads
//! until end of file: end of file without a verdict means the daemon died before it
//! could say why. The daemon learns that its service is ready the way systemd does
//! (`READY=1` on `$NOTIFY_SOCKET`, see [`super::supervise`]).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::SigSet;
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, pipe2, setpgid, setsid, ForkResult, Pid};

use crate::error::{Error, Result};

/// What the daemon reported to the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The service is ready.
    Ready {
        /// The daemon's PID.
        pid: Pid,
    },
    /// Another daemon already holds the PID file.
    Busy {
        /// Its PID.
        pid: Pid,
        /// Whether it is still starting.
        starting: bool,
    },
    /// Start-up failed; the daemon's own words.
    Failed {
        /// The daemon's PID, when it got that far.
        pid: Option<Pid>,
        /// Why.
        message: String,
    },
    /// No verdict within the time allowed.
    Timeout {
        /// The daemon's PID, when it got that far.
        pid: Option<Pid>,
    },
}

/// The daemon's end of the readiness pipe.
#[derive(Debug)]
pub struct Reporter {
    fd: Option<OwnedFd>,
}

impl Reporter {
    fn write(&mut self, text: &str) {
        if let Some(fd) = &self.fd {
            // Short messages on a pipe: one write(2) each, atomic below PIPE_BUF. If
            // the launcher is gone (EPIPE; SIGPIPE is ignored) there is no one to tell.
            let _ = nix::unistd::write(fd, text.as_bytes());
        }
    }

    /// `PID n`: the daemon holds the PID file.
    pub fn pid(&mut self, pid: Pid) {
        self.write(&format!("PID {pid}\n"));
    }

    /// `READY`: start succeeded; closes the pipe.
    pub fn ready(&mut self) {
        self.write("READY\n");
        self.fd = None;
    }

    /// `BUSY`: another daemon holds the PID file; closes the pipe.
    pub fn busy(&mut self, pid: Pid, starting: bool) {
        let what = if starting { "starting" } else { "running" };
        self.write(&format!("BUSY {pid} {what}\n"));
        self.fd = None;
    }

    /// `FAIL`: start-up failed because of `message`; closes the pipe.
    pub fn failed(&mut self, message: &str) {
        // Longer than PIPE_BUF is unlikely; cut rather than risk a partial message.
        let mut m = format!("FAIL\n{message}");
        if m.len() > 4000 {
            let mut cut = 4000;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
        }
        self.write(&m);
        self.fd = None;
    }

    /// Whether the verdict is still to be given.
    pub fn pending(&self) -> bool {
        self.fd.is_some()
    }

    /// The pipe's descriptor (to keep it open across the fd cleanup).
    fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }
}

/// Refuses to fork a process with more than one thread: the child would inherit
/// locks held by threads that do not exist there.
fn check_single_threaded() -> Result<()> {
    match std::fs::read_dir("/proc/self/task") {
        Ok(d) => {
            if d.count() > 1 {
                return Err(Error::generic(
                    "cannot daemonize a process that runs several threads",
                ));
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

/// Runs `daemon` in a new daemon process whose stdout and stderr are `log`; waits up
/// to `timeout` for its verdict. `keep` are descriptors the daemon needs (all others
/// are closed in it). `daemon` must not return: it ends the process itself.
pub fn daemonize<F>(log: OwnedFd, keep: &[RawFd], timeout: Duration, daemon: F) -> Result<Report>
where
    F: FnOnce(Reporter) -> std::convert::Infallible,
{
    check_single_threaded()?;
    let devnull = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| super::paths::errno("open", "/dev/null".as_ref(), e))?;
    let (r, w) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Error::generic(format!("cannot create the readiness pipe: {e}")))?;
    // One thread (checked above): what fork_single_threaded requires.
    match crate::sys::fork_single_threaded()
        .map_err(|e| Error::generic(format!("cannot fork: {e}")))?
    {
        ForkResult::Parent { child } => {
            drop(w);
            drop(log);
            drop(devnull);
            // The intermediate child exits at once.
            while let Err(Errno::EINTR) = waitpid(child, None) {}
            Ok(read_report(r, timeout))
        }
        ForkResult::Child => {
            drop(r);
            if setsid().is_err() {
                exit_now(1);
            }
            // Still a single thread (a fork of a single-threaded process).
            match crate::sys::fork_single_threaded() {
                Ok(ForkResult::Parent { .. }) => exit_now(0),
                Err(_) => exit_now(1),
                Ok(ForkResult::Child) => {}
            }
            let mut reporter = Reporter { fd: Some(w) };
            if let Err(e) = become_daemon(&log, &devnull) {
                reporter.failed(&format!("cannot set up the daemon process: {e}"));
                exit_now(1);
            }
            drop(log);
            drop(devnull);
            let mut keep = keep.to_vec();
            keep.extend(reporter.raw());
            close_other_fds(&keep);
            // `daemon` ends the process; its return type has no values.
            #[allow(unreachable_code)]
            match daemon(reporter) {}
        }
    }
}

/// The daemon's environment: own process group, `/`, umask, standard descriptors,
/// an empty signal mask.
fn become_daemon(log: &OwnedFd, devnull: &OwnedFd) -> nix::Result<()> {
    setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    chdir("/")?;
    umask(Mode::from_bits_truncate(0o027));
    nix::unistd::dup2_stdin(devnull.as_fd())?;
    nix::unistd::dup2_stdout(log.as_fd())?;
    nix::unistd::dup2_stderr(log.as_fd())?;
    SigSet::empty().thread_set_mask()?;
    Ok(())
}

/// Closes every descriptor above stderr except `keep`.
fn close_other_fds(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        // No /proc: the usual descriptor range.
        Err(_) => (3..4096).collect(),
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // No object in this process that is still going to be used owns it (the
            // ones that are used are in `keep`).
            crate::sys::close_raw(fd);
        }
    }
}

/// `_exit(2)`: leaves without running exit handlers or flushing buffers that belong
/// to the launcher.
fn exit_now(code: i32) -> ! {
    crate::sys::exit_now(code)
}

/// Reads the daemon's verdict.
fn read_report(r: OwnedFd, timeout: Duration) -> Report {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut file = std::fs::File::from(r);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return parse_report(&buf, true);
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return parse_report(&buf, true),
            Err(Errno::EINTR) => continue,
            Err(_) => return parse_report(&buf, false),
            Ok(_) => {}
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) => return parse_report(&buf, false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return parse_report(&buf, false),
        }
    }
}

/// Parses what the daemon wrote; `timed_out` when no end of file came in time.
fn parse_report(buf: &[u8], timed_out: bool) -> Report {
    let text = String::from_utf8_lossy(buf);
    let mut pid = None;
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let complete = line.ends_with('\n');
        let l = line.trim_end_matches('\n');
        let mut words = l.split(' ');
        match (words.next(), complete) {
            (Some("PID"), true) => {
                pid = words.next().and_then(|p| p.parse().ok()).map(Pid::from_raw)
            }
            (Some("READY"), true) => {
                if let Some(pid) = pid {
                    return Report::Ready { pid };
                }
            }
            (Some("BUSY"), true) => {
                if let Some(p) = words.next().and_then(|p| p.parse().ok()) {
                    return Report::Busy {
                        pid: Pid::from_raw(p),
                        starting: words.next() == Some("starting"),
                    };
                }
            }
            (Some("FAIL"), _) if !timed_out || complete => {
                let message: String = lines.collect();
                return Report::Failed {
                    pid,
                    message: message.trim_end().to_owned(),
                };
            }
            _ => {}
        }
    }
    if timed_out {
        Report::Timeout { pid }
    } else {
        Report::Failed {
            pid,
            message: "the daemon exited without saying why".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        let p = Pid::from_raw;
        assert_eq!(
            parse_report(b"PID 7\nREADY\n", false),
            Report::Ready { pid: p(7) }
        );
        assert_eq!(
            parse_report(b"BUSY 9 starting\n", false),
            Report::Busy {
                pid: p(9),
                starting: true
            }
        );
        assert_eq!(
            parse_report(b"PID 7\nFAIL\ncannot run x\nsecond line\n", false),
            Report::Failed {
                pid: Some(p(7)),
                message: "cannot run x\nsecond line".into()
            }
        );
        assert_eq!(
            parse_report(b"PID 7\n", false),
            Report::Failed {
                pid: Some(p(7)),
                message: "the daemon exited without saying why".into()
            }
        );
        assert_eq!(
            parse_report(b"PID 7\nREA", true),
            Report::Timeout { pid: Some(p(7)) }
        );
    }
}
