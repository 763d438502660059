//! Socket activation, the live half: receiving listening sockets (`LISTEN_FDS`),
//! binding them where no service manager did (the PID-file backend, or `run` by hand),
//! and handing them on to a child at fds 3, 4, … with `LISTEN_FDS`, `LISTEN_FDNAMES`
//! and `LISTEN_PID` set to the **child's** PID, as `sd_listen_fds(3)` requires.
//!
//! `LISTEN_PID` can only be known after the fork, and `std::process::Command` gives no
//! way to change the environment there. So [`hand_on`] prepares, before the fork, the
//! whole `execve(2)` (program resolved, argv, the environment with a blank
//! `LISTEN_PID=`), and its `pre_exec` hook — the last one registered — writes the PID
//! into that blank, moves the sockets to 3, 4, … and calls `execve` itself; nothing
//! in the child allocates. The hook itself is [`crate::sys::exec_with_fds`].

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::unit::socket::{Bind, Kind, ListenAddr};

/// The first descriptor `sd_listen_fds(3)` passes.
pub const SD_LISTEN_FDS_START: RawFd = 3;

/// One listening socket and its name.
#[derive(Debug)]
pub struct Listener {
    /// The socket (close-on-exec in this process).
    pub fd: OwnedFd,
    /// Its `LISTEN_FDNAMES` entry.
    pub name: String,
}

impl Listener {
    /// The socket as a std `TcpListener` (a new descriptor for the same socket).
    pub fn tcp_listener(&self) -> io::Result<TcpListener> {
        Ok(TcpListener::from(self.fd.try_clone()?))
    }

    /// The socket as a std `UnixListener`.
    pub fn unix_listener(&self) -> io::Result<UnixListener> {
        Ok(UnixListener::from(self.fd.try_clone()?))
    }

    /// The socket as a std `UdpSocket`.
    pub fn udp_socket(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from(self.fd.try_clone()?))
    }

    /// A description for logs: `web (fd 3, 127.0.0.1:8080)`.
    pub fn describe(&self) -> String {
        let addr =
            nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(self.fd.as_raw_fd())
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into());
        format!("{} (fd {}, {addr})", self.name, self.fd.as_raw_fd())
    }
}

/// The listening sockets of a service, in order.
#[derive(Debug, Default)]
pub struct Listeners(pub Vec<Listener>);

impl Listeners {
    /// No sockets.
    pub fn none() -> Listeners {
        Listeners(Vec::new())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The sockets, in the order they were given.
    pub fn iter(&self) -> std::slice::Iter<'_, Listener> {
        self.0.iter()
    }

    /// The first socket named `name`.
    pub fn named(&self, name: &str) -> Option<&Listener> {
        self.0.iter().find(|l| l.name == name)
    }

    /// The sockets a service manager passed to this process (`LISTEN_PID` is ours),
    /// taken over: made close-on-exec, the variables removed from the environment.
    /// `None` when none were passed to us.
    pub fn from_env() -> Option<Listeners> {
        let pid: u32 = std::env::var("LISTEN_PID").ok()?.trim().parse().ok()?;
        if pid != std::process::id() {
            return None;
        }
        let n: usize = std::env::var("LISTEN_FDS").ok()?.trim().parse().ok()?;
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|v| v.split(':').map(str::to_owned).collect())
            .unwrap_or_default();
        // At start-up, before any thread exists (the runner's rule).
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
        let mut out = Vec::with_capacity(n);
        for i in 0..n.min(4096) {
            let raw = SD_LISTEN_FDS_START + i as RawFd;
            let Some(fd) = crate::sys::take_inherited_fd(raw) else {
                log::warn!("LISTEN_FDS={n}, but fd {raw} is not open; ignoring it");
                continue;
            };
            let name = names
                .get(i)
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned());
            out.push(Listener { fd, name });
        }
        Some(Listeners(out))
    }

    /// Names the sockets after `addrs` (the `--listen` options, in the same order as
    /// the socket unit's lines) when there are as many; otherwise leaves them.
    pub fn name_after(&mut self, addrs: &[ListenAddr], service: &str) {
        if addrs.len() == self.0.len() {
            for (l, a) in self.0.iter_mut().zip(addrs) {
                l.name = a.fd_name(service).to_owned();
            }
        }
    }

    /// Binds `addrs` (what systemd's socket unit would): TCP and Unix sockets
    /// listening (backlog 4096, `SO_REUSEADDR`), UDP bound. A Unix socket path that
    /// exists is replaced only if it is a socket nobody listens on.
    pub fn bind(addrs: &[ListenAddr], service: &str) -> Result<Listeners, String> {
        let mut out = Vec::with_capacity(addrs.len());
        for a in addrs {
            let fd = bind_one(a).map_err(|e| format!("cannot listen on {a}: {e}"))?;
            out.push(Listener {
                fd,
                name: a.fd_name(service).to_owned(),
            });
        }
        Ok(Listeners(out))
    }

    /// `LISTEN_FDNAMES`: the names joined with `:`.
    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn bind_one(a: &ListenAddr) -> io::Result<OwnedFd> {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrIn, SockaddrIn6, UnixAddr,
    };
    let stype = match a.kind {
        Kind::Tcp | Kind::Unix => SockType::Stream,
        Kind::Udp => SockType::Datagram,
    };
    let flags = SockFlag::SOCK_CLOEXEC;
    let fd = match &a.bind {
        Bind::Path(p) => {
            remove_stale_socket(p)?;
            let fd = socket(AddressFamily::Unix, stype, flags, None)?;
            bind(fd.as_raw_fd(), &UnixAddr::new(p.as_path())?)?;
            fd
        }
        Bind::AnyPort { port, v6_only } => {
            let fd = socket(AddressFamily::Inet6, stype, flags, None)?;
            setsockopt(&fd, sockopt::ReuseAddr, &true)?;
            setsockopt(&fd, sockopt::Ipv6V6Only, v6_only)?;
            let any = std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, *port, 0, 0);
            match bind(fd.as_raw_fd(), &SockaddrIn6::from(any)) {
                Ok(()) => fd,
                // No IPv6 here (a kernel booted with ipv6.disable=1): IPv4 only.
                Err(nix::errno::Errno::EAFNOSUPPORT | nix::errno::Errno::EADDRNOTAVAIL)
                    if !v6_only =>
                {
                    let fd = socket(AddressFamily::Inet, stype, flags, None)?;
                    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                    let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, *port);
                    bind(fd.as_raw_fd(), &SockaddrIn::from(any))?;
                    fd
                }
                Err(e) => return Err(e.into()),
            }
        }
        Bind::Addr(sa) => match sa {
            std::net::SocketAddr::V4(v4) => {
                let fd = socket(AddressFamily::Inet, stype, flags, None)?;
                setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                bind(fd.as_raw_fd(), &SockaddrIn::from(*v4))?;
                fd
            }
            std::net::SocketAddr::V6(v6) => {
                let fd = socket(AddressFamily::Inet6, stype, flags, None)?;
                setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
                bind(fd.as_raw_fd(), &SockaddrIn6::from(*v6))?;
                fd
            }
        },
    };
    if stype == SockType::Stream {
        listen(&fd, Backlog::new(4096).unwrap_or(Backlog::MAXCONN))?;
    }
    Ok(fd)
}

/// Removes `p` if it is a Unix socket nobody accepts on (left by a crash); refuses to
/// touch anything else.
fn remove_stale_socket(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(p).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process listens there",
                ));
            }
            std::fs::remove_file(p)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        )),
    }
}

/// Makes `cmd` start with `listeners` at fds 3, 4, … and `LISTEN_FDS`,
/// `LISTEN_FDNAMES` and `LISTEN_PID` (the child's own PID) in its environment.
///
/// Call it last, once `cmd` is complete (program, arguments, environment changes, its
/// other `pre_exec` hooks): its hook runs last and ends in `execve(2)`. The
/// descriptors must stay open in this process until `spawn` returns. The child's
/// environment is ours with `cmd`'s changes (`env`, `env_remove`) applied; a `cmd`
/// with `env_clear` is not supported (`Command` does not say it was cleared).
pub fn hand_on(cmd: &mut Command, listeners: &Listeners) -> io::Result<()> {
    if listeners.is_empty() {
        return Ok(());
    }
    // The environment the child gets: ours, with the command's changes applied.
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (k, v) in cmd.get_envs() {
        env.retain(|(key, _)| key.as_os_str() != k);
        if let Some(v) = v {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    env.retain(|(k, _)| {
        !matches!(
            k.to_str(),
            Some("LISTEN_PID" | "LISTEN_FDS" | "LISTEN_FDNAMES")
        )
    });
    env.push(("LISTEN_FDS".into(), listeners.len().to_string().into()));
    env.push(("LISTEN_FDNAMES".into(), listeners.names().into()));
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let program = resolve(cmd.get_program(), path_var.as_deref())?;
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| io::Error::other("a NUL byte in an argument"))
    };
    let program = cstr(program.as_os_str())?;
    let mut argv = vec![cstr(cmd.get_program())?];
    for a in cmd.get_args() {
        argv.push(cstr(a)?);
    }
    let mut envp = Vec::with_capacity(env.len() + 1);
    for (k, v) in &env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(CString::new(kv).map_err(|_| io::Error::other("a NUL byte in a variable"))?);
    }
    crate::sys::exec_with_fds(
        cmd,
        crate::sys::ExecPlan {
            program,
            argv,
            envp,
            pid_var: b"LISTEN_PID=".to_vec(),
            fds: listeners.iter().map(|l| l.fd.as_raw_fd()).collect(),
            first_fd: SD_LISTEN_FDS_START,
        },
    );
    Ok(())
}

/// The program `execve` runs: `program` itself if it names a path, else the first
/// executable file of that name in `path` (as `execvp(3)` searches).
fn resolve(program: &OsStr, path: Option<&OsStr>) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(path) {
        let candidate = dir.join(program);
        if std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found in PATH", program.to_string_lossy()),
    ))
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_child_gets_the_sockets_at_3_with_its_own_pid() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let addrs: Vec<ListenAddr> = [format!("unix:{},name=ctl", sock.display())]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let l = Listeners::bind(&addrs, "svc").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let mut l = l;
        l.0.push(Listener {
            fd: tcp.into(),
            name: "web".into(),
        });
        // The child prints its environment and answers one connection on fd 4.
        let script = "import os, socket\n\
            print(os.environ['LISTEN_PID'], os.getpid(), os.environ['LISTEN_FDS'], \
            os.environ['LISTEN_FDNAMES'], flush=True)\n\
            s = socket.socket(fileno=4)\n\
            c, _ = s.accept()\n\
            c.sendall(b'hello from fd 4')\n\
            c.close()\n";
        let mut cmd = Command::new("python3");
        cmd.args(["-c", script])
            .env("EXTRA", "1")
            .stdout(std::process::Stdio::piped());
        hand_on(&mut cmd, &l).unwrap();
        let mut child = cmd.spawn().unwrap();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello from fd 4");
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(child.wait().unwrap().success());
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f[0], f[1], "LISTEN_PID is the child's PID: {out}");
        assert_eq!(f[2], "2");
        assert_eq!(f[3], "ctl:web");
    }

    /// A library service finds its sockets in the context, by name, as std types.
    #[test]
    fn a_service_gets_the_sockets_through_its_context() {
        use crate::daemon::{Context, Exit, Runner, Service, ServiceResult};
        struct Uses(Option<String>);
        impl Service for Uses {
            fn start(&mut self, ctx: &mut Context) -> ServiceResult {
                let l = ctx.listeners().named("ctl").ok_or("no socket named ctl")?;
                let path = l.unix_listener()?.local_addr()?;
                self.0 = path.as_pathname().map(|p| p.display().to_string());
                ctx.exit(Exit::Code(0));
                Ok(())
            }
            fn run(&mut self, _ctx: &mut Context) -> ServiceResult {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("ctl.sock");
        let addrs = vec![format!("unix:{},name=ctl", sock.display()).parse().unwrap()];
        let mut svc = Uses(None);
        let exit = Runner::new("uses")
            .with_notifier(crate::notify::Notifier::to_socket(None))
            .with_watchdog(None)
            .with_listeners(Listeners::bind(&addrs, "uses").unwrap())
            .run(&mut svc)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(svc.0.as_deref(), Some(sock.to_str().unwrap()));
    }
}
