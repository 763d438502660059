//! A journal stream of its own for exec mode's command.
//!
//! systemd connects a service's stdout and stderr to journald with a stream whose
//! header names the identifier (`SyslogIdentifier=`, by default the name of the program
//! systemd started: `mydaemon`). The command inherits that stream, so its lines would be
//! tagged `mydaemon[PID]`. Where our own stdout or stderr is that journal stream
//! (`$JOURNAL_STREAM` names its device and inode), the command gets a new stream instead,
//! opened the way systemd opens one and tagged with the command's own name, so
//! `journalctl -u NAME` shows `my-server[PID]: ...` for its output and
//! `mydaemon[PID]: ...` for mydaemon's own lines. journald takes the unit from the
//! writer's cgroup and the PID from the writer, as for any service.

use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// journald's socket for stdout streams.
pub const STDOUT_SOCKET: &str = "/run/systemd/journal/stdout";

/// Which of our stdout and stderr are connected to the journal stream systemd gave us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connected {
    /// fd 1 is the journal stream.
    pub stdout: bool,
    /// fd 2 is the journal stream.
    pub stderr: bool,
}

/// Reads `$JOURNAL_STREAM` (`DEVICE:INODE`) and compares it with fds 1 and 2.
pub fn connected() -> Connected {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return Connected::default();
    };
    let value = value.to_string_lossy();
    Connected {
        stdout: is_stream(&value, std::io::stdout().as_fd()),
        stderr: is_stream(&value, std::io::stderr().as_fd()),
    }
}

/// Whether `fd` is the file `journal_stream` (`DEVICE:INODE`) names.
fn is_stream(journal_stream: &str, fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let Some((dev, ino)) = parse_journal_stream(journal_stream) else {
        return false;
    };
    nix::sys::stat::fstat(fd)
        .map(|st| st.st_dev == dev && st.st_ino == ino)
        .unwrap_or(false)
}

/// `DEVICE:INODE`, both decimal.
fn parse_journal_stream(s: &str) -> Option<(u64, u64)> {
    let (dev, ino) = s.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The stream header systemd sends (`src/core/execute.c`): identifier, unit ID,
/// priority 6 (info), `<N>` prefixes parsed, and no forwarding to syslog, kmsg or
/// console. `None` for an identifier the line-based header cannot carry.
///
/// The unit ID is our own unit ([`own_unit`]; empty when unknown). journald takes the
/// unit from the writer's cgroup, and falls back to this ID (honoured from root only)
/// when the writer is gone before journald reads the stream: without it, the last words
/// of a command that fails at once would not be the unit's (`journalctl -u` misses them).
pub fn header(identifier: &str, unit: &str) -> Option<String> {
    if identifier.is_empty() || identifier.contains(['\n', '\0']) || unit.contains(['\n', '\0']) {
        return None;
    }
    Some(format!("{identifier}\n{unit}\n6\n1\n0\n0\n0\n"))
}

/// The unit this process runs in, from its cgroup (`0::/system.slice/web.service` →
/// `web.service`); empty outside a unit's cgroup.
pub fn own_unit() -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| unit_of_cgroup(&text))
        .unwrap_or_default()
}

/// The unit named by the last component of the cgroup-v2 line of `/proc/PID/cgroup`.
fn unit_of_cgroup(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let last = path.rsplit('/').next()?;
    let (_, suffix) = last.rsplit_once('.')?;
    matches!(suffix, "service" | "scope" | "socket").then(|| last.to_string())
}

/// The identifier for `program`: its file name, as systemd's default `SyslogIdentifier=`.
pub fn identifier_of(program: &str) -> String {
    Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string())
}

/// Opens a journal stream tagged `identifier` on `socket`; the write end for a child.
pub fn open(socket: &Path, identifier: &str) -> std::io::Result<UnixStream> {
    let header = header(identifier, &own_unit()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{identifier:?} cannot be a journal identifier"),
        )
    })?;
    let mut s = UnixStream::connect(socket)?;
    s.write_all(header.as_bytes())?;
    s.shutdown(std::net::Shutdown::Read)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::os::unix::net::UnixListener;

    #[test]
    fn header_is_what_systemd_sends() {
        assert_eq!(
            header("my-server", "web.service").unwrap(),
            "my-server\nweb.service\n6\n1\n0\n0\n0\n"
        );
        assert_eq!(
            header("my-server", "").unwrap(),
            "my-server\n\n6\n1\n0\n0\n0\n"
        );
        assert_eq!(header("a\nb", ""), None);
        assert_eq!(header("", ""), None);
        assert_eq!(header("x", "a\nb"), None);
        assert_eq!(
            unit_of_cgroup("0::/system.slice/web.service\n").as_deref(),
            Some("web.service")
        );
        assert_eq!(
            unit_of_cgroup("1:name=systemd:/x\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/a.service\n")
                .as_deref(),
            Some("a.service")
        );
        assert_eq!(unit_of_cgroup("0::/\n"), None);
        assert_eq!(unit_of_cgroup("0::/init.scope/x\n"), None);
        assert_eq!(identifier_of("/usr/bin/my-server"), "my-server");
        assert_eq!(identifier_of("greet"), "greet");
        assert_eq!(parse_journal_stream("8:1234"), Some((8, 1234)));
        assert_eq!(parse_journal_stream("8-1234"), None);
    }

    #[test]
    fn a_stream_sends_the_header_then_the_childs_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let listener = UnixListener::bind(&path).unwrap();
        let s = open(&path, "greet").unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "echo out; echo err >&2"])
            .stdout(std::os::fd::OwnedFd::from(s.try_clone().unwrap()))
            .stderr(std::os::fd::OwnedFd::from(s))
            .status()
            .unwrap();
        assert!(out.success());
        let mut got = String::new();
        peer.read_to_string(&mut got).unwrap();
        let unit = own_unit();
        assert_eq!(got, format!("greet\n{unit}\n6\n1\n0\n0\n0\nout\nerr\n"));
    }

    #[test]
    fn only_the_descriptor_journal_stream_names_is_the_journal() {
        let (a, b) = UnixStream::pair().unwrap();
        let st = nix::sys::stat::fstat(a.as_fd()).unwrap();
        let value = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(is_stream(&value, a.as_fd()));
        assert!(!is_stream(&value, b.as_fd()), "another socket");
        assert!(!is_stream("garbage", a.as_fd()));
    }
}
