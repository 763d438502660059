//! `start`, `stop`, `restart`, `reload`: one handler family, as systemctl has, for
//! both backends.

use crate::backend::ServiceManager;
use crate::cli::{hosts, manager, Global};
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
        manager(g, None, self.control.systemd(), || PidfileManager {
            pidfile: self.control.pidfile.clone(),
            run: self.run.clone(),
            supervise: self.supervise.clone(),
        })
    }
}

impl JobArgs {
    fn systemd(&self) -> SystemdManager {
        SystemdManager {
            no_block: self.no_block,
            remote: None,
        }
    }

    fn manager(&self, g: &Global) -> Box<dyn ServiceManager> {
        manager(g, None, self.systemd(), || PidfileManager {
            pidfile: self.pidfile.clone(),
            ..PidfileManager::default()
        })
    }
}

/// Runs `f` on every host of `-H`, if any were named.
fn on_hosts(
    g: &Global,
    verb: &str,
    a: &JobArgs,
    f: impl Fn(&SystemdManager, &crate::backend::Target) -> Result<u8> + Sync,
) -> Result<Option<u8>> {
    let Some(fleet) = hosts::fleet(g, verb, false)? else {
        return Ok(None);
    };
    let t = g.target()?;
    fleet.run(verb, &a.systemd(), |m| f(m, &t)).map(Some)
}

/// `start`.
pub fn start(g: &Global, a: &StartArgs) -> Result<u8> {
    if let Some(code) = on_hosts(g, "start", &a.control, |m, t| m.start(t))? {
        return Ok(code);
    }
    a.manager(g).start(&g.target()?)
}

/// `stop`.
pub fn stop(g: &Global, a: &JobArgs) -> Result<u8> {
    if let Some(code) = on_hosts(g, "stop", a, |m, t| m.stop(t))? {
        return Ok(code);
    }
    a.manager(g).stop(&g.target()?)
}

/// `restart`.
pub fn restart(g: &Global, a: &StartArgs) -> Result<u8> {
    if let Some(code) = on_hosts(g, "restart", &a.control, |m, t| m.restart(t))? {
        return Ok(code);
    }
    a.manager(g).restart(&g.target()?)
}

/// `reload`.
pub fn reload(g: &Global, a: &JobArgs) -> Result<u8> {
    if let Some(code) = on_hosts(g, "reload", a, |m, t| m.reload(t))? {
        return Ok(code);
    }
    a.manager(g).reload(&g.target()?)
}
