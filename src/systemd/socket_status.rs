//! The socket unit beside a service (`NAME.socket`, socket activation): what `status`
//! shows of it — its addresses, whether it listens, how many connections it accepted —
//! and whether the service runs or waits for its first connection.

use std::collections::HashMap;

use zbus::zvariant::{OwnedVariant, Variant};

/// The facts `status` shows of `NAME.socket`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SocketStatus {
    /// `NAME.socket`.
    pub unit: String,
    /// `active` while it listens.
    pub active_state: String,
    /// `listening`, `running` (a service it started runs), `failed`...
    pub sub_state: String,
    /// Its addresses as systemd reports them: `Stream 127.0.0.1:8080`.
    pub listen: Vec<String>,
    /// Connections accepted since it started (`NAccepted`; stream sockets with
    /// `Accept=no` pass the listening socket, so this stays 0 for them).
    pub n_accepted: u32,
    /// The service waits for its first connection: the socket listens, the service
    /// does not run.
    pub waiting: bool,
}

fn str_of(props: &HashMap<String, OwnedVariant>, key: &str) -> String {
    match props.get(key).map(|v| &**v) {
        Some(Variant::Str(s)) => s.as_str().to_owned(),
        _ => String::new(),
    }
}

/// The listen addresses of a `Listen` property (`a(ss)`: type, address).
fn listen_of(props: &HashMap<String, OwnedVariant>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Variant::Array(a)) = props.get("Listen").map(|v| &**v) {
        for item in a.inner() {
            if let Variant::Structure(s) = item {
                let f: Vec<String> = s
                    .fields()
                    .iter()
                    .filter_map(|v| match v {
                        Variant::Str(s) => Some(s.as_str().to_owned()),
                        _ => None,
                    })
                    .collect();
                out.push(f.join(" "));
            }
        }
    }
    out
}

impl SocketStatus {
    /// From the socket unit's properties; `service_running`: the service is active.
    pub fn from_properties(
        unit: &str,
        props: &HashMap<String, OwnedVariant>,
        service_running: bool,
    ) -> Option<SocketStatus> {
        if str_of(props, "LoadState") != "loaded" {
            return None;
        }
        let active_state = str_of(props, "ActiveState");
        let n_accepted = match props.get("NAccepted").map(|v| &**v) {
            Some(Variant::U32(n)) => *n,
            _ => 0,
        };
        Some(SocketStatus {
            unit: unit.to_owned(),
            waiting: active_state == "active" && !service_running,
            sub_state: str_of(props, "SubState"),
            listen: listen_of(props),
            n_accepted,
            active_state,
        })
    }

    /// The lines `status` adds: `Listen: Stream 127.0.0.1:8080 (NAME.socket: active,
    /// listening)`, and whether the service waits.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, l) in self.listen.iter().enumerate() {
            let key = if i == 0 { "Listen" } else { "" };
            out.push_str(&format!("{key:>10}: {l}\n"));
        }
        out.push_str(&format!(
            "{:>10}: {} {} ({}){}\n",
            "Socket",
            self.unit,
            self.active_state,
            self.sub_state,
            if self.waiting {
                " — the service starts on the first connection"
            } else {
                ""
            }
        ));
        out
    }
}

/// The properties `status` (and `stop`) read of the socket unit.
pub const PROPERTIES: [(&str, Option<&str>); 5] = [
    ("org.freedesktop.systemd1.Unit", Some("LoadState")),
    ("org.freedesktop.systemd1.Unit", Some("ActiveState")),
    ("org.freedesktop.systemd1.Unit", Some("SubState")),
    ("org.freedesktop.systemd1.Socket", Some("Listen")),
    ("org.freedesktop.systemd1.Socket", Some("NAccepted")),
];

/// The socket unit beside `service`: `NAME.service` → `NAME.socket`.
pub fn socket_name(service: &str) -> Option<String> {
    Some(format!("{}.socket", service.strip_suffix(".service")?))
}

/// The status of the socket unit of `service` (`NAME.service` → `NAME.socket`) on an
/// open connection, if one is loaded.
pub fn read_with(
    sd: &super::Systemd,
    service: &str,
    service_running: bool,
) -> Option<SocketStatus> {
    let socket = socket_name(service)?;
    let props = zbus::block_on(super::manager::unit_properties(&sd.conn, &socket)).ok()?;
    SocketStatus::from_properties(&socket, &props, service_running)
}
