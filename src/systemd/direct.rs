//! `status`'s read of a unit over a systemd private socket: one blocking exchange, no
//! executor, no thread.
//!
//! A zbus connection costs a reactor thread (`async-io`), an executor thread
//! (`zruntime`), a handshake round trip before the first call and wake-ups between the
//! threads for every reply. `status` needs none of that: it asks a fixed list of
//! properties once. This module writes the authentication (`AUTH EXTERNAL`, `BEGIN`) and
//! one `Properties.Get` per property in a single `write` (systemd's sd-bus reads the
//! messages that follow `BEGIN` as it does for systemctl, which pipelines the same way),
//! then reads `OK <guid>` and the replies. The calls are built by zbus
//! ([`zbus::Message::method_call`]); each reply's header is walked here (its `SENDER` is
//! the well-known name zbus would refuse, see [`super::private_socket`]) and its body, a
//! variant, is decoded by zbus' deserializer.
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
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_SIGNATURE: u8 = 8;
/// Message types.
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// What the calls got: the properties that were read, or the D-Bus error (name, message)
/// of the first property's call (the unit itself could not be read).
pub type Outcome = Result<HashMap<String, OwnedVariant>, (String, String)>;

/// Reads `props` of unit `unit` over the private socket at `socket`, all calls in flight
/// together: (interface, `Some(property)`) is a `Get`, (interface, `None`) a `GetAll`.
/// A call that fails is left out, except the first one: its error is the [`Outcome`]'s.
/// `Err` when the socket cannot be used.
pub fn unit_properties(
    socket: &Path,
    unit: &str,
    props: &[(&str, Option<&str>)],
    timeout: Duration,
) -> io::Result<Outcome> {
    let path = unit_path(unit);
    let mut out = Vec::with_capacity(128 + props.len() * 160);
    out.push(0);
    out.extend_from_slice(b"AUTH EXTERNAL ");
    for b in nix::unistd::geteuid().as_raw().to_string().bytes() {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out.extend_from_slice(b"\r\nBEGIN\r\n");
    let mut serials = Vec::with_capacity(props.len());
    for (iface, name) in props {
        let call = |method| {
            zbus::Message::method_call(path.as_str(), method)
                .destination(DESTINATION)
                .interface("org.freedesktop.DBus.Properties")
        };
        let msg = match name {
            Some(name) => call("Get").build(&(*iface, *name)),
            None => call("GetAll").build(iface),
        }
        .map_err(io::Error::other)?;
        serials.push(msg.primary_header().serial_num().get());
        out.extend_from_slice(msg.data().bytes());
    }
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&out)?;

    let mut reader = Replies {
        stream,
        buf: Vec::with_capacity(16 * 1024),
        start: 0,
    };
    reader.auth_ok()?;
    let mut got = HashMap::with_capacity(props.len());
    let mut first_error = None;
    let mut pending = props.len();
    while pending > 0 {
        let msg = reader.message()?;
        let Some(reply) = parse_reply(&msg) else {
            if matches!(msg.get(1), Some(&METHOD_RETURN | &ERROR)) {
                // A reply whose header cannot be walked: waiting would only time out.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an unreadable reply from systemd",
                ));
            }
            continue; // a signal
        };
        let Some(i) = serials.iter().position(|&s| s == reply.serial) else {
            continue;
        };
        pending -= 1;
        match (reply.result, props[i].1) {
            (Ok(Value::One(v)), Some(name)) => {
                got.insert(name.to_string(), v);
            }
            (Ok(Value::All(all)), _) => got.extend(all),
            (Ok(_), _) => {}
            (Err(e), _) if i == 0 => first_error = Some(e),
            (Err(_), _) => {}
        }
    }
    Ok(match first_error {
        Some(e) => Err(e),
        None => Ok(got),
    })
}

/// The body of a `Get` reply (one variant) or of a `GetAll` reply (a dictionary).
#[derive(Debug)]
enum Value {
    One(OwnedVariant),
    All(HashMap<String, OwnedVariant>),
}

/// A reply to one of our calls: its reply serial, and the value or the error.
#[derive(Debug)]
struct Reply {
    serial: u32,
    result: Result<Value, (String, String)>,
}

/// Walks a complete message: `None` unless it is a method return or an error with a
/// reply serial. A body that does not decode is an error (name `zbus`).
fn parse_reply(msg: &[u8]) -> Option<Reply> {
    let big_endian = match msg.first()? {
        b'l' => false,
        b'B' => true,
        _ => return None,
    };
    let kind = *msg.get(1)?;
    if kind != METHOD_RETURN && kind != ERROR {
        return None;
    }
    let fields_end = 16 + read_u32(msg, 12, big_endian)? as usize;
    let body_start = fields_end.div_ceil(8) * 8;
    let body = msg.get(body_start..)?;
    let (mut serial, mut error_name, mut signature) = (None, None, &[][..]);
    let mut pos = 16;
    while pos < fields_end {
        let code = *msg.get(pos)?;
        if *msg.get(pos + 1)? != 1 {
            return None; // every header field's signature is one basic type
        }
        let sig = *msg.get(pos + 2)?;
        let end = value_end(msg, pos + 4, sig, big_endian)?;
        match (code, sig) {
            (FIELD_REPLY_SERIAL, b'u') => {
                serial = read_u32(msg, (pos + 4).div_ceil(4) * 4, big_endian)
            }
            (FIELD_SIGNATURE, b'g') => signature = msg.get(pos + 5..end - 1)?,
            (FIELD_ERROR_NAME, b's') => {
                let start = (pos + 4).div_ceil(4) * 4 + 4;
                error_name = Some(String::from_utf8_lossy(msg.get(start..end - 1)?).into_owned());
            }
            _ => {}
        }
        pos = (end.div_ceil(8) * 8).min(fields_end);
    }
    let serial = serial?;
    let endian = if big_endian {
        Endian::Big
    } else {
        Endian::Little
    };
    // The body starts on a multiple of 8, so alignment from its start is the message's.
    let data = Data::new(body, Context::new(endian, 0));
    let result = if kind == ERROR {
        let text = data
            .deserialize::<String>()
            .map(|(s, _)| s)
            .unwrap_or_default();
        Err((error_name.unwrap_or_default(), text))
    } else if signature == b"v" {
        data.deserialize::<OwnedVariant>()
            .map(|(v, _)| Value::One(v))
            .map_err(|e| ("zbus".to_string(), e.to_string()))
    } else {
        data.deserialize::<HashMap<String, OwnedVariant>>()
            .map(|(v, _)| Value::All(v))
            .map_err(|e| ("zbus".to_string(), e.to_string()))
    };
    Some(Reply { serial, result })
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
mod tests {
    use super::*;

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
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
        let r = parse_reply(&msg).expect("a reply");
        assert_eq!(r.serial, 1);
        let Ok(Value::One(v)) = r.result else {
            panic!("not one value: {:?}", r.result)
        };
        assert_eq!(
            &*v,
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
        let r = parse_reply(ret.data().bytes()).expect("a reply");
        assert_eq!(r.serial, call.primary_header().serial_num().get());
        let Ok(Value::All(all)) = r.result else {
            panic!("not a dictionary: {:?}", r.result)
        };
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
        let r = parse_reply(err.data().bytes()).expect("an error reply");
        assert_eq!(r.serial, 7);
        assert_eq!(
            r.result.unwrap_err(),
            (
                "org.freedesktop.DBus.Error.UnknownProperty".to_string(),
                "no such property".to_string()
            )
        );
        assert!(
            parse_reply(call.data().bytes()).is_none(),
            "a call is not a reply"
        );
    }
}
