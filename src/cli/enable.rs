//! `mydaemon enable` and `disable`.

use crate::backend::Backend;
use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `enable` and `disable`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Also start (enable) or stop (disable) the service.
    #[arg(long)]
    pub now: bool,
}

/// `enable`.
pub fn enable(g: &Global, a: &Args) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => crate::systemd::enable(
            crate::systemd::scope(g.user),
            &g.unit_name(),
            a.now,
            g.quiet,
        ),
        Backend::Pidfile => Err(Error::unimplemented("enable (pidfile)")),
    }
}

/// `disable`.
pub fn disable(g: &Global, a: &Args) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => crate::systemd::disable(
            crate::systemd::scope(g.user),
            &g.unit_name(),
            a.now,
            g.quiet,
        ),
        Backend::Pidfile => Err(Error::unimplemented("disable (pidfile)")),
    }
}
