//! Which service manager answers the control verbs: systemd, or the PID-file fallback.

use std::path::Path;

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

/// The service a verb acts on, and how much it says: what the library takes instead of
/// the command line's global options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Service name; the unit is `NAME.service`.
    pub name: String,
    /// The per-user service manager rather than the system one.
    pub user: bool,
    /// Print only errors.
    pub quiet: bool,
    /// More output (repeated: debug); passed on to a daemon the verb starts.
    pub verbose: u8,
}

impl Target {
    /// The unit file name, `NAME.service`.
    pub fn unit_name(&self) -> String {
        format!("{}.service", self.name)
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

/// Whether the service manager addressed is running here (the system one, or with
/// `user` the user's, found by its private socket).
pub fn manager_running(user: bool) -> bool {
    if user {
        crate::systemd::connection::user_private_socket().exists()
    } else {
        systemd_booted(Path::new("/"))
    }
}
