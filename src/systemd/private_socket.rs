//! systemd's private socket (`/run/systemd/private`, `$XDG_RUNTIME_DIR/systemd/private`)
//! as a zbus peer-to-peer connection.
//!
//! systemctl talks to PID 1 over this socket, which works with no dbus-daemon at all. Over
//! it, systemd stamps every message it sends with the header field `SENDER` =
//! `org.freedesktop.systemd1`, a *well-known* name; zbus parses `SENDER` as a *unique* name
//! and refuses every such message (`InvalidName`). This module is the way through:
//! [`SenderStrippingReader`] is the read half of the socket. It passes the text of the
//! authentication handshake through untouched, then reads whole D-Bus messages, drops a
//! `SENDER` field that is not a unique name from each header (fixing the field array's length
//! and the padding before the body) and hands zbus the rewritten bytes through `recvmsg`.
//! zbus then does its own framing, sequencing and parsing as on any socket, so no message
//! is built by hand and no `unsafe` is needed. A message whose header this module cannot
//! walk is passed on unchanged for zbus to judge.
//!
//! The rewriting itself is the pure [`Filter`], tested below on message bytes captured
//! from systemd (little endian) and on big-endian ones built to the specification.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use async_io::Async;
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::export::async_trait::async_trait;

/// Header field code of `SENDER` (D-Bus specification, "Message Format").
const FIELD_SENDER: u8 = 7;
/// Length of the fixed part of a message header.
const FIXED_HEADER: usize = 16;
/// The largest message the D-Bus specification allows (128 MiB).
const MAX_MESSAGE: usize = 128 * 1024 * 1024;

fn align(pos: usize, to: usize) -> usize {
    pos.div_ceil(to) * to
}

pub(crate) fn read_u32(bytes: &[u8], pos: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(pos..pos + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn write_u32(bytes: &mut [u8], pos: usize, value: u32, big_endian: bool) {
    let b = if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    };
    bytes[pos..pos + 4].copy_from_slice(&b);
}

/// The total length of the message whose fixed header `head` is (at least 16 bytes), or
/// `None` when the header is not a D-Bus header or the length is out of bounds.
pub fn message_len(head: &[u8]) -> Option<usize> {
    let big_endian = match head.first()? {
        b'l' => false,
        b'B' => true,
        _ => return None,
    };
    let body = read_u32(head, 4, big_endian)? as usize;
    let fields = read_u32(head, 12, big_endian)? as usize;
    let total = align(FIXED_HEADER + fields, 8) + body;
    (total <= MAX_MESSAGE).then_some(total)
}

/// The end (exclusive) of the value of basic type `sig` that starts at or after `pos`, or
/// `None` for a type this module does not walk (containers) or a value past the end.
pub(crate) fn value_end(bytes: &[u8], pos: usize, sig: u8, big_endian: bool) -> Option<usize> {
    let end = match sig {
        b'y' => pos + 1,
        b'n' | b'q' => align(pos, 2) + 2,
        b'b' | b'i' | b'u' | b'h' => align(pos, 4) + 4,
        b'x' | b't' | b'd' => align(pos, 8) + 8,
        b's' | b'o' => {
            let start = align(pos, 4);
            start + 4 + read_u32(bytes, start, big_endian)? as usize + 1
        }
        b'g' => pos + 1 + *bytes.get(pos)? as usize + 1,
        _ => return None,
    };
    (end <= bytes.len()).then_some(end)
}

/// Drops a `SENDER` header field that does not hold a unique name (one starting with `:`)
/// from the complete message `msg`. Returns `None` when there is nothing to drop, or when the
/// header cannot be walked (the message is then best passed on as it is).
pub fn strip_sender(msg: &[u8]) -> Option<Vec<u8>> {
    let big_endian = match msg.first()? {
        b'l' => false,
        b'B' => true,
        _ => return None,
    };
    let fields_len = read_u32(msg, 12, big_endian)? as usize;
    let fields_end = FIXED_HEADER + fields_len;
    let body_start = align(fields_end, 8);
    if body_start > msg.len() {
        return None;
    }
    let mut pos = FIXED_HEADER;
    let mut prev_end = FIXED_HEADER;
    while pos < fields_end {
        let field_start = pos;
        let code = *msg.get(pos)?;
        // The variant's signature: one length byte, the signature, a NUL.
        let sig_len = *msg.get(pos + 1)? as usize;
        if sig_len != 1 {
            return None;
        }
        let sig = *msg.get(pos + 2)?;
        let value_start = pos + 4;
        let end = value_end(msg, value_start, sig, big_endian)?;
        if end > fields_end {
            return None;
        }
        // Every field is a struct, so the next one starts on the next multiple of 8.
        let next = align(end, 8).min(fields_end);
        if code == FIELD_SENDER && sig == b's' {
            let name_start = align(value_start, 4) + 4;
            if msg.get(name_start) == Some(&b':') {
                return None; // a unique name: zbus reads it fine
            }
            let mut out = Vec::with_capacity(msg.len());
            if next == fields_end {
                // The last field: the array now ends where the previous field's value did,
                // without the padding that led up to SENDER.
                out.extend_from_slice(&msg[..prev_end]);
            } else {
                // Both ends are multiples of 8, so the fields after it keep their alignment.
                out.extend_from_slice(&msg[..field_start]);
                out.extend_from_slice(&msg[next..fields_end]);
            }
            let new_fields_len = out.len() - FIXED_HEADER;
            write_u32(&mut out, 12, new_fields_len as u32, big_endian);
            out.resize(align(out.len(), 8), 0);
            out.extend_from_slice(&msg[body_start..]);
            return Some(out);
        }
        prev_end = end;
        pos = next;
    }
    None
}

/// The byte-stream rewriter behind [`SenderStrippingReader`]: bytes from the socket go in
/// with [`Filter::push`], rewritten bytes come out with [`Filter::pull`].
///
/// It starts in the text phase of the handshake, passing whole lines through. A line that
/// starts with a D-Bus endianness mark (`l` or `B`; no server command of the handshake
/// starts with either) begins the binary phase, where only complete messages come out.
#[derive(Debug, Default)]
pub struct Filter {
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    binary: bool,
    mid_line: bool,
}

impl Filter {
    /// A filter at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.process();
    }

    /// Copies rewritten bytes into `buf`; returns how many (0: need more input).
    pub fn pull(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.output.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        if self.out_pos == self.output.len() {
            self.output.clear();
            self.out_pos = 0;
        }
        n
    }

    /// Bytes received but not yet handed out (an incomplete message at end of stream).
    pub fn pending_input(&self) -> usize {
        self.input.len()
    }

    fn process(&mut self) {
        let mut consumed = 0;
        loop {
            let rest = &self.input[consumed..];
            if rest.is_empty() {
                break;
            }
            if !self.binary {
                if !self.mid_line && matches!(rest[0], b'l' | b'B') {
                    self.binary = true;
                    continue;
                }
                match rest.iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        self.output.extend_from_slice(&rest[..=nl]);
                        consumed += nl + 1;
                        self.mid_line = false;
                    }
                    None => {
                        self.output.extend_from_slice(rest);
                        consumed += rest.len();
                        self.mid_line = true;
                    }
                }
                continue;
            }
            if rest.len() < FIXED_HEADER {
                break;
            }
            let Some(total) = message_len(rest) else {
                // Not a message: pass the rest on and let zbus report the broken stream.
                self.output.extend_from_slice(rest);
                consumed += rest.len();
                break;
            };
            if rest.len() < total {
                break;
            }
            let msg = &rest[..total];
            match strip_sender(msg) {
                Some(stripped) => self.output.extend_from_slice(&stripped),
                None => self.output.extend_from_slice(msg),
            }
            consumed += total;
        }
        self.input.drain(..consumed);
    }
}

/// A Unix stream connected to a systemd private socket, ready for
/// `zbus::connection::Builder::socket(..).p2p()`.
#[derive(Debug)]
pub struct PrivateSocket(Arc<Async<UnixStream>>);

impl PrivateSocket {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        Ok(PrivateSocket(Arc::new(Async::new(stream)?)))
    }
}

impl Socket for PrivateSocket {
    type ReadHalf = SenderStrippingReader;
    type WriteHalf = Writer;

    fn split(self) -> Split<SenderStrippingReader, Writer> {
        Split::new(
            SenderStrippingReader {
                stream: self.0.clone(),
                filter: Filter::new(),
                buf: vec![0; 64 * 1024],
            },
            Writer(self.0),
        )
    }
}

/// The read half: the socket's bytes through a [`Filter`].
#[derive(Debug)]
pub struct SenderStrippingReader {
    stream: Arc<Async<UnixStream>>,
    filter: Filter,
    buf: Vec<u8>,
}

#[async_trait]
impl ReadHalf for SenderStrippingReader {
    async fn recvmsg(&mut self, out: &mut [u8]) -> io::Result<(usize, Vec<std::os::fd::OwnedFd>)> {
        loop {
            let n = self.filter.pull(out);
            if n > 0 {
                return Ok((n, vec![]));
            }
            let buf = &mut self.buf;
            let read = self.stream.read_with(|s| (&*s).read(buf)).await?;
            if read == 0 {
                if self.filter.pending_input() > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "systemd closed the connection in the middle of a message",
                    ));
                }
                return Ok((0, vec![]));
            }
            self.filter.push(&self.buf[..read]);
        }
    }
}

/// The write half: plain writes to the socket.
#[derive(Debug)]
pub struct Writer(Arc<Async<UnixStream>>);

#[async_trait]
impl WriteHalf for Writer {
    async fn sendmsg(
        &mut self,
        buffer: &[u8],
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> io::Result<usize> {
        if !fds.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file descriptors cannot be passed on this connection",
            ));
        }
        self.0.write_with(|s| (&*s).write(buffer)).await
    }

    async fn close(&mut self) -> io::Result<()> {
        match self.0.get_ref().shutdown(Shutdown::Both) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(parts: &[&str]) -> Vec<u8> {
        let hex: String = parts.concat();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A `JobRemoved` signal exactly as systemd 252 sent it on `/run/systemd/private`
    /// (captured in the box): fields PATH, INTERFACE, MEMBER, SENDER, SIGNATURE.
    fn captured_job_removed() -> Vec<u8> {
        unhex(&[
            "6c0401014500000012000000a200000001016f00190000002f6f72672f667265",
            "656465736b746f702f73797374656d6431000000000000000201730020000000",
            "6f72672e667265656465736b746f702e73797374656d64312e4d616e61676572",
            "0000000000000000030173000a0000004a6f6252656d6f766564000000000000",
            "07017300180000006f72672e667265656465736b746f702e73797374656d6431",
            "00000000000000000801670004756f7373000000000000005c00000020000000",
            "2f6f72672f667265656465736b746f702f73797374656d64312f6a6f622f3932",
            "000000000b0000006361702e736572766963650004000000646f6e6500",
        ])
    }

    /// The reply to `Get("org.freedesktop.systemd1.Manager", "Version")` as systemd 252 sent
    /// it on `/run/systemd/private` (captured): fields REPLY_SERIAL, SENDER, SIGNATURE.
    fn captured_version_reply() -> Vec<u8> {
        unhex(&[
            "6c02010119000000010000003700000005017500010000000701730018000000",
            "6f72672e667265656465736b746f702e73797374656d64310000000000000000",
            "080167000176000001730000100000003235322e33382d317e64656231327531",
            "00",
        ])
    }

    fn push_str(m: &mut Vec<u8>, s: &[u8], be: bool) {
        m.resize(align(m.len(), 4), 0);
        let len = s.len() as u32;
        m.extend_from_slice(&if be {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        });
        m.extend_from_slice(s);
        m.push(0);
    }

    /// Appends a header field array to `m` (which holds the fixed header) and pads to 8.
    fn build_fields(m: &mut Vec<u8>, fields: &[(u8, u8, &[u8])], be: bool) {
        for (code, sig, value) in fields {
            m.resize(align(m.len(), 8), 0);
            m.extend_from_slice(&[*code, 1, *sig, 0]);
            match sig {
                b'g' => {
                    m.push(value.len() as u8);
                    m.extend_from_slice(value);
                    m.push(0);
                }
                b'u' => {
                    let v = u32::from_le_bytes((*value).try_into().unwrap());
                    m.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
                }
                _ => push_str(m, value, be),
            }
        }
        let len = (m.len() - FIXED_HEADER) as u32;
        write_u32(m, 12, len, be);
        m.resize(align(m.len(), 8), 0);
    }

    fn message(fields: &[(u8, u8, &[u8])], body: &[u8], be: bool) -> Vec<u8> {
        let mut m = vec![if be { b'B' } else { b'l' }, 2, 1, 1];
        m.extend_from_slice(&[0; 12]);
        write_u32(&mut m, 4, body.len() as u32, be);
        write_u32(&mut m, 8, 9, be);
        build_fields(&mut m, fields, be);
        m.extend_from_slice(body);
        m
    }

    /// zbus's own verdict on the bytes: parses as a message, with the expected sender.
    fn zbus_parses(bytes: Vec<u8>, be: bool) -> zbus::Message {
        crate::sys::parse_dbus_message(bytes, be).expect("zbus parses the message")
    }

    fn reply_fields(sender_at: Option<usize>) -> Vec<(u8, u8, &'static [u8])> {
        let mut f: Vec<(u8, u8, &'static [u8])> = vec![
            (5, b'u', &[3, 0, 0, 0]),
            (6, b's', b":1.9"),
            (8, b'g', b"o"),
        ];
        if let Some(i) = sender_at {
            f.insert(i, (7, b's', b"org.freedesktop.systemd1"));
        }
        f
    }

    fn reply_body(be: bool) -> Vec<u8> {
        let mut b = Vec::new();
        push_str(&mut b, b"/org/freedesktop/systemd1/job/3", be);
        b
    }

    #[test]
    fn zbus_refuses_the_captured_signal_as_it_is() {
        assert!(crate::sys::parse_dbus_message(captured_job_removed(), false).is_err());
    }

    #[test]
    fn sender_last_is_dropped_and_the_body_survives() {
        let msg = captured_job_removed();
        let out = strip_sender(&msg).expect("sender dropped");
        assert!(out.len() < msg.len());
        let m = zbus_parses(out, false);
        let h = m.header();
        assert!(h.sender().is_none());
        assert_eq!(h.member().unwrap().as_str(), "JobRemoved");
        let body = m.body();
        let (id, job, unit, result): (u32, zbus::ObjectPath<'_>, String, String) =
            body.deserialize().unwrap();
        assert_eq!(
            (id, job.as_str(), unit.as_str(), result.as_str()),
            (
                92,
                "/org/freedesktop/systemd1/job/92",
                "cap.service",
                "done"
            )
        );
    }

    #[test]
    fn captured_reply_with_sender_in_the_middle() {
        let msg = captured_version_reply();
        let out = strip_sender(&msg).expect("sender dropped");
        let m = zbus_parses(out, false);
        assert_eq!(m.header().reply_serial().map(|s| s.get()), Some(1));
        let v: zbus::OwnedVariant = m.body().deserialize().unwrap();
        let v: String = v.try_into().unwrap();
        assert_eq!(v, "252.38-1~deb12u1");
    }

    #[test]
    fn sender_first_middle_last_both_endians() {
        for be in [false, true] {
            for at in [0, 1, 3] {
                let msg = message(&reply_fields(Some(at)), &reply_body(be), be);
                let out = strip_sender(&msg).unwrap_or_else(|| panic!("be={be} at={at}"));
                let m = zbus_parses(out, be);
                let h = m.header();
                assert!(h.sender().is_none(), "be={be} at={at}");
                assert_eq!(h.reply_serial().map(|s| s.get()), Some(3));
                assert_eq!(h.destination().unwrap().as_str(), ":1.9");
                let body = m.body();
                let path: zbus::ObjectPath<'_> = body.deserialize().unwrap();
                assert_eq!(path.as_str(), "/org/freedesktop/systemd1/job/3");
            }
        }
    }

    #[test]
    fn sender_absent_or_unique_is_left_alone() {
        for be in [false, true] {
            let msg = message(&reply_fields(None), &reply_body(be), be);
            assert_eq!(strip_sender(&msg), None);
            zbus_parses(msg, be);
            let mut fields = reply_fields(None);
            fields.push((7, b's', b":1.42"));
            let msg = message(&fields, &reply_body(be), be);
            assert_eq!(strip_sender(&msg), None);
            let m = zbus_parses(msg, be);
            assert_eq!(m.header().sender().unwrap().as_str(), ":1.42");
        }
    }

    #[test]
    fn filter_passes_handshake_then_rewrites_messages_split_anywhere() {
        let a = captured_job_removed();
        let b = message(&reply_fields(Some(0)), &reply_body(true), true);
        let mut stream = b"OK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n".to_vec();
        let handshake_len = stream.len();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        let mut expected = stream[..handshake_len].to_vec();
        expected.extend(strip_sender(&a).unwrap());
        expected.extend(strip_sender(&b).unwrap());
        for chunk in [1, 3, 7, 16, 17, 64, stream.len()] {
            let mut f = Filter::new();
            let mut got = Vec::new();
            let mut buf = [0u8; 5];
            for piece in stream.chunks(chunk) {
                f.push(piece);
                loop {
                    let n = f.pull(&mut buf);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            assert_eq!(got, expected, "chunk size {chunk}");
            assert_eq!(f.pending_input(), 0);
        }
    }

    #[test]
    fn filter_holds_back_an_incomplete_message() {
        let a = captured_job_removed();
        let mut f = Filter::new();
        f.push(&a[..a.len() - 1]);
        assert_eq!(f.pull(&mut [0u8; 4096]), 0);
        f.push(&a[a.len() - 1..]);
        let mut buf = vec![0u8; 4096];
        let n = f.pull(&mut buf);
        assert_eq!(&buf[..n], &strip_sender(&a).unwrap()[..]);
    }

    #[test]
    fn header_with_a_container_field_passes_unchanged() {
        let mut msg = message(&reply_fields(Some(1)), &reply_body(false), false);
        msg[FIXED_HEADER + 1] = 2; // claim a two-letter signature: not walked
        assert_eq!(strip_sender(&msg), None);
    }
}
