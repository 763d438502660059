//! `mydaemon uninstall`: stop, disable and remove the service.
//!
//! The files part ([`crate::install::remove_unit`]) removes the unit and its enable
//! symlinks; stopping and disabling on a live systemd goes where this file says
//! "LIVE SYSTEMD STEP".

use std::path::PathBuf;

use crate::backend::{manager_running, wants_systemd};
use crate::cli::Global;
use crate::error::{privilege_hint, Error, Result};
use crate::install::{self, Scope};

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
    if a.sysv || !wants_systemd(g.backend, g.user, a.systemd, a.sysv, a.root.is_some()) {
        return crate::fallback::sysv::uninstall(&g.target(), a.root.as_deref(), a.force, a.purge);
    }
    let scope = Scope::select(g.user, a.root.as_deref())?;
    let dir = install::unit_dir(&scope)?;
    let unit_name = g.unit_name();

    // ---- LIVE SYSTEMD STEP (D-Bus: crate::systemd) ---------------------------------
    // Before removing files on a live system: StopUnit waiting for the job, then
    // DisableUnitFiles; after removal, Reload. Only for a unit that will be removed:
    // a missing or foreign one is refused below without touching the running service.
    let live = !matches!(scope, Scope::Root(_)) && manager_running(g.user);
    let removable = std::fs::read(dir.join(&unit_name))
        .map(|c| a.force || install::is_generated(&c))
        .unwrap_or(false);
    if a.purge && !live {
        return Err(Error::not_running(format!(
            "--purge asks the running systemd to remove the directories of {unit_name}, \
             and systemd is not running here; nothing was removed"
        )));
    }
    let systemd = if live && removable {
        let sd = crate::systemd::connect(crate::systemd::scope(g.user))?;
        crate::systemd::uninstall_stop_disable(&sd, &unit_name, g.quiet)?;
        if a.purge {
            // While the unit is still loaded: systemd knows its directories.
            let cleaned = crate::systemd::clean::clean(&sd, &unit_name)?;
            if !g.quiet {
                match cleaned {
                    crate::systemd::clean::Cleaned::Removed => println!(
                        "removed the state, cache, logs and runtime directories of {unit_name}"
                    ),
                    crate::systemd::clean::Cleaned::Nothing => {
                        println!("{unit_name} has no directories to remove")
                    }
                }
            }
        }
        Some(sd)
    } else {
        None
    };

    let removed = install::remove_unit(&dir, &unit_name, a.force)
        .map_err(|e| privilege_hint(e, "uninstall"))?;
    if !g.quiet {
        for l in &removed.links {
            println!("removed {}", l.display());
        }
        println!("removed {}", removed.unit.display());
    }
    if let Some(sd) = systemd {
        crate::systemd::uninstall_reload(&sd, &unit_name)?;
    }
    Ok(0)
}
