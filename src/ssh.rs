//! Reaching other machines over SSH, as `systemctl -H` does: host specs
//! (`[USER@]HOST[:PORT]`, IPv6 in brackets), hosts files, the `ssh` command line
//! (`-xT`, `BatchMode=yes`, `ConnectTimeout=`), its failures in words, and commands run
//! on the remote host with every wait bounded.
//!
//! The user's own ssh configuration, agent and known_hosts are used as they are; the
//! `ssh` binary is `$SYSTEMD_SSH` when set (as sd-bus honours it), else `ssh`.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::unit::quote::posix_shell_word;

/// One remote machine: `[USER@]HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The login user, when given.
    pub user: Option<String>,
    /// Host name or address (IPv6 without its brackets).
    pub host: String,
    /// The SSH port, when given.
    pub port: Option<u16>,
}

impl Host {
    /// Parses `[USER@]HOST[:PORT]`; an IPv6 address with a port is written `[ADDR]:PORT`
    /// (a bare IPv6 address, with several colons and no brackets, has no port).
    pub fn parse(spec: &str) -> Result<Host> {
        let bad = |why: &str| {
            Error::usage(format!("host {spec:?}: {why}"))
                .with_hint("write it as [USER@]HOST[:PORT], an IPv6 address as [ADDR]:PORT")
        };
        let spec_t = spec.trim();
        if spec_t.is_empty() {
            return Err(bad("empty"));
        }
        if spec_t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains a space or a control character"));
        }
        let (user, rest) = match spec_t.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad("empty user name before '@'")),
            None => (None, spec_t),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(bad("'[' without ']'"));
            };
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (addr, port)
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').expect("one colon");
            (h, Some(p))
        } else {
            (rest, None)
        };
        if host.is_empty() {
            return Err(bad("no host name"));
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err(bad("a host or user cannot start with '-'"));
        }
        // What OpenSSH >= 9.6 refuses on its command line (older ones and other
        // `$SYSTEMD_SSH`s pass it to a ProxyCommand's shell as %h or %r).
        if let Some(c) = spec_t.chars().find(|c| "'`\"$\\;&<>|(){},".contains(*c)) {
            return Err(bad(&format!(
                "{c:?} is not allowed in a host or user name (a shell would read it)"
            )));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        Ok(Host {
            user,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Host {
    /// As the user would write it (the label of output lines).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match (self.port, self.host.contains(':')) {
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
            (None, _) => write!(f, "{}", self.host),
        }
    }
}

/// The hosts of a hosts file: one `[USER@]HOST[:PORT]` per line; blank lines and
/// `#` comments (whole-line or after the host) are skipped.
pub fn parse_hosts_file(text: &str, file: &Path) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        hosts.push(
            Host::parse(line).map_err(|e| e.context(format!("{}:{}", file.display(), i + 1)))?,
        );
    }
    Ok(hosts)
}

/// How ssh is run for every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `ConnectTimeout=`, and the bound on setting up a connection.
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The ssh binary: `$SYSTEMD_SSH`, as sd-bus (and so `systemctl -H`) honours it, else `ssh`.
pub fn ssh_program() -> OsString {
    std::env::var_os("SYSTEMD_SSH")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ssh".into())
}

/// The arguments of `ssh` (without the program) that run `remote` (one shell command
/// line, quoted by the caller) on `host`: no X11, no tty, no password prompt, the
/// connect timeout, and keep-alives every connect timeout (a host that dies during a
/// long job wait is noticed after three unanswered ones instead of never).
pub fn ssh_args(host: &Host, opts: &SshOptions, remote: &str) -> Vec<String> {
    let secs = opts.connect_timeout.as_secs().max(1);
    let mut a: Vec<String> = vec![
        "-xT".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={secs}"),
        "-o".into(),
        format!("ServerAliveInterval={secs}"),
    ];
    if let Some(p) = host.port {
        a.push("-p".into());
        a.push(p.to_string());
    }
    if let Some(u) = &host.user {
        a.push("-l".into());
        a.push(u.clone());
    }
    a.push("--".into());
    a.push(host.host.clone());
    a.push(remote.into());
    a
}

/// A remote command line from words, each quoted for the remote POSIX shell.
pub fn remote_command<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| posix_shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why ssh (exit 255) could not run the command, from its stderr; `None` when its words
/// are not known. The exit code follows the local verbs': a refused login is a matter
/// of privilege (4), everything else a failure (1).
pub fn classify(stderr: &str, opts: &SshOptions) -> Option<Error> {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let has = |s: &str| stderr.contains(s);
    let secs = opts.connect_timeout.as_secs().max(1);
    if has("Permission denied") || has("Too many authentication failures") {
        return Some(
            Error::privilege(format!("authentication refused ({last})")).with_hint(
                "BatchMode: no password prompts; check your key and agent (ssh-add -l) and the remote authorized_keys",
            ),
        );
    }
    if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Some(
            Error::privilege(
                "the host key is unknown or has changed (Host key verification failed)",
            )
            .with_hint("check it, then add it to known_hosts (ssh HOST once, or ssh-keyscan)"),
        );
    }
    if has("Connection timed out") || has("timed out during banner exchange") {
        return Some(no_answer(secs));
    }
    let words = [
        ("Connection refused", "Connection refused"),
        ("No route to host", "No route to host"),
        ("Network is unreachable", "Network is unreachable"),
        ("Could not resolve hostname", "no such host name"),
        ("Name or service not known", "no such host name"),
        (
            "Temporary failure in name resolution",
            "the name could not be resolved now",
        ),
        ("Connection reset by peer", "the host closed the connection"),
        ("Connection closed by", "the host closed the connection"),
    ];
    for (said, why) in words {
        if has(said) {
            return Some(Error::generic(format!("cannot connect ({why})")));
        }
    }
    None
}

/// The error for a host that did not answer within the connect timeout.
pub fn no_answer(secs: u64) -> Error {
    Error::generic(format!("no answer within {secs} s (--connect-timeout)"))
        .with_hint("is the host up and its sshd reachable? raise --connect-timeout for slow links")
}

/// A pipe of ssh's (stdout, stderr), read by a thread of its own so that it never
/// fills; the first 64 KiB are kept.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<(Mutex<Buffer>, Condvar)>);

/// What [`Captured`] read, and whether the pipe is at its end.
type Buffer = (Vec<u8>, bool);

impl Captured {
    /// Starts reading `from` until end of file.
    pub fn start(mut from: impl Read + Send + 'static) -> Captured {
        let buf = Captured::default();
        let inner = buf.0.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                let n = from.read(&mut chunk).unwrap_or(0);
                let mut b = inner.0.lock().unwrap_or_else(|p| p.into_inner());
                if n == 0 {
                    b.1 = true;
                    inner.1.notify_all();
                    return;
                }
                if b.0.len() < 65536 {
                    b.0.extend_from_slice(&chunk[..n]);
                }
            }
        });
        buf
    }

    /// Waits at most `limit` for the end of file (a background ssh master may keep the
    /// pipe open), then returns what was read.
    pub fn bytes_within(&self, limit: Duration) -> Vec<u8> {
        let (lock, cv) = &*self.0;
        let b = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (b, _) = cv
            .wait_timeout_while(b, limit, |b| !b.1)
            .unwrap_or_else(|p| p.into_inner());
        b.0.clone()
    }

    /// What was read so far (waiting at most 200 ms for the end), as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes_within(Duration::from_millis(200))).into_owned()
    }
}

/// Waits at most `limit` for `child` to exit; `None` if it still runs.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// Ends `child` for good: SIGKILL (harmless when it has exited) and reap.
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The error for a remote command that ssh ran and that failed, or for ssh itself
/// failing (exit 255, classified from its stderr).
pub fn failure(opts: &SshOptions, status: ExitStatus, stderr: &str) -> Error {
    if status.code() == Some(255) {
        if let Some(e) = classify(stderr, opts) {
            return e;
        }
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Error::generic(format!(
            "ssh failed ({})",
            last.map(str::trim).unwrap_or("exit 255, no message")
        ));
    }
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Error::generic(format!(
        "the remote command failed ({})",
        last.map(str::trim)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("exit {}", crate::error::exit_code_of(status)))
    ))
}

/// The output of a command run on the remote host.
#[derive(Debug)]
pub struct RemoteOutput {
    /// Its exit status (255: ssh's own failure).
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error, and ssh's.
    pub stderr: String,
}

/// Runs `remote` (a command line for the remote shell, see [`remote_command`]) on
/// `host` with `input` on its stdin; waits at most `limit` (then kills ssh).
pub fn run(
    host: &Host,
    opts: &SshOptions,
    remote: &str,
    input: &[u8],
    limit: Duration,
) -> Result<RemoteOutput> {
    let mut child = Command::new(ssh_program())
        .args(ssh_args(host, opts, remote))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_failed)?;
    let stderr = Captured::start(child.stderr.take().expect("piped stderr"));
    let stdout = Captured::start(child.stdout.take().expect("piped stdout"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // A writer thread: a remote side that does not read cannot block us.
    std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let Some(status) = wait_bounded(&mut child, limit) else {
        kill_and_reap(&mut child);
        let st = stderr.text();
        if let Some(e) = classify(&st, opts) {
            return Err(e);
        }
        return Err(Error::generic(format!(
            "no answer within {} s",
            limit.as_secs()
        )));
    };
    Ok(RemoteOutput {
        status,
        stdout: stdout.bytes_within(Duration::from_millis(500)),
        stderr: stderr.text(),
    })
}

/// The error for an ssh binary that cannot be run.
pub fn spawn_failed(e: std::io::Error) -> Error {
    Error::generic(format!(
        "cannot run {}: {e}",
        ssh_program().to_string_lossy()
    ))
    .with_hint("install the OpenSSH client (or set $SYSTEMD_SSH to it)")
}

/// A remote machine and how ssh reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The machine.
    pub host: Host,
    /// ssh's options (connect timeout).
    pub ssh: SshOptions,
}

/// The ssh child carrying a connection: killed and reaped when dropped.
#[derive(Debug)]
pub struct Tunnel {
    child: Mutex<Child>,
}

impl Tunnel {
    /// Takes charge of `child`.
    pub fn new(child: Child) -> Tunnel {
        Tunnel {
            child: Mutex::new(child),
        }
    }

    /// ssh's exit status, if it exits within `limit` ([`wait_bounded`]).
    pub fn wait_bounded(&self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        wait_bounded(&mut child, limit)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        kill_and_reap(child);
    }
}

/// `hint` with every `` `mydaemon `` command in it addressed to `host`.
pub fn with_host(hint: &str, host: &Host) -> String {
    hint.replace("`mydaemon ", &format!("`mydaemon -H {host} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(user: Option<&str>, host: &str, port: Option<u16>) -> Host {
        Host {
            user: user.map(Into::into),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_specs() {
        assert_eq!(Host::parse("web1").unwrap(), h(None, "web1", None));
        assert_eq!(
            Host::parse("root@web1:2222").unwrap(),
            h(Some("root"), "web1", Some(2222))
        );
        assert_eq!(Host::parse("[::1]:22").unwrap(), h(None, "::1", Some(22)));
        assert_eq!(
            Host::parse("ops@[fe80::1%eth0]").unwrap(),
            h(Some("ops"), "fe80::1%eth0", None)
        );
        assert_eq!(Host::parse("::1").unwrap(), h(None, "::1", None));
        assert_eq!(
            Host::parse("10.0.0.2:22").unwrap(),
            h(None, "10.0.0.2", Some(22))
        );
        for bad in [
            "",
            "@h",
            "h:",
            "h:0",
            "h:99999",
            "[::1",
            "[::1]x",
            "a b",
            "-oProxyCommand=x",
            "u@:22",
            "x$(touch${IFS}/tmp/p)",
            "a;b",
            "`id`@web1",
            "o'hara@web1",
            "web1|x",
        ] {
            let e = Host::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        // Printed back as written.
        for s in ["web1", "root@web1:2222", "[::1]:22", "u@::1"] {
            assert_eq!(Host::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn hosts_file_skips_comments_and_blanks() {
        let text = "# fleet\n\nweb1\n  root@web2:2222   # the old one\n[::1]:22\n\t\n";
        let hosts = parse_hosts_file(text, Path::new("hosts")).unwrap();
        assert_eq!(
            hosts,
            vec![
                h(None, "web1", None),
                h(Some("root"), "web2", Some(2222)),
                h(None, "::1", Some(22))
            ]
        );
        let e = parse_hosts_file("ok\nbad host\n", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("f:2"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn ssh_argv_is_systemctls_plus_batch_mode() {
        let opts = SshOptions {
            connect_timeout: Duration::from_secs(3),
        };
        let a = ssh_args(
            &h(Some("ops"), "::1", Some(2222)),
            &opts,
            "systemd-stdio-bridge",
        );
        assert_eq!(
            a,
            [
                "-xT",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "ServerAliveInterval=3",
                "-p",
                "2222",
                "-l",
                "ops",
                "--",
                "::1",
                "systemd-stdio-bridge"
            ]
        );
        assert_eq!(
            ssh_args(&h(None, "web", None), &SshOptions::default(), "x")[4..],
            [
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=10",
                "--",
                "web",
                "x"
            ]
        );
        assert_eq!(
            remote_command(&["journalctl", "--unit", "a b.service", "it's"]),
            "journalctl --unit 'a b.service' 'it'\\''s'"
        );
    }

    #[test]
    fn ssh_failures_in_words() {
        let o = SshOptions::default();
        let e = classify(
            "ssh: connect to host 10.0.0.9 port 22: Connection refused\r\n",
            &o,
        )
        .unwrap();
        assert_eq!(e.message(), "cannot connect (Connection refused)");
        assert_eq!(e.exit_code(), 1);
        let e = classify(
            "ssh: connect to host 10.0.0.9 port 22: Connection timed out\n",
            &o,
        )
        .unwrap();
        assert_eq!(e.message(), "no answer within 10 s (--connect-timeout)");
        let e = classify(
            "root@10.0.0.2: Permission denied (publickey,password).\n",
            &o,
        )
        .unwrap();
        assert!(e.message().starts_with("authentication refused"), "{e}");
        assert!(e.to_string().contains("BatchMode"), "{e}");
        assert_eq!(e.exit_code(), 4);
        let e = classify(
            "ssh: Could not resolve hostname nope: Name or service not known\n",
            &o,
        )
        .unwrap();
        assert_eq!(e.message(), "cannot connect (no such host name)");
        let e = classify("Host key verification failed.\n", &o).unwrap();
        assert!(e.message().contains("host key"), "{e}");
        let e = classify("Connection closed by 10.0.0.2 port 22\r\n", &o).unwrap();
        assert_eq!(
            e.message(),
            "cannot connect (the host closed the connection)"
        );
        assert!(classify("something else\n", &o).is_none());
    }
}
