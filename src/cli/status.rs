//! `mydaemon status`: the service's state, with LSB exit codes.

use crate::backend::ServiceManager;
use crate::cli::{manager, Global};
use crate::error::{Error, Result};
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

/// Options of `status`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print one JSON object for scripts.
    #[arg(long)]
    pub json: bool,
    /// How many journal lines to show (0 for none) [default: 10; with -H: 0, as
    /// systemctl -H shows none: each host's lines cost a second ssh login].
    #[arg(short = 'n', long, value_name = "LINES")]
    pub lines: Option<usize>,
    /// PID-file backend only: where the PID file and the log are.
    #[command(flatten)]
    pub paths: crate::fallback::paths::PathArgs,
}

/// Shows the status; exit 0 running, 3 not running, 4 unknown (with `-H`, also a host
/// that could not be asked). With `-H`: each host's,
/// with journal lines only when `-n` asks for them; `--json`: one line per host.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    if let Some(fleet) = crate::cli::hosts::fleet(g, "status", a.json)? {
        let t = g.target()?;
        return fleet.run("status", &SystemdManager::default(), |m| {
            m.status(&t, a.lines.unwrap_or(0), a.json)
                .map_err(Error::status_unknown)
        });
    }
    manager(g, None, SystemdManager::default(), || {
        PidfileManager::at(&a.paths)
    })
    .status(&g.target()?, a.lines.unwrap_or(10), a.json)
}
