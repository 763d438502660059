//! `mydaemon install`: write the unit (or init.d script), reload and enable it.

use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `install`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Install a systemd unit (the default when systemd runs).
    #[arg(long, conflicts_with = "sysv")]
    pub systemd: bool,
    /// Install an LSB init.d script (the default without systemd).
    #[arg(long)]
    pub sysv: bool,
}

/// Installs the service.
pub fn exec(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("install"))
}
