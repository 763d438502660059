//! Readiness and health probes: `tcp:HOST:PORT`, `unix:PATH`, `file:PATH`, `exec:CMD`.
//!
//! `file:` and `unix:` probes answer at once (a Unix socket whose backlog is full is
//! not accepting: a failure). `tcp:` and `exec:` probes run without blocking the run
//! loop: a non-blocking connect the loop polls for writability (a host name lookup
//! may block, see [`Probe::Tcp`]), `/bin/sh -c CMD` whose exit arrives through a pidfd
//! (and SIGCHLD); both are collected by [`Check::poll`] and fail past their timeout.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    UnixAddr,
};

use crate::time::format_duration;

/// Something to check: a port that accepts, a socket that accepts, a file that exists,
/// a command that exits 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `tcp:HOST:PORT`: a TCP connect succeeds. A host name is resolved at every check,
    /// with getaddrinfo(3), which blocks the run loop while DNS answers (names in
    /// /etc/hosts, such as localhost, resolve at once): prefer IP literals.
    Tcp(String),
    /// `unix:PATH`: a Unix stream socket accepts a connection.
    Unix(PathBuf),
    /// `file:PATH`: the path exists.
    File(PathBuf),
    /// `exec:CMD`: `/bin/sh -c CMD` exits 0.
    Exec(String),
}

impl FromStr for Probe {
    type Err = String;
    fn from_str(s: &str) -> Result<Probe, String> {
        let (kind, arg) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected KIND:ARGUMENT (tcp:HOST:PORT, unix:PATH, file:PATH, exec:CMD)")
        })?;
        if arg.is_empty() {
            return Err(format!("{s:?}: empty {kind} argument"));
        }
        match kind {
            "tcp" => {
                let (host, port) = arg
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{s:?}: expected tcp:HOST:PORT"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(format!("{s:?}: expected tcp:HOST:PORT with a port 1-65535"));
                }
                Ok(Probe::Tcp(arg.to_owned()))
            }
            "unix" => Ok(Probe::Unix(arg.into())),
            "file" => Ok(Probe::File(arg.into())),
            "exec" => Ok(Probe::Exec(arg.to_owned())),
            _ => Err(format!(
                "{s:?}: unknown probe {kind:?} (use tcp:, unix:, file: or exec:)"
            )),
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(a) => write!(f, "tcp:{a}"),
            Probe::Unix(p) => write!(f, "unix:{}", p.display()),
            Probe::File(p) => write!(f, "file:{}", p.display()),
            Probe::Exec(c) => write!(f, "exec:{c}"),
        }
    }
}

/// When exec mode reports ready (`--ready`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Readiness {
    /// As soon as the command has been started.
    #[default]
    Immediate,
    /// When the command sends `READY=1` to the notify socket it is given.
    Notify,
    /// When the probe first succeeds.
    Probe(Probe),
}

impl FromStr for Readiness {
    type Err = String;
    fn from_str(s: &str) -> Result<Readiness, String> {
        match s {
            "immediate" => Ok(Readiness::Immediate),
            "notify" => Ok(Readiness::Notify),
            _ => s
                .parse()
                .map(Readiness::Probe)
                .map_err(|e| format!("{e}; or immediate, or notify")),
        }
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Immediate => f.write_str("immediate"),
            Readiness::Notify => f.write_str("notify"),
            Readiness::Probe(p) => p.fmt(f),
        }
    }
}

/// A probe parsed for `--health`: `file:` is refused (a file that exists says nothing
/// about whether the service still works).
pub fn parse_health(s: &str) -> Result<Probe, String> {
    match s.parse()? {
        Probe::File(_) => Err(format!(
            "{s:?}: file: is a readiness probe; use tcp:, unix: or exec: for health"
        )),
        p => Ok(p),
    }
}

/// One run of a probe, finished or in progress.
#[derive(Debug)]
pub enum Check {
    /// The result is known.
    Done(Result<(), String>),
    /// An `exec:` probe still running, to be killed at `deadline`.
    Running {
        /// The probe's process.
        child: Child,
        /// When it counts as failed.
        deadline: Instant,
        /// Readable when the probe's process exits (see [`super::signals::pidfd`]).
        exited: Option<OwnedFd>,
    },
    /// A `tcp:` probe's non-blocking connect in progress.
    Connecting(Connect),
}

/// A non-blocking TCP connect in progress, then the next addresses of its host.
#[derive(Debug)]
pub struct Connect {
    /// `HOST:PORT` as given.
    target: String,
    timeout: Duration,
    deadline: Instant,
    /// Writable once the connect to `addr` succeeded or failed.
    sock: OwnedFd,
    addr: SocketAddr,
    /// Addresses not tried yet.
    left: std::vec::IntoIter<SocketAddr>,
}

impl Probe {
    /// Starts one check; `tcp:` and `exec:` probes go on in the background and fail
    /// after `timeout`.
    pub fn begin(&self, timeout: Duration) -> Check {
        match self {
            Probe::Tcp(target) => match target.to_socket_addrs() {
                Ok(addrs) => Connect::first(
                    target,
                    timeout,
                    Instant::now() + timeout,
                    addrs.collect::<Vec<_>>().into_iter(),
                    format!("{target}: no address"),
                ),
                Err(e) => Check::Done(Err(format!("resolve {target}: {e}"))),
            },
            Probe::Unix(path) => Check::Done(unix_connect(path)),
            Probe::File(path) => Check::Done(if path.exists() {
                Ok(())
            } else {
                Err(format!("{} does not exist", path.display()))
            }),
            Probe::Exec(cmd) => match shell(cmd).spawn() {
                Ok(child) => Check::Running {
                    exited: super::signals::pidfd(child.id()),
                    child,
                    deadline: Instant::now() + timeout,
                },
                Err(e) => Check::Done(Err(format!("cannot run /bin/sh: {e}"))),
            },
        }
    }

    /// Runs one check to the end, waiting for an `exec:` probe (tests, one-shot use).
    pub fn check_blocking(&self, timeout: Duration) -> Result<(), String> {
        let mut check = self.begin(timeout);
        loop {
            if let Some(r) = check.poll(Instant::now()) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Check {
    /// The result if finished; kills a probe past its deadline (a failure). Never blocks.
    pub fn poll(&mut self, now: Instant) -> Option<Result<(), String>> {
        match self {
            Check::Done(r) => Some(r.clone()),
            Check::Running {
                child, deadline, ..
            } => match child.try_wait() {
                Ok(Some(status)) if status.success() => Some(Ok(())),
                Ok(Some(status)) => Some(Err(format!("probe command {status}"))),
                Ok(None) if now >= *deadline => {
                    // The probe's whole process group (see `shell`): what the shell
                    // started dies with it, rather than outliving the probe.
                    let group = nix::unistd::Pid::from_raw(child.id() as i32);
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(Err("probe command timed out".into()))
                }
                Ok(None) => None,
                Err(e) => Some(Err(format!("waiting for the probe command: {e}"))),
            },
            Check::Connecting(c) => {
                *self = c.poll(now)?;
                self.poll(now)
            }
        }
    }

    /// What to `poll(2)` for while the check is in progress: the probe's pidfd turns
    /// readable when its process exits, a connecting socket writable when done.
    pub fn poll_fd(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match self {
            Check::Running {
                exited: Some(fd), ..
            } => Some((fd.as_fd(), PollFlags::POLLIN)),
            Check::Connecting(c) => Some((c.sock.as_fd(), PollFlags::POLLOUT)),
            _ => None,
        }
    }

    /// When a running probe times out.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Check::Running { deadline, .. } => Some(*deadline),
            Check::Connecting(c) => Some(c.deadline),
            Check::Done(_) => None,
        }
    }
}

impl Drop for Check {
    fn drop(&mut self) {
        if let Check::Running { child, .. } = self {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `/bin/sh -c CMD`, stdin and stdout on /dev/null, stderr inherited (the journal), and
/// without the notify/watchdog variables meant for this process.
fn shell(cmd: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("/bin/sh");
    // Its own process group, so that a timed-out probe is killed with its children.
    c.process_group(0)
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    crate::notify::scrub_notify_env(&mut c);
    super::signals::prepare_child(&mut c, Some(nix::sys::signal::Signal::SIGKILL));
    c
}

impl Connect {
    /// Connects to the first of `addrs` that does not fail at once, until `deadline`;
    /// the check's result is `last` if they all do.
    fn first(
        target: &str,
        timeout: Duration,
        deadline: Instant,
        mut addrs: std::vec::IntoIter<SocketAddr>,
        mut last: String,
    ) -> Check {
        for addr in addrs.by_ref() {
            match start_connect(addr) {
                Ok(None) => return Check::Done(Ok(())),
                Ok(Some(sock)) => {
                    return Check::Connecting(Connect {
                        target: target.to_owned(),
                        timeout,
                        deadline,
                        sock,
                        addr,
                        left: addrs,
                    })
                }
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Check::Done(Err(last))
    }

    /// What the check becomes, once the connect is done (or the time is up); `None`
    /// while it is in progress. Never blocks.
    fn poll(&mut self, now: Instant) -> Option<Check> {
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLOUT)];
        let done = poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0);
        if !done {
            return (now >= self.deadline).then(|| {
                Check::Done(Err(format!(
                    "connect {}: timed out after {}",
                    self.target,
                    format_duration(self.timeout)
                )))
            });
        }
        let err = match getsockopt(&self.sock, sockopt::SocketError) {
            Ok(0) => return Some(Check::Done(Ok(()))),
            Ok(e) => io::Error::from_raw_os_error(e),
            Err(e) => e.into(),
        };
        // The next address, if any, gets what is left of the time.
        Some(Connect::first(
            &self.target,
            self.timeout,
            self.deadline,
            std::mem::take(&mut self.left),
            format!("connect {}: {err}", self.addr),
        ))
    }
}

/// A non-blocking connect to `addr`: `None` if it connected at once, the socket if it
/// is in progress.
fn start_connect(addr: SocketAddr) -> io::Result<Option<OwnedFd>> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let sock = socket(family, SockType::Stream, flags, None)?;
    match connect(sock.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => Ok(None),
        Err(Errno::EINPROGRESS | Errno::EINTR) => Ok(Some(sock)),
        Err(e) => Err(e.into()),
    }
}

/// A non-blocking connect to a Unix stream socket, which succeeds or fails at once: a
/// full backlog (EAGAIN) means the service is not accepting.
fn unix_connect(path: &Path) -> Result<(), String> {
    let fail = |e: Errno| {
        let why = match e {
            Errno::EAGAIN => "not accepting connections (backlog full)".to_owned(),
            e => io::Error::from(e).to_string(),
        };
        format!("connect {}: {why}", path.display())
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let sock = socket(AddressFamily::Unix, SockType::Stream, flags, None).map_err(fail)?;
    let addr = UnixAddr::new(path).map_err(fail)?;
    connect(sock.as_raw_fd(), &addr).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            "tcp:127.0.0.1:80".parse(),
            Ok(Probe::Tcp("127.0.0.1:80".into()))
        );
        assert_eq!(
            "tcp:[::1]:8080".parse(),
            Ok(Probe::Tcp("[::1]:8080".into()))
        );
        assert_eq!(
            "unix:/run/x.sock".parse(),
            Ok(Probe::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            "file:/tmp/ready".parse(),
            Ok(Probe::File("/tmp/ready".into()))
        );
        assert_eq!(
            "exec:test -e /x".parse(),
            Ok(Probe::Exec("test -e /x".into()))
        );
        assert_eq!("notify".parse(), Ok(Readiness::Notify));
        assert_eq!("immediate".parse(), Ok(Readiness::Immediate));
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "tcp:host",
            "tcp::80",
            "tcp:h:99999",
            "udp:x:1",
            "exec:",
            "nothing",
        ] {
            assert!(bad.parse::<Readiness>().is_err(), "{bad}");
        }
        assert!(parse_health("file:/x").is_err());
        assert!(parse_health("tcp:localhost:1").is_ok());
    }

    #[test]
    fn tcp_probe_follows_the_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = Probe::Tcp(l.local_addr().unwrap().to_string());
        assert_eq!(p.check_blocking(Duration::from_secs(1)), Ok(()));
        drop(l);
        assert!(p.check_blocking(Duration::from_secs(1)).is_err());
    }

    /// A listener with backlog 0 whose one-slot queue is full: SYNs to it are dropped.
    fn blackhole() -> (OwnedFd, std::net::TcpStream, SocketAddr) {
        use nix::sys::socket::{bind, getsockname, listen, Backlog, SockaddrIn};
        let l = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(l.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
        listen(&l, Backlog::new(0).unwrap()).unwrap();
        let addr: SockaddrIn = getsockname(l.as_raw_fd()).unwrap();
        let addr = SocketAddr::V4(addr.into());
        let filler = std::net::TcpStream::connect(addr).unwrap();
        (l, filler, addr)
    }

    #[test]
    fn tcp_probe_does_not_block_and_times_out() {
        let (_l, _filler, addr) = blackhole();
        let started = Instant::now();
        let mut check = Probe::Tcp(addr.to_string()).begin(Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(check.poll(Instant::now()).is_none(), "{check:?}");
        let (_, events) = check.poll_fd().unwrap();
        assert_eq!(events, PollFlags::POLLOUT);
        let deadline = check.deadline().unwrap();
        let e = check.poll(deadline).unwrap().unwrap_err();
        assert_eq!(e, format!("connect {addr}: timed out after 200ms"));
        assert!(check.poll_fd().is_none(), "the socket is closed once done");
    }

    #[test]
    fn tcp_probe_tries_the_next_address() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = {
            let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            c.local_addr().unwrap()
        };
        // A refused connect moves on to the next address.
        let t = Duration::from_secs(1);
        let addrs = vec![closed, l.local_addr().unwrap()];
        let mut check = Connect::first("x:1", t, Instant::now() + t, addrs.into_iter(), "".into());
        let r = loop {
            if let Some(r) = check.poll(Instant::now()) {
                break r;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn unix_probe_fails_at_once_on_a_full_backlog() {
        use nix::sys::socket::{bind, listen, Backlog};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(l.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&l, Backlog::new(0).unwrap()).unwrap();
        // The first connection fills the queue; nobody accepts it.
        let _filler = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let p = Probe::Unix(path);
        let started = Instant::now();
        let e = p.check_blocking(Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("not accepting"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn unix_and_file_probes() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let p = Probe::Unix(sock.clone());
        assert!(p.check_blocking(Duration::from_secs(1)).is_err());
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(p.check_blocking(Duration::from_secs(1)), Ok(()));
        let f = Probe::File(dir.path().join("f"));
        assert!(f.check_blocking(Duration::ZERO).is_err());
        std::fs::write(dir.path().join("f"), "").unwrap();
        assert_eq!(f.check_blocking(Duration::ZERO), Ok(()));
    }

    #[test]
    fn exec_probe_exit_status_and_timeout() {
        let t = Duration::from_secs(5);
        assert_eq!(Probe::Exec("exit 0".into()).check_blocking(t), Ok(()));
        let e = Probe::Exec("exit 3".into()).check_blocking(t).unwrap_err();
        assert!(e.contains('3'), "{e}");
        let started = Instant::now();
        let e = Probe::Exec("sleep 10".into())
            .check_blocking(Duration::from_millis(100))
            .unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
