//! The PID-file backend of [`ServiceManager`]: the control verbs of [`super`], the
//! init.d script of [`super::sysv`].

use std::path::Path;

use super::paths::PathArgs;
use super::{PidfileArgs, SuperviseArgs};
use crate::backend::{InstallOptions, LogQuery, ServiceManager, Target, UninstallOptions};
use crate::daemon::options::RunArgs;
use crate::error::Result;
use crate::spec::UnitOptions;

/// The self-daemonizer with a locked PID file, and the init.d script.
#[derive(Debug, Clone, Default)]
pub struct PidfileManager {
    /// PID file, log directory, timeout.
    pub pidfile: PidfileArgs,
    /// What `start`/`restart` run.
    pub run: RunArgs,
    /// The restart policy of `start`/`restart`.
    pub supervise: SuperviseArgs,
}

impl PidfileManager {
    /// A manager that only finds the PID file and the log (`status`, `logs`).
    pub fn at(paths: &PathArgs) -> PidfileManager {
        PidfileManager {
            pidfile: PidfileArgs {
                paths: paths.clone(),
                timeout: None,
            },
            ..PidfileManager::default()
        }
    }
}

impl ServiceManager for PidfileManager {
    fn install(&self, t: &Target, unit: &UnitOptions, how: &InstallOptions) -> Result<u8> {
        super::sysv::install(t, unit, how.root.as_deref(), how.force, how.now)
    }

    fn uninstall(&self, t: &Target, how: &UninstallOptions) -> Result<u8> {
        super::sysv::uninstall(t, how.root.as_deref(), how.force, how.purge)
    }

    fn start(&self, t: &Target) -> Result<u8> {
        super::start(t, &self.run, &self.pidfile, &self.supervise)
    }

    fn stop(&self, t: &Target) -> Result<u8> {
        super::stop(t, &self.pidfile)
    }

    fn restart(&self, t: &Target) -> Result<u8> {
        super::restart(t, &self.run, &self.pidfile, &self.supervise)
    }

    fn reload(&self, t: &Target) -> Result<u8> {
        super::reload(t, &self.pidfile)
    }

    fn status(&self, t: &Target, lines: usize, json: bool) -> Result<u8> {
        super::status(t, &self.pidfile.paths, json, lines)
    }

    fn enable(&self, t: &Target, root: Option<&Path>, now: bool) -> Result<u8> {
        super::sysv::enable(t, root, now)
    }

    fn disable(&self, t: &Target, root: Option<&Path>, now: bool) -> Result<u8> {
        super::sysv::disable(t, root, now)
    }

    fn logs(&self, t: &Target, q: &LogQuery) -> Result<u8> {
        super::logs(
            t,
            &self.pidfile.paths,
            q.lines,
            q.follow,
            q.since.as_deref(),
        )
    }
}
