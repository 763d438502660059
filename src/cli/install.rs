//! `mydaemon install`: write the unit (or init.d script), reload and enable it.
//!
//! The backend does the work ([`ServiceManager::install`]):
//! systemd's renders the unit exactly as `mydaemon unit` prints it, writes it, and
//! enables it (offline with `--root`, else over D-Bus); the PID-file backend writes the
//! init.d script.

use std::path::PathBuf;

use crate::backend::{for_files, InstallOptions, ServiceManager};
use crate::cli::{manager, Global};
use crate::error::Result;
use crate::fallback::PidfileManager;
use crate::spec::UnitOptions;
use crate::systemd::SystemdManager;
/// Options of `install`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Install a systemd unit (the default when systemd runs, or with --root).
    #[arg(long, conflicts_with = "sysv")]
    pub systemd: bool,
    /// Install an LSB init.d script (the default without systemd).
    #[arg(long)]
    pub sysv: bool,
    /// Install into the image tree DIR (DIR/etc/systemd/system) and enable it there,
    /// as `systemctl --root DIR enable` would; nothing on this system is touched.
    /// With --sysv: DIR/etc/init.d.
    #[arg(long, value_name = "DIR", conflicts_with = "now")]
    pub root: Option<PathBuf>,
    /// Replace an existing unit file that mydaemon did not generate.
    #[arg(long)]
    pub force: bool,
    /// Also start the service once it is installed.
    #[arg(long)]
    pub now: bool,
    /// Unit settings.
    #[command(flatten, next_help_heading = "Unit settings")]
    pub unit: UnitOptions,
}

/// Installs the service.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    let how = InstallOptions {
        root: a.root.clone(),
        force: a.force,
        now: a.now,
    };
    if let Some(fleet) = crate::cli::hosts::fleet(g, "install", false)? {
        if a.root.is_some() {
            return Err(crate::cli::hosts::local_only("install", "--root"));
        }
        if a.sysv {
            return Err(crate::cli::hosts::local_only("install", "--sysv"));
        }
        let t = g.target()?;
        return fleet.run("install", &SystemdManager::default(), |m| {
            m.install(&t, &a.unit, &how)
        });
    }
    let backend = for_files(g.backend, g.user, a.systemd, a.sysv, a.root.is_some());
    manager(
        g,
        Some(backend),
        SystemdManager::default(),
        PidfileManager::default,
    )
    .install(&g.target()?, &a.unit, &how)
}
