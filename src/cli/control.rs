//! `start`, `stop`, `restart`, `reload`: one handler family, as systemctl has, for
//! both backends.

use crate::backend::ServiceManager;
use crate::cli::{manager, Global};
use crate::error::Result;
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

/// Options of `stop` and `reload`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// Return once the job is queued instead of waiting for its result.
    #[arg(long)]
    pub no_block: bool,
    /// PID-file backend only: PID file, log directory, timeout.
    #[command(flatten)]
    pub pidfile: crate::fallback::PidfileArgs,
}

/// Options of `start` and `restart`.
#[derive(clap::Args, Debug, Clone)]
pub struct StartArgs {
    /// Options shared with `stop`.
    #[command(flatten)]
    pub control: JobArgs,
    /// What to run (PID-file backend only; systemd takes it from the unit).
    #[command(flatten, next_help_heading = "What to run (PID-file backend)")]
    pub run: crate::daemon::options::RunArgs,
    /// Restart policy (PID-file backend only; systemd takes it from the unit).
    #[command(flatten)]
    pub supervise: crate::fallback::SuperviseArgs,
}

impl StartArgs {
    fn manager(&self, g: &Global) -> Box<dyn ServiceManager> {
        manager(
            g,
            None,
            SystemdManager {
                no_block: self.control.no_block,
            },
            || PidfileManager {
                pidfile: self.control.pidfile.clone(),
                run: self.run.clone(),
                supervise: self.supervise.clone(),
            },
        )
    }
}

impl JobArgs {
    fn manager(&self, g: &Global) -> Box<dyn ServiceManager> {
        manager(
            g,
            None,
            SystemdManager {
                no_block: self.no_block,
            },
            || PidfileManager {
                pidfile: self.pidfile.clone(),
                ..PidfileManager::default()
            },
        )
    }
}

/// `start`.
pub fn start(g: &Global, a: &StartArgs) -> Result<u8> {
    a.manager(g).start(&g.target()?)
}

/// `stop`.
pub fn stop(g: &Global, a: &JobArgs) -> Result<u8> {
    a.manager(g).stop(&g.target()?)
}

/// `restart`.
pub fn restart(g: &Global, a: &StartArgs) -> Result<u8> {
    a.manager(g).restart(&g.target()?)
}

/// `reload`.
pub fn reload(g: &Global, a: &JobArgs) -> Result<u8> {
    a.manager(g).reload(&g.target()?)
}
