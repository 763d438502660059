//! A systemd manager on another machine, reached as `systemctl -H` reaches it: `ssh -xT
//! HOST systemd-stdio-bridge` (`--user`: the remote user's bus), D-Bus spoken over the
//! child's stdin/stdout. Our end is one half of a socketpair (as sd-bus's `unixexec:`
//! gives it), the other half is ssh's stdin and stdout; zbus runs an ordinary bus
//! connection over it (the bridge answers the handshake and forwards `Hello` to the
//! remote bus). The result is the same [`Systemd`] the local verbs use, with
//! [`Route::Ssh`]; the ssh child lives as long as the connection and is killed and reaped
//! with its last clone.

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use zbus::connection::Builder;

use super::connection::{Route, Systemd, METHOD_TIMEOUT};
use crate::error::{Error, Result};
use crate::spec::Scope;
use crate::ssh::{self, Captured};
pub use crate::ssh::{Remote, Tunnel};

/// The remote command: the bridge to the system bus, as `systemctl -H` runs it; with
/// `--user`, to the login's own bus, named explicitly: systemd 252's bridge takes
/// `--user` but still connects to the system bus (measured: the same bus ID as without
/// it), so the address is given with `-p`, from `$DBUS_SESSION_BUS_ADDRESS` or
/// `$XDG_RUNTIME_DIR/bus` there (`/run/user/UID/bus` without either), by `sh`, whatever
/// the login shell is.
pub fn bridge_command(scope: Scope) -> String {
    match scope {
        Scope::System => "systemd-stdio-bridge".into(),
        Scope::User => crate::ssh::remote_command(&[
            "sh",
            "-c",
            "exec systemd-stdio-bridge --user \
             -p \"${DBUS_SESSION_BUS_ADDRESS:-unix:path=${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/bus}\"",
        ]),
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
            &bridge_command(scope),
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
    let tunnel = Arc::new(Tunnel::new(child));
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
    let status = tunnel.wait_bounded(Duration::from_secs(1));
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
        // The remote shell runs `sh -c '...'`: run it here the same way, with a stand-in
        // bridge that prints its arguments.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("systemd-stdio-bridge");
        std::fs::write(&fake, "#!/bin/sh\necho \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |env: &[(&str, &str)]| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(bridge_command(Scope::User))
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .envs(env.iter().copied())
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(
            run(&[("XDG_RUNTIME_DIR", "/run/user/1001")]),
            "--user -p unix:path=/run/user/1001/bus\n"
        );
        assert_eq!(
            run(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x/bus")]),
            "--user -p unix:path=/x/bus\n"
        );
        let uid = nix::unistd::getuid();
        assert_eq!(
            run(&[]),
            format!("--user -p unix:path=/run/user/{uid}/bus\n")
        );
    }
}
