//! `uninstall --purge`: systemd removes the unit's directories itself (`CleanUnit`, what
//! `systemctl clean` does), waited for without a race.
//!
//! `CleanUnit` returns once systemd has started the clean-up: the unit is then in
//! `ActiveState=maintenance` (sub-state `cleaning`) until the helper that removes the
//! directories has exited. So the `PropertiesChanged` match for the unit is registered
//! (and, on a bus, `Subscribe` called) *before* the call; after it, the wait ends at the
//! first `ActiveState` other than `maintenance`, and `CleanResult` says how it went.
//! systemd knows every directory the unit names, and with `DynamicUser=yes` both
//! `/var/lib/private/NAME` and the `/var/lib/NAME` link.

use std::collections::HashMap;
use std::time::Duration;

use futures_lite::StreamExt;
use zbus::{MatchRule, MessageStream, OwnedVariant};

use super::connection::{Route, Systemd};
use super::errors::{dbus_error, from_zbus};
use super::manager::{manager, unit_path, DESTINATION};
use crate::error::Error;

/// What `--purge` removes: `RuntimeDirectory=`, `StateDirectory=`, `CacheDirectory=`,
/// `LogsDirectory=`. Not `ConfigurationDirectory=`: configuration is the administrator's.
pub const KINDS: [&str; 4] = ["runtime", "state", "cache", "logs"];

/// How long the clean-up may take (systemd's own stop timeout is 30 s).
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// The result of a purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// systemd removed the directories.
    Removed,
    /// The unit names no such directory.
    Nothing,
}

fn unit_changes_rule(route: &Route, path: &str) -> zbus::Result<MatchRule<'static>> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path(path.to_owned());
    if route.is_bus() {
        rule.sender(DESTINATION)
    } else {
        rule
    }
    .build()
}

async fn get(sd: &Systemd, path: &str, interface: &str, prop: &str) -> zbus::Result<OwnedVariant> {
    let reply = sd
        .conn
        .call_method(
            Some(DESTINATION),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(interface, prop),
        )
        .await?;
    reply.body().deserialize()
}

fn string_of(v: &OwnedVariant) -> String {
    match &**v {
        zbus::Variant::Str(s) => s.as_str().to_string(),
        _ => String::new(),
    }
}

/// Removes the directories of `unit` (which must be loaded and inactive) through
/// systemd's `CleanUnit`, and waits until systemd is done.
pub fn clean(sd: &Systemd, unit: &str) -> Result<Cleaned, Error> {
    zbus::block_on(async {
        let wait = clean_async(sd, unit);
        let timeout = async {
            async_io::Timer::after(TIMEOUT).await;
            Err(Error::generic(format!(
                "removing the directories of {unit}: systemd was not done after {}s",
                TIMEOUT.as_secs()
            )))
        };
        futures_lite::future::or(wait, timeout).await
    })
}

async fn clean_async(sd: &Systemd, unit: &str) -> Result<Cleaned, Error> {
    let what = format!("removing the directories of {unit}");
    let fail = |e: zbus::Error| from_zbus(e, &what, unit, sd.scope);
    let path = unit_path(unit);
    let mgr = manager(&sd.conn).await.map_err(fail)?;
    let mut stream = MessageStream::for_match_rule(
        unit_changes_rule(&sd.route, &path).map_err(fail)?,
        &sd.conn,
        None,
    )
    .await
    .map_err(fail)?;
    if sd.route.is_bus() {
        // A stop job waited for on this connection has subscribed it already.
        match mgr.subscribe().await {
            Ok(()) => {}
            Err(e)
                if dbus_error(&e).is_some_and(|(name, _)| {
                    name == "org.freedesktop.systemd1.AlreadySubscribed"
                }) => {}
            Err(e) => return Err(fail(e)),
        }
    }
    if let Err(e) = mgr.clean_unit(unit, &KINDS).await {
        if dbus_error(&e).is_some_and(|(name, _)| name == "org.freedesktop.systemd1.NothingToClean")
        {
            return Ok(Cleaned::Nothing);
        }
        return Err(fail(e));
    }
    let unit_iface = "org.freedesktop.systemd1.Unit";
    let mut state = string_of(
        &get(sd, &path, unit_iface, "ActiveState")
            .await
            .map_err(fail)?,
    );
    while state == "maintenance" {
        let Some(msg) = stream.next().await else {
            return Err(Error::generic(format!(
                "{what}: systemd closed the connection before it was done"
            )));
        };
        let msg = msg
            .map_err(|e| Error::generic(format!("{what}: lost the connection to systemd: {e}")))?;
        let body = msg.body();
        let Ok((iface, changed, _invalidated)) =
            body.deserialize::<(&str, HashMap<&str, OwnedVariant>, Vec<&str>)>()
        else {
            continue;
        };
        if iface != unit_iface {
            continue;
        }
        if let Some(v) = changed.get("ActiveState") {
            state = string_of(v);
        }
    }
    let result = string_of(
        &get(sd, &path, "org.freedesktop.systemd1.Service", "CleanResult")
            .await
            .map_err(fail)?,
    );
    log::debug!("{what}: ActiveState={state}, CleanResult={result}");
    if result != "success" {
        return Err(Error::generic(format!(
            "{what}: systemd could not remove them (CleanResult={result})"
        ))
        .with_hint(format!("see `journalctl -u {unit}`")));
    }
    Ok(Cleaned::Removed)
}
