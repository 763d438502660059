//! Reaching the service manager: systemd's private socket, the system bus or the user's.
//!
//! The order follows systemctl's own (`bus_connect_system_systemd`,
//! `bus_connect_user_systemd`):
//! - system manager, as root: the private socket `/run/systemd/private`, a peer-to-peer
//!   connection with no dbus-daemon involved (see [`super::private_socket`]); if it cannot
//!   be reached, the system bus;
//! - system manager, other users: the system bus (the private socket is root's only);
//! - `--user`: `$XDG_RUNTIME_DIR/systemd/private` (owned by that user), else the user bus.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zbus::connection::Builder;
use zbus::Connection;

use super::private_socket::PrivateSocket;
use crate::error::{Error, NEEDS_ROOT_HINT};

pub use crate::spec::Scope;

/// How the connection reached systemd (shown with `-v`, and by the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A private socket of systemd's, peer to peer.
    PrivateSocket(PathBuf),
    /// A message bus (dbus-daemon or dbus-broker).
    Bus,
    /// The bus of another machine, through `ssh HOST systemd-stdio-bridge`.
    Ssh(crate::ssh::Remote),
}

impl Route {
    /// True for a bus (local or remote): signals must name systemd as their sender.
    pub fn is_bus(&self) -> bool {
        !matches!(self, Route::PrivateSocket(_))
    }

    /// The remote machine, for a connection over ssh.
    pub fn remote(&self) -> Option<&crate::ssh::Remote> {
        match self {
            Route::Ssh(r) => Some(r),
            _ => None,
        }
    }
}

/// A live connection to a systemd manager.
#[derive(Debug, Clone)]
pub struct Systemd {
    /// The zbus connection.
    pub conn: Connection,
    /// System or user manager.
    pub scope: Scope,
    /// Private socket or bus.
    pub route: Route,
    /// For [`Route::Ssh`]: the ssh child, killed when the last clone goes.
    pub tunnel: Option<std::sync::Arc<crate::ssh::Tunnel>>,
}

/// How long one method call may take before we give up (systemd's own default is 25 s).
pub const METHOD_TIMEOUT: Duration = Duration::from_secs(25);

/// The path of the system manager's private socket.
pub const SYSTEM_PRIVATE_SOCKET: &str = "/run/systemd/private";

/// Connects to the manager of `scope`.
pub fn connect(scope: Scope) -> Result<Systemd, Error> {
    zbus::block_on(connect_async(scope))
}

/// Async form of [`connect`].
pub async fn connect_async(scope: Scope) -> Result<Systemd, Error> {
    match scope {
        Scope::System => connect_system(Path::new("/")).await,
        Scope::User => connect_user().await,
    }
}

/// Name of the environment variable that, set to `bus`, skips the private socket (for
/// tests and benchmarks of the bus route; nothing else reads it).
pub const ROUTE_ENV: &str = "MYDAEMON_SYSTEMD_ROUTE";

fn bus_forced() -> bool {
    std::env::var_os(ROUTE_ENV).is_some_and(|v| v == "bus")
}

/// The error for "no systemd here".
pub fn systemd_not_running() -> Error {
    Error::generic("systemd is not running on this machine (no /run/systemd/system)")
        .with_hint("use `--backend pidfile` to run mydaemon as a self-managed daemon")
}

async fn connect_system(root: &Path) -> Result<Systemd, Error> {
    if !crate::backend::systemd_booted(root) {
        return Err(systemd_not_running());
    }
    let private = Path::new(SYSTEM_PRIVATE_SOCKET);
    if nix::unistd::geteuid().is_root() && !bus_forced() {
        match private_connection(private).await {
            Ok(conn) => {
                log::debug!("connected to systemd through {}", private.display());
                return Ok(Systemd {
                    conn,
                    scope: Scope::System,
                    route: Route::PrivateSocket(private.into()),
                    tunnel: None,
                });
            }
            Err(e) => log::debug!("private socket unusable ({e}); trying the system bus"),
        }
    }
    match Builder::system()
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await
    {
        Ok(conn) => {
            log::debug!("connected to systemd through the system bus");
            Ok(Systemd {
                conn,
                scope: Scope::System,
                route: Route::Bus,
                tunnel: None,
            })
        }
        Err(e) => Err(bus_unreachable(e, "the system bus")),
    }
}

/// No bus: for root a plain failure (exit 1); for anyone else a matter of privilege
/// (exit 4, as `status` must not mistake it for "dead"): root would have reached
/// systemd through its private socket.
fn bus_unreachable(e: zbus::Error, which: &str) -> Error {
    bus_unreachable_for(nix::unistd::geteuid().is_root(), &e.to_string(), which)
}

fn bus_unreachable_for(root: bool, e: &str, which: &str) -> Error {
    let text = format!("cannot reach systemd: {which} is not available ({e})");
    if root {
        Error::generic(text)
            .with_hint("systemd's private socket did not answer either; is systemd running?")
    } else {
        Error::privilege(text).with_hint(format!(
            "only root may use systemd's private socket; {NEEDS_ROOT_HINT}"
        ))
    }
}

/// The user's runtime directory: `$XDG_RUNTIME_DIR`, or `/run/user/UID` when the
/// variable is unset (`sudo -u`, a session without pam_systemd).
fn user_runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::getuid())))
}

/// The user manager's private socket: `$XDG_RUNTIME_DIR/systemd/private`, or under
/// `/run/user/UID`.
pub fn user_private_socket() -> PathBuf {
    user_runtime_dir().join("systemd/private")
}

async fn connect_user() -> Result<Systemd, Error> {
    let uid = nix::unistd::getuid();
    let runtime = user_runtime_dir();
    let private = runtime.join("systemd/private");
    let direct = if bus_forced() {
        Err(io::Error::other(format!("{ROUTE_ENV}=bus")))
    } else {
        private_connection(&private).await
    };
    match direct {
        Ok(conn) => {
            return Ok(Systemd {
                conn,
                scope: Scope::User,
                route: Route::PrivateSocket(private),
                tunnel: None,
            })
        }
        Err(e) => log::debug!("{}: {e}; trying the user bus", private.display()),
    }
    let bus = runtime.join("bus");
    // zbus falls back to $XDG_RUNTIME_DIR/bus when DBUS_SESSION_BUS_ADDRESS is unset.
    match Builder::session()
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await
    {
        Ok(conn) => Ok(Systemd {
            conn,
            scope: Scope::User,
            route: Route::Bus,
            tunnel: None,
        }),
        Err(_) => Err(Error::generic(format!(
            "no user service manager is running for uid {uid} (neither {} nor {} answers)",
            private.display(),
            bus.display()
        ))
        .with_hint("log in to start one, or keep one running with `loginctl enable-linger USER`")),
    }
}

/// The private socket [`connect`] would try first for `scope`, if any: the system
/// manager's for root (when systemd runs), the user's own manager's for `--user`.
pub fn private_socket_for(scope: Scope) -> Option<PathBuf> {
    if bus_forced() {
        return None;
    }
    match scope {
        Scope::System => (nix::unistd::geteuid().is_root()
            && crate::backend::systemd_booted(Path::new("/")))
        .then(|| PathBuf::from(SYSTEM_PRIVATE_SOCKET)),
        Scope::User => Some(user_private_socket()),
    }
}

/// A peer-to-peer connection over a private socket at `path`.
pub async fn private_connection(path: &Path) -> io::Result<Connection> {
    let socket = PrivateSocket::connect(path)?;
    Builder::socket(socket)
        .p2p()
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await
        .map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn no_bus_as_non_root_is_exit_4_with_the_hint() {
        let e = super::bus_unreachable_for(false, "ENOENT", "the system bus");
        assert_eq!(e.exit_code(), crate::error::exit::PRIVILEGE);
        assert!(e.hint().unwrap().contains("private socket"), "{e:?}");
        let e = super::bus_unreachable_for(true, "ENOENT", "the system bus");
        assert_eq!(e.exit_code(), crate::error::exit::GENERIC);
    }

    use super::*;

    #[test]
    fn no_systemd_says_so_and_points_to_the_fallback() {
        let root = tempfile::tempdir().unwrap();
        let err = zbus::block_on(connect_system(root.path())).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.message().contains("systemd is not running"), "{err}");
        assert!(err.to_string().contains("--backend pidfile"), "{err}");
    }
}
