//! The systemd backend of [`ServiceManager`]: the verbs over D-Bus, built from the
//! functions of [`crate::systemd`], plus `install`/`uninstall`'s unit files
//! ([`crate::install`]).

use std::path::Path;

use super::{connect, Remote, Scope, Systemd, Verb};
use crate::backend::{InstallOptions, LogQuery, ServiceManager, Target, UninstallOptions};
use crate::error::{privilege_hint, Error, Result};
use crate::install::{self, Written};
use crate::output::{errln, outln};
use crate::remote_files::{self, Wrote};
use crate::spec::{build_spec, check_runnable_here, UnitOptions};

/// systemd (the system manager, or with [`Target::user`] the user's) over D-Bus: this
/// machine's, or with [`SystemdManager::remote`] another's over ssh (`-H`).
#[derive(Debug, Clone, Default)]
pub struct SystemdManager {
    /// `start`/`stop`/`restart`/`reload` return once the job is queued.
    pub no_block: bool,
    /// Another machine's manager (`-H HOST`), reached over ssh.
    pub remote: Option<Remote>,
}

/// Whether the service manager addressed is running here (the system one, or with
/// `user` the user's, found by its private socket).
pub fn manager_running(user: bool) -> bool {
    if user {
        super::connection::user_private_socket().exists()
    } else {
        crate::backend::systemd_booted(Path::new("/"))
    }
}

/// `uninstall --purge`: systemd's `CleanUnit` of a still loaded unit, and what it did.
fn purge(sd: &Systemd, unit_name: &str, quiet: bool) -> Result<()> {
    let cleaned = super::clean::clean(sd, unit_name)?;
    if !quiet {
        match cleaned {
            super::clean::Cleaned::Removed => {
                outln!("removed the state, cache, logs and runtime directories of {unit_name}")
            }
            super::clean::Cleaned::Nothing => outln!("{unit_name} has no directories to remove"),
        }
    }
    Ok(())
}

fn bus_scope(t: &Target) -> Scope {
    super::scope(t.user)
}

impl SystemdManager {
    /// A connection to the manager addressed: here, or on the remote host.
    fn connect(&self, t: &Target) -> Result<Systemd> {
        match &self.remote {
            None => connect(bus_scope(t)),
            Some(r) => super::remote::connect(r, bus_scope(t)),
        }
    }

    /// A job here goes over the private socket when there is one ([`super::control`]);
    /// on a remote host, over the ssh connection.
    fn job(&self, t: &Target, verb: Verb) -> Result<u8> {
        match &self.remote {
            None => super::control(bus_scope(t), &t.unit_name(), verb, self.no_block),
            Some(_) => super::control_with(&self.connect(t)?, &t.unit_name(), verb, self.no_block),
        }
    }
}

impl ServiceManager for SystemdManager {
    fn install(&self, t: &Target, unit: &UnitOptions, how: &InstallOptions) -> Result<u8> {
        if let Some(r) = &self.remote {
            return self.install_remote(r, t, unit, how);
        }
        // Everything that can be refused is refused before anything is written.
        let spec = build_spec(t, unit)?;
        let text = spec.render()?;
        let scope = install::Place::select(t.user, how.root.as_deref())?;
        if !matches!(scope, install::Place::Root(_)) {
            // For this system (not an image): what the unit names must exist here.
            check_runnable_here(&spec)?;
        }
        let dir = install::unit_dir(&scope)?;
        let unit_name = spec.unit_name();

        let (path, written) = install::write_unit(&dir, &unit_name, &text, how.force)
            .map_err(|e| privilege_hint(e, "install"))?;
        let say = |s: String| {
            if !t.quiet {
                outln!("{s}");
            }
        };
        match written {
            Written::Created => say(format!("wrote {}", path.display())),
            Written::Replaced => say(format!("replaced {}", path.display())),
            Written::Unchanged => say(format!("{} is up to date", path.display())),
        }
        // Socket activation: NAME.socket beside it, enabled instead of the service.
        let socket = super::socket_unit::write(&dir, &spec, how.force, &say)
            .map_err(|e| privilege_hint(e, "install"))?;
        let (enable_name, wanted_by) = super::socket_unit::enabled_unit(&spec);

        // Offline (an image tree, or no running manager): the enable symlinks, as
        // `systemctl enable` makes them without a manager.
        let live = !matches!(scope, install::Place::Root(_)) && manager_running(t.user);
        if !live {
            let target = match scope {
                install::Place::Root(_) => Path::new(install::SYSTEM_UNIT_DIR).join(&enable_name),
                _ => dir.join(&enable_name),
            };
            let links = match install::enable_links(&dir, &enable_name, &target, &[wanted_by]) {
                Ok(l) => l,
                Err(e) => {
                    // Leave no half-installed unit behind.
                    if written == Written::Created {
                        let _ = std::fs::remove_file(&path);
                    }
                    return Err(privilege_hint(e, "install"));
                }
            };
            for l in links {
                say(format!("enabled: {} -> {}", l.display(), target.display()));
            }
            if matches!(scope, install::Place::Root(_)) {
                return Ok(0);
            }
            let manager = if t.user {
                "your systemd user manager"
            } else {
                "systemd"
            };
            if how.now {
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
        let scope = super::scope(t.user);
        let changed = written != Written::Unchanged
            || socket.as_ref().is_some_and(|s| s.1 != Written::Unchanged);
        let enabled = connect(scope).and_then(|sd| {
            super::enable_with(&sd, &enable_name, false, changed, t.quiet).map(|_| sd)
        });
        let sd = match enabled {
            Ok(sd) => sd,
            Err(e) => {
                if written == Written::Created {
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
            super::socket_unit::start(&sd, &spec, *written == Written::Replaced)?;
            say(format!(
                "{} listens; {unit_name} starts on the first connection",
                spec.socket_name()
            ));
        }
        if how.now {
            return super::control_with(&sd, &unit_name, Verb::Start, false);
        }
        Ok(0)
    }

    fn uninstall(&self, t: &Target, how: &UninstallOptions) -> Result<u8> {
        if let Some(r) = &self.remote {
            return self.uninstall_remote(r, t, how);
        }
        let scope = install::Place::select(t.user, how.root.as_deref())?;
        let dir = install::unit_dir(&scope)?;
        let unit_name = t.unit_name();

        // ---- LIVE SYSTEMD STEP (D-Bus: crate::systemd) ---------------------------------
        // Before removing files on a live system: StopUnit waiting for the job, then
        // DisableUnitFiles; after removal, Reload. Only for a unit that will be removed:
        // a missing or foreign one is refused below without touching the running service.
        let live = !matches!(scope, install::Place::Root(_)) && manager_running(t.user);
        let removable = std::fs::read(dir.join(&unit_name))
            .map(|c| how.force || install::is_generated(&c))
            .unwrap_or(false);
        if how.purge && !live {
            return Err(Error::not_running(format!(
                "--purge asks the running systemd to remove the directories of {unit_name}, \
                 and systemd is not running here; nothing was removed"
            )));
        }
        let systemd = if live && removable {
            let sd = connect(super::scope(t.user))?;
            if let Some(socket) = super::socket_unit::installed(&dir, &unit_name, how.force) {
                super::socket_unit::stop_disable(&sd, &socket, t.quiet)?;
            }
            super::uninstall_stop_disable(&sd, &unit_name, t.quiet)?;
            if how.purge {
                // While the unit is still loaded: systemd knows its directories.
                purge(&sd, &unit_name, t.quiet)?;
            }
            Some(sd)
        } else {
            None
        };

        if let Some(socket) = super::socket_unit::installed(&dir, &unit_name, how.force) {
            super::socket_unit::remove(&dir, &socket, how.force, t.quiet)
                .map_err(|e| privilege_hint(e, "uninstall"))?;
        }
        let removed = install::remove_unit(&dir, &unit_name, how.force)
            .map_err(|e| privilege_hint(e, "uninstall"))?;
        if !t.quiet {
            for l in &removed.links {
                outln!("removed {}", l.display());
            }
            outln!("removed {}", removed.unit.display());
        }
        if let Some(sd) = systemd {
            super::uninstall_reload(&sd, &unit_name)?;
        }
        Ok(0)
    }

    fn start(&self, t: &Target) -> Result<u8> {
        self.job(t, Verb::Start)
    }

    fn stop(&self, t: &Target) -> Result<u8> {
        // As systemctl warns: a socket that still listens starts the service again.
        let unit = t.unit_name();
        let check = !t.quiet && !self.no_block;
        let (code, socket) = match &self.remote {
            None => {
                // What triggers the service (`TriggeredBy`) is read on the stop's own
                // connection (on a private socket, in the same write as `StopUnit`); the
                // socket unit only when it is one of them.
                let calls = [("org.freedesktop.systemd1.Unit", Some("TriggeredBy"))];
                let also = check.then_some((unit.as_str(), &calls[..]));
                let (code, props) =
                    super::control_reading(bus_scope(t), &unit, Verb::Stop, self.no_block, also)?;
                let socket = super::socket_status::socket_name(&unit)
                    .filter(|s| props.is_some_and(|p| super::triggered_by(&p).contains(s)))
                    .and_then(|s| super::socket_status_of(bus_scope(t), &s, false));
                (code, socket)
            }
            Some(_) => {
                let sd = self.connect(t)?;
                let code = super::control_with(&sd, &unit, Verb::Stop, self.no_block)?;
                let socket = if check {
                    super::socket_status::read_with(&sd, &unit, false)
                } else {
                    None
                };
                (code, socket)
            }
        };
        if let Some(s) = socket.filter(|s| s.active_state == "active") {
            errln!(
                "note: {} still listens: the next connection starts {unit} again \
                 (stop it too: `systemctl stop {}`; or `mydaemon uninstall`)",
                s.unit,
                s.unit
            );
        }
        Ok(code)
    }

    fn restart(&self, t: &Target) -> Result<u8> {
        self.job(t, Verb::Restart)
    }

    fn reload(&self, t: &Target) -> Result<u8> {
        self.job(t, Verb::Reload)
    }

    fn status(&self, t: &Target, lines: usize, json: bool) -> Result<u8> {
        match &self.remote {
            None => super::print_status(bus_scope(t), &t.unit_name(), lines, json),
            // Journal lines (only when asked for) come from `journalctl` there, over a
            // second ssh login made while the first one sets up D-Bus.
            Some(r) => {
                let unit = t.unit_name();
                std::thread::scope(|s| {
                    let journal = (lines > 0).then(|| {
                        s.spawn(|| {
                            super::journal::last_lines(Some(r), bus_scope(t), &unit, lines, false)
                        })
                    });
                    let sd = self.connect(t);
                    let journal = journal
                        .map(|j| j.join().unwrap_or_default())
                        .unwrap_or_default();
                    super::print_status_with(&sd?, &unit, journal, json)
                })
            }
        }
    }

    fn enable(&self, t: &Target, _root: Option<&Path>, now: bool) -> Result<u8> {
        super::enable_with(&self.connect(t)?, &t.unit_name(), now, false, t.quiet)
    }

    fn disable(&self, t: &Target, _root: Option<&Path>, now: bool) -> Result<u8> {
        super::disable_with(&self.connect(t)?, &t.unit_name(), now, t.quiet)
    }

    fn logs(&self, t: &Target, q: &LogQuery) -> Result<u8> {
        super::journal::show(
            self.remote.as_ref(),
            bus_scope(t),
            &t.unit_name(),
            q.lines,
            q.follow,
            q.since.as_deref(),
        )
    }
}

impl SystemdManager {
    /// `install -H`: the unit rendered here, written there over ssh (after checking that
    /// the program it runs exists there), then enabled (and started) over D-Bus.
    fn install_remote(
        &self,
        r: &Remote,
        t: &Target,
        unit: &UnitOptions,
        how: &InstallOptions,
    ) -> Result<u8> {
        let spec = crate::spec::build_spec_for(t, unit, false)?;
        if !spec.listen.is_empty() {
            return Err(
                Error::usage("install -H does not install socket units (--listen) yet")
                    .with_hint("install on that machine itself, or leave out --listen"),
            );
        }
        let text = spec.render()?;
        let scope = bus_scope(t);
        let unit_name = spec.unit_name();
        let wrote = remote_files::write_unit(r, scope, &spec, &text, how.force)?;
        let say = |s: String| {
            if !t.quiet {
                outln!("{s}");
            }
        };
        let changed = match &wrote {
            Wrote::Created(p) => {
                say(format!("wrote {p}"));
                true
            }
            Wrote::Replaced(p) => {
                say(format!("replaced {p}"));
                true
            }
            Wrote::Unchanged(p) => {
                say(format!("{p} is up to date"));
                false
            }
        };
        let enabled = self.connect(t).and_then(|sd| {
            super::enable_with(&sd, &unit_name, false, changed, t.quiet).map(|_| sd)
        });
        let sd = match enabled {
            Ok(sd) => sd,
            Err(e) => {
                // Leave no half-installed unit behind.
                if let Wrote::Created(p) = &wrote {
                    if remote_files::remove_unit(r, scope, &unit_name, false).is_ok() {
                        say(format!("removed {p} again"));
                    }
                }
                return Err(e);
            }
        };
        if how.now {
            return super::control_with(&sd, &unit_name, Verb::Start, false);
        }
        Ok(0)
    }

    /// `uninstall -H`: checked there (exists, is ours), stopped and disabled over D-Bus,
    /// removed over ssh, and systemd reloaded.
    fn uninstall_remote(&self, r: &Remote, t: &Target, how: &UninstallOptions) -> Result<u8> {
        let scope = bus_scope(t);
        let unit_name = t.unit_name();
        remote_files::check_removable(r, scope, &unit_name, how.force)?;
        let sd = self.connect(t)?;
        super::uninstall_stop_disable(&sd, &unit_name, t.quiet)?;
        if how.purge {
            purge(&sd, &unit_name, t.quiet)?;
        }
        for p in remote_files::remove_unit(r, scope, &unit_name, how.force)? {
            if !t.quiet {
                outln!("removed {p}");
            }
        }
        super::uninstall_reload(&sd, &unit_name)?;
        Ok(0)
    }
}
