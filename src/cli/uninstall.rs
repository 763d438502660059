//! `mydaemon uninstall`: stop, disable and remove the service.

use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `uninstall`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Remove the systemd unit.
    #[arg(long, conflicts_with = "sysv")]
    pub systemd: bool,
    /// Remove the init.d script.
    #[arg(long)]
    pub sysv: bool,
}

/// Uninstalls the service.
pub fn exec(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("uninstall"))
}
