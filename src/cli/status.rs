//! `mydaemon status`: the service's state, with LSB exit codes.

use crate::backend::Backend;
use crate::cli::Global;
use crate::error::Result;

/// Options of `status`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print one JSON object for scripts.
    #[arg(long)]
    pub json: bool,
    /// How many journal lines to show (0 for none).
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: usize,
    /// PID-file backend only: where the PID file and the log are.
    #[command(flatten)]
    pub paths: crate::fallback::paths::PathArgs,
}

/// Shows the status; exit 0 running, 3 not running, 4 unknown.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => crate::systemd::print_status(
            crate::systemd::scope(g.user),
            &g.unit_name(),
            a.lines,
            a.json,
        ),
        Backend::Pidfile => crate::fallback::status(&g.target(), &a.paths, a.json, a.lines),
    }
}
