//! A systemd manager on another machine, reached as `systemctl -H` reaches it: `ssh -xT
//! HOST systemd-stdio-bridge` (`--user`: the remote user's bus), D-Bus spoken over the
//! child's stdin/stdout. Our end is one half of a socketpair (as sd-bus's `unixexec:`
//! gives it), the other half is ssh's stdin and stdout; zbus runs an ordinary bus
//! connection over it (the bridge answers the handshake and forwards `Hello` to the
//! remote bus). The result is the same [`Systemd`] the local verbs use, with
//! [`Route::Ssh`]; the ssh child lives as long as the connection and is killed and reaped
//! with its last clone.

use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::connection::Builder;

use super::connection::{Route, Systemd, METHOD_TIMEOUT};
use crate::error::{Error, Result};
use crate::spec::Scope;
use crate::ssh::{self, Captured, Host, SshOptions};

/// A remote machine and how ssh reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The machine.
    pub host: Host,
    /// ssh's options (connect timeout).
    pub ssh: SshOptions,
}

/// The ssh child carrying a connection: killed and reaped when dropped.
#[derive(Debug)]
pub struct Tunnel {
    child: Mutex<Child>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        ssh::kill_and_reap(child);
    }
}

/// The remote command: the bridge to the system bus, or with `--user` to the user's.
pub fn bridge_command(scope: Scope) -> &'static str {
    match scope {
        Scope::System => "systemd-stdio-bridge",
        Scope::User => "systemd-stdio-bridge --user",
    }
}

/// Connects to the manager of `scope` on `remote`; the whole set-up (ssh login, bridge,
/// D-Bus handshake) is bounded by the connect timeout.
pub fn connect(remote: &Remote, scope: Scope) -> Result<Systemd> {
    let (ours, theirs) = UnixStream::pair()
        .map_err(|e| Error::generic(format!("cannot create a socket pair: {e}")))?;
    let theirs_out = theirs
        .try_clone()
        .map_err(|e| Error::generic(format!("cannot duplicate a socket: {e}")))?;
    let mut child = Command::new(ssh::ssh_program())
        .args(ssh::ssh_args(
            &remote.host,
            &remote.ssh,
            bridge_command(scope),
        ))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ssh::spawn_failed)?;
    let stderr = Captured::start(child.stderr.take().expect("piped stderr"));
    log::debug!(
        "{}: ssh {} (pid {})",
        remote.host,
        bridge_command(scope),
        child.id()
    );
    let tunnel = Arc::new(Tunnel {
        child: Mutex::new(child),
    });
    let limit = remote.ssh.connect_timeout;
    let built = zbus::block_on(futures_lite::future::or(
        async {
            Some(
                Builder::unix_stream(ours)
                    .method_timeout(METHOD_TIMEOUT)
                    .build()
                    .await,
            )
        },
        async {
            async_io::Timer::after(limit).await;
            None
        },
    ));
    match built {
        Some(Ok(conn)) => Ok(Systemd {
            conn,
            scope,
            route: Route::Ssh(remote.clone()),
            tunnel: Some(tunnel),
        }),
        Some(Err(e)) => Err(explain(&tunnel, &stderr, remote, &e.to_string())),
        None => Err(ssh::classify(&stderr.text(), &remote.ssh)
            .unwrap_or_else(|| ssh::no_answer(limit.as_secs().max(1)))),
    }
}

/// Why the connection could not be set up: from ssh's exit status and stderr once it
/// has exited (waiting a moment for it), else from zbus's error.
fn explain(tunnel: &Tunnel, stderr: &Captured, remote: &Remote, zbus_error: &str) -> Error {
    let status = {
        let mut child = tunnel.child.lock().unwrap_or_else(|p| p.into_inner());
        ssh::wait_bounded(&mut child, Duration::from_secs(1))
    };
    let text = stderr.text();
    log::debug!("{}: ssh said {text:?}, exit {status:?}", remote.host);
    match status.and_then(|s| s.code()) {
        Some(127) => Error::generic("systemd-stdio-bridge not found there (systemd ≥ 209 needed)")
            .with_hint("is systemd installed there? the bridge is in its base package"),
        Some(255) => {
            if let Some(e) = ssh::classify(&text, &remote.ssh) {
                return e;
            }
            ssh::failure(&remote.ssh, status.expect("exited"), &text)
        }
        Some(code) => {
            // The bridge logs to the journal there, not to us: its exit status is all.
            let why = match text.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(l) => l.trim().to_owned(),
                None => format!("it exited with status {code}"),
            };
            Error::generic(format!(
                "systemd-stdio-bridge there could not reach the bus ({why})"
            ))
            .with_hint("is D-Bus running there? (`systemctl status dbus` on that host)")
        }
        None => Error::generic(format!("the D-Bus handshake failed ({zbus_error})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scope_bridges_to_the_users_bus() {
        assert_eq!(bridge_command(Scope::System), "systemd-stdio-bridge");
        assert_eq!(bridge_command(Scope::User), "systemd-stdio-bridge --user");
    }
}
