//! `mydaemon logs`: the service's journal (or log files, without systemd).

use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `logs`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Keep printing new lines as they arrive.
    #[arg(short, long)]
    pub follow: bool,
    /// How many lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Only lines since this time (journalctl's --since syntax).
    #[arg(long)]
    pub since: Option<String>,
}

/// Shows the log.
pub fn exec(_g: &Global, _a: &Args) -> Result<u8> {
    Err(Error::unimplemented("logs"))
}
