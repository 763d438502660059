//! Socket activation, the pure half: `--listen` addresses and the `NAME.socket` unit.
//!
//! `--listen ADDR` (repeatable) takes `tcp:[HOST:]PORT`, `tcp6:[HOST]:PORT` or
//! `tcp6:PORT`, `udp:[HOST:]PORT`, `udp6:…`, `unix:PATH`, each with an optional
//! `,name=NAME` (its `LISTEN_FDNAMES` entry; default: the service name, as systemd's).
//! The socket unit lists them in order (`ListenStream=`/`ListenDatagram=`), so the
//! descriptors arrive at 3, 4, … in the order given; `mydaemon run`, which gets the
//! same `--listen` options, names them. Binding and handing on is
//! [`crate::daemon::listen`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP, a stream socket (`ListenStream=`).
    Tcp,
    /// UDP, a datagram socket (`ListenDatagram=`).
    Udp,
    /// A Unix stream socket (`ListenStream=/path`).
    Unix,
}

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// A port on every address: IPv6 and IPv4 (`[::]:PORT`, dual-stack), or IPv6 only.
    AnyPort {
        /// The port.
        port: u16,
        /// `tcp6:`/`udp6:`: IPv6 only.
        v6_only: bool,
    },
    /// One address and port.
    Addr(SocketAddr),
    /// A Unix socket path (absolute).
    Path(PathBuf),
}

/// One `--listen` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// Transport.
    pub kind: Kind,
    /// Where.
    pub bind: Bind,
    /// The `LISTEN_FDNAMES` entry, if given (`,name=NAME`).
    pub name: Option<String>,
}

impl ListenAddr {
    /// The value systemd's `ListenStream=`/`ListenDatagram=` takes for it.
    pub fn systemd_value(&self) -> String {
        match &self.bind {
            Bind::AnyPort { port, .. } => port.to_string(),
            Bind::Addr(a) => a.to_string(),
            Bind::Path(p) => p.display().to_string(),
        }
    }

    /// `ListenStream` or `ListenDatagram`.
    pub fn systemd_key(&self) -> &'static str {
        match self.kind {
            Kind::Tcp | Kind::Unix => "ListenStream",
            Kind::Udp => "ListenDatagram",
        }
    }

    /// The name handed on in `LISTEN_FDNAMES`: `,name=` or the service name.
    pub fn fd_name<'a>(&'a self, service: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(service)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6_only = matches!(self.bind, Bind::AnyPort { v6_only: true, .. });
        let scheme = match (self.kind, v6_only) {
            (Kind::Tcp, false) => "tcp",
            (Kind::Tcp, true) => "tcp6",
            (Kind::Udp, false) => "udp",
            (Kind::Udp, true) => "udp6",
            (Kind::Unix, _) => "unix",
        };
        write!(f, "{scheme}:{}", self.systemd_value())?;
        if let Some(n) = &self.name {
            write!(f, ",name={n}")?;
        }
        Ok(())
    }
}

/// Whether `name` is a valid `FileDescriptorName=`/`LISTEN_FDNAMES` entry: 1–255
/// printable ASCII characters other than `:` (the list separator).
pub fn valid_fd_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (spec, name) = match s.rsplit_once(",name=") {
            Some((a, n)) => (a, Some(n)),
            None => (s, None),
        };
        if let Some(n) = name {
            if !valid_fd_name(n) {
                return Err(format!(
                    "{n:?}: a name is 1-255 printable characters, no ':' or spaces"
                ));
            }
        }
        let (scheme, rest) = spec.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected tcp:[HOST:]PORT, tcp6:, udp:, udp6: or unix:PATH")
        })?;
        let (kind, v6) = match scheme {
            "tcp" => (Kind::Tcp, false),
            "tcp6" => (Kind::Tcp, true),
            "udp" => (Kind::Udp, false),
            "udp6" => (Kind::Udp, true),
            "unix" => (Kind::Unix, false),
            other => {
                return Err(format!(
                    "{other:?}: unknown kind of address (tcp, tcp6, udp, udp6, unix)"
                ))
            }
        };
        let bind = if kind == Kind::Unix {
            if !rest.starts_with('/') {
                return Err(format!("unix:{rest}: the path must be absolute"));
            }
            if rest.len() >= 108 {
                return Err(format!("unix:{rest}: longer than a socket address allows"));
            }
            if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!(
                    "unix:{rest:?}: no spaces or control characters in the path"
                ));
            }
            Bind::Path(PathBuf::from(rest))
        } else if let Ok(port) = rest.parse::<u16>() {
            if port == 0 {
                return Err(format!("{s:?}: port 0"));
            }
            Bind::AnyPort { port, v6_only: v6 }
        } else {
            let addr: SocketAddr = rest.parse().map_err(|_| {
                format!(
                    "{rest:?}: expected PORT or HOST:PORT with an IP address ([::1]:PORT for IPv6)"
                )
            })?;
            if addr.port() == 0 {
                return Err(format!("{s:?}: port 0"));
            }
            if v6 && !matches!(addr.ip(), IpAddr::V6(_)) {
                return Err(format!("{s:?}: {scheme} takes an IPv6 address"));
            }
            Bind::Addr(addr)
        };
        Ok(ListenAddr {
            kind,
            bind,
            name: name.map(str::to_owned),
        })
    }
}

/// Parses one `--listen` value (clap's value parser).
pub fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    s.parse()
}

/// The socket unit `NAME.socket` for `service` listening on `addrs`.
pub fn render(service: &str, description: &str, addrs: &[ListenAddr]) -> String {
    let mut u = format!(
        "{}; edits are lost when it is regenerated.\n\n[Unit]\nDescription={description} (sockets)\nDocumentation=man:mydaemon(1)\n\n[Socket]\n",
        super::MARKER
    );
    for a in addrs {
        u.push_str(&format!("{}={}\n", a.systemd_key(), a.systemd_value()));
    }
    if addrs
        .iter()
        .any(|a| matches!(a.bind, Bind::AnyPort { v6_only: true, .. }))
    {
        u.push_str("BindIPv6Only=ipv6-only\n");
    }
    if addrs.iter().any(|a| a.kind == Kind::Unix) {
        u.push_str("SocketMode=0666\nRemoveOnStop=yes\n");
    }
    u.push_str(&format!("Service={service}.service\n"));
    // sockets.target exists in the system and the user managers alike.
    u.push_str("\n[Install]\nWantedBy=sockets.target\n");
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for s in [
            "tcp:8080",
            "tcp:127.0.0.1:8080",
            "tcp6:8080",
            "tcp6:[::1]:8080",
            "tcp:[::1]:80,name=web",
            "udp:5353",
            "udp:0.0.0.0:53,name=dns",
            "unix:/run/app.sock",
            "unix:/run/app.sock,name=ctl",
        ] {
            let a: ListenAddr = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            // Printed back, it means the same (`tcp6:[::1]:80` prints as `tcp:`).
            assert_eq!(a.to_string().parse::<ListenAddr>().unwrap(), a, "{s}");
            if !s.starts_with("tcp6:[") {
                assert_eq!(a.to_string(), s);
            }
        }
        let a: ListenAddr = "tcp:127.0.0.1:8080,name=web".parse().unwrap();
        assert_eq!(a.systemd_key(), "ListenStream");
        assert_eq!(a.systemd_value(), "127.0.0.1:8080");
        assert_eq!(a.fd_name("svc"), "web");
        let a: ListenAddr = "udp:53".parse().unwrap();
        assert_eq!(a.systemd_key(), "ListenDatagram");
        assert_eq!(a.fd_name("svc"), "svc");
    }

    #[test]
    fn bad_addresses_are_refused_in_words() {
        for (s, words) in [
            ("8080", "expected tcp:"),
            ("http:80", "unknown kind"),
            ("tcp:0", "port 0"),
            ("tcp:localhost:80", "IP address"),
            ("tcp:99999", "expected PORT"),
            ("unix:rel/sock", "absolute"),
            ("tcp6:127.0.0.1:80", "IPv6"),
            ("tcp:80,name=a:b", "no ':'"),
            ("tcp:80,name=", "1-255"),
        ] {
            let e = s.parse::<ListenAddr>().unwrap_err();
            assert!(e.contains(words), "{s}: {e}");
        }
    }

    #[test]
    fn the_socket_unit_lists_addresses_in_order() {
        let addrs: Vec<ListenAddr> = ["tcp:8080,name=web", "unix:/run/x.sock", "udp:[::1]:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let u = render("web", "web server", &addrs);
        let body = u.split("[Socket]\n").nth(1).unwrap();
        assert!(
            body.starts_with(
                "ListenStream=8080\nListenStream=/run/x.sock\nListenDatagram=[::1]:53\n"
            ),
            "{u}"
        );
        assert!(u.contains("Service=web.service\n"), "{u}");
        assert!(u.contains("WantedBy=sockets.target\n"), "{u}");
    }

    #[test]
    fn a_listening_service_requires_its_socket_and_has_one() {
        let mut spec = crate::unit::ServiceSpec::new("web", "/usr/local/bin/mydaemon");
        assert_eq!(spec.render_socket().unwrap(), None);
        assert!(!spec.render().unwrap().contains("web.socket"));
        spec.listen = vec!["tcp:8080,name=web".parse().unwrap()];
        let service = spec.render().unwrap();
        assert!(
            service.contains("Requires=web.socket\nAfter=web.socket\n"),
            "{service}"
        );
        let socket = spec.render_socket().unwrap().unwrap();
        assert!(socket.starts_with(crate::unit::MARKER), "{socket}");
        assert!(socket.contains("ListenStream=8080\n"), "{socket}");
    }
}
