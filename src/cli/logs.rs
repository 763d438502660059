//! `mydaemon logs`: the service's journal (or log files, without systemd).

use crate::backend::{LogQuery, ServiceManager};
use crate::cli::{manager, Global};
use crate::error::Result;
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

/// Options of `logs`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Keep printing new lines as they arrive.
    #[arg(short, long)]
    pub follow: bool,
    /// How many lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Only lines since TIME: journalctl's syntax under systemd; without it
    /// `YYYY-MM-DD [HH:MM[:SS]]` (local, Z for UTC), today, yesterday, -1h30m, "10m ago".
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// PID-file backend only: where the PID file and the log are.
    #[command(flatten)]
    pub paths: crate::fallback::paths::PathArgs,
}

/// Shows the log.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    let q = LogQuery {
        lines: a.lines,
        follow: a.follow,
        since: a.since.clone(),
    };
    if let Some(fleet) = crate::cli::hosts::fleet(g, "logs", false)? {
        let t = g.target()?;
        return fleet.run("logs", &SystemdManager::default(), |m| m.logs(&t, &q));
    }
    manager(g, None, SystemdManager::default(), || {
        PidfileManager::at(&a.paths)
    })
    .logs(&g.target()?, &q)
}
