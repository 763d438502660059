//! The service-manager interface: [`ServiceManager`], the verbs both backends (systemd
//! over D-Bus, [`crate::systemd::SystemdManager`]; the PID-file fallback,
//! [`crate::fallback::PidfileManager`]) implement, over plain types ([`Target`], the unit
//! settings, [`InstallOptions`]...). Which backend answers is decided once, by the
//! caller ([`Backend::resolve`]).

use std::path::{Path, PathBuf};

use crate::error::Result;
pub use crate::spec::Target;
use crate::spec::UnitOptions;

/// The `--backend` option.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// systemd when it is the running init (as `sd_booted()` decides), else pidfile.
    Auto,
    /// A running systemd, over D-Bus.
    Systemd,
    /// The self-daemonizer with a locked PID file.
    Pidfile,
}

/// The backend that was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// systemd over D-Bus.
    Systemd,
    /// The PID-file fallback.
    Pidfile,
}

impl Backend {
    /// Resolves `--backend`, detecting systemd the way systemd itself does.
    pub fn resolve(choice: BackendChoice) -> Backend {
        match choice {
            BackendChoice::Systemd => Backend::Systemd,
            BackendChoice::Pidfile => Backend::Pidfile,
            BackendChoice::Auto => {
                if systemd_booted(Path::new("/")) {
                    Backend::Systemd
                } else {
                    Backend::Pidfile
                }
            }
        }
    }

    /// The name shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Systemd => "systemd",
            Backend::Pidfile => "pidfile",
        }
    }
}

/// True when `/run/systemd/system` exists under `root` (systemd's `sd_booted()` test).
pub fn systemd_booted(root: &Path) -> bool {
    root.join("run/systemd/system").is_dir()
}

/// The backend of `install`/`uninstall`: the init.d script with `--sysv`, else systemd
/// units where [`wants_systemd`] says so.
pub fn for_files(
    choice: BackendChoice,
    user: bool,
    systemd: bool,
    sysv: bool,
    root: bool,
) -> Backend {
    if sysv || !wants_systemd(choice, user, systemd, sysv, root) {
        Backend::Pidfile
    } else {
        Backend::Systemd
    }
}

/// Whether `install`/`uninstall` deal in systemd units: `--systemd`, `--root`, `--user`,
/// `--backend systemd`, or (auto) a running systemd; otherwise the init.d script.
pub fn wants_systemd(
    choice: BackendChoice,
    user: bool,
    systemd: bool,
    sysv: bool,
    root: bool,
) -> bool {
    if systemd || root {
        return true;
    }
    if sysv {
        return false;
    }
    match choice {
        BackendChoice::Auto => user || Backend::resolve(choice) == Backend::Systemd,
        BackendChoice::Systemd => true,
        BackendChoice::Pidfile => false,
    }
}

/// How `install` writes the service.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// An image tree to install into instead of this system.
    pub root: Option<PathBuf>,
    /// Replace a file mydaemon did not generate.
    pub force: bool,
    /// Start the service once it is installed.
    pub now: bool,
}

/// How `uninstall` removes the service.
#[derive(Debug, Clone, Default)]
pub struct UninstallOptions {
    /// An image tree to remove from instead of this system.
    pub root: Option<PathBuf>,
    /// Remove a file mydaemon did not generate.
    pub force: bool,
    /// Also remove what the service left (state, logs).
    pub purge: bool,
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// How many lines.
    pub lines: usize,
    /// Keep printing new lines.
    pub follow: bool,
    /// Only lines since this time (the backend's syntax).
    pub since: Option<String>,
}

/// The verbs a service manager answers. Each returns the process exit code on success
/// (LSB codes for `status`); failures are [`Error`](crate::Error)s with their own code.
pub trait ServiceManager {
    /// Writes the service from the unit settings, enables it, and with `now` starts it.
    fn install(&self, t: &Target, unit: &UnitOptions, how: &InstallOptions) -> Result<u8>;
    /// Stops, disables and removes the service.
    fn uninstall(&self, t: &Target, how: &UninstallOptions) -> Result<u8>;
    /// Starts the service and waits until it is ready.
    fn start(&self, t: &Target) -> Result<u8>;
    /// Stops the service and waits until it has stopped.
    fn stop(&self, t: &Target) -> Result<u8>;
    /// Restarts the service and waits until it is ready again.
    fn restart(&self, t: &Target) -> Result<u8>;
    /// Asks the service to reload its configuration.
    fn reload(&self, t: &Target) -> Result<u8>;
    /// Prints the state (with `lines` log lines, or one JSON object); 0 running,
    /// 3 not running, 4 unknown.
    fn status(&self, t: &Target, lines: usize, json: bool) -> Result<u8>;
    /// Enables the service at boot (with `root`: in that image tree); `now` also starts it.
    fn enable(&self, t: &Target, root: Option<&Path>, now: bool) -> Result<u8>;
    /// Disables the service (with `root`: in that image tree); `now` also stops it.
    fn disable(&self, t: &Target, root: Option<&Path>, now: bool) -> Result<u8>;
    /// Prints the service's log.
    fn logs(&self, t: &Target, q: &LogQuery) -> Result<u8>;
}
