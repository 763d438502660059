//! sd_notify messages (READY, STATUS, STOPPING, RELOADING, WATCHDOG); never fatal.
//!
//! Small named wrappers around the `sd-notify` crate, in the manner of zincati's
//! `notify_ready()`: a failure to reach the service manager is logged (once per kind of
//! message, so a broken socket does not flood the log) and otherwise ignored. Without
//! `$NOTIFY_SOCKET` (not started by systemd as `Type=notify`) every call is a no-op.

use std::cell::{Cell, OnceCell};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use sd_notify::NotifyState;

/// The keys a service may send that the relay in exec mode passes on to systemd
/// (`--ready notify`). `MAINPID`, `FDSTORE` and the like are never relayed: this process
/// is the main process, and file descriptors are not passed through.
pub const RELAYED_KEYS: &[&str] = &[
    "READY",
    "STATUS",
    "WATCHDOG",
    "STOPPING",
    "RELOADING",
    "MONOTONIC_USEC",
    "ERRNO",
    "EXTEND_TIMEOUT_USEC",
];

/// Sends sd_notify messages; logs failures instead of returning them.
///
/// The messages are formatted by the `sd-notify` crate; the datagram goes out through
/// one socket kept for the life of the notifier (the crate opens one per message), to a
/// path or to an abstract address (`@name`), as `sd_notify(3)` allows.
#[derive(Debug, Default)]
pub struct Notifier {
    /// Where to send (`$NOTIFY_SOCKET` when created), `None` when not asked to notify.
    target: Option<OsString>,
    /// The unbound datagram socket, created on first use.
    sock: OnceCell<UnixDatagram>,
    /// Whether a failure was already logged (further ones go to debug level).
    failed_once: Cell<bool>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET` (if any).
    pub fn from_env() -> Self {
        Self::to_socket(std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()))
    }

    /// A notifier sending to `target` (a socket path, or `@name` for an abstract
    /// address), or doing nothing for `None`.
    pub fn to_socket(target: Option<OsString>) -> Self {
        Notifier {
            target,
            ..Self::default()
        }
    }

    /// Whether systemd asked for notifications (`$NOTIFY_SOCKET` is set).
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    fn send_raw(&self, msg: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sock = match self.sock.get() {
            Some(s) => s,
            None => {
                let s = UnixDatagram::unbound()?;
                self.sock.get_or_init(|| s)
            }
        };
        let bytes = target.as_bytes();
        let sent = if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            sock.send_to_addr(msg.as_bytes(), &SocketAddr::from_abstract_name(name)?)?
        } else {
            sock.send_to(msg.as_bytes(), target)?
        };
        if sent != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
        }
        Ok(())
    }

    /// Sends `states` as one datagram; returns whether it was sent (or not needed).
    pub fn send(&self, what: &str, states: &[NotifyState<'_>]) -> bool {
        let mut msg = String::new();
        for s in states {
            let _ = writeln!(msg, "{s}");
        }
        self.send_text(what, &msg)
    }

    /// Sends `msg` (newline-terminated `KEY=VALUE` lines, already checked) as one
    /// datagram; returns whether it was sent (or not needed).
    pub fn send_text(&self, what: &str, msg: &str) -> bool {
        match self.send_raw(msg) {
            Ok(()) => {
                log::trace!("sd_notify {what}");
                true
            }
            Err(err) => {
                if self.failed_once.replace(true) {
                    log::debug!("sd_notify {what} failed: {err}");
                } else {
                    log::warn!("cannot notify the service manager ({what}): {err}");
                }
                false
            }
        }
    }

    /// `READY=1` (with the current `STATUS=` when given): initialisation is done.
    pub fn ready(&self, status: Option<&str>) -> bool {
        match status {
            Some(s) => self.send("READY", &[NotifyState::Ready, NotifyState::Status(s)]),
            None => self.send("READY", &[NotifyState::Ready]),
        }
    }

    /// `STATUS=text`: what the service is doing. Newlines are replaced by spaces (a
    /// newline would end the field).
    pub fn status(&self, text: &str) -> bool {
        let one_line = single_line(text);
        self.send("STATUS", &[NotifyState::Status(&one_line)])
    }

    /// `STOPPING=1` (with a status line): the service is shutting down.
    pub fn stopping(&self, status: &str) -> bool {
        let one_line = single_line(status);
        self.send(
            "STOPPING",
            &[NotifyState::Stopping, NotifyState::Status(&one_line)],
        )
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd 253+ requires for
    /// `Type=notify-reload`; older versions ignore it).
    pub fn reloading(&self) -> bool {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(
                "RELOADING",
                &[
                    NotifyState::Reloading,
                    now,
                    NotifyState::Status("reloading"),
                ],
            ),
            Err(_) => self.send(
                "RELOADING",
                &[NotifyState::Reloading, NotifyState::Status("reloading")],
            ),
        }
    }

    /// `WATCHDOG=1`: the service is alive.
    pub fn watchdog(&self) -> bool {
        self.send("WATCHDOG", &[NotifyState::Watchdog])
    }

    /// Passes on lines received from a child's notify socket, keeping only the keys
    /// in [`RELAYED_KEYS`]. Returns the lines that were relayed.
    pub fn relay(&self, datagram: &str) -> Vec<String> {
        let lines = relayable_lines(datagram);
        if !lines.is_empty() {
            let states: Vec<NotifyState<'_>> =
                lines.iter().map(|l| NotifyState::Custom(l)).collect();
            self.send("relay", &states);
        }
        lines
    }
}

/// The lines of a notify datagram whose key is in [`RELAYED_KEYS`].
pub fn relayable_lines(datagram: &str) -> Vec<String> {
    datagram
        .lines()
        .filter(|line| {
            line.split_once('=')
                .is_some_and(|(key, _)| RELAYED_KEYS.contains(&key))
        })
        .map(str::to_owned)
        .collect()
}

/// The watchdog interval systemd expects pings within (`$WATCHDOG_USEC`), when the
/// watchdog is on and meant for this process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d.min(crate::time::MAX_DURATION))
}

pub(crate) fn single_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The variables by which a service manager speaks to its service (notify socket,
/// watchdog): a child started by mydaemon must not inherit mydaemon's own.
pub const NOTIFY_ENV: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Removes [`NOTIFY_ENV`] from `cmd`'s environment.
pub fn scrub_notify_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for var in NOTIFY_ENV {
        cmd.env_remove(var);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_keeps_only_known_keys() {
        let got =
            relayable_lines("READY=1\nMAINPID=1\nSTATUS=hello world\nFDSTORE=1\nWATCHDOG=1\n");
        assert_eq!(got, vec!["READY=1", "STATUS=hello world", "WATCHDOG=1"]);
    }

    #[test]
    fn relay_drops_lines_without_key() {
        assert!(relayable_lines("READY\n\n=1\n").is_empty());
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(single_line("a\nb\rc"), "a b c");
    }

    #[test]
    fn notifications_reach_the_socket() {
        // A real datagram socket standing in for systemd's.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_socket(Some(path.into_os_string()));
        assert!(n.ready(Some("up")));
        assert!(n.reloading());
        assert_eq!(n.relay("READY=1\nMAINPID=7\n"), vec!["READY=1"]);
        let mut buf = [0u8; 512];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up\n");
        let len = sock.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\n");
    }

    #[test]
    fn abstract_addresses_work() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("mydaemon-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::to_socket(Some(format!("@{name}").into()));
        assert!(n.watchdog());
        let mut buf = [0u8; 64];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1\n");
    }

    #[test]
    fn failures_are_not_fatal() {
        let n = Notifier::to_socket(Some("/nonexistent/mydaemon/notify".into()));
        assert!(!n.ready(None));
        assert!(!n.watchdog());
        assert!(Notifier::to_socket(None).ready(None));
    }
}
