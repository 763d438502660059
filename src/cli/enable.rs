//! `mydaemon enable` and `disable`.

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
pub fn enable(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("enable"))
}

/// `disable`.
pub fn disable(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("disable"))
}
