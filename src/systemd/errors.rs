//! D-Bus failures turned into errors in words, with the LSB exit code that fits.
//!
//! Nothing from this module prints a raw D-Bus error name: each one systemd is known to
//! return for our calls gets a sentence and, where there is one, the fix.

use super::connection::Scope;
use crate::error::{Error, NEEDS_ROOT_HINT};

/// The D-Bus error name and message of a failed call, when the failure came from the peer.
pub fn dbus_error(err: &zbus::Error) -> Option<(String, String)> {
    use zbus::DBusError;
    match err {
        zbus::Error::MethodError(name, desc, _) => {
            Some((name.to_string(), desc.clone().unwrap_or_default()))
        }
        zbus::Error::FDO(e) => Some((
            e.name().to_string(),
            e.description().unwrap_or_default().to_string(),
        )),
        zbus::Error::DBus(e) => Some((
            e.name().to_string(),
            e.description().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

/// How to address `unit` from the command line, for hints: `mydaemon`, plus `--user`
/// and `--name NAME` when they are needed (`mydaemon --user --name web`).
pub fn invocation(scope: Scope, unit: &str) -> String {
    let mut cmd = "mydaemon".to_owned();
    if scope == Scope::User {
        cmd.push_str(" --user");
    }
    let name = unit.strip_suffix(".service").unwrap_or(unit);
    if !name.is_empty() && name != "mydaemon" {
        cmd.push_str(" --name ");
        cmd.push_str(&crate::unit::quote::shell_word(name));
    }
    cmd
}

/// Turns a failed call to systemd into an [`Error`]; `what` says what was being done
/// ("starting foo.service"), `unit` names the unit concerned, in `scope`.
pub fn from_zbus(err: zbus::Error, what: &str, unit: &str, scope: Scope) -> Error {
    if let Some((name, desc)) = dbus_error(&err) {
        return from_name(&name, &desc, what, unit, &invocation(scope, unit));
    }
    match err {
        zbus::Error::InputOutput(io) => {
            Error::generic(format!("{what}: lost the connection to systemd: {io}"))
        }
        other => Error::generic(format!(
            "{what}: systemd's answer could not be read: {other}"
        )),
    }
}

/// The mapping by D-Bus error name (pure, tested); `cmd` is how hints address the unit
/// ([`invocation`]).
pub fn from_name(name: &str, desc: &str, what: &str, unit: &str, cmd: &str) -> Error {
    let short = name.rsplit('.').next().unwrap_or(name);
    match name {
        "org.freedesktop.DBus.Error.AccessDenied"
        | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
            Error::privilege(format!("{what}: permission denied by systemd"))
                .with_hint(NEEDS_ROOT_HINT)
        }
        "org.freedesktop.systemd1.NoSuchUnit" | "org.freedesktop.DBus.Error.FileNotFound" => {
            Error::not_installed(format!("{what}: {unit} is not installed"))
                .with_hint(format!("run `{cmd} install --systemd` first"))
        }
        "org.freedesktop.systemd1.LoadFailed" | "org.freedesktop.systemd1.BadUnitSetting" => {
            Error::not_configured(format!("{what}: systemd could not load {unit}: {desc}"))
                .with_hint("check the unit file with `systemd-analyze verify`")
        }
        "org.freedesktop.systemd1.UnitMasked" => {
            Error::not_configured(format!("{what}: {unit} is masked"))
                .with_hint(format!("unmask it: remove the /dev/null link for {unit}"))
        }
        "org.freedesktop.systemd1.UnitInactive" => {
            Error::not_running(format!("{what}: {unit} is not running"))
                .with_hint(format!("start it first: `{cmd} start`"))
        }
        "org.freedesktop.systemd1.JobTypeNotApplicable" => Error::generic(format!(
            "{what}: {unit} does not support this operation: {desc}"
        )),
        "org.freedesktop.systemd1.OnlyByDependency" => Error::generic(format!(
            "{what}: {unit} may only be started or stopped through a dependency"
        )),
        "org.freedesktop.systemd1.TransactionIsDestructive"
        | "org.freedesktop.systemd1.TransactionOrderIsCyclic" => {
            Error::generic(format!("{what}: systemd refused the job: {desc}"))
        }
        "org.freedesktop.systemd1.ShuttingDown" => {
            Error::generic(format!("{what}: the system is shutting down"))
        }
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
            Error::generic(format!("{what}: systemd is not on the bus"))
                .with_hint("is systemd running? Without it, use `--backend pidfile`")
        }
        "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
            Error::generic(format!("{what}: systemd did not answer in time"))
        }
        _ if desc.is_empty() => Error::generic(format!("{what}: systemd refused ({short})")),
        _ => Error::generic(format!("{what}: {desc}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_is_privilege_with_hint() {
        for n in [
            "org.freedesktop.DBus.Error.AccessDenied",
            "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ] {
            let e = from_name(
                n,
                "Interactive authentication required.",
                "starting x",
                "x",
                "mydaemon",
            );
            assert_eq!(e.exit_code(), 4);
            assert!(e.to_string().contains("needs root"), "{e}");
            assert!(!e.to_string().contains("org.freedesktop"), "{e}");
        }
    }

    #[test]
    fn no_such_unit_is_not_installed() {
        let e = from_name(
            "org.freedesktop.systemd1.NoSuchUnit",
            "Unit x.service not found.",
            "starting x.service",
            "x.service",
            &invocation(Scope::System, "mydaemon.service"),
        );
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("mydaemon install --systemd"));
    }

    #[test]
    fn unknown_errors_keep_systemds_words_not_the_name() {
        let e = from_name(
            "org.example.Weird",
            "something odd",
            "stopping x",
            "x",
            "mydaemon",
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.message(), "stopping x: something odd");
    }

    #[test]
    fn hints_name_the_service_and_the_manager() {
        assert_eq!(invocation(Scope::System, "mydaemon.service"), "mydaemon");
        assert_eq!(
            invocation(Scope::User, "web@8080.service"),
            "mydaemon --user --name web@8080"
        );
        let e = from_name(
            "org.freedesktop.systemd1.UnitInactive",
            "",
            "reloading web.service",
            "web.service",
            &invocation(Scope::System, "web.service"),
        );
        assert_eq!(e.exit_code(), 7);
        assert!(e.to_string().contains("`mydaemon --name web start`"), "{e}");
    }
}
