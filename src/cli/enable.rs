//! `mydaemon enable` and `disable`: systemd's enablement over D-Bus, or without
//! systemd the init.d script's `rc?.d` links.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::fallback::sysv;

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

/// `enable`.
pub fn enable(g: &Global, a: &Args) -> Result<u8> {
    match backend(g, a, "enable")? {
        Backend::Systemd => crate::systemd::enable(
            crate::systemd::scope(g.user),
            &g.unit_name(),
            a.now,
            g.quiet,
        ),
        Backend::Pidfile => sysv::enable(&g.target(), a.root.as_deref(), a.now),
    }
}

/// `disable`.
pub fn disable(g: &Global, a: &Args) -> Result<u8> {
    match backend(g, a, "disable")? {
        Backend::Systemd => crate::systemd::disable(
            crate::systemd::scope(g.user),
            &g.unit_name(),
            a.now,
            g.quiet,
        ),
        Backend::Pidfile => sysv::disable(&g.target(), a.root.as_deref(), a.now),
    }
}
