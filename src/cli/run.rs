//! `mydaemon run`: the service process itself.

use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `run` (also taken by `start` for the PID-file backend).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The command to run instead of the built-in workload.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}

/// Runs the service until it is told to stop.
pub fn exec(_g: &Global, _a: &RunArgs) -> Result<u8> {
    Err(Error::unimplemented("run"))
}
