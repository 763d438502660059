//! `mydaemon install`: write the unit (or init.d script), reload and enable it.
//!
//! The files part lives in [`crate::install`]; this verb renders the unit exactly as
//! `mydaemon unit` prints it, writes it, and (with `--root`) enables it offline. The
//! live-systemd part (daemon-reload, enable, `--now` start over D-Bus) goes where this
//! file says "LIVE SYSTEMD STEP".

use std::path::{Path, PathBuf};

use crate::backend::{manager_running, wants_systemd};
use crate::cli::Global;
use crate::error::{privilege_hint, Error, Result};
use crate::install::{self, Scope, Written};
use crate::spec::{build_spec, check_runnable_here, UnitOptions};

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
    if a.sysv || !wants_systemd(g.backend, g.user, a.systemd, a.sysv, a.root.is_some()) {
        return crate::fallback::sysv::install(
            &g.target(),
            &a.unit,
            a.root.as_deref(),
            a.force,
            a.now,
        );
    }

    // Everything that can be refused is refused before anything is written.
    let spec = build_spec(&g.target(), &a.unit)?;
    let text = spec.render()?;
    let scope = Scope::select(g.user, a.root.as_deref())?;
    if !matches!(scope, Scope::Root(_)) {
        // For this system (not an image): what the unit names must exist here.
        check_runnable_here(&spec)?;
    }
    let dir = install::unit_dir(&scope)?;
    let unit_name = spec.unit_name();

    let (path, how) = install::write_unit(&dir, &unit_name, &text, a.force)
        .map_err(|e| privilege_hint(e, "install"))?;
    let say = |s: String| {
        if !g.quiet {
            println!("{s}");
        }
    };
    match how {
        Written::Created => say(format!("wrote {}", path.display())),
        Written::Replaced => say(format!("replaced {}", path.display())),
        Written::Unchanged => say(format!("{} is up to date", path.display())),
    }

    // Offline (an image tree, or no running manager): the enable symlinks, as
    // `systemctl enable` makes them without a manager.
    let live = !matches!(scope, Scope::Root(_)) && manager_running(g.user);
    if !live {
        let target = match scope {
            Scope::Root(_) => Path::new(install::SYSTEM_UNIT_DIR).join(&unit_name),
            _ => path.clone(),
        };
        let links = match install::enable_links(&dir, &unit_name, &target, &[spec.wanted_by()]) {
            Ok(l) => l,
            Err(e) => {
                // Leave no half-installed unit behind.
                if how == Written::Created {
                    let _ = std::fs::remove_file(&path);
                }
                return Err(privilege_hint(e, "install"));
            }
        };
        for l in links {
            say(format!("enabled: {} -> {}", l.display(), target.display()));
        }
        if matches!(scope, Scope::Root(_)) {
            return Ok(0);
        }
        let manager = if g.user {
            "your systemd user manager"
        } else {
            "systemd"
        };
        if a.now {
            return Err(Error::not_running(format!(
                "{unit_name} is installed and enabled, but {manager} is not running here, so it was not started"
            ))
            .with_hint("it starts when systemd runs; to run it now without systemd: `mydaemon --backend pidfile start [-- CMD ARGS]`"));
        }
        say(format!(
            "note: {manager} is not running here; {unit_name} starts when it does"
        ));
        return Ok(0);
    }

    // Live: EnableUnitFiles (printing the symlinks systemd made) and Reload; a unit this
    // call created goes again if that fails. Then, with `--now`, StartUnit waiting for
    // the job (for Type=notify: until READY=1); a unit that fails to start stays.
    let scope = crate::systemd::scope(g.user);
    let enabled = crate::systemd::connect(scope).and_then(|sd| {
        crate::systemd::enable_with(&sd, &unit_name, false, how != Written::Unchanged, g.quiet)
            .map(|_| sd)
    });
    let sd = match enabled {
        Ok(sd) => sd,
        Err(e) => {
            if how == Written::Created {
                for l in install::find_links(&dir, &unit_name) {
                    let _ = std::fs::remove_file(l);
                }
                let _ = std::fs::remove_file(&path);
                say(format!("removed {} again", path.display()));
            }
            return Err(e);
        }
    };
    if a.now {
        return crate::systemd::control_with(&sd, &unit_name, crate::systemd::Verb::Start, false);
    }
    Ok(0)
}
