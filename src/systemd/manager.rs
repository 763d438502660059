//! The `org.freedesktop.systemd1.Manager` calls mydaemon makes, and unit properties.
//!
//! **Hand-written `#[proxy]` trait rather than the `zbus_systemd` crate.** We call eleven
//! Manager methods and read one property set; `zbus_systemd`'s `systemd1` module is about
//! 10 000 generated lines (every interface of every unit type) to compile on every clean
//! build, and its unit and service proxies read properties one call each (or fill a cache
//! with a `GetAll` per interface plus a `PropertiesChanged` subscription). `status` instead
//! asks for every property of the unit in one `GetAll` with the empty interface name (one
//! round trip, as `systemctl show` does) and reads the few it needs from that map. The
//! signatures below are checked against systemd's introspection data by the box tests,
//! which call each of them against a real systemd.

use std::collections::HashMap;

use zbus::{Connection, OwnedObjectPath, OwnedVariant};

/// The bus name of the manager.
pub const DESTINATION: &str = "org.freedesktop.systemd1";
/// The object path of the manager.
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
/// The Manager interface.
pub const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";

/// One change `EnableUnitFiles`/`DisableUnitFiles` made: (type, file, destination).
pub type UnitFileChange = (String, String, String);

/// The part of `org.freedesktop.systemd1.Manager` that mydaemon uses.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// Ask for signals (needed on a bus; on the private socket they come unasked).
    fn subscribe(&self) -> zbus::Result<()>;
    /// Queue a start job; returns the job's object path.
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// Queue a stop job.
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// Queue a restart job.
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// Queue a reload job.
    fn reload_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// Load (or find) a unit; returns its object path.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    /// `daemon-reload`.
    fn reload(&self) -> zbus::Result<()>;
    /// Enable unit files: (carries_install_info, changes).
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;
    /// Disable unit files: changes.
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<UnitFileChange>>;
    /// Enablement state of a unit file ("enabled", "disabled", ...).
    fn get_unit_file_state(&self, file: &str) -> zbus::Result<String>;
    /// Forget a failed state.
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
}

/// A Manager proxy without a property cache (we read no Manager property), so building it
/// costs no round trip.
pub async fn manager(conn: &Connection) -> zbus::Result<ManagerProxy<'static>> {
    ManagerProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// The object path of unit `name`, escaped as systemd does (`bus_label_escape`): every
/// byte outside `[A-Za-z0-9]` becomes `_xx` (two lower-case hex digits).
pub fn unit_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    if name.is_empty() {
        path.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() && !(i == 0 && b.is_ascii_digit()) {
            path.push(b as char);
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

/// Every property of the unit `name` (all interfaces) in one `GetAll` call. systemd loads
/// the unit for the call if it is not loaded; an unknown name gives `LoadState=not-found`.
pub async fn unit_properties(
    conn: &Connection,
    name: &str,
) -> zbus::Result<HashMap<String, OwnedVariant>> {
    let reply = conn
        .call_method(
            Some(DESTINATION),
            unit_path(name).as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "GetAll",
            &(""),
        )
        .await?;
    reply.body().deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_escaped_like_systemd() {
        // Values from `busctl` against systemd 252.
        assert_eq!(
            unit_path("dbus.service"),
            "/org/freedesktop/systemd1/unit/dbus_2eservice"
        );
        assert_eq!(
            unit_path("systemd-journald.socket"),
            "/org/freedesktop/systemd1/unit/systemd_2djournald_2esocket"
        );
        assert_eq!(
            unit_path("foo@a:b.service"),
            "/org/freedesktop/systemd1/unit/foo_40a_3ab_2eservice"
        );
        assert_eq!(
            unit_path("0x.service"),
            "/org/freedesktop/systemd1/unit/_30x_2eservice"
        );
    }
}
