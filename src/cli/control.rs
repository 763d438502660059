//! `start`, `stop`, `restart`, `reload`: one handler family, as systemctl has, for
//! both backends.

use crate::backend::Backend;
use crate::cli::Global;
use crate::error::Result;
use crate::systemd::Verb;

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

/// `start`.
pub fn start(g: &Global, a: &StartArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => systemd_job(g, Verb::Start, a.control.no_block),
        Backend::Pidfile => {
            crate::fallback::start(&g.target(), &a.run, &a.control.pidfile, &a.supervise)
        }
    }
}

/// `stop`.
pub fn stop(g: &Global, a: &JobArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => systemd_job(g, Verb::Stop, a.no_block),
        Backend::Pidfile => crate::fallback::stop(&g.target(), &a.pidfile),
    }
}

/// `restart`.
pub fn restart(g: &Global, a: &StartArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => systemd_job(g, Verb::Restart, a.control.no_block),
        Backend::Pidfile => {
            crate::fallback::restart(&g.target(), &a.run, &a.control.pidfile, &a.supervise)
        }
    }
}

/// `reload`.
pub fn reload(g: &Global, a: &JobArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => systemd_job(g, Verb::Reload, a.no_block),
        Backend::Pidfile => crate::fallback::reload(&g.target(), &a.pidfile),
    }
}

/// The systemd arm shared by the four verbs: queue the job, wait for its result.
fn systemd_job(g: &Global, verb: Verb, no_block: bool) -> Result<u8> {
    crate::systemd::control(
        crate::systemd::scope(g.user),
        &g.unit_name(),
        verb,
        no_block,
    )
}
