//! Error kinds and the LSB exit codes they map to.
//!
//! Every failure the user can cause ends as one [`Error`]: a message that names the
//! problem, an optional hint that names the fix, and a [`Kind`] that decides the exit
//! code. `main` prints it; nothing else prints errors or exits.

use std::fmt;
use std::io;

/// LSB init-script exit codes (and systemctl's), used by every verb.
pub mod exit {
    /// Success; for `status`: running.
    pub const OK: u8 = 0;
    /// Generic or unspecified error; for `status`: dead with a stale PID file.
    pub const GENERIC: u8 = 1;
    /// Invalid or excess arguments.
    pub const USAGE: u8 = 2;
    /// `status`: program is not running.
    pub const NOT_RUNNING_STATUS: u8 = 3;
    /// User has insufficient privilege; for `status`: unknown unit, or state unknown.
    pub const PRIVILEGE: u8 = 4;
    /// Program is not installed.
    pub const NOT_INSTALLED: u8 = 5;
    /// Program is not configured.
    pub const NOT_CONFIGURED: u8 = 6;
    /// Program is not running.
    pub const NOT_RUNNING: u8 = 7;
}

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything without a more precise LSB code (exit 1).
    Generic,
    /// Bad arguments or input (exit 2).
    Usage,
    /// Needs more privilege (exit 4).
    Privilege,
    /// The unit, script or program is not installed (exit 5).
    NotInstalled,
    /// Configuration is missing or invalid (exit 6).
    NotConfigured,
    /// The service is not running (exit 7).
    NotRunning,
    /// `status` could not tell the service's state (exit 4, LSB's "status unknown"): the
    /// host did not answer, the manager could not be reached.
    StatusUnknown,
}

impl Kind {
    /// The LSB exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Generic => exit::GENERIC,
            Kind::Usage => exit::USAGE,
            Kind::Privilege => exit::PRIVILEGE,
            Kind::NotInstalled => exit::NOT_INSTALLED,
            Kind::NotConfigured => exit::NOT_CONFIGURED,
            Kind::NotRunning => exit::NOT_RUNNING,
            Kind::StatusUnknown => exit::PRIVILEGE,
        }
    }
}

/// A user-facing error: what happened, and (optionally) what to do about it.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    hint: Option<String>,
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the given kind.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }
    /// Exit 1.
    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(Kind::Generic, message)
    }
    /// Exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    /// Exit 4.
    pub fn privilege(message: impl Into<String>) -> Self {
        Self::new(Kind::Privilege, message)
    }
    /// Exit 5.
    pub fn not_installed(message: impl Into<String>) -> Self {
        Self::new(Kind::NotInstalled, message)
    }
    /// Exit 6.
    pub fn not_configured(message: impl Into<String>) -> Self {
        Self::new(Kind::NotConfigured, message)
    }
    /// Exit 7.
    pub fn not_running(message: impl Into<String>) -> Self {
        Self::new(Kind::NotRunning, message)
    }

    /// An I/O failure on `path` while doing `action` ("write", "remove", ...).
    /// Permission errors become [`Kind::Privilege`] with the usual hint.
    pub fn io(action: &str, path: impl fmt::Display, err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::PermissionDenied => {
                Error::privilege(format!("cannot {action} {path}: permission denied"))
                    .with_hint(NEEDS_ROOT_HINT)
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                Error::generic(format!("cannot {action} {path}: read-only file system"))
            }
            _ => Error::generic(format!("cannot {action} {path}: {err}")),
        }
    }

    /// Adds a hint: what the user should do to fix it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with context ("installing foo.service: ...").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// For `status`: a failure without a more precise code (exit 1, which LSB reserves
    /// for "dead, PID file left") becomes "state unknown" (exit 4).
    pub fn status_unknown(self) -> Self {
        match self.kind {
            Kind::Generic => Error {
                kind: Kind::StatusUnknown,
                ..self
            },
            _ => self,
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// The main message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// The LSB exit code.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

/// The exit code to pass on for a child that ended with `status`: its own code, or 1
/// when a signal ended it.
pub fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    status.code().map_or(1, |c| c.clamp(0, 255) as u8)
}

/// The hint shown on every permission failure.
pub const NEEDS_ROOT_HINT: &str =
    "needs root: try `sudo mydaemon ...`, or `--user` for a per-user service";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Turns a permission failure into the hint to run `verb` as root (or with `--user`);
/// nothing was written.
pub fn privilege_hint(e: Error, verb: &str) -> Error {
    root_hint(e, verb, true)
}

/// Turns a permission failure into the hint to run `verb` as root, naming `--user`
/// as the other way where a per-user service is one.
pub fn root_hint(e: Error, verb: &str, user_too: bool) -> Error {
    if e.kind() != Kind::Privilege {
        return e;
    }
    let or_user = if user_too {
        ", or `--user` for a per-user service"
    } else {
        ""
    };
    e.with_hint(format!("needs root: try `sudo mydaemon {verb}`{or_user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_maps_to_privilege_with_hint() {
        let e = Error::io(
            "write",
            "/etc/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("try `sudo"));
    }

    #[test]
    fn kinds_map_to_lsb_codes() {
        let codes: Vec<u8> = [
            Kind::Generic,
            Kind::Usage,
            Kind::Privilege,
            Kind::NotInstalled,
            Kind::NotConfigured,
            Kind::NotRunning,
        ]
        .iter()
        .map(|k| k.exit_code())
        .collect();
        assert_eq!(codes, vec![1, 2, 4, 5, 6, 7]);
    }
}
