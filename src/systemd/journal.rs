//! Reading a unit's journal through `journalctl` (reading the journal files ourselves would
//! mean reimplementing their format; the issue allows the subprocess). On another machine
//! (`-H`) it is that machine's `journalctl`, run over ssh.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use super::connection::Scope;
use crate::error::Error;
use crate::ssh;
use crate::ssh::Remote;

/// How long `journalctl` on another machine may take for a few lines, on top of the
/// connect timeout.
const REMOTE_LIMIT: Duration = Duration::from_secs(20);

/// `journalctl ARGS` here, or on `remote` through ssh.
fn journalctl(remote: Option<&Remote>, args: Vec<String>) -> Command {
    match remote {
        None => {
            let mut c = Command::new("journalctl");
            c.args(args);
            c
        }
        Some(r) => {
            let mut words = vec!["journalctl".to_owned()];
            words.extend(args);
            let mut c = Command::new(ssh::ssh_program());
            c.args(ssh::ssh_args(&r.host, &r.ssh, &ssh::remote_command(&words)));
            c
        }
    }
}

/// The `journalctl` arguments that select `unit` of `scope`.
pub fn unit_args(scope: Scope, unit: &str) -> Vec<String> {
    match scope {
        Scope::System => vec!["--unit".into(), unit.into()],
        Scope::User => vec!["--user-unit".into(), unit.into()],
    }
}

/// How `status` and `logs` print a journal entry: the PID-file backend's log line,
/// `2026-12-01T09:29:07.123Z IDENT[PID]: message` (UTC, milliseconds), so both backends
/// show times one way. Read from `journalctl -o json`: `__REALTIME_TIMESTAMP`,
/// `SYSLOG_IDENTIFIER` (else `_COMM`), `_PID` (else `SYSLOG_PID`), `MESSAGE` (a string,
/// or an array of bytes when it is not UTF-8). Control characters but tab and newline are
/// written as `\xNN` (journalctl prints such a message as `[N blob data]`): a message,
/// from this machine or another, cannot move the cursor or rewrite the terminal, nor
/// with `\r` hide the host before its line. `None` for a line that is no entry.
pub fn format_entry(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    let usec: u64 = field("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let message = match v.get("MESSAGE")? {
        serde_json::Value::String(m) => m.clone(),
        serde_json::Value::Array(bytes) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => return None,
    };
    let message = crate::output::visible(&message);
    let ident = crate::output::visible(
        field("SYSLOG_IDENTIFIER")
            .or_else(|| field("_COMM"))
            .unwrap_or("?"),
    );
    let time = crate::time::rfc3339(UNIX_EPOCH + Duration::from_micros(usec));
    Some(
        match field("_PID")
            .or_else(|| field("SYSLOG_PID"))
            .map(crate::output::visible)
        {
            Some(pid) => format!("{time} {ident}[{pid}]: {message}"),
            None => format!("{time} {ident}: {message}"),
        },
    )
}

/// The last `n` journal lines of `unit`, message text only when `bare`, else as
/// [`format_entry`] prints them. Empty when there are none or the journal cannot be read.
pub fn last_lines(
    remote: Option<&Remote>,
    scope: Scope,
    unit: &str,
    n: usize,
    bare: bool,
) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let mut args = unit_args(scope, unit);
    args.extend(["-n", &n.to_string(), "--no-pager", "-q", "-o"].map(String::from));
    args.push(if bare { "cat" } else { "json" }.into());
    let stdout = match remote {
        None => journalctl(None, args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| o.stdout)
            .map_err(drop),
        // Bounded, as every wait on another machine.
        Some(r) => {
            let mut words = vec!["journalctl".to_owned()];
            words.extend(args);
            let limit = r.ssh.connect_timeout + REMOTE_LIMIT;
            ssh::run(&r.host, &r.ssh, &ssh::remote_command(&words), b"", limit)
                .map(|o| o.stdout)
                .map_err(drop)
        }
    };
    match stdout {
        Ok(o) => String::from_utf8_lossy(&o)
            .lines()
            .filter_map(|l| {
                if bare {
                    Some(l.to_string())
                } else {
                    format_entry(l)
                }
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `logs`: runs `journalctl` for `unit` (here, or on `remote` over ssh), printing its
/// entries; returns its exit code.
pub fn show(
    remote: Option<&Remote>,
    scope: Scope,
    unit: &str,
    lines: usize,
    follow: bool,
    since: Option<&str>,
) -> Result<u8, Error> {
    let mut args = unit_args(scope, unit);
    args.extend(["-n", &lines.to_string(), "--no-pager", "-q", "-o", "json"].map(String::from));
    if follow {
        args.push("--follow".into());
    }
    if let Some(since) = since {
        args.extend(["--since".to_owned(), since.to_owned()]);
    }
    let mut cmd = journalctl(remote, args);
    if remote.is_some() {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| match remote {
            Some(_) => ssh::spawn_failed(e),
            None => Error::generic(format!("cannot run journalctl: {e}"))
                .with_hint("install systemd's journalctl, or read the log files directly"),
        })?;
    let stderr = child.stderr.take().map(ssh::Captured::start);
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    // Without --follow, another machine's journalctl that goes silent (a hung disk, a
    // host that answers TCP but nothing else) is cut off, as every wait over ssh is.
    let limit = remote.map(|r| r.ssh.connect_timeout + REMOTE_LIMIT);
    let mut watchdog = limit
        .filter(|_| !follow)
        .map(|l| Watchdog::start(child.id(), l));
    let mut line = Vec::new();
    while next_line(&mut reader, &mut line) {
        if let Some(w) = &watchdog {
            w.tick();
        }
        let Some(entry) = format_entry(&String::from_utf8_lossy(&line)) else {
            continue;
        };
        // Our reader went away (`| head`): stop journalctl too, as a pipe would.
        if crate::output::try_out(&entry).is_err() {
            watchdog.take().map(Watchdog::disarm);
            ssh::kill_and_reap(&mut child);
            return Ok(0);
        }
    }
    let cut_off = watchdog.take().is_some_and(Watchdog::disarm);
    let status = child
        .wait()
        .map_err(|e| Error::generic(format!("waiting for journalctl: {e}")))?;
    if cut_off {
        let secs = limit.unwrap_or_default().as_secs();
        return Err(Error::generic(format!(
            "journalctl there printed nothing for {secs} s; cut off"
        ))
        .with_hint(
            "is the host overloaded or its disk hung? (--connect-timeout adds to the wait)",
        ));
    }
    if let (Some(r), Some(stderr)) = (remote, stderr) {
        let text = stderr.text();
        if status.code() == Some(255) || status.code() == Some(127) {
            return Err(if status.code() == Some(127) {
                Error::generic("journalctl not found there")
            } else {
                ssh::failure(&r.ssh, status, &text)
            });
        }
        if !text.trim().is_empty() {
            crate::output::err(text.trim_end());
        }
    }
    let code = crate::error::exit_code_of(status);
    if code != 0 && scope == Scope::User {
        // With Storage=volatile (or no per-user journal files), a user's services log into
        // the system journal, which only root and the adm/systemd-journal groups may read.
        crate::output::errln!(
            "  hint: a user can read its services' logs only from its own journal files \
             (journald with Storage=persistent) or as a member of the systemd-journal group"
        );
    }
    Ok(code)
}

/// The longest journal line read (`journalctl -o json` prints a field over 64 KiB as
/// null): a longer one, from a broken or hostile host, is skipped, not kept in memory.
const LINE_MAX: u64 = 1 << 20;

/// Reads the next line (without limit on the number of lines, at most [`LINE_MAX`]
/// bytes kept of one) into `buf`; false at the end or on a read error.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    match r.by_ref().take(LINE_MAX).read_until(b'\n', buf) {
        Ok(0) | Err(_) => false,
        Ok(_) if buf.ends_with(b"\n") || (buf.len() as u64) < LINE_MAX => true,
        Ok(_) => {
            // Too long: skip to its end.
            buf.clear();
            loop {
                let mut rest = Vec::new();
                match r.by_ref().take(LINE_MAX).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if rest.ends_with(b"\n") => return true,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Kills a child (by PID: it is not reaped before [`Watchdog::disarm`] returns) that
/// made no progress ([`Watchdog::tick`]) for a while.
struct Watchdog {
    tick: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: u32, idle: Duration) -> Watchdog {
        let (tick, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || loop {
            match rx.recv_timeout(idle) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let pid = nix::unistd::Pid::from_raw(pid as i32);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    return true;
                }
            }
        });
        Watchdog { tick, thread }
    }

    fn tick(&self) {
        let _ = self.tick.send(());
    }

    /// Stops watching; whether it had killed the child.
    fn disarm(self) -> bool {
        drop(self.tick);
        self.thread.join().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_like_the_pid_file_log() {
        let e = r#"{"__REALTIME_TIMESTAMP":"1796120573215454","SYSLOG_IDENTIFIER":"greet","_PID":"114","MESSAGE":"GET / HTTP/1.1\" 200","_HOSTNAME":"box0"}"#;
        assert_eq!(
            format_entry(e).unwrap(),
            "2026-12-01T10:22:53.215Z greet[114]: GET / HTTP/1.1\" 200"
        );
        // Not UTF-8: an array of bytes; no identifier: the command name; no PID.
        let e = r#"{"__REALTIME_TIMESTAMP":"0","_COMM":"x","MESSAGE":[104,105,255]}"#;
        assert_eq!(
            format_entry(e).unwrap(),
            "1970-01-01T00:00:00.000Z x: hi\u{fffd}"
        );
        // Terminal controls from a service (or a hostile host) are shown, not obeyed.
        let e = r#"{"__REALTIME_TIMESTAMP":"0","_COMM":"x\u001b]0;t\u0007","MESSAGE":[27,91,50,74,13,119,101,98,50,58,32,111,107,10,98]}"#;
        assert_eq!(
            format_entry(e).unwrap(),
            "1970-01-01T00:00:00.000Z x\\x1b]0;t\\x07: \\x1b[2J\\x0dweb2: ok\nb"
        );
        assert_eq!(format_entry("-- No entries --"), None);
        assert_eq!(format_entry(r#"{"MESSAGE":"no time"}"#), None);
    }
}
