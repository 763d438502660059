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
