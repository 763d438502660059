//! Readiness and health probes: `tcp:HOST:PORT`, `unix:PATH`, `file:PATH`, `exec:CMD`.
//!
//! `file:` and `unix:` probes answer at once (a Unix socket whose backlog is full is
//! not accepting: a failure); so do `tcp:` probes to a local port (a remote one waits
//! at most the probe's timeout). `exec:` probes run `/bin/sh -c CMD` without blocking
//! the run loop: the probe's exit arrives as SIGCHLD and is collected by
//! [`Check::poll`], a probe past its timeout is killed.

use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

/// Something to check: a port that accepts, a socket that accepts, a file that exists,
/// a command that exits 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `tcp:HOST:PORT`: a TCP connect succeeds.
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
}

impl Probe {
    /// Starts one check; socket and file probes finish at once (connect timeout:
    /// `timeout`).
    pub fn begin(&self, timeout: Duration) -> Check {
        match self {
            Probe::Tcp(addr) => Check::Done(tcp_connect(addr, timeout)),
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
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(Err("probe command timed out".into()))
                }
                Ok(None) => None,
                Err(e) => Some(Err(format!("waiting for the probe command: {e}"))),
            },
        }
    }

    /// What to `poll(2)` for while the check is in progress: the probe's pidfd turns
    /// readable when its process exits.
    pub fn poll_fd(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match self {
            Check::Running {
                exited: Some(fd), ..
            } => Some((fd.as_fd(), PollFlags::POLLIN)),
            _ => None,
        }
    }

    /// When a running probe times out.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Check::Running { deadline, .. } => Some(*deadline),
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
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    super::signals::prepare_child(&mut c, Some(nix::sys::signal::Signal::SIGKILL));
    c
}

fn tcp_connect(addr: &str, timeout: Duration) -> Result<(), String> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolve {addr}: {e}"))?;
    let mut last = format!("{addr}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    Err(last)
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
