//! The only code that speaks D-Bus: connection (bus or private socket), manager calls,
//! job waiting, unit properties — and the verbs built from them, which
//! [`SystemdManager`] offers as a [`ServiceManager`](crate::backend::ServiceManager).
//! Only the items re-exported here are API; the modules are the crate's own.
//!
//! - `connection`: private socket as root, else the system bus; `--user`: the user's;
//! - `private_socket`: the read half that makes zbus accept systemd's private socket;
//! - `remote`: another machine's manager, over `ssh HOST systemd-stdio-bridge` (`-H`);
//! - `direct`: one blocking exchange on a private socket (no zbus connection): the
//!   properties `status` reads, and the transport of `job`'s private-socket route;
//! - `manager`: the Manager calls (hand-written `#[proxy]`; why, see there);
//! - `job`: start/stop/restart/reload, waiting race-free for `JobRemoved` (over
//!   `direct` on a private socket, over zbus on a bus);
//! - `status`: a unit's state from one `GetAll`, exit statuses in words;
//! - `clean`: `uninstall --purge`, systemd's `CleanUnit`, waited for;
//! - `journal`: the unit's journal lines (through `journalctl`);
//! - `errors`: D-Bus errors in words, with LSB exit codes;
//! - `socket_status`, `socket_unit`: the socket unit of a socket-activated service
//!   (`--listen`): what `status` shows of it, its install and uninstall.

pub(crate) mod clean;
pub(crate) mod connection;
pub(crate) mod direct;
pub(crate) mod errors;
pub(crate) mod job;
pub(crate) mod journal;
pub(crate) mod manager;
pub(crate) mod private_socket;
pub(crate) mod remote;
mod service_manager;
pub(crate) mod socket_status;
pub(crate) mod socket_unit;
pub(crate) mod status;

use std::collections::HashMap;
use std::time::SystemTime;

use zbus::OwnedVariant;

pub use connection::{connect, Route, Scope, Systemd};
pub use job::{JobResult, Verb};
pub use remote::Remote;
pub use service_manager::{manager_running, SystemdManager};
pub use status::UnitStatus;

use crate::error::{exit, Error};
use crate::output::{errln, outln};
use errors::from_zbus;

/// The scope for the `--user` flag.
pub(crate) fn scope(user: bool) -> Scope {
    Scope::from_user(user)
}

/// Reads the status of `unit` for `status`: over the private socket in one blocking
/// exchange when there is one ([`direct`]), else over a zbus connection.
pub(crate) fn read_status(scope: Scope, unit: &str) -> Result<UnitStatus, Error> {
    read_status_and_socket(scope, unit, false).map(|(st, _)| st)
}

/// [`read_status`], and with `socket` the socket unit beside it (`NAME.socket`) when it
/// triggers the service (the service's `TriggeredBy`, read with the rest): a unit that
/// does not exist is not asked about, as systemd would load it for every call.
fn read_status_and_socket(
    scope: Scope,
    unit: &str,
    socket: bool,
) -> Result<(UnitStatus, Option<socket_status::SocketStatus>), Error> {
    let trigger = |props: &HashMap<String, OwnedVariant>| {
        socket_status::socket_name(unit).filter(|s| socket && triggered_by(props).contains(s))
    };
    if let Some(path) = connection::private_socket_for(scope) {
        let what = format!("reading the state of {unit}");
        let calls = manager::status_properties(unit);
        match direct::units_properties(&path, &[(unit, &calls)], connection::METHOD_TIMEOUT) {
            Ok(mut got) => match got.remove(0) {
                Ok(props) => {
                    log::debug!("read the state of {unit} through {}", path.display());
                    let st = UnitStatus::from_properties(unit, &props);
                    let sock =
                        trigger(&props).and_then(|s| socket_status_of(scope, &s, st.running()));
                    return Ok((st, sock));
                }
                Err((name, desc)) => {
                    return Err(errors::from_name(
                        &name,
                        &desc,
                        &what,
                        unit,
                        &errors::invocation(scope, unit),
                    ))
                }
            },
            Err(e) => log::debug!("{}: {e}; trying a zbus connection", path.display()),
        }
    }
    let sd = connect(scope)?;
    let props = zbus::block_on(manager::unit_properties(&sd.conn, unit))
        .map_err(|e| from_zbus(e, &format!("reading the state of {unit}"), unit, sd.scope))?;
    let st = UnitStatus::from_properties(unit, &props);
    let sock = trigger(&props).and_then(|s| {
        let props = zbus::block_on(manager::unit_properties(&sd.conn, &s)).ok()?;
        socket_status::SocketStatus::from_properties(&s, &props, st.running())
    });
    Ok((st, sock))
}

/// The units that trigger a unit (its `TriggeredBy`), from its properties.
pub(crate) fn triggered_by(props: &HashMap<String, OwnedVariant>) -> Vec<String> {
    match props.get("TriggeredBy").map(|v| &**v) {
        Some(zbus::Variant::Array(a)) => a
            .inner()
            .iter()
            .filter_map(|v| match v {
                zbus::Variant::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The state of socket unit `socket` (if loaded), read on its own: over the private
/// socket when there is one, else over a zbus connection.
pub(crate) fn socket_status_of(
    scope: Scope,
    socket: &str,
    service_running: bool,
) -> Option<socket_status::SocketStatus> {
    let props = match connection::private_socket_for(scope).map(|path| {
        direct::units_properties(
            &path,
            &[(socket, &socket_status::PROPERTIES[..])],
            connection::METHOD_TIMEOUT,
        )
    }) {
        Some(Ok(mut got)) => got.remove(0).ok()?,
        _ => {
            let sd = connect(scope).ok()?;
            zbus::block_on(manager::unit_properties(&sd.conn, socket)).ok()?
        }
    };
    socket_status::SocketStatus::from_properties(socket, &props, service_running)
}

/// Reads the status of `unit`.
pub(crate) fn unit_status(sd: &Systemd, unit: &str) -> Result<UnitStatus, Error> {
    let props = zbus::block_on(manager::unit_properties(&sd.conn, unit))
        .map_err(|e| from_zbus(e, &format!("reading the state of {unit}"), unit, sd.scope))?;
    Ok(UnitStatus::from_properties(unit, &props))
}

/// `start`/`stop`/`restart`/`reload` of `unit`: 0 when the job is done (or queued, with
/// `no_block`); otherwise an error that explains the failure in words.
pub(crate) fn control(scope: Scope, unit: &str, verb: Verb, no_block: bool) -> Result<u8, Error> {
    control_reading(scope, unit, verb, no_block, None).map(|(code, _)| code)
}

/// [`control`], and the properties of another unit read on the same connection
/// (`None` when they could not be read). On a private socket the job goes through
/// [`job::run_direct`] (one write, no zbus connection); otherwise, or when that socket
/// does not take the connection, through zbus.
pub(crate) fn control_reading(
    scope: Scope,
    unit: &str,
    verb: Verb,
    no_block: bool,
    also: Option<job::AlsoRead<'_>>,
) -> Result<(u8, Option<HashMap<String, OwnedVariant>>), Error> {
    if let Some(socket) = connection::private_socket_for(scope) {
        match job::run_direct(&socket, scope, verb, unit, no_block, also) {
            Ok(outcome) => {
                let outcome = outcome?;
                return match outcome.result {
                    JobResult::Done | JobResult::Queued => Ok((exit::OK, outcome.also)),
                    JobResult::Failed(result) => {
                        Err(explain_failure(scope, None, unit, verb, &result))
                    }
                };
            }
            Err(e) => log::debug!("{}: {e}; trying a zbus connection", socket.display()),
        }
    }
    let sd = connect(scope)?;
    let code = control_with(&sd, unit, verb, no_block)?;
    let props =
        also.and_then(|(other, _)| zbus::block_on(manager::unit_properties(&sd.conn, other)).ok());
    Ok((code, props))
}

/// `start`/`stop`/`restart`/`reload` of `unit` on an open connection (this machine's
/// or, with `-H`, another's): as [`control`].
pub(crate) fn control_with(
    sd: &Systemd,
    unit: &str,
    verb: Verb,
    no_block: bool,
) -> Result<u8, Error> {
    match job::run(sd, verb, unit, no_block) {
        Ok(JobResult::Done | JobResult::Queued) => Ok(exit::OK),
        Ok(JobResult::Failed(result)) => {
            Err(explain_failure(sd.scope, Some(sd), unit, verb, &result))
        }
        Err(e) => Err(e),
    }
}

/// The error for a job that ended with `result` (not `done`): the job result, the unit's
/// `Result`, the main process's end in words, and the last journal lines. The unit's
/// state is read on `sd` when there is a connection, else as `status` reads it.
pub(crate) fn explain_failure(
    scope: Scope,
    sd: Option<&Systemd>,
    unit: &str,
    verb: Verb,
    result: &str,
) -> Error {
    let not_running = verb == Verb::Reload && matches!(result, "skipped" | "invalid");
    let why = if not_running {
        "it is not running"
    } else {
        JobResult::describe(result)
    };
    let mut msg = format!("{} {unit} failed: {why}", verb.progressive());
    let st = match sd {
        Some(sd) => unit_status(sd, unit),
        None => read_status(scope, unit),
    };
    if let Ok(st) = st {
        if !st.result.is_empty() && st.result != "success" {
            msg.push_str(&format!(
                "\n  reason: {} ({})",
                status::result_in_words(&st.result),
                st.result
            ));
        }
        if !st.main_exit.is_empty() {
            msg.push_str(&format!("\n  main process: {}", st.main_exit));
        }
        if !st.status_text.is_empty() {
            msg.push_str(&format!("\n  last status: {}", st.status_text));
        }
    }
    let lines = journal::last_lines(sd.and_then(|sd| sd.route.remote()), scope, unit, 10, true);
    if !lines.is_empty() {
        msg.push_str("\n  last log lines:");
        for l in lines {
            msg.push_str(&format!("\n    {l}"));
        }
    }
    let cmd = errors::invocation(scope, unit);
    if not_running {
        return Error::not_running(msg).with_hint(format!("start it: `{cmd} start`"));
    }
    Error::generic(msg).with_hint(format!("see `{cmd} status` and `{cmd} logs`"))
}

/// The JSON of `status --json`: the unit's facts and its last journal lines.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    /// The host, for `-H`.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(flatten)]
    status: &'a UnitStatus,
    backend: &'static str,
    scope: &'static str,
    journal: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<socket_status::SocketStatus>,
}

/// What `status` shows: the unit, its socket unit, its last journal lines.
struct Snapshot {
    status: UnitStatus,
    socket: Option<socket_status::SocketStatus>,
    journal: Vec<String>,
}

/// `status`: prints the unit's state (text or one JSON object) and `lines` journal lines;
/// returns 0 running, 3 not running, 4 unknown unit.
pub(crate) fn print_status(
    scope: Scope,
    unit: &str,
    lines: usize,
    json: bool,
) -> Result<u8, Error> {
    let (status, socket) = read_status_and_socket(scope, unit, true)?;
    let journal = if status.not_found() {
        Vec::new()
    } else {
        journal::last_lines(None, scope, unit, lines, false)
    };
    let snap = Snapshot {
        status,
        socket,
        journal,
    };
    render_status(&snap, scope, unit, json, None)
}

/// `status` of a unit on another machine (`-H`), over `sd`, as `systemctl -H status`,
/// with the `journal` lines read there (none unless asked for). One round trip.
pub(crate) fn print_status_with(
    sd: &Systemd,
    unit: &str,
    journal: Vec<String>,
    json: bool,
) -> Result<u8, Error> {
    // Over ssh every round trip counts: the unit and its socket unit are asked for at
    // once (the socket unit is shown only when it triggers the service, as here).
    let socket_name = socket_status::socket_name(unit);
    let (props, socket_props) = zbus::block_on(futures_lite::future::zip(
        manager::unit_properties(&sd.conn, unit),
        async {
            match &socket_name {
                Some(s) => manager::unit_properties(&sd.conn, s).await.ok(),
                None => None,
            }
        },
    ));
    let props =
        props.map_err(|e| from_zbus(e, &format!("reading the state of {unit}"), unit, sd.scope))?;
    let status = UnitStatus::from_properties(unit, &props);
    let socket = socket_name
        .filter(|s| triggered_by(&props).contains(s))
        .zip(socket_props)
        .and_then(|(s, p)| socket_status::SocketStatus::from_properties(&s, &p, status.running()));
    let journal = if status.not_found() {
        Vec::new()
    } else {
        journal
    };
    let snap = Snapshot {
        status,
        socket,
        journal,
    };
    render_status(&snap, sd.scope, unit, json, sd.route.remote())
}

/// Prints a [`Snapshot`]: one JSON line (naming the host, for a remote one), or text.
fn render_status(
    snap: &Snapshot,
    scope: Scope,
    unit: &str,
    json: bool,
    remote: Option<&Remote>,
) -> Result<u8, Error> {
    let st = &snap.status;
    if json {
        let obj = StatusJson {
            host: remote.map(|r| r.host.to_string()),
            status: st,
            backend: "systemd",
            scope: match scope {
                Scope::System => "system",
                Scope::User => "user",
            },
            journal: snap.journal.clone(),
            socket: snap.socket.clone(),
        };
        let text = serde_json::to_string(&obj)
            .map_err(|e| Error::generic(format!("cannot encode the status as JSON: {e}")))?;
        crate::output::raw(&text);
    } else if st.not_found() {
        errln!("mydaemon: {unit} is not installed (systemd knows no such unit)");
        let cmd = errors::invocation(scope, unit);
        let hint = format!("run `{cmd} install --systemd`");
        let hint = match remote {
            Some(r) => crate::ssh::with_host(&hint, &r.host),
            None => hint,
        };
        errln!("  hint: {hint}");
    } else {
        let mut out = st.render(SystemTime::now());
        if let Some(s) = &snap.socket {
            out.push_str(&s.render());
        }
        if !snap.journal.is_empty() {
            out.push('\n');
            for l in &snap.journal {
                out.push_str(l);
                out.push('\n');
            }
        }
        // What systemd passes on (descriptions, STATUS= text) is the service's words, or
        // another machine's: shown, not obeyed.
        crate::output::out(&crate::output::visible(&out));
    }
    Ok(st.exit_code())
}

/// Prints the changes `EnableUnitFiles`/`DisableUnitFiles` reported, as systemctl does.
fn print_changes(changes: &[manager::UnitFileChange], quiet: bool) {
    if quiet {
        return;
    }
    for (kind, file, dest) in changes {
        match kind.as_str() {
            "symlink" => outln!("Created symlink {file} → {dest}."),
            "unlink" => outln!("Removed \"{file}\"."),
            other => outln!("{other}: {file} {dest}"),
        }
    }
}

/// `enable [--now]` on an open connection: enable the unit file, reload systemd if that
/// changed anything (or `file_written`: `install` changed the unit file), start if asked.
pub(crate) fn enable_with(
    sd: &Systemd,
    unit: &str,
    now: bool,
    file_written: bool,
    quiet: bool,
) -> Result<u8, Error> {
    if set_enabled(sd, unit, true, quiet)? || file_written {
        reload_manager(sd)?;
    }
    if now {
        control_with(sd, unit, Verb::Start, false)
    } else {
        Ok(exit::OK)
    }
}

/// `disable [--now]` on an open connection: disable the unit file, reload systemd if that
/// changed anything, stop if asked.
pub(crate) fn disable_with(sd: &Systemd, unit: &str, now: bool, quiet: bool) -> Result<u8, Error> {
    if set_enabled(sd, unit, false, quiet)? {
        reload_manager(sd)?;
    }
    if now {
        control_with(sd, unit, Verb::Stop, false)
    } else {
        Ok(exit::OK)
    }
}

/// `EnableUnitFiles` or `DisableUnitFiles` for `unit`, printing the symlinks systemd
/// made or removed; returns whether there were any.
fn set_enabled(sd: &Systemd, unit: &str, enable: bool, quiet: bool) -> Result<bool, Error> {
    let what = format!("{} {unit}", if enable { "enabling" } else { "disabling" });
    let changes = zbus::block_on(async {
        let mgr = manager::manager(&sd.conn).await?;
        if enable {
            Ok(mgr.enable_unit_files(&[unit], false, false).await?.1)
        } else {
            mgr.disable_unit_files(&[unit], false).await
        }
    })
    .map_err(|e| from_zbus(e, &what, unit, sd.scope))?;
    print_changes(&changes, quiet);
    Ok(!changes.is_empty())
}

/// `daemon-reload`.
pub(crate) fn reload_manager(sd: &Systemd) -> Result<(), Error> {
    zbus::block_on(async { manager::manager(&sd.conn).await?.reload().await })
        .map_err(|e| from_zbus(e, "reloading systemd", "", sd.scope))
}

/// The live half of `uninstall` that comes before the files go: stop (waiting) and disable.
/// A unit systemd does not know is fine here: there is nothing to stop.
pub(crate) fn uninstall_stop_disable(sd: &Systemd, unit: &str, quiet: bool) -> Result<(), Error> {
    match control_with(sd, unit, Verb::Stop, false) {
        Ok(_) => {}
        Err(e) if e.kind() == crate::error::Kind::NotInstalled => {}
        Err(e) => return Err(e),
    }
    set_enabled(sd, unit, false, quiet).map(drop)
}

/// The live half of `uninstall` after the files are gone: reload, and forget a failed
/// state so nothing of the unit is left in systemd.
pub(crate) fn uninstall_reload(sd: &Systemd, unit: &str) -> Result<(), Error> {
    reload_manager(sd)?;
    // After the reload the unit is unknown; a failed state could keep it listed.
    let _ = zbus::block_on(async {
        manager::manager(&sd.conn)
            .await?
            .reset_failed_unit(unit)
            .await
    });
    Ok(())
}
