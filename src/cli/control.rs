//! `start`, `stop`, `restart`, `reload`: one handler family, as systemctl has, for
//! both backends.

use crate::backend::Backend;
use crate::cli::Global;
use crate::error::{Error, Result};

/// Options of `stop` and `reload`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// Return once the job is queued instead of waiting for its result.
    #[arg(long)]
    pub no_block: bool,
}

/// Options of `start` and `restart`.
#[derive(clap::Args, Debug, Clone)]
pub struct StartArgs {
    /// Options shared with `stop`.
    #[command(flatten)]
    pub control: JobArgs,
    /// What to run (PID-file backend only; systemd takes it from the unit).
    #[command(flatten)]
    pub run: crate::cli::run::RunArgs,
}

/// `start`.
pub fn start(g: &Global, _a: &StartArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => Err(Error::unimplemented("start (systemd)")),
        Backend::Pidfile => Err(Error::unimplemented("start (pidfile)")),
    }
}

/// `stop`.
pub fn stop(g: &Global, _a: &JobArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => Err(Error::unimplemented("stop (systemd)")),
        Backend::Pidfile => Err(Error::unimplemented("stop (pidfile)")),
    }
}

/// `restart`.
pub fn restart(g: &Global, _a: &StartArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => Err(Error::unimplemented("restart (systemd)")),
        Backend::Pidfile => Err(Error::unimplemented("restart (pidfile)")),
    }
}

/// `reload`.
pub fn reload(g: &Global, _a: &JobArgs) -> Result<u8> {
    match Backend::resolve(g.backend) {
        Backend::Systemd => Err(Error::unimplemented("reload (systemd)")),
        Backend::Pidfile => Err(Error::unimplemented("reload (pidfile)")),
    }
}
