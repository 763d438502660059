//! Reading a unit's journal through `journalctl` (reading the journal files ourselves would
//! mean reimplementing their format; the issue allows the subprocess).

use std::process::{Command, Stdio};

use super::connection::Scope;
use crate::error::Error;

/// The `journalctl` arguments that select `unit` of `scope`.
pub fn unit_args(scope: Scope, unit: &str) -> Vec<String> {
    match scope {
        Scope::System => vec!["--unit".into(), unit.into()],
        Scope::User => vec!["--user-unit".into(), unit.into()],
    }
}

/// How `status` and `logs` print journal lines: ISO 8601 times in UTC
/// (`2026-12-01T09:29:07+0000 NAME[PID]: text`), as the PID-file backend's log does.
pub const FORMAT: [&str; 3] = ["-o", "short-iso", "--utc"];

/// The last `n` journal lines of `unit`, message text only when `bare`, else with time and
/// process ([`FORMAT`]). Empty when there are none or the journal cannot be read.
pub fn last_lines(scope: Scope, unit: &str, n: usize, bare: bool) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let out = Command::new("journalctl")
        .args(unit_args(scope, unit))
        .args(["-n", &n.to_string(), "--no-pager", "-q"])
        .args(if bare {
            &["-o", "cat"][..]
        } else {
            &FORMAT[..]
        })
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `logs`: runs `journalctl` for `unit` on our terminal; returns its exit code.
pub fn show(
    scope: Scope,
    unit: &str,
    lines: usize,
    follow: bool,
    since: Option<&str>,
) -> Result<u8, Error> {
    let mut cmd = Command::new("journalctl");
    cmd.args(unit_args(scope, unit))
        .args(["-n", &lines.to_string(), "--no-pager"])
        .args(FORMAT);
    if follow {
        cmd.arg("--follow");
    }
    if let Some(since) = since {
        cmd.args(["--since", since]);
    }
    let status = cmd.status().map_err(|e| {
        Error::generic(format!("cannot run journalctl: {e}"))
            .with_hint("install systemd's journalctl, or read the log files directly")
    })?;
    let code = crate::error::exit_code_of(status);
    if code != 0 && scope == Scope::User {
        // With Storage=volatile (or no per-user journal files), a user's services log into
        // the system journal, which only root and the adm/systemd-journal groups may read.
        eprintln!(
            "  hint: a user can read its services' logs only from its own journal files \
             (journald with Storage=persistent) or as a member of the systemd-journal group"
        );
    }
    Ok(code)
}
