//! `mydaemon unit`: print the generated systemd unit.

use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `unit`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The command the service runs instead of the built-in workload.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}

/// Prints the unit.
pub fn exec(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("unit"))
}
