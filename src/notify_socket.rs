//! The notify socket mydaemon gives a process it runs, read as systemd reads its own:
//! used by exec mode (the command's socket, [`crate::daemon::relay`]) and by the
//! PID-file backend's supervisor (the service process's socket).
//!
//! A non-blocking datagram socket with `SO_PASSCRED` on, bound in a private (0700)
//! directory. Each datagram's sender credentials are read with it and checked
//! before anything in it is parsed: only the process it belongs to is believed
//! ([`Access`]). What others send is dropped, and said in lines limited to a burst
//! per interval, with a count of what was suppressed ([`RateLimit`]). One call reads
//! at most [`DRAIN_MAX`] datagrams: a flood cannot hold up the caller's loop.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials,
};

/// Most datagrams one [`NotifySocket::drain`] returns.
pub const DRAIN_MAX: usize = 64;

/// Largest datagram read whole (systemd reads up to its page-sized buffer too).
const DATAGRAM_MAX: usize = 8192;

/// Most descriptors one datagram can carry (the kernel's `SCM_MAX_FD`): room for them
/// all, so that the sender's credentials are never cut off.
const PASSED_FDS_MAX: usize = 253;

/// Lines about foreign senders: at most this many …
const FOREIGN_BURST: u32 = 10;
/// … per this interval.
const FOREIGN_INTERVAL: Duration = Duration::from_secs(30);

/// Whose datagrams are believed (systemd's `NotifyAccess=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only the main process (`NotifyAccess=main`).
    Main,
    /// The main process and its descendants (still running when their datagram is
    /// read: a parent chain in `/proc` that reaches the main process), so that a
    /// script's `systemd-notify` is heard. Like systemd's `NotifyAccess=all`, which
    /// accepts the unit's control group, but narrower: not mydaemon itself, nor its
    /// probes, nor orphans re-parented away from the main process.
    MainAndDescendants,
}

/// A bound notify socket; a private directory it was bound in is removed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    /// Its `$NOTIFY_SOCKET` form (a path, or `@name` for an abstract address).
    addr: OsString,
    _dir: Option<tempfile::TempDir>,
    access: Access,
    /// The process believed (and, with [`Access::MainAndDescendants`], its
    /// descendants); `None`: nobody yet.
    main: Option<i32>,
    /// Who is believed, for the lines about the others ("the service process").
    who: &'static str,
    foreign: RefCell<RateLimit>,
}

impl NotifySocket {
    /// Binds a fresh socket in a new private directory (mode 0700) under `parent`.
    pub fn bind_in(parent: &Path, access: Access, who: &'static str) -> io::Result<NotifySocket> {
        let dir = tempfile::Builder::new()
            .prefix("mydaemon-notify-")
            .tempdir_in(parent)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path)?;
        let mut s = NotifySocket::from_bound(sock, path.into_os_string(), access, who)?;
        s._dir = Some(dir);
        Ok(s)
    }

    /// Binds to `addr` (a path in a directory the caller made private, or an abstract
    /// name); `env` is its `$NOTIFY_SOCKET` form.
    pub fn bind_addr(
        addr: &SocketAddr,
        env: OsString,
        access: Access,
        who: &'static str,
    ) -> io::Result<NotifySocket> {
        let sock = UnixDatagram::bind_addr(addr)?;
        NotifySocket::from_bound(sock, env, access, who)
    }

    fn from_bound(
        sock: UnixDatagram,
        addr: OsString,
        access: Access,
        who: &'static str,
    ) -> io::Result<NotifySocket> {
        sock.set_nonblocking(true)?;
        setsockopt(&sock, sockopt::PassCred, &true)?;
        Ok(NotifySocket {
            sock,
            addr,
            _dir: None,
            access,
            main: None,
            who,
            foreign: RefCell::new(RateLimit::new(FOREIGN_INTERVAL, FOREIGN_BURST)),
        })
    }

    /// The address to give the child as `$NOTIFY_SOCKET`.
    pub fn addr(&self) -> &OsStr {
        &self.addr
    }

    /// Believes `pid` (the process just started) from now on, and no earlier one.
    pub fn set_main(&mut self, pid: Option<i32>) {
        self.main = pid;
    }

    /// Whether a datagram from `pid` is believed.
    fn accepts(&self, pid: i32) -> bool {
        let Some(main) = self.main else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        pid == main || (self.access == Access::MainAndDescendants && descends_from(pid, main))
    }

    /// The believed datagrams waiting now (at most [`DRAIN_MAX`]), as text (invalid
    /// UTF-8 replaced). Each of the others is dropped unread; `warn` gets the
    /// rate-limited lines about them.
    pub fn drain(&self, warn: impl FnMut(&str)) -> io::Result<Vec<String>> {
        self.drain_at_most(DRAIN_MAX, warn)
    }

    /// [`NotifySocket::drain`] with its bound given.
    pub(crate) fn drain_at_most(
        &self,
        max: usize,
        mut warn: impl FnMut(&str),
    ) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        // On the stack: no allocation per call (the caller reads only when poll(2)
        // said the socket is readable, and keeps nothing of the buffer).
        let mut buf = [0u8; DATAGRAM_MAX];
        let mut cmsg = nix::cmsg_space!(UnixCredentials, [RawFd; PASSED_FDS_MAX]);
        for _ in 0..max {
            let (len, sender) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                match recvmsg::<()>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(msg) => {
                        let mut sender = None;
                        if let Ok(cmsgs) = msg.cmsgs() {
                            for c in cmsgs {
                                match c {
                                    ControlMessageOwned::ScmCredentials(cred) => {
                                        sender = Some(cred.pid())
                                    }
                                    // Descriptors passed along (`systemd-notify`'s
                                    // BARRIER=1 pipe, FDSTORE=1) are not kept: closed
                                    // at once, which is also how a barrier is answered.
                                    ControlMessageOwned::ScmRights(fds) => {
                                        fds.into_iter().for_each(crate::sys::close_raw)
                                    }
                                    _ => {}
                                }
                            }
                        }
                        (msg.bytes, sender)
                    }
                    Err(Errno::EAGAIN) => return Ok(out),
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            // Credentials first: nothing from anyone else is parsed.
            match sender {
                Some(pid) if self.accepts(pid) => {
                    out.push(String::from_utf8_lossy(&buf[..len]).into_owned())
                }
                _ => self.foreign(sender.unwrap_or(0), &mut warn),
            }
        }
        Ok(out)
    }

    /// Says (rate-limited) that a datagram from `pid` was dropped.
    fn foreign(&self, pid: i32, warn: &mut impl FnMut(&str)) {
        let Some(dropped) = self.foreign.borrow_mut().check(Instant::now()) else {
            return;
        };
        if dropped > 0 {
            warn(&format!(
                "suppressed {dropped} message(s) about foreign notifications"
            ));
        }
        warn(&format!(
            "ignoring a notification from pid {pid}, not {}",
            self.who
        ));
    }
}

impl AsFd for NotifySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Whether `pid`'s chain of parents (in `/proc`) reaches `ancestor`.
fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    // Deep enough for any script; bounded against a chain that changes under us.
    for _ in 0..64 {
        match crate::sys::stat_of(p) {
            Some(st) if st.ppid == ancestor => return true,
            Some(st) if st.ppid > 1 => p = st.ppid,
            _ => return false,
        }
    }
    false
}

/// At most `burst` lines per `interval`; what is dropped is counted and reported
/// with the next line allowed (as journald does).
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: u32,
    begin: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limit of `burst` lines per `interval`.
    pub fn new(interval: Duration, burst: u32) -> RateLimit {
        RateLimit {
            interval,
            burst,
            begin: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be written at `now`; `Some(n)`: yes, and `n` lines were
    /// suppressed before it (0 if none).
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        if self
            .begin
            .is_none_or(|b| now.duration_since(b) >= self.interval)
        {
            self.begin = Some(now);
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn me() -> Option<i32> {
        Some(std::process::id() as i32)
    }

    #[test]
    fn receives_what_its_process_sends_and_cleans_up() {
        let parent = tempfile::tempdir().unwrap();
        let mut s = NotifySocket::bind_in(parent.path(), Access::Main, "the test").unwrap();
        s.set_main(me());
        let dir = Path::new(s.addr()).parent().unwrap().to_owned();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let mut warned = Vec::new();
        assert!(s.drain(|l| warned.push(l.to_owned())).unwrap().is_empty());
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up\n", s.addr()).unwrap();
        client.send_to(b"WATCHDOG=1\n", s.addr()).unwrap();
        assert_eq!(
            s.drain(|l| warned.push(l.to_owned())).unwrap(),
            vec!["READY=1\nSTATUS=up\n", "WATCHDOG=1\n"]
        );
        assert!(warned.is_empty(), "{warned:?}");
        drop(s);
        assert!(!dir.exists());
    }

    #[test]
    fn a_barrier_with_its_pipe_is_heard_and_the_pipe_closed() {
        // What `systemd-notify` (systemd 25x) sends after its message: BARRIER=1 and
        // the write end of a pipe, then waits until that end is closed everywhere.
        use nix::sys::socket::{sendmsg, ControlMessage, UnixAddr};
        let parent = tempfile::tempdir().unwrap();
        let mut s = NotifySocket::bind_in(parent.path(), Access::Main, "the test").unwrap();
        s.set_main(me());
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let fds = [write_end.as_raw_fd()];
        let addr = UnixAddr::new(Path::new(s.addr())).unwrap();
        sendmsg(
            client.as_raw_fd(),
            &[std::io::IoSlice::new(b"BARRIER=1")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )
        .unwrap();
        drop(write_end);
        let mut warned = Vec::new();
        assert_eq!(
            s.drain(|l| warned.push(l.to_owned())).unwrap(),
            vec!["BARRIER=1"]
        );
        assert!(warned.is_empty(), "{warned:?}");
        // Closed by the drain: the read end sees the end of the pipe.
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&read_end, &mut buf), Ok(0));
    }

    #[test]
    fn others_are_dropped_and_said_rate_limited() {
        let parent = tempfile::tempdir().unwrap();
        let mut s = NotifySocket::bind_in(parent.path(), Access::Main, "the test").unwrap();
        // Believes nobody yet, then a process that is not us.
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\n", s.addr()).unwrap();
        let mut warned = Vec::new();
        assert!(s.drain(|l| warned.push(l.to_owned())).unwrap().is_empty());
        s.set_main(Some(1));
        for _ in 0..(FOREIGN_BURST + 2) {
            client.send_to(b"READY=1\n", s.addr()).unwrap();
            assert!(s.drain(|l| warned.push(l.to_owned())).unwrap().is_empty());
        }
        let line = format!(
            "ignoring a notification from pid {}, not the test",
            std::process::id()
        );
        assert_eq!(warned.len(), FOREIGN_BURST as usize, "{warned:?}");
        assert!(warned.iter().all(|l| *l == line), "{warned:?}");
    }

    #[test]
    fn a_flood_is_drained_in_bounded_steps() {
        // Fewer datagrams than the kernel's default queue (net.unix.max_dgram_qlen = 10),
        // sent without blocking: a full queue is a test failure, never a hang.
        let parent = tempfile::tempdir().unwrap();
        let mut s = NotifySocket::bind_in(parent.path(), Access::Main, "the test").unwrap();
        s.set_main(me());
        let client = UnixDatagram::unbound().unwrap();
        client.set_nonblocking(true).unwrap();
        for i in 0..7 {
            client
                .send_to(b"STATUS=x\n", s.addr())
                .unwrap_or_else(|e| panic!("datagram {i} could not be queued: {e}"));
        }
        assert_eq!(s.drain_at_most(4, |_| {}).unwrap().len(), 4);
        assert_eq!(s.drain_at_most(4, |_| {}).unwrap().len(), 3);
        assert!(s.drain(|_| {}).unwrap().is_empty());
    }

    #[test]
    fn descendants_are_believed_only_when_asked() {
        let parent = tempfile::tempdir().unwrap();
        let mut main = NotifySocket::bind_in(parent.path(), Access::Main, "t").unwrap();
        let mut all =
            NotifySocket::bind_in(parent.path(), Access::MainAndDescendants, "t").unwrap();
        main.set_main(me());
        all.set_main(me());
        // A child of this process (alive while it is checked).
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!main.accepts(pid));
        assert!(all.accepts(pid));
        assert!(all.accepts(std::process::id() as i32));
        assert!(!all.accepts(1));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn rate_limit_counts_what_it_suppressed() {
        let mut r = RateLimit::new(Duration::from_secs(30), 3);
        let t0 = Instant::now();
        assert_eq!(r.check(t0), Some(0));
        assert_eq!(r.check(t0), Some(0));
        assert_eq!(r.check(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(r.check(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(r.check(t0 + Duration::from_secs(31)), Some(1000));
        assert_eq!(r.check(t0 + Duration::from_secs(31)), Some(0));
    }
}
