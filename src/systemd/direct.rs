//! One blocking exchange over a systemd private socket: no executor, no thread.
//!
//! A zbus connection costs a reactor thread (`async-io`), an executor thread
//! (`zruntime`), a handshake round trip before the first call and wake-ups between the
//! threads for every reply. `status` (its properties) and `start`/`stop`/... (the job's
//! call and its `JobRemoved`, see [`super::job::run_direct`]) need none of that.
//! [`Exchange`] writes the authentication (`AUTH EXTERNAL`, `BEGIN`) and the calls in a
//! single `write` (padded past sd-bus's 256-byte authentication read, see
//! [`Exchange::open`]), then reads `OK <guid>` and whole messages. The calls are built
//! by zbus ([`zbus::Message::method_call`]); each message's header is walked here
//! ([`Incoming`]: its `SENDER` is the well-known name zbus would refuse, see
//! [`super::private_socket`]) and its body is decoded by zbus' deserializer.
//!
//! Used only on a private socket (root, or a user's own manager); the bus route keeps the
//! zbus connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use zbus::wire::serialized::{Context, Data};
use zbus::wire::Endian;
use zbus::OwnedVariant;

use super::manager::{unit_path, DESTINATION};
use super::private_socket::{message_len, read_u32, value_end};

/// Header field codes (D-Bus specification, "Message Format").
const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_SIGNATURE: u8 = 8;
/// Message types.
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// What the calls got: the properties that were read, or the D-Bus error (name, message)
/// of the first property's call (the unit itself could not be read).
pub type Outcome = Result<HashMap<String, OwnedVariant>, (String, String)>;

/// The property calls of one unit: (interface, `Some(property)`) is a `Get`, (interface,
/// `None`) a `GetAll`.
pub type Calls<'a> = &'a [(&'a str, Option<&'a str>)];

/// A call to `org.freedesktop.DBus.Properties` of the object at `path`: (interface,
/// `Some(property)`) is a `Get`, (interface, `None`) a `GetAll`.
pub fn properties_call(
    path: &str,
    (iface, name): (&str, Option<&str>),
) -> io::Result<zbus::Message> {
    let call = |method| {
        zbus::Message::method_call(path, method)
            .destination(DESTINATION)
            .interface("org.freedesktop.DBus.Properties")
    };
    match name {
        Some(name) => call("Get").build(&(iface, name)),
        None => call("GetAll").build(&iface),
    }
    .map_err(io::Error::other)
}

/// Reads properties of `units` over the private socket at `socket`, all calls in flight
/// together (one connection, one write): for each unit its calls, (interface,
/// `Some(property)`) a `Get`, (interface, `None`) a `GetAll`. An [`Outcome`] for each
/// unit, in their order: a call that fails is left out, except the unit's first one,
/// whose error is the unit's outcome. `Err` when the socket cannot be used.
pub fn units_properties(
    socket: &Path,
    units: &[(&str, Calls<'_>)],
    timeout: Duration,
) -> io::Result<Vec<Outcome>> {
    let mut calls = Vec::new();
    for (unit, props) in units {
        let path = unit_path(unit);
        for p in *props {
            calls.push(properties_call(&path, *p)?);
        }
    }
    let mut ex = Exchange::open(socket, &calls, timeout)?;
    let mut serials = ex.serials();
    let mut got: Vec<Properties> = units
        .iter()
        .map(|(_, props)| {
            let (mine, rest) = serials.split_at(props.len());
            serials = rest;
            Properties::new(mine)
        })
        .collect();
    while !got.iter().all(Properties::complete) {
        let msg = ex.next()?;
        for (g, (_, props)) in got.iter_mut().zip(units) {
            g.take(&msg, props);
        }
    }
    Ok(got.into_iter().map(Properties::outcome).collect())
}

/// The answers to a batch of property calls (see [`units_properties`]), gathered as they
/// come in among other messages.
#[derive(Debug)]
pub struct Properties {
    serials: Vec<u32>,
    pending: usize,
    got: HashMap<String, OwnedVariant>,
    first_error: Option<(String, String)>,
}

impl Properties {
    /// Waits for the replies to the calls of serials `serials` (in the order of their
    /// property list).
    pub fn new(serials: &[u32]) -> Self {
        Properties {
            serials: serials.to_vec(),
            pending: serials.len(),
            got: HashMap::new(),
            first_error: None,
        }
    }

    /// Every reply is in.
    pub fn complete(&self) -> bool {
        self.pending == 0
    }

    /// Takes `msg` if it answers one of the calls of `props`. A call that failed (or
    /// whose answer does not decode) is left out, except the first one: its error is
    /// the [`Outcome`]'s.
    pub fn take(&mut self, msg: &Incoming, props: &[(&str, Option<&str>)]) {
        let Some(serial) = msg.reply_serial.filter(|_| msg.is_reply()) else {
            return;
        };
        let Some(i) = self.serials.iter().position(|&s| s == serial) else {
            return;
        };
        self.serials[i] = 0; // serials start at 1: 0 matches nothing again
        self.pending -= 1;
        let result = if msg.kind == ERROR {
            Err(msg.error())
        } else {
            match props[i].1 {
                Some(name) => msg.body::<OwnedVariant>().map(|v| {
                    self.got.insert(name.to_string(), v);
                }),
                None => msg
                    .body::<HashMap<String, OwnedVariant>>()
                    .map(|all| self.got.extend(all)),
            }
            .map_err(|e| ("zbus".to_string(), e.to_string()))
        };
        if let (Err(e), 0) = (result, i) {
            self.first_error = Some(e);
        }
    }

    /// The properties read, or the first call's error.
    pub fn outcome(self) -> Outcome {
        match self.first_error {
            Some(e) => Err(e),
            None => Ok(self.got),
        }
    }
}

/// One message received, its header walked: what the exchanges need of it.
#[derive(Debug)]
pub struct Incoming {
    bytes: Vec<u8>,
    big_endian: bool,
    body_start: usize,
    /// `METHOD_RETURN` (2), `ERROR` (3), `SIGNAL` (4), ...
    pub kind: u8,
    /// The serial of the call a reply answers.
    pub reply_serial: Option<u32>,
    /// `PATH`, `INTERFACE`, `MEMBER` of a signal.
    pub path: Option<String>,
    /// See `path`.
    pub interface: Option<String>,
    /// See `path`.
    pub member: Option<String>,
    /// An error's name.
    pub error_name: Option<String>,
    /// The body's signature.
    pub signature: String,
}

impl Incoming {
    /// Walks the header of the complete message `msg`; `None` when it cannot be walked.
    pub fn parse(msg: Vec<u8>) -> Option<Incoming> {
        let big_endian = match msg.first()? {
            b'l' => false,
            b'B' => true,
            _ => return None,
        };
        let kind = *msg.get(1)?;
        let fields_end = 16 + read_u32(&msg, 12, big_endian)? as usize;
        let body_start = fields_end.div_ceil(8) * 8;
        if body_start > msg.len() {
            return None;
        }
        let mut m = Incoming {
            bytes: Vec::new(),
            big_endian,
            body_start,
            kind,
            reply_serial: None,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            signature: String::new(),
        };
        let mut pos = 16;
        while pos < fields_end {
            let code = *msg.get(pos)?;
            if *msg.get(pos + 1)? != 1 {
                return None; // every header field's signature is one basic type
            }
            let sig = *msg.get(pos + 2)?;
            let end = value_end(&msg, pos + 4, sig, big_endian)?;
            let text = |start: usize| {
                msg.get(start..end - 1)
                    .map(|t| String::from_utf8_lossy(t).into_owned())
            };
            let string_start = (pos + 4).div_ceil(4) * 4 + 4;
            match (code, sig) {
                (FIELD_REPLY_SERIAL, b'u') => {
                    m.reply_serial = read_u32(&msg, (pos + 4).div_ceil(4) * 4, big_endian)
                }
                (FIELD_SIGNATURE, b'g') => m.signature = text(pos + 5)?,
                (FIELD_ERROR_NAME, b's') => m.error_name = text(string_start),
                (FIELD_PATH, b'o') => m.path = text(string_start),
                (FIELD_INTERFACE, b's') => m.interface = text(string_start),
                (FIELD_MEMBER, b's') => m.member = text(string_start),
                _ => {}
            }
            pos = (end.div_ceil(8) * 8).min(fields_end);
        }
        m.bytes = msg;
        Some(m)
    }

    /// Decodes the body as `T` (whose signature must be the body's).
    pub fn body<T>(&self) -> zbus::Result<T>
    where
        T: serde::de::DeserializeOwned + zbus::zvariant::Type,
    {
        let endian = if self.big_endian {
            Endian::Big
        } else {
            Endian::Little
        };
        // The body starts on a multiple of 8, so alignment from its start is the message's.
        let data = Data::new(&self.bytes[self.body_start..], Context::new(endian, 0));
        Ok(data.deserialize::<T>()?.0)
    }

    /// An error reply's name and message text.
    pub fn error(&self) -> (String, String) {
        let text = if self.signature.starts_with('s') {
            self.body::<String>().unwrap_or_default()
        } else {
            String::new()
        };
        (self.error_name.clone().unwrap_or_default(), text)
    }

    /// An error reply.
    pub fn is_error(&self) -> bool {
        self.kind == ERROR
    }

    /// A method return or an error.
    pub fn is_reply(&self) -> bool {
        matches!(self.kind, METHOD_RETURN | ERROR) && self.reply_serial.is_some()
    }

    /// A signal `member` of `interface` from the object at `path`.
    pub fn is_signal(&self, path: &str, interface: &str, member: &str) -> bool {
        self.kind == SIGNAL
            && self.path.as_deref() == Some(path)
            && self.interface.as_deref() == Some(interface)
            && self.member.as_deref() == Some(member)
    }
}

/// The most sd-bus reads of a client's first bytes (`bus_socket_read_auth`).
const SD_BUS_AUTH_READ: usize = 256;

/// `org.freedesktop.DBus.Peer.Ping` to systemd, no reply wanted.
fn ping() -> io::Result<zbus::Message> {
    zbus::Message::method_call("/", "Ping")
        .destination(DESTINATION)
        .interface("org.freedesktop.DBus.Peer")
        .with_flags(zbus::message::Flags::NO_REPLY_EXPECTED)
        .build(&())
        .map_err(io::Error::other)
}

/// A blocking connection to a private socket whose authentication and first calls went
/// out in one write; then whole messages, read as they come.
pub struct Exchange {
    replies: Replies,
    serials: Vec<u32>,
}

impl Exchange {
    /// Connects to `socket`, writes `AUTH EXTERNAL`, `BEGIN` and `calls` at once and reads
    /// the server's `OK`. `timeout` bounds every read and write from then on (see
    /// [`Exchange::set_read_timeout`]). An error here means systemd has not accepted the
    /// connection (no socket, refused, no answer).
    ///
    /// sd-bus reads at most 256 bytes while it authenticates a client, and when that read
    /// took the whole write, it leaves the calls that came with it unread until more
    /// bytes arrive (seen with systemd 252: `AUTH`, `BEGIN` and one `StartUnit`, 238
    /// bytes, got no answer). So the write is padded past 256 bytes with `Peer.Ping`s
    /// that ask for no reply (the rest waits in the socket and wakes sd-bus up again),
    /// and once `OK` is in, one more `Ping` follows: whatever the server read first,
    /// new bytes make it go on with what it holds.
    pub fn open(socket: &Path, calls: &[zbus::Message], timeout: Duration) -> io::Result<Self> {
        let mut out = Vec::with_capacity(512 + calls.iter().map(|c| c.data().len()).sum::<usize>());
        out.push(0);
        out.extend_from_slice(b"AUTH EXTERNAL ");
        for b in nix::unistd::geteuid().as_raw().to_string().bytes() {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        out.extend_from_slice(b"\r\nBEGIN\r\n");
        let mut serials = Vec::with_capacity(calls.len());
        for msg in calls {
            serials.push(msg.primary_header().serial_num().get());
            out.extend_from_slice(msg.data().bytes());
        }
        while out.len() <= SD_BUS_AUTH_READ {
            out.extend_from_slice(ping()?.data().bytes());
        }
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(&out)?;
        let mut replies = Replies {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
        };
        replies.auth_ok()?;
        replies.stream.write_all(ping()?.data().bytes())?;
        Ok(Exchange { replies, serials })
    }

    /// The serials of the calls written by [`Exchange::open`], in their order.
    pub fn serials(&self) -> &[u32] {
        &self.serials
    }

    /// Bounds each read from now on (`None`: wait as long as it takes).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.replies.stream.set_read_timeout(timeout)
    }

    /// The next message; one whose header cannot be walked is an error (it might be the
    /// reply waited for).
    pub fn next(&mut self) -> io::Result<Incoming> {
        let msg = self.replies.message()?;
        Incoming::parse(msg).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "an unreadable message from systemd",
            )
        })
    }
}

/// The read side: the handshake's answer line, then whole messages.
struct Replies {
    stream: UnixStream,
    buf: Vec<u8>,
    start: usize,
}

impl Replies {
    /// Reads more bytes; an end of stream is an error (we still wait for replies).
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 16 * 1024, 0);
        let n = self.stream.read(&mut self.buf[old..]);
        self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
        match n? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "systemd closed the connection before answering",
            )),
            _ => Ok(()),
        }
    }

    /// The server's answer to `AUTH` (and `BEGIN`): `OK <guid>`, or an error.
    fn auth_ok(&mut self) -> io::Result<()> {
        loop {
            if let Some(nl) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let line = &self.buf[self.start..self.start + nl];
                if !line.starts_with(b"OK ") {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "systemd refused the authentication: {}",
                            String::from_utf8_lossy(line).trim_end()
                        ),
                    ));
                }
                self.start += nl + 1;
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// The next complete message.
    fn message(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.len() >= 16 {
                let total = message_len(rest).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "not a D-Bus message")
                })?;
                if rest.len() >= total {
                    let msg = rest[..total].to_vec();
                    self.start += total;
                    return Ok(msg);
                }
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex (captured messages).
    pub(crate) fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Feeds `msgs` to a [`Properties`] waiting for `serials` of `props`.
    fn gather(serials: &[u32], props: &[(&str, Option<&str>)], msgs: &[&[u8]]) -> Outcome {
        let mut got = Properties::new(serials);
        for m in msgs {
            got.take(&Incoming::parse(m.to_vec()).expect("a message"), props);
        }
        assert!(got.complete());
        got.outcome()
    }

    #[test]
    fn reads_a_captured_get_reply() {
        // Get("org.freedesktop.systemd1.Manager", "Version") as systemd 252 answered it on
        // /run/systemd/private: REPLY_SERIAL 1, SENDER (a well-known name), SIGNATURE "v".
        let msg = unhex(concat!(
            "6c02010119000000010000003700000005017500010000000701730018000000",
            "6f72672e667265656465736b746f702e73797374656d64310000000000000000",
            "080167000176000001730000100000003235322e33382d317e64656231327531",
            "00",
        ));
        let r = Incoming::parse(msg.clone()).expect("a reply");
        assert!(r.is_reply());
        assert_eq!((r.reply_serial, r.signature.as_str()), (Some(1), "v"));
        let got = gather(&[1], &[("x", Some("Version"))], &[&msg]).unwrap();
        assert_eq!(
            &*got["Version"],
            &zbus::Variant::from(zbus::Str::from("252.38-1~deb12u1"))
        );
    }

    #[test]
    fn reads_a_get_all_reply() {
        let call = zbus::Message::method_call("/x", "GetAll")
            .build(&())
            .unwrap();
        let mut props = HashMap::new();
        props.insert("ActiveState", zbus::Variant::from("active"));
        props.insert("MainPID", zbus::Variant::from(42u32));
        let ret = zbus::Message::method_return(&call.header())
            .build(&props)
            .unwrap();
        let serial = call.primary_header().serial_num().get();
        let all = gather(&[serial], &[("x", None)], &[ret.data().bytes()]).unwrap();
        assert_eq!(&*all["MainPID"], &zbus::Variant::from(42u32));
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn reads_an_error_reply_and_skips_other_messages() {
        // An error built by zbus: name, reply serial 7, a message text.
        let call = zbus::Message::method_call("/x", "Get").build(&()).unwrap();
        let err =
            zbus::Message::error(&call.header(), "org.freedesktop.DBus.Error.UnknownProperty")
                .reply_serial(Some(7.try_into().unwrap()))
                .build(&("no such property",))
                .unwrap();
        let signal = zbus::Message::signal("/org/x", "org.x.I", "Changed")
            .build(&(7u32,))
            .unwrap();
        let got = gather(
            &[7],
            &[("x", Some("P"))],
            &[
                call.data().bytes(),
                signal.data().bytes(),
                err.data().bytes(),
            ],
        );
        assert_eq!(
            got.unwrap_err(),
            (
                "org.freedesktop.DBus.Error.UnknownProperty".to_string(),
                "no such property".to_string()
            )
        );
        let s = Incoming::parse(signal.data().bytes().to_vec()).unwrap();
        assert!(s.is_signal("/org/x", "org.x.I", "Changed"));
        assert!(!s.is_reply());
        assert_eq!(s.body::<u32>().unwrap(), 7);
    }
}
