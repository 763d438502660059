//! The notify socket exec mode gives its child (`--ready notify`).
//!
//! A [`NotifySocket`] bound in a private directory (mode 0700, under
//! `$RUNTIME_DIRECTORY` when systemd provides one, else the temp directory); the child
//! gets its path as `$NOTIFY_SOCKET` and speaks sd_notify to it as it would to systemd.
//! Only the command and its descendants are believed (the sender's credentials are
//! checked first, see [`Access::MainAndDescendants`]): a script's `systemd-notify`
//! is heard, another process's `READY=1` is dropped and logged (rate-limited).
//! What is believed is read by the run loop and passed on (see [`crate::notify::relay`]).
//!
//! [`crate::notify::relay`]: crate::notify::Notifier::relay

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use crate::notify_socket::{Access, NotifySocket};

/// The child's notify socket; removed with its directory when dropped.
#[derive(Debug)]
pub struct Relay {
    socket: NotifySocket,
}

impl Relay {
    /// Binds a fresh socket in a private directory under `parent`.
    pub fn bind_in(parent: &Path) -> io::Result<Relay> {
        Ok(Relay {
            socket: NotifySocket::bind_in(
                parent,
                Access::MainAndDescendants,
                "the command or one of its processes",
            )?,
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
        Path::new(self.socket.addr())
    }

    /// The command, started: it and its descendants are believed from now on.
    pub fn set_command(&mut self, pid: u32) {
        self.socket.set_main(i32::try_from(pid).ok());
    }

    /// The command's datagrams waiting now (at most [`DRAIN_MAX`](crate::notify_socket::DRAIN_MAX): a flood cannot
    /// hold up the loop; the rest wakes it again), as text (invalid UTF-8 replaced).
    /// Others are dropped, with a warning (rate-limited).
    pub fn drain(&self) -> io::Result<Vec<String>> {
        self.socket.drain(|line| log::warn!("{line}"))
    }
}

impl AsFd for Relay {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
