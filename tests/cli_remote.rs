//! `-H` without a fleet: what is refused before any ssh runs (exit 2), and how mydaemon
//! drives ssh — the exact command line, the hosts file, at most `--parallel` at a time,
//! a silent host cut off at `--connect-timeout` with its ssh killed — against a stand-in
//! `ssh` named by `$SYSTEMD_SSH` (as sd-bus honours it) that logs how it was called and
//! fails as ssh does. The D-Bus side runs against real systemd in tests/box_remote.rs.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{show, text};

/// A stand-in ssh in `dir`: logs `start HOST NS` / its argv / `end HOST NS`, then runs
/// `behaviour` (shell).
fn fake_ssh(dir: &Path, behaviour: &str) -> std::path::PathBuf {
    let log = dir.join("log");
    let path = dir.join("ssh");
    // The host is the argument after `--`.
    let script = format!(
        "#!/bin/sh\n\
         log={log}\n\
         h=; prev=\n\
         for a in \"$@\"; do [ \"$prev\" = -- ] && h=$a; prev=$a; done\n\
         echo \"start $h $(date +%s%N)\" >> $log\n\
         echo \"argv $*\" >> $log\n\
         {behaviour}\n",
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn mydaemon(ssh: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mydaemon"));
    c.args(args).env_remove("SYSTEMD_SSH");
    if let Some(s) = ssh {
        c.env("SYSTEMD_SSH", s);
    }
    let mut child = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: every case here ends within seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "mydaemon {args:?} did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

const REFUSED: &str = "echo \"ssh: connect to host $h port 22: Connection refused\" >&2\n\
                       echo \"end $h $(date +%s%N)\" >> $log\nexit 255";

#[test]
fn what_cannot_go_over_ssh_is_a_usage_error_before_any_ssh_runs() {
    let d = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(d.path(), REFUSED);
    for (args, words) in [
        (
            &["-H", "web1", "--backend", "pidfile", "status"][..],
            "the PID-file backend is local only",
        ),
        (&["-H", "web1", "info"], "-H/--hosts-file work with"),
        (&["-H", "web1", "unit"], "-H/--hosts-file work with"),
        (&["-H", "a b", "status"], "contains a space"),
        (&["-H", "web1:0", "status"], "the port must be"),
        (
            &["--host=-oProxyCommand=x", "status"],
            "cannot start with '-'",
        ),
        (
            &["-H", "web1", "install", "--root", "/"],
            "--root is for this machine only",
        ),
        (
            &["-H", "web1", "install", "--sysv"],
            "--sysv is for this machine only",
        ),
        (&["-H", "web1", "--parallel", "0", "status"], "parallel"),
        (
            &["-H", "web1", "install", "--", "sleep", "1"],
            "give its absolute path there",
        ),
        (
            &["--hosts-file", "/nonexistent/hosts", "status"],
            "/nonexistent/hosts",
        ),
    ] {
        let out = mydaemon(Some(&ssh), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(
            text(&out.stderr).contains(words),
            "{args:?}: {}",
            show(&out)
        );
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{args:?}: {}",
            show(&out)
        );
    }
    // Nothing above ran ssh.
    assert!(!d.path().join("log").exists());
}

#[test]
fn ssh_is_called_as_systemctl_does_in_batch_mode_for_every_host_of_the_file() {
    let d = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(d.path(), REFUSED);
    let hosts = d.path().join("hosts");
    std::fs::write(
        &hosts,
        "# the fleet\n\nweb2   # second\nops@[::1]:2222\n\nweb1\n",
    )
    .unwrap();
    let hosts = hosts.to_str().unwrap();
    let out = mydaemon(
        Some(&ssh),
        &[
            "-H",
            "web1",
            "--hosts-file",
            hosts,
            "--connect-timeout",
            "3",
            "--name",
            "api",
            "status",
        ],
    );
    // Every host refused: `status` cannot tell the state anywhere, LSB's 4 (not 1, "dead").
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let log = std::fs::read_to_string(d.path().join("log")).unwrap();
    let mut argvs: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("argv "))
        .collect();
    argvs.sort();
    // web1 once (named twice), the others as the file says.
    assert_eq!(
        argvs,
        [
            "-xT -o BatchMode=yes -o ConnectTimeout=3 -o ServerAliveInterval=3 -- web1 systemd-stdio-bridge",
            "-xT -o BatchMode=yes -o ConnectTimeout=3 -o ServerAliveInterval=3 -- web2 systemd-stdio-bridge",
            "-xT -o BatchMode=yes -o ConnectTimeout=3 -o ServerAliveInterval=3 -p 2222 -l ops -- ::1 systemd-stdio-bridge",
        ],
        "{log}"
    );
    let stderr = text(&out.stderr);
    for h in ["web1", "web2", "ops@[::1]:2222"] {
        assert!(
            stderr.contains(&format!(
                "{h}: mydaemon: cannot connect (Connection refused)"
            )),
            "{}",
            show(&out)
        );
    }
    assert!(
        stderr.contains("status on 3 hosts: 0 ok, 3 failed\n"),
        "{}",
        show(&out)
    );
}

#[test]
fn at_most_parallel_hosts_at_a_time() {
    let d = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(d.path(), &format!("sleep 0.4\n{REFUSED}"));
    let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
    let mut args: Vec<&str> = Vec::new();
    for h in &hosts {
        args.extend(["-H", h]);
    }
    args.extend(["--parallel", "2", "stop"]);
    let out = mydaemon(Some(&ssh), &args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // The most ssh processes alive at once, from their start and end times.
    let log = std::fs::read_to_string(d.path().join("log")).unwrap();
    let mut events: Vec<(u128, i32)> = log
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let kind = w.next()?;
            let _host = w.next()?;
            let t: u128 = w.next()?.parse().ok()?;
            match kind {
                "start" => Some((t, 1)),
                "end" => Some((t, -1)),
                _ => None,
            }
        })
        .collect();
    assert_eq!(events.len(), 10, "{log}");
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut now, mut most) = (0, 0);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    assert_eq!(most, 2, "{log}");
}

#[test]
fn a_silent_host_is_cut_off_at_the_connect_timeout_and_its_ssh_killed() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pid");
    // Says nothing, never exits (exec: the PID is the sleeper's own).
    let ssh = fake_ssh(
        d.path(),
        &format!("echo $$ > {}\nexec sleep 30", pid_file.display()),
    );
    let t = Instant::now();
    let out = mydaemon(
        Some(&ssh),
        &["-H", "quiet", "--connect-timeout", "1", "status"],
    );
    let took = t.elapsed();
    // `status` of a host that does not answer: state unknown (4).
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert_eq!(
        text(&out.stderr).lines().next(),
        Some("mydaemon: quiet: no answer within 1 s (--connect-timeout)"),
        "{}",
        show(&out)
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the ssh child {pid} was left running"
    );
}

#[test]
fn a_hosts_file_that_never_ends_or_never_opens_is_refused_in_bounded_time() {
    let d = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(d.path(), REFUSED);
    // A FIFO nobody writes to: open() alone would block for ever.
    let fifo = d.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let t = Instant::now();
    let out = mydaemon(
        Some(&ssh),
        &[
            "--hosts-file",
            fifo.to_str().unwrap(),
            "--connect-timeout",
            "1",
            "status",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("nothing to read within 1 s"),
        "{}",
        show(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // Endless: read up to a bound, not into all memory.
    let out = mydaemon(Some(&ssh), &["--hosts-file", "/dev/zero", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("larger than 1024 KiB"),
        "{}",
        show(&out)
    );
    // A pipe with a writer (as `--hosts-file <(grep web hosts)` gives) is read, CRLF
    // line ends and all.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mydaemon"))
        .args(["--hosts-file", "/dev/stdin", "status"])
        .env("SYSTEMD_SSH", &ssh)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        w.write_all(b"# fleet\r\nweb1\r\nweb2 # b\r\n\r\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "mydaemon did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        text(&out.stderr).contains("status on 2 hosts: 0 ok, 2 failed\n"),
        "{}",
        show(&out)
    );
}

#[test]
fn logs_from_a_host_whose_journalctl_goes_silent_are_cut_off_and_its_ssh_killed() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pid");
    // One entry, then nothing, for ever (a hung disk there); exec: the PID is the sleeper's.
    let entry = r#"{"__REALTIME_TIMESTAMP":"1796120573215454","SYSLOG_IDENTIFIER":"api","_PID":"7","MESSAGE":"up"}"#;
    let ssh = fake_ssh(
        d.path(),
        &format!(
            "echo $$ > {}\necho '{entry}'\nexec sleep 60",
            pid_file.display()
        ),
    );
    let t = Instant::now();
    let out = mydaemon(
        Some(&ssh),
        &[
            "-H",
            "stuck",
            "--connect-timeout",
            "1",
            "--name",
            "api",
            "logs",
            "-n",
            "5",
        ],
    );
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stdout).contains("api[7]: up"), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("mydaemon: stuck: journalctl there printed nothing for 21 s"),
        "{}",
        show(&out)
    );
    assert!(took < Duration::from_secs(40), "took {took:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the ssh child {pid} was left running"
    );
}

#[test]
fn an_overlong_journal_line_is_skipped_and_the_next_entry_shown() {
    let d = tempfile::tempdir().unwrap();
    let entry = r#"{"__REALTIME_TIMESTAMP":"1796120573215454","SYSLOG_IDENTIFIER":"api","_PID":"7","MESSAGE":"after"}"#;
    let ssh = fake_ssh(
        d.path(),
        &format!("head -c 3000000 /dev/zero | tr '\\000' x\necho\necho '{entry}'"),
    );
    let out = mydaemon(Some(&ssh), &["-H", "h", "--name", "api", "logs"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{}", show(&out));
    assert!(stdout.ends_with(" api[7]: after\n"), "{}", show(&out));
}
