//! `mydaemon uninstall`: stop, disable and remove the service.
//!
//! The backend does the work ([`ServiceManager::uninstall`]):
//! under systemd, stop and disable over D-Bus, remove the unit and its enable symlinks
//! (`install::remove_unit`), reload; without, the init.d script and its links.

use std::path::PathBuf;

use crate::backend::{for_files, ServiceManager, UninstallOptions};
use crate::cli::{manager, Global};
use crate::error::Result;
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

/// Options of `uninstall`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Remove the systemd unit (the default when systemd runs, or with --root).
    #[arg(long, conflicts_with = "sysv")]
    pub systemd: bool,
    /// Remove the init.d script.
    #[arg(long)]
    pub sysv: bool,
    /// Remove from the image tree DIR instead of this system (with --sysv:
    /// DIR/etc/init.d and DIR/etc/rc?.d).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Remove the unit even if mydaemon did not generate it.
    #[arg(long)]
    pub force: bool,
    /// Also remove what the service left: under systemd its state, cache, logs and
    /// runtime directories (/var/lib/NAME, with DynamicUser= /var/lib/private/NAME too),
    /// removed by systemd itself (`systemctl clean`); with --sysv its log file and the
    /// PID file's directory. Configuration is kept.
    #[arg(long, conflicts_with = "root")]
    pub purge: bool,
}

/// Uninstalls the service.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    let how = UninstallOptions {
        root: a.root.clone(),
        force: a.force,
        purge: a.purge,
    };
    if let Some(fleet) = crate::cli::hosts::fleet(g, "uninstall", false)? {
        if a.root.is_some() {
            return Err(crate::cli::hosts::local_only("uninstall", "--root"));
        }
        if a.sysv {
            return Err(crate::cli::hosts::local_only("uninstall", "--sysv"));
        }
        let t = g.target()?;
        return fleet.run("uninstall", &SystemdManager::default(), |m| {
            m.uninstall(&t, &how)
        });
    }
    let backend = for_files(g.backend, g.user, a.systemd, a.sysv, a.root.is_some());
    manager(
        g,
        Some(backend),
        SystemdManager::default(),
        PidfileManager::default,
    )
    .uninstall(&g.target()?, &how)
}
