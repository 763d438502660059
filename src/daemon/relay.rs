//! The notify socket exec mode gives its child (`--ready notify`).
//!
//! A datagram socket bound in a private directory (mode 0700, under
//! `$RUNTIME_DIRECTORY` when systemd provides one, else the temp directory); the child
//! gets its path as `$NOTIFY_SOCKET` and speaks sd_notify to it as it would to systemd.
//! What it sends is read by the run loop and passed on (see [`crate::notify::relay`]).
//!
//! [`crate::notify::relay`]: crate::notify::Notifier::relay

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The child's notify socket; removed with its directory when dropped.
#[derive(Debug)]
pub struct Relay {
    sock: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Binds a fresh socket in a private directory under `parent`.
    pub fn bind_in(parent: &Path) -> io::Result<Relay> {
        let dir = tempfile::Builder::new()
            .prefix("mydaemon-notify-")
            .tempdir_in(parent)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path)?;
        sock.set_nonblocking(true)?;
        Ok(Relay {
            sock,
            path,
            _dir: dir,
        })
    }

    /// Binds under `$RUNTIME_DIRECTORY` (first entry) or the temp directory.
    pub fn bind() -> io::Result<Relay> {
        let parent = std::env::var_os("RUNTIME_DIRECTORY")
            .and_then(|v| {
                v.to_str()
                    .and_then(|s| s.split(':').find(|p| !p.is_empty()).map(PathBuf::from))
            })
            .unwrap_or_else(std::env::temp_dir);
        Relay::bind_in(&parent)
    }

    /// The socket path to give the child as `$NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The datagrams waiting now (at most [`DRAIN_MAX`]: a flood cannot hold up the
    /// loop; the rest wakes it again), as text (invalid UTF-8 replaced).
    pub fn drain(&self) -> io::Result<Vec<String>> {
        self.drain_at_most(DRAIN_MAX)
    }

    /// [`Relay::drain`] with its bound given.
    fn drain_at_most(&self, max: usize) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        while out.len() < max {
            match self.sock.recv(&mut buf) {
                Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Most datagrams [`Relay::drain`] returns at once.
pub const DRAIN_MAX: usize = 64;

impl AsFd for Relay {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn receives_what_a_client_sends_and_cleans_up() {
        let parent = tempfile::tempdir().unwrap();
        let relay = Relay::bind_in(parent.path()).unwrap();
        let dir = relay.path().parent().unwrap().to_owned();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert!(relay.drain().unwrap().is_empty());
        let client = UnixDatagram::unbound().unwrap();
        client
            .send_to(b"READY=1\nSTATUS=up\n", relay.path())
            .unwrap();
        client.send_to(b"WATCHDOG=1\n", relay.path()).unwrap();
        assert_eq!(
            relay.drain().unwrap(),
            vec!["READY=1\nSTATUS=up\n", "WATCHDOG=1\n"]
        );
        drop(relay);
        assert!(!dir.exists());
    }

    #[test]
    fn a_flood_is_drained_in_bounded_steps() {
        // Fewer datagrams than the kernel's default queue (net.unix.max_dgram_qlen = 10),
        // sent without blocking: a full queue is a test failure, never a hang.
        let parent = tempfile::tempdir().unwrap();
        let relay = Relay::bind_in(parent.path()).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.set_nonblocking(true).unwrap();
        for i in 0..7 {
            client
                .send_to(b"STATUS=x\n", relay.path())
                .unwrap_or_else(|e| panic!("datagram {i} could not be queued: {e}"));
        }
        assert_eq!(relay.drain_at_most(4).unwrap().len(), 4);
        assert_eq!(relay.drain_at_most(4).unwrap().len(), 3);
        assert!(relay.drain().unwrap().is_empty());
    }
}
