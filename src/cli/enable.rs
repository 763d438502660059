//! `mydaemon enable` and `disable`: systemd's enablement over D-Bus, or without
//! systemd the init.d script's `rc?.d` links.

use std::path::PathBuf;

use crate::backend::{Backend, ServiceManager};
use crate::cli::{manager, Global};
use crate::error::{Error, Result};
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

/// Options of `enable` and `disable`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Also start (enable) or stop (disable) the service.
    #[arg(long)]
    pub now: bool,
    /// Without systemd: change the `rc?.d` links of the image tree DIR instead of this
    /// system's (for a systemd unit, `install --root DIR` enables it).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Which backend answers, refusing what it cannot do.
fn backend(g: &Global, a: &Args, verb: &str) -> Result<Backend> {
    let b = if a.root.is_some() {
        Backend::Pidfile
    } else {
        Backend::resolve(g.backend)
    };
    match b {
        Backend::Pidfile if g.user => Err(Error::usage(format!(
            "{verb} --user needs a systemd user manager: without systemd there is no per-user boot to {verb} the service at"
        ))
        .with_hint("start it from your session instead (`mydaemon --user start`)")),
        b => Ok(b),
    }
}

/// `enable`/`disable` on the hosts of `-H`, if any were named.
fn on_hosts(g: &Global, a: &Args, verb: &str, enable: bool) -> Result<Option<u8>> {
    let Some(fleet) = crate::cli::hosts::fleet(g, verb, false)? else {
        return Ok(None);
    };
    if a.root.is_some() {
        return Err(crate::cli::hosts::local_only(verb, "--root"));
    }
    let t = g.target()?;
    fleet
        .run(verb, &SystemdManager::default(), |m| {
            if enable {
                m.enable(&t, None, a.now)
            } else {
                m.disable(&t, None, a.now)
            }
        })
        .map(Some)
}

/// `enable`.
pub fn enable(g: &Global, a: &Args) -> Result<u8> {
    if let Some(code) = on_hosts(g, a, "enable", true)? {
        return Ok(code);
    }
    let b = backend(g, a, "enable")?;
    manager(
        g,
        Some(b),
        SystemdManager::default(),
        PidfileManager::default,
    )
    .enable(&g.target()?, a.root.as_deref(), a.now)
}

/// `disable`.
pub fn disable(g: &Global, a: &Args) -> Result<u8> {
    if let Some(code) = on_hosts(g, a, "disable", false)? {
        return Ok(code);
    }
    let b = backend(g, a, "disable")?;
    manager(
        g,
        Some(b),
        SystemdManager::default(),
        PidfileManager::default,
    )
    .disable(&g.target()?, a.root.as_deref(), a.now)
}
