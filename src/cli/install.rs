//! `mydaemon install`: write the unit (or init.d script), reload and enable it.
//!
//! The files part lives in [`crate::install`]; this verb renders the unit exactly as
//! `mydaemon unit` prints it, writes it, and (with `--root`) enables it offline. The
//! live-systemd part (daemon-reload, enable, `--now` start over D-Bus) goes where this
//! file says "LIVE SYSTEMD STEP".

use std::path::{Path, PathBuf};

use crate::backend::{systemd_booted, Backend, BackendChoice};
use crate::cli::unit::{build_spec, check_runnable_here, UnitOptions};
use crate::cli::Global;
use crate::error::{Error, Kind, Result};
use crate::install::{self, Scope, Written};

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

/// The scope `--user`/`--root` select; `--root` with `--user` is refused.
pub fn scope(g: &Global, root: Option<&Path>) -> Result<Scope> {
    match (root, g.user) {
        (Some(_), true) => Err(Error::usage(
            "--root installs a system unit into an image; it cannot be combined with --user",
        )),
        (Some(r), false) => {
            if !r.is_dir() {
                return Err(Error::usage(format!(
                    "--root {}: no such directory",
                    r.display()
                )));
            }
            Ok(Scope::Root(r.to_path_buf()))
        }
        (None, true) => Ok(Scope::User),
        (None, false) => Ok(Scope::System),
    }
}

/// Turns a permission failure into the install-specific hint; nothing was written.
pub fn privilege_hint(e: Error, verb: &str) -> Error {
    if e.kind() == Kind::Privilege {
        e.with_hint(format!(
            "needs root: try `sudo mydaemon {verb}`, or `--user` for a per-user service"
        ))
    } else {
        e
    }
}

/// Whether `install`/`uninstall` deal in systemd units: `--systemd`, `--root`, `--user`,
/// `--backend systemd`, or (auto) a running systemd; otherwise the init.d script.
pub fn wants_systemd(g: &Global, systemd: bool, sysv: bool, root: bool) -> bool {
    if systemd || root {
        return true;
    }
    if sysv {
        return false;
    }
    match g.backend {
        BackendChoice::Auto => g.user || Backend::resolve(g.backend) == Backend::Systemd,
        BackendChoice::Systemd => true,
        BackendChoice::Pidfile => false,
    }
}

/// Whether the service manager `g` addresses is running here (the system one, or with
/// `--user` the user's, found by its private socket).
pub fn manager_running(g: &Global) -> bool {
    if g.user {
        crate::systemd::connection::user_private_socket().exists()
    } else {
        systemd_booted(Path::new("/"))
    }
}

/// Installs the service.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    if a.sysv || !wants_systemd(g, a.systemd, a.sysv, a.root.is_some()) {
        return crate::fallback::sysv::install(g, &a.unit, a.root.as_deref(), a.force, a.now);
    }

    // Everything that can be refused is refused before anything is written.
    let spec = build_spec(g, &a.unit)?;
    let text = spec.render()?;
    let scope = scope(g, a.root.as_deref())?;
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
    // Socket activation: NAME.socket beside it, enabled instead of the service.
    let socket = crate::systemd::socket_unit::write(&dir, &spec, a.force, &say)
        .map_err(|e| privilege_hint(e, "install"))?;
    let (enable_name, wanted_by) = crate::systemd::socket_unit::enabled_unit(&spec);

    // Offline (an image tree, or no running manager): the enable symlinks, as
    // `systemctl enable` makes them without a manager.
    let live = !matches!(scope, Scope::Root(_)) && manager_running(g);
    if !live {
        let target = match scope {
            Scope::Root(_) => Path::new(install::SYSTEM_UNIT_DIR).join(&enable_name),
            _ => dir.join(&enable_name),
        };
        let links = match install::enable_links(&dir, &enable_name, &target, &[wanted_by]) {
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
        let changed =
            how != Written::Unchanged || socket.as_ref().is_some_and(|s| s.1 != Written::Unchanged);
        crate::systemd::enable_with(&sd, &enable_name, false, changed, g.quiet).map(|_| sd)
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
    if let Some((_, written)) = &socket {
        crate::systemd::socket_unit::start(&sd, &spec, *written == Written::Replaced)?;
        say(format!(
            "{} listens; {unit_name} starts on the first connection",
            spec.socket_name()
        ));
    }
    if a.now {
        return crate::systemd::control_with(&sd, &unit_name, crate::systemd::Verb::Start, false);
    }
    Ok(0)
}
