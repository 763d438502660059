//! `install`/`uninstall` of `NAME.socket` beside `NAME.service` (socket activation,
//! `--listen`): the file written and removed with the service's, the socket enabled
//! (`WantedBy=sockets.target`) and started instead of the service, which its first
//! connection starts.

use std::path::{Path, PathBuf};

use super::{control_with, Systemd, Verb};
use crate::error::Result;
use crate::install::{self, Written};
use crate::unit::ServiceSpec;

/// The unit `install` enables: `NAME.socket` for a socket-activated service, else the
/// service itself; and the target it is wanted by.
pub fn enabled_unit(spec: &ServiceSpec) -> (String, &'static str) {
    if spec.listen.is_empty() {
        (spec.unit_name(), spec.wanted_by())
    } else {
        (spec.socket_name(), "sockets.target")
    }
}

/// Writes `NAME.socket` into `dir` if the service listens; says what it did.
pub fn write(
    dir: &Path,
    spec: &ServiceSpec,
    force: bool,
    say: &dyn Fn(String),
) -> Result<Option<(PathBuf, Written)>> {
    let Some(text) = spec.render_socket()? else {
        return Ok(None);
    };
    let (path, written) = install::write_unit(dir, &spec.socket_name(), &text, force)?;
    match written {
        Written::Created => say(format!("wrote {}", path.display())),
        Written::Replaced => say(format!("replaced {}", path.display())),
        Written::Unchanged => say(format!("{} is up to date", path.display())),
    }
    Ok(Some((path, written)))
}

/// Live install: starts `NAME.socket` (restarts it when its file changed, so new
/// addresses take effect), so the first connection starts the service.
pub fn start(sd: &Systemd, spec: &ServiceSpec, changed: bool) -> Result<()> {
    let verb = if changed { Verb::Restart } else { Verb::Start };
    control_with(sd, &spec.socket_name(), verb, false).map(drop)
}

/// The socket unit of `service_unit` in `dir`, if mydaemon generated one there (or any,
/// with `force`).
pub fn installed(dir: &Path, service_unit: &str, force: bool) -> Option<String> {
    let name = format!("{}.socket", service_unit.strip_suffix(".service")?);
    std::fs::read(dir.join(&name))
        .ok()
        .filter(|c| force || install::is_generated(c))
        .map(|_| name)
}

/// Uninstall: stop and disable the socket first (else a connection would start the
/// service again), then, once the files go, its file and links.
pub fn stop_disable(sd: &Systemd, socket: &str, quiet: bool) -> Result<()> {
    super::uninstall_stop_disable(sd, socket, quiet)
}

/// Removes the socket unit file and its links; says what it removed.
pub fn remove(dir: &Path, socket: &str, force: bool, quiet: bool) -> Result<()> {
    let removed = install::remove_unit(dir, socket, force)?;
    if !quiet {
        for l in &removed.links {
            crate::output::outln!("removed {}", l.display());
        }
        crate::output::outln!("removed {}", removed.unit.display());
    }
    Ok(())
}
