//! Host tests of the PID-file backend (systemd is not PID 1 here): start, stop,
//! status, reload, logs, concurrency, stale PID files, SIGTERM-deaf commands, start-up
//! failures, restarts with backoff, the watchdog, and the init.d script.
//!
//! Every test uses `--backend pidfile` and its own temporary `--pid-file`/`--log-dir`
//! and service name, so they run in parallel without clashing. Waits poll with a
//! deadline; nothing sleeps and hopes.

mod support;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{ok, text, BoundedOutput};

const BIN: &str = env!("CARGO_BIN_EXE_mydaemon");

/// One service under test, in its own temporary directory.
type Svc = support::PidfileService;

impl support::PidfileService {
    fn status_code(&self) -> i32 {
        self.run("status", &["-n", "0"]).status.code().unwrap()
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.pid_file())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Daemons of this service: processes whose command line names our PID file
    /// (the supervisor is a fork of `start`; launchers have exited by then).
    fn daemons(&self) -> Vec<i32> {
        let needle = self.pid_file().into_os_string().into_encoded_bytes();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            if alive(pid) && cmd.windows(needle.len()).any(|w| w == needle.as_slice()) {
                out.push(pid);
            }
        }
        out
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

#[test]
fn start_status_stop_status() {
    let s = Svc::new("fb-life");
    let out = s.run("start", &["--interval", "1s"]);
    ok(&out);
    assert!(text(&out.stdout).contains("started fb-life"), "{out:?}");
    let pid = s.pid();
    assert!(alive(pid));

    let st = s.run("status", &["--json"]);
    assert_eq!(st.status.code(), Some(0), "{st:?}");
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(v["backend"], "pidfile");
    assert_eq!(v["pid"].as_i64(), Some(pid as i64));
    // The service process under the supervisor, and its STATUS= text.
    let service = v["service_pid"].as_i64().unwrap() as i32;
    assert_ne!(service, pid);
    assert!(alive(service));
    assert!(
        v["status_text"].as_str().unwrap().contains("heartbeat"),
        "{v}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.pid_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "PID files are world-readable");
    let human = text(&s.run("status", &[]).stdout);
    assert!(human.contains("backend:  pidfile"), "{human}");
    assert!(
        human.contains(&s.log_file().display().to_string()),
        "{human}"
    );

    let out = s.run("stop", &[]);
    ok(&out);
    assert!(text(&out.stdout).contains("stopped fb-life"), "{out:?}");
    assert!(!alive(pid), "the daemon is gone once stop returns");
    assert!(!s.pid_file().exists());
    assert_eq!(s.status_code(), 3);
    // Stopping a stopped service succeeds.
    ok(&s.run("stop", &[]));
    assert!(!alive(service), "the service process went with it");
    // The daemon's stdio: the log file, 0640.
    let mode = std::fs::metadata(s.log_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert!(
        s.log().contains("supervisor: the service is ready"),
        "{}",
        s.log()
    );
}

#[test]
fn start_twice_leaves_one_daemon() {
    let s = Svc::new("fb-twice");
    ok(&s.run("start", &[]));
    let pid = s.pid();
    let out = s.run("start", &[]);
    ok(&out);
    assert!(
        text(&out.stdout).contains(&format!("already running (pid {pid})")),
        "{out:?}"
    );
    assert_eq!(s.pid(), pid);
    assert_eq!(s.daemons(), vec![pid]);
}

#[test]
fn twenty_concurrent_starts_make_one_daemon() {
    let s = Svc::new("fb-race");
    let children: Vec<_> = (0..20)
        .map(|_| {
            s.command("start", &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        ok(&out);
    }
    let pid = s.pid();
    assert_eq!(s.status_code(), 0);
    // Losers exit right after reporting; the winner stays.
    assert!(
        wait_until(Duration::from_secs(5), || s.daemons().len() == 1),
        "{:?}",
        s.daemons()
    );
    assert_eq!(s.daemons(), vec![pid]);
    let started = s.log().matches("supervisor: the service is ready").count();
    assert_eq!(started, 1, "{}", s.log());
}

#[test]
fn sigkilled_daemon_is_dead_then_starts_again() {
    let s = Svc::new("fb-kill9");
    ok(&s.run("start", &[]));
    let pid = s.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    assert!(wait_until(Duration::from_secs(5), || s.status_code() == 1));
    let st = s.run("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "dead");
    assert_eq!(v["pid"].as_i64(), Some(pid as i64));

    ok(&s.run("start", &[]));
    let again = s.pid();
    assert_ne!(again, pid);
    assert_eq!(s.status_code(), 0);
    ok(&s.run("stop", &[]));
    assert_eq!(s.status_code(), 3);
}

#[test]
fn a_pid_file_naming_an_unrelated_process_is_not_running_and_not_signalled() {
    let s = Svc::new("fb-foreign");
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::create_dir_all(s.pid_file().parent().unwrap()).unwrap();
    std::fs::write(s.pid_file(), format!("{}\n", sleeper.id())).unwrap();

    let st = s.run("status", &["-n", "0"]);
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    assert!(
        text(&st.stdout).contains("does not hold its lock"),
        "{st:?}"
    );
    let out = s.run("stop", &[]);
    ok(&out);
    assert!(
        text(&out.stdout).contains("nothing was signalled"),
        "{out:?}"
    );
    assert!(!s.pid_file().exists());
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the sleep was signalled"
    );
    assert_eq!(
        s.run("reload", &[]).status.code(),
        Some(7),
        "reload of a stopped service"
    );
    assert!(sleeper.try_wait().unwrap().is_none());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn a_command_ignoring_sigterm_is_killed_after_the_timeout() {
    let s = Svc::new("fb-deaf");
    let marker = s.dir.path().join("deaf.pid");
    let script = format!(
        "echo $$ > '{}'; trap '' TERM; while :; do sleep 0.05; done",
        marker.display()
    );
    ok(&s.run("start", &["--", "sh", "-c", &script]));
    assert!(wait_until(Duration::from_secs(5), || marker.exists()
        && !std::fs::read_to_string(&marker).unwrap().trim().is_empty()));
    let sh: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sh));
    let t0 = Instant::now();
    let out = s.run("stop", &["--timeout", "1s"]);
    let took = t0.elapsed();
    ok(&out);
    assert!(text(&out.stdout).contains("killed fb-deaf"), "{out:?}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(sh)),
        "the command survived"
    );
    assert_eq!(s.status_code(), 3);
}

#[test]
fn a_daemon_failing_during_start_up_fails_the_start_with_its_error() {
    let s = Svc::new("fb-fail");
    let out = s.run(
        "start",
        &[
            "--ready",
            "tcp:127.0.0.1:1",
            "--",
            "sh",
            "-c",
            "echo boom-from-the-command >&2; exit 1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("fb-fail failed to start"), "{err}");
    assert!(err.contains("exited with status 1"), "{err}");
    assert!(err.contains("boom-from-the-command"), "{err}");
    assert_eq!(s.status_code(), 3);
    // The supervisor reports the failure, then exits: give it a moment to be gone.
    assert!(
        wait_until(Duration::from_secs(5), || s.daemons().is_empty()),
        "a daemon outlived its failed start: {:?}",
        s.daemons()
    );

    let out = s.run("start", &["--", "/nonexistent/program"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/program"),
        "{out:?}"
    );
}

/// Milliseconds since midnight of a log line's timestamp (`…THH:MM:SS.mmmZ`).
fn stamp_ms(line: &str) -> u64 {
    let t = &line[11..23];
    let h: u64 = t[0..2].parse().unwrap();
    let m: u64 = t[3..5].parse().unwrap();
    let s: u64 = t[6..8].parse().unwrap();
    let ms: u64 = t[9..12].parse().unwrap();
    ((h * 60 + m) * 60 + s) * 1000 + ms
}

#[test]
fn exec_mode_crashes_are_restarted_with_backoff_up_to_the_limit() {
    let s = Svc::new("fb-crash");
    ok(&s.run(
        "start",
        &[
            "--restart-sec",
            "100ms",
            "--restart-burst",
            "3",
            "--",
            "sh",
            "-c",
            "echo crashing; exit 3",
        ],
    ));
    assert!(
        wait_until(Duration::from_secs(10), || s.log().contains("giving up")),
        "{}",
        s.log()
    );
    let log = s.log();
    let lines: Vec<&str> = log.lines().collect();
    let starts: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("supervisor: started the service process"))
        .collect();
    assert_eq!(starts.len(), 4, "first start and 3 restarts:\n{log}");
    for (i, delay) in [100u64, 200, 400].iter().enumerate() {
        let want = format!("restart {} of 3 in {delay}ms", i + 1);
        let at = lines
            .iter()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("no {want:?} in\n{log}"));
        let gap = stamp_ms(starts[i + 1]) - stamp_ms(at);
        assert!(
            gap + 2 >= *delay,
            "restart {} after {gap} ms:\n{log}",
            i + 1
        );
    }
    assert!(log.contains("giving up: 3 restarts"), "{log}");
    assert!(log.contains("exited with status 3"), "{log}");
    // Given up: the PID file stays behind, unlocked: dead.
    assert_eq!(s.status_code(), 1);
    ok(&s.run("stop", &[]));
    assert_eq!(s.status_code(), 3);
}

#[test]
fn a_failing_health_check_restarts_through_the_watchdog() {
    let s = Svc::new("fb-health");
    ok(&s.run(
        "start",
        &[
            "--health",
            "exec:false",
            "--watchdog-sec",
            "500ms",
            "--restart-burst",
            "1",
            "--restart-sec",
            "50ms",
            "--",
            "sleep",
            "60",
        ],
    ));
    assert!(
        wait_until(Duration::from_secs(15), || s.log().contains("giving up")),
        "{}",
        s.log()
    );
    let log = s.log();
    assert!(
        log.contains("watchdog timeout (no WATCHDOG=1 for 500ms)"),
        "{log}"
    );
    assert!(log.contains("restart 1 of 1"), "{log}");
    assert_eq!(
        log.matches("supervisor: started the service process")
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn reload_reaches_the_service_and_logs_show_it() {
    let s = Svc::new("fb-reload");
    ok(&s.run("start", &[]));
    let out = s.run("reload", &[]);
    ok(&out);
    assert!(text(&out.stdout).contains("reloaded fb-reload"), "{out:?}");
    // `reload` returns once the service is READY=1 again: the reload is done.
    assert!(s.log().contains("reload complete"), "{}", s.log());
    let st = s.run("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["reloads"], 1, "{v}");
    let out = s.run("logs", &["-n", "2"]);
    ok(&out);
    let shown = text(&out.stdout);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    let log = s.log();
    let last_two: Vec<&str> = log.lines().rev().take(2).collect();
    for l in last_two {
        assert!(shown.contains(l), "{shown}");
    }
    // `restart` gives a new daemon.
    let pid = s.pid();
    ok(&s.run("restart", &[]));
    assert_ne!(s.pid(), pid);
    assert!(!alive(pid));
    assert_eq!(s.status_code(), 0);
}

#[test]
fn a_symlinked_pid_file_is_refused() {
    let s = Svc::new("fb-symlink");
    let victim = s.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::create_dir_all(s.pid_file().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, s.pid_file()).unwrap();
    let out = s.run("start", &[]);
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("symlink"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(s.daemons().is_empty());
}

#[test]
fn install_sysv_into_a_root_then_the_script_answers_with_lsb_codes() {
    let s = Svc::new("fb-sysv");
    let root = tempfile::tempdir().unwrap();
    for rc in ["rc0.d", "rc2.d"] {
        std::fs::create_dir_all(root.path().join("etc").join(rc)).unwrap();
    }
    let install = |name: &str, extra: &[&str]| {
        Command::new(BIN)
            .args(["--name", name, "--backend", "pidfile", "install", "--sysv"])
            .arg("--root")
            .arg(root.path())
            .args(extra)
            .bounded_output()
    };
    let out = install(
        "fb-sysv",
        &[
            "--description",
            "it's a \"test\"",
            "--",
            "sh",
            "-c",
            "trap '' HUP; exec sleep 60",
        ],
    );
    ok(&out);
    let script = root.path().join("etc/init.d/fb-sysv");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755);
    let body = std::fs::read_to_string(&script).unwrap();
    let header: Vec<&str> = body
        .lines()
        .skip_while(|l| *l != "### BEGIN INIT INFO")
        .take_while(|l| *l != "### END INIT INFO")
        .collect();
    assert!(body.contains("\n### END INIT INFO\n"), "{body}");
    for want in [
        "# Provides:          fb-sysv",
        "# Required-Start:    $remote_fs $syslog",
        "# Default-Start:     2 3 4 5",
        "# Default-Stop:      0 1 6",
        "# Short-Description: it's a \"test\"",
    ] {
        assert!(header.contains(&want), "{want:?} not in {header:?}");
    }
    assert!(Command::new("sh")
        .arg("-n")
        .arg(&script)
        .bounded_output()
        .status
        .success());

    let opts = format!(
        "--pid-file {} --log-dir {}",
        s.pid_file().display(),
        s.log_dir().display()
    );
    let action = |a: &str| {
        Command::new("sh")
            .arg(&script)
            .arg(a)
            .env("MYDAEMON_OPTS", &opts)
            .stdin(Stdio::null())
            .bounded_output()
    };
    assert_eq!(action("status").status.code(), Some(3));
    ok(&action("start"));
    assert_eq!(action("status").status.code(), Some(0));
    assert_eq!(s.status_code(), 0, "the script and the binary agree");
    let pid = s.pid();
    ok(&action("reload"));
    ok(&action("force-reload"));
    assert!(
        wait_until(Duration::from_secs(5), || s
            .log()
            .matches("passing SIGHUP on to the service")
            .count()
            == 2),
        "{}",
        s.log()
    );
    assert_eq!(s.status_code(), 0, "reloads keep the service running");
    ok(&action("restart"));
    assert_ne!(s.pid(), pid);
    ok(&action("stop"));
    assert_eq!(action("status").status.code(), Some(3));
    assert_eq!(action("bogus").status.code(), Some(2));

    // A foreign script is kept unless --force.
    let foreign = root.path().join("etc/init.d/fb-other");
    std::fs::write(&foreign, "#!/bin/sh\necho mine\n").unwrap();
    let out = install("fb-other", &[]);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    ok(&install("fb-other", &["--force"]));
    assert!(std::fs::read_to_string(&foreign)
        .unwrap()
        .contains("Generated by mydaemon"));

    // uninstall removes the script and its rc?.d links.
    let s2 = root.path().join("etc/rc2.d/S01fb-sysv");
    let k0 = root.path().join("etc/rc0.d/K01fb-sysv");
    std::os::unix::fs::symlink("../init.d/fb-sysv", &s2).unwrap();
    std::os::unix::fs::symlink("../init.d/fb-sysv", &k0).unwrap();
    let uninstall = || {
        Command::new(BIN)
            .args([
                "--name",
                "fb-sysv",
                "--backend",
                "pidfile",
                "uninstall",
                "--sysv",
            ])
            .arg("--root")
            .arg(root.path())
            .bounded_output()
    };
    ok(&uninstall());
    assert!(!script.exists());
    assert!(std::fs::symlink_metadata(&s2).is_err());
    assert!(std::fs::symlink_metadata(&k0).is_err());
    assert_eq!(uninstall().status.code(), Some(5));
}

#[test]
fn processes_the_command_leaves_behind_are_stopped() {
    let s = Svc::new("fb-orphan");
    let marker = s.dir.path().join("orphan.pid");
    let script = format!("sleep 300 & echo $! > '{}'; exit 3", marker.display());
    ok(&s.run(
        "start",
        &["--restart-burst", "0", "--", "sh", "-c", &script],
    ));
    assert!(
        wait_until(Duration::from_secs(10), || s.log().contains("giving up")),
        "{}",
        s.log()
    );
    let orphan: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(orphan)),
        "the orphaned sleep survived:\n{}",
        s.log()
    );
    assert!(s.log().contains("left 1 process(es) behind"), "{}", s.log());
}

#[test]
fn logs_follow_prints_new_lines() {
    use std::io::{BufRead, BufReader};
    let s = Svc::new("fb-follow");
    ok(&s.run("start", &["--interval", "100ms"]));
    let mut child = s
        .command("logs", &["-f", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut heartbeats = 0;
    while heartbeats < 3 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            heartbeats += usize::from(l.contains("heartbeat"));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(heartbeats >= 3, "only {heartbeats} heartbeats followed");
}

#[test]
fn a_start_that_is_never_ready_times_out_and_the_daemon_is_stopped() {
    let s = Svc::new("fb-slow");
    let launcher = s
        .command(
            "start",
            &[
                "--timeout",
                "1500ms",
                "--ready",
                "tcp:127.0.0.1:1",
                "--",
                "sleep",
                "60",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Meanwhile `status` sees it starting (the STARTING lock byte), exit 0.
    let mut seen_starting = false;
    assert!(wait_until(Duration::from_secs(5), || {
        let st = s.run("status", &["--json"]);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        seen_starting = v["state"] == "starting" && st.status.code() == Some(0);
        seen_starting
    }));
    // A second start waits for it, and fails with it.
    let second = s.run("start", &["--timeout", "5s"]);
    let out = launcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("was not ready within 1s 500ms")
            || text(&out.stderr).contains("was not ready within 1500ms"),
        "{out:?}"
    );
    assert!(!second.status.success(), "{second:?}");
    assert!(wait_until(Duration::from_secs(5), || s.status_code() == 3));
    assert!(s.daemons().is_empty());
}

#[test]
fn start_returns_only_once_the_command_is_ready() {
    let s = Svc::new("fb-ready");
    let flag = s.dir.path().join("ready-flag");
    let script = format!("sleep 0.3; touch '{}'; exec sleep 60", flag.display());
    let t0 = Instant::now();
    let flag_arg = format!("file:{}", flag.display());
    ok(&s.run("start", &["--ready", &flag_arg, "--", "sh", "-c", &script]));
    assert!(flag.exists(), "start returned before the command was ready");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let st = s.run("status", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "running", "{v}");
}

#[test]
fn readiness_from_a_process_other_than_the_service_is_ignored() {
    use std::os::unix::net::UnixDatagram;
    let s = Svc::new("fb-spoof");
    let launcher = s
        .command(
            "start",
            &[
                "--timeout",
                "2s",
                "--ready",
                "tcp:127.0.0.1:1",
                "--",
                "sleep",
                "60",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Root can reach the supervisor's notify socket; its credentials give it away.
    let addr = wait_for_notify_socket(&s);
    UnixDatagram::unbound()
        .unwrap()
        .send_to_addr(b"READY=1\n", &addr)
        .unwrap();
    let out = launcher.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a forged READY=1 made start succeed: {out:?}"
    );
    assert!(
        s.log().contains(&format!(
            "ignoring a notification from pid {}",
            std::process::id()
        )),
        "{}",
        s.log()
    );
}

#[test]
fn enable_and_disable_manage_the_rc_links_of_the_init_script() {
    let root = tempfile::tempdir().unwrap();
    let md = |verb: &str, extra: &[&str]| {
        Command::new(BIN)
            .args(["--name", "fb-rc", "--backend", "pidfile", verb])
            .arg("--root")
            .arg(root.path())
            .args(extra)
            .bounded_output()
    };
    let link = |rc: &str| root.path().join("etc").join(rc);
    let is_link_to_script =
        |p: PathBuf| std::fs::read_link(&p).ok() == Some(PathBuf::from("../init.d/fb-rc"));

    // Nothing installed: exit 5 with the fix.
    let out = md("enable", &[]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("install --sysv"),
        "{out:?}"
    );

    ok(&md("install", &["--sysv", "--", "sleep", "60"]));
    // A stale link with another sequence number is replaced, not kept beside.
    std::fs::create_dir_all(link("rc3.d")).unwrap();
    std::os::unix::fs::symlink("../init.d/fb-rc", link("rc3.d/S20fb-rc")).unwrap();
    let out = md("enable", &[]);
    ok(&out);
    for rc in [
        "rc2.d/S01fb-rc",
        "rc3.d/S01fb-rc",
        "rc4.d/S01fb-rc",
        "rc5.d/S01fb-rc",
    ] {
        assert!(is_link_to_script(link(rc)), "{rc} missing: {out:?}");
    }
    for rc in ["rc0.d/K01fb-rc", "rc1.d/K01fb-rc", "rc6.d/K01fb-rc"] {
        assert!(is_link_to_script(link(rc)), "{rc} missing: {out:?}");
    }
    assert!(std::fs::symlink_metadata(link("rc3.d/S20fb-rc")).is_err());
    let again = md("enable", &[]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already enabled"));

    ok(&md("disable", &[]));
    let left: Vec<_> = std::fs::read_dir(root.path().join("etc"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("rc"))
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "links left: {left:?}");
    assert!(root.path().join("etc/init.d/fb-rc").exists());
    let out = md("disable", &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not enabled"));

    // No per-user boot without systemd.
    let out = Command::new(BIN)
        .args([
            "--name",
            "fb-rc",
            "--backend",
            "pidfile",
            "--user",
            "enable",
        ])
        .bounded_output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn logs_since_filters_by_the_lines_timestamps() {
    let s = Svc::new("fb-since");
    ok(&s.run("start", &[]));
    // Everything is from the last minute; nothing from the future; the ready line is in.
    let recent = s.run("logs", &["--since", "-1m"]);
    ok(&recent);
    assert!(
        text(&recent.stdout).contains("the service is ready"),
        "{recent:?}"
    );
    let out = s.run("logs", &["--since", "2099-01-01"]);
    ok(&out);
    assert_eq!(text(&out.stdout), "", "{out:?}");
    // A moment after start-up, only what came later shows: the stop.
    std::thread::sleep(Duration::from_millis(20));
    let cut = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    ok(&s.run("stop", &[]));
    let cut = format!("-{}ms", cut.elapsed().unwrap().as_millis());
    let out = s.run("logs", &["--since", &cut]);
    ok(&out);
    let shown = text(&out.stdout);
    assert!(shown.contains("received SIGTERM"), "since {cut}: {shown}");
    assert!(
        !shown.contains("the service is ready"),
        "since {cut}: {shown}"
    );

    let bad = s.run("logs", &["--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(text(&bad.stderr).contains("YYYY-MM-DD"), "{bad:?}");
}

#[test]
fn dot_names_never_become_paths() {
    // `..` is a valid unit name, but as a file name it is the parent directory.
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    for name in [".", ".."] {
        for args in [
            &["status"][..],
            &["start", "--", "sleep", "60"],
            &["install", "--sysv", "--root", root],
            &["enable", "--root", root],
        ] {
            let out = Command::new(BIN)
                .args(["--name", name, "--backend", "pidfile"])
                .args(args)
                .bounded_output();
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {out:?}");
            assert!(text(&out.stderr).contains("not usable"), "{out:?}");
        }
    }
}

#[test]
fn a_long_status_text_is_shown_whole() {
    // 3000 control characters: JSON-escaped, the published state is over 16 KiB.
    let s = Svc::new("fb-long");
    let script = "import os, socket, time\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        addr = os.environ['NOTIFY_SOCKET']\n\
        if addr.startswith('@'): addr = '\\0' + addr[1:]\n\
        s.sendto(b'STATUS=' + b'\\x01' * 3000 + b'end\\nREADY=1', addr)\n\
        time.sleep(60)\n";
    ok(&s.run(
        "start",
        &["--ready", "notify", "--", "python3", "-c", script],
    ));
    let st = s.run("status", &["--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&st.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&st.stdout)));
    let status = v["status_text"].as_str().unwrap_or_default();
    assert!(status.ends_with("end"), "{v}");
    assert!(status.len() > 3000, "{}", status.len());
    ok(&s.run("stop", &[]));
}

// ---- Attacks by another local user (`nobody`) on root's daemon (issue 11) ----

/// The unprivileged attacker's uid and gid.
const NOBODY: u32 = 65534;

/// Makes the service's temporary tree reachable by other users (as `/run` is).
fn open_to_others(s: &Svc) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A process of user `nobody` that tried to take read locks; it stays (holding
/// whatever it got) until dropped.
struct Attacker {
    pid: nix::unistd::Pid,
    /// One letter per attempt: `L` locked, `D` denied the lock, `E` could not open.
    outcome: String,
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks a process that becomes `nobody` and tries, for each `(path, start, len)`,
/// to open the file read-only and take a read lock on those bytes. Only
/// async-signal-safe calls after the fork (the test harness runs threads).
fn attacker_locks(targets: &[(PathBuf, i64, i64)]) -> Attacker {
    lockers(targets, Some(NOBODY))
}

/// Like [`attacker_locks`], as `uid` (`None`: stays root).
fn lockers(targets: &[(PathBuf, i64, i64)], uid: Option<u32>) -> Attacker {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    let paths: Vec<std::ffi::CString> = targets
        .iter()
        .map(|(p, _, _)| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap())
        .collect();
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child makes only raw system calls on memory prepared before the fork.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => unsafe {
            use std::os::fd::AsRawFd;
            let w = w.as_raw_fd();
            if let Some(uid) = uid {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid as libc::gid_t) != 0
                    || libc::setuid(uid) != 0
                {
                    libc::_exit(99);
                }
            }
            for (i, (_, start, len)) in targets.iter().enumerate() {
                let fd = libc::open(paths[i].as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK);
                let c: &[u8] = if fd < 0 {
                    b"E"
                } else {
                    let mut fl: libc::flock = std::mem::zeroed();
                    fl.l_type = libc::F_RDLCK as libc::c_short;
                    fl.l_whence = libc::SEEK_SET as libc::c_short;
                    fl.l_start = *start as libc::off_t;
                    fl.l_len = *len as libc::off_t;
                    if libc::fcntl(fd, libc::F_SETLK, &fl) == 0 {
                        b"L"
                    } else {
                        b"D"
                    }
                };
                libc::write(w, c.as_ptr().cast(), 1);
            }
            libc::write(w, b"\n".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut a = Attacker {
                pid: child,
                outcome: String::new(),
            };
            let mut f = std::fs::File::from(r);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut byte = [0u8; 1];
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "the attacker did not report its locks");
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&f),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = left.as_millis().min(60_000) as u16;
                let _ = nix::poll::poll(&mut fds, ms);
                use std::io::Read;
                match f.read(&mut byte) {
                    Ok(1) if byte[0] == b'\n' => return a,
                    Ok(1) => a.outcome.push(byte[0] as char),
                    Ok(_) => panic!("the attacker exited before it reported (setuid failed?)"),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("reading the attacker's report: {e}"),
                }
            }
        }
    }
}

/// Runs `cmd`; fails the test, naming `what`, if it has not finished within `limit`.
fn run_within(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} did not finish within {limit:?} (blocked?): {out:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lock_file(s: &Svc) -> PathBuf {
    s.pid_file().with_file_name(format!(".{}.pid.lock", s.name))
}

/// Attack 1: with a stale PID file, `nobody` read-locks it (and tries the lock
/// file); `status` must still say dead, `start` must start, `stop` must not signal
/// the attacker.
#[test]
fn attack_another_user_cannot_spoof_liveness() {
    let s = Svc::new("fb-att-spoof");
    open_to_others(&s);
    ok(&s.run("start", &[]));
    let pid = s.pid();
    // A crash: the daemon and its service die, the PID file stays.
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || s.status_code() == 1),
        "status never said dead after SIGKILL"
    );
    let att = attacker_locks(&[(s.pid_file(), 0, 0), (lock_file(&s), 0, 0)]);
    let st = s.run("status", &["-n", "0"]);
    assert_eq!(
        st.status.code(),
        Some(1),
        "attacker {}: {st:?}",
        att.outcome
    );
    assert!(!text(&st.stdout).contains(&att.pid.to_string()), "{st:?}");
    let out = s.run("start", &[]);
    ok(&out);
    assert!(text(&out.stdout).contains("started"), "{out:?}");
    assert_ne!(s.pid(), att.pid.as_raw());
    ok(&s.run("stop", &[]));
    assert!(alive(att.pid.as_raw()), "stop signalled the attacker");
    // The lock file was never opened by the attacker.
    assert_eq!(&att.outcome[1..], "E", "{}", att.outcome);
}

/// Attack 2: `nobody` read-locks every byte of a live daemon's PID file; `status`,
/// `stop` and `start` must still answer at once.
#[test]
fn attack_another_users_locks_block_no_verb() {
    let s = Svc::new("fb-att-dos");
    open_to_others(&s);
    ok(&s.run("start", &[]));
    let pid = s.pid();
    let att = attacker_locks(&[(s.pid_file(), 1, 0), (lock_file(&s), 0, 0)]);
    let limit = Duration::from_secs(20);
    let st = run_within(s.command("status", &["-n", "0"]), limit, "status");
    assert_eq!(
        st.status.code(),
        Some(0),
        "attacker {}: {st:?}",
        att.outcome
    );
    assert!(
        text(&st.stdout).contains(&format!("running (pid {pid})")),
        "{st:?}"
    );
    let out = run_within(s.command("start", &[]), limit, "start");
    ok(&out);
    assert!(text(&out.stdout).contains("already running"), "{out:?}");
    let out = run_within(s.command("stop", &[]), limit, "stop");
    ok(&out);
    assert!(text(&out.stdout).contains("stopped"), "{out:?}");
    assert_eq!(s.status_code(), 3);
    let out = run_within(s.command("start", &[]), limit, "start after stop");
    ok(&out);
    assert!(alive(att.pid.as_raw()));
}

/// The supervisor's notify socket address, as `/proc/net/unix` lists it (a path in the
/// service's directory, or an abstract `@mydaemon/NAME/…` name on older versions).
fn notify_socket_of(s: &Svc) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    let dir = s
        .pid_file()
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let w = table.split_whitespace().find(|w| {
        w.starts_with(&format!("@mydaemon/{}/", s.name))
            || (w.starts_with(&dir) && w.ends_with("/notify"))
    })?;
    Some(match w.strip_prefix('@') {
        Some(abs) => std::os::unix::net::SocketAddr::from_abstract_name(abs.as_bytes()).unwrap(),
        None => std::os::unix::net::SocketAddr::from_pathname(w).unwrap(),
    })
}

fn wait_for_notify_socket(s: &Svc) -> std::os::unix::net::SocketAddr {
    let mut addr = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            addr = notify_socket_of(s);
            addr.is_some()
        }),
        "the supervisor's notify socket never appeared in /proc/net/unix"
    );
    addr.unwrap()
}

/// Runs `f` in a forked child that became `nobody`; returns its exit code (`f`'s
/// value). `f` must make only async-signal-safe calls (the harness runs threads).
fn as_nobody(f: impl FnOnce() -> i32) -> i32 {
    use nix::libc;
    // SAFETY: the child makes only raw system calls before _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                libc::_exit(255);
            }
            libc::_exit(f());
        },
        nix::unistd::ForkResult::Parent { child } => {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                    .unwrap()
                {
                    nix::sys::wait::WaitStatus::Exited(_, code) => return code,
                    nix::sys::wait::WaitStatus::StillAlive => {
                        if Instant::now() > deadline {
                            let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                            let _ = nix::sys::wait::waitpid(child, None);
                            panic!("the attacker process did not finish within 30s");
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    other => panic!("the attacker process ended oddly: {other:?}"),
                }
            }
        }
    }
}

/// Attack 3: `nobody` floods the supervisor's notify socket; nothing may reach root's
/// log beyond a few rate-limited lines.
#[test]
fn attack_another_user_cannot_flood_the_log_through_the_notify_socket() {
    use nix::libc;
    use std::os::linux::net::SocketAddrExt;
    let s = Svc::new("fb-att-flood");
    open_to_others(&s);
    ok(&s.run("start", &["--interval", "1h"]));
    let addr = wait_for_notify_socket(&s);
    // The raw address, built before the fork.
    // SAFETY: sockaddr_un is plain integers and bytes.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes: Vec<u8> = match (addr.as_abstract_name(), addr.as_pathname()) {
        (Some(abs), _) => std::iter::once(0).chain(abs.iter().copied()).collect(),
        (None, Some(p)) => p.as_os_str().as_encoded_bytes().to_vec(),
        _ => panic!("unnamed socket"),
    };
    for (i, b) in bytes.iter().enumerate() {
        sun.sun_path[i] = *b as libc::c_char;
    }
    // An abstract name is exactly its bytes; a path is NUL-terminated.
    let nul = usize::from(addr.as_pathname().is_some());
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + nul) as libc::socklen_t;
    let before = s.log().len();
    let accepted = as_nobody(|| unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return 254;
        }
        let mut n = 0;
        let msg = b"STATUS=forged-by-nobody\n";
        for _ in 0..20_000 {
            let r = libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_DONTWAIT,
                (&sun as *const libc::sockaddr_un).cast(),
                len,
            );
            if r > 0 {
                n += 1;
            }
        }
        n.min(250)
    });
    // Whatever was accepted has been read once a datagram of ours is answered: ask
    // the daemon for its status (the supervisor drains its socket in one go).
    assert!(wait_until(Duration::from_secs(5), || s.status_code() == 0));
    let log = s.log();
    let ignored = log[before..].matches("ignoring a notification").count();
    assert!(
        ignored <= 10,
        "{accepted} datagrams accepted, {ignored} lines logged:\n{}",
        &log[before..]
    );
    assert!(
        log.len() - before < 4096,
        "the log grew by {} bytes",
        log.len() - before
    );
    let st = text(&s.run("status", &["--json"]).stdout);
    assert!(
        !st.contains("forged"),
        "the attacker's STATUS= was believed: {st}"
    );
    eprintln!("attacker: {accepted} datagrams accepted, {ignored} log lines");
}

/// Item 6: the longest valid name (255 bytes with `.service`) starts, reports and
/// stops (the socket and the files next to the PID file derive from a hash).
#[test]
fn the_longest_valid_name_starts_and_stops() {
    let s = Svc::new(&"a".repeat(255 - ".service".len()));
    let out = s.run("start", &["--interval", "1h"]);
    ok(&out);
    assert_eq!(s.status_code(), 0);
    let out = s.run("stop", &[]);
    ok(&out);
    assert_eq!(s.status_code(), 3);
    let left: Vec<_> = std::fs::read_dir(s.pid_file().parent().unwrap())
        .unwrap()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `nobody` makes a FIFO at `path` (in a directory it may write to).
fn nobody_mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path prepared before the fork.
    let code = as_nobody(|| unsafe { nix::libc::mkfifo(c.as_ptr(), 0o666) });
    assert_eq!(
        code,
        0,
        "nobody could not make a FIFO at {}",
        path.display()
    );
}

fn sticky_dir(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Attack 5: a FIFO planted by `nobody` at the log path in a sticky shared directory:
/// `start`, `logs` and `status -n N` answer at once (clear errors), never hang.
#[test]
fn attack_fifos_planted_by_another_user_hang_no_verb() {
    let limit = Duration::from_secs(15);
    // At the log path.
    let s = Svc::new("fb-att-fifo");
    open_to_others(&s);
    sticky_dir(&s.log_dir());
    nobody_mkfifo(&s.log_file());
    let out = run_within(s.command("start", &["--timeout", "10s"]), limit, "start");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("not a regular file"), "{out:?}");
    let out = run_within(s.command("logs", &[]), limit, "logs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("not a regular file"), "{out:?}");
    let out = run_within(s.command("status", &["-n", "5"]), limit, "status -n 5");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

/// Attack 5, second half: a FIFO planted by `nobody` at the state file's temporary
/// name (it was predictable) in a sticky PID-file directory must not stall the
/// supervisor (which then had to be SIGKILLed by `stop`).
#[test]
fn attack_a_fifo_at_a_temporary_name_does_not_stall_the_supervisor() {
    let limit = Duration::from_secs(15);
    let s = Svc::new("fb-att-fifo2");
    open_to_others(&s);
    let run = s.pid_file().parent().unwrap().to_owned();
    sticky_dir(&run);
    nobody_mkfifo(&run.join(".fb-att-fifo2.pid.state.tmp"));
    let out = run_within(s.command("start", &["--timeout", "10s"]), limit, "start");
    ok(&out);
    let out = run_within(s.command("stop", &["--timeout", "5s"]), limit, "stop");
    ok(&out);
    assert!(
        text(&out.stdout).contains("stopped fb-att-fifo2"),
        "the supervisor had to be killed: {out:?}"
    );
}

/// Item 8: `run --config FIFO` fails at once (it blocked in open(2), deaf to SIGTERM).
#[test]
fn run_with_a_fifo_as_config_fails_at_once() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut c = Command::new(BIN);
    c.args(["--name", "fb-fifo-conf", "run", "--config"])
        .arg(&fifo)
        .stdin(Stdio::null());
    let out = run_within(c, Duration::from_secs(10), "run --config FIFO");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("FIFO"), "{out:?}");
}

/// Live members of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if alive(pid)
            && nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).ok()
                == Some(nix::unistd::Pid::from_raw(pgid))
        {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs, when dropped, the processes it was given (through pidfds opened at once,
/// so a reused PID is never hit): nothing a failed test started keeps running.
struct KillOnDrop(Vec<mydaemon::sys::PidFd>);

impl KillOnDrop {
    fn new(pids: &[i32]) -> KillOnDrop {
        KillOnDrop(
            pids.iter()
                .filter_map(|p| mydaemon::sys::PidFd::open(nix::unistd::Pid::from_raw(*p)).ok())
                .collect(),
        )
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for fd in &self.0 {
            let _ = fd.signal(nix::sys::signal::SIGKILL);
        }
    }
}

/// Attack 4a: a command deaf to SIGTERM, whose supervisor was SIGKILLed, is found
/// (by the published identity) and ended by the next `start`, then by `stop`.
#[test]
fn what_a_sigkilled_supervisor_left_is_ended_by_the_next_start_and_stop() {
    let s = Svc::new("fb-crash-orphan");
    // The marker says the trap is set (exec mode is ready once the command runs).
    let marker = s.dir.path().join("deaf");
    let script = format!(
        "trap '' TERM; echo > '{}'; exec sleep 3600",
        marker.display()
    );
    let cmd = ["--", "sh", "-c", &script];
    let deaf = || {
        assert!(
            wait_until(Duration::from_secs(10), || marker.exists()),
            "the command never set its SIGTERM trap"
        );
        std::fs::remove_file(&marker).unwrap();
    };
    ok(&s.run("start", &cmd));
    deaf();
    let sup = s.pid();
    let kill9 = |pid: i32| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap()
    };
    kill9(sup);
    let mut left = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            left = group_members(sup);
            !alive(sup) && left.len() == 2
        }),
        "expected the service process and its command to outlive the supervisor: {left:?}"
    );
    let _reap = KillOnDrop::new(&left);
    let st = s.run("status", &["--json"]);
    assert_eq!(st.status.code(), Some(1), "{st:?}");
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let mut orphans: Vec<i32> = v["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect();
    orphans.sort();
    left.sort();
    let published = std::fs::read_to_string(
        s.pid_file()
            .with_file_name(format!(".{}.pid.state", s.name)),
    );
    assert_eq!(orphans, left, "{st:?}\npublished: {published:?}");

    let out = s.run("start", &cmd);
    ok(&out);
    assert!(text(&out.stdout).contains("ended 2 process(es)"), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(5), || left.iter().all(|p| !alive(*p))),
        "the old copy still runs beside the new one: {left:?}"
    );
    deaf();
    let sup2 = s.pid();
    assert_ne!(sup2, sup);
    kill9(sup2);
    let mut left2 = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            left2 = group_members(sup2);
            !alive(sup2) && left2.len() == 2
        }),
        "second crash: {left2:?}"
    );
    let _reap2 = KillOnDrop::new(&left2);
    let out = s.run("stop", &["--timeout", "1s"]);
    ok(&out);
    assert!(text(&out.stdout).contains("ended 2 process(es)"), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(5), || left2.iter().all(|p| !alive(*p))),
        "stop left them running: {left2:?}"
    );
    assert_eq!(s.status_code(), 3);
}

/// Attack 4b: a process that left the service's process group and session (setsid)
/// does not survive `stop` (the supervisor is a subreaper and ends what it adopts).
#[test]
fn a_setsid_descendant_does_not_survive_stop() {
    let s = Svc::new("fb-setsid");
    let marker = s.dir.path().join("escaped.pid");
    let script = format!(
        "setsid sleep 3600 & echo $! > '{}'; exec sleep 3600",
        marker.display()
    );
    ok(&s.run("start", &["--", "sh", "-c", &script]));
    let mut escaped = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            escaped = std::fs::read_to_string(&marker)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            escaped > 0
        }),
        "the command never wrote the escaped PID"
    );
    assert!(alive(escaped));
    ok(&s.run("stop", &[]));
    assert!(
        wait_until(Duration::from_secs(5), || !alive(escaped)),
        "the setsid'ed process survived stop:\n{}",
        s.log()
    );
}

/// Item 9: from a child PID namespace the daemon holding the lock is invisible
/// (`F_GETLK` reports pid 0): `status`, `stop` and `start` say so and exit 4.
#[test]
fn a_holder_in_another_pid_namespace_is_reported_as_such() {
    let s = Svc::new("fb-pidns");
    ok(&s.run("start", &["--interval", "1h"]));
    let pid = s.pid();
    for verb in ["status", "stop", "start"] {
        let inner = s.command(verb, &[]);
        let mut c = Command::new("unshare");
        c.args(["--pid", "--fork", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(Stdio::null());
        let out = run_within(c, Duration::from_secs(20), verb);
        assert_eq!(out.status.code(), Some(4), "{verb}: {out:?}");
        assert!(
            text(&out.stderr).contains("another PID namespace"),
            "{verb}: {out:?}"
        );
    }
    assert!(alive(pid), "the daemon was disturbed");
    assert_eq!(s.status_code(), 0);
}

/// Lines a process other than the service can cause (here root's own, which may
/// reach the socket) are rate-limited: 300 forged datagrams, at most 10 lines.
#[test]
fn notifications_from_other_processes_are_rate_limited_in_the_log() {
    use std::os::unix::net::UnixDatagram;
    let s = Svc::new("fb-ratelimit");
    ok(&s.run("start", &["--interval", "1h"]));
    let addr = wait_for_notify_socket(&s);
    let sock = UnixDatagram::unbound().unwrap();
    sock.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while sent < 300 {
        match sock.send_to_addr(b"STATUS=forged\n", &addr) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the supervisor stopped reading");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    // The socket queues at most 10 (net.unix.max_dgram_qlen): when the last send went
    // through, the supervisor had read at least 290 of them.
    assert!(
        wait_until(Duration::from_secs(5), || {
            s.log().matches("ignoring a notification").count() >= 10
        }),
        "the supervisor logged fewer than 10 lines for {sent} forged datagrams"
    );
    let st = text(&s.run("status", &["--json"]).stdout);
    assert!(
        !st.contains("forged"),
        "a forged STATUS= was believed: {st}"
    );
    let n = s.log().matches("ignoring a notification").count();
    assert!(n <= 10, "{n} lines for {sent} forged datagrams");
}

/// A daemon of the previous version locked the PID file itself (no lock file): it is
/// still seen running and stopped — but the same lock taken by `nobody` is not
/// believed.
#[test]
fn a_daemon_of_the_previous_version_is_still_seen_and_stopped() {
    let s = Svc::new("fb-legacy");
    open_to_others(&s);
    let run = s.pid_file().parent().unwrap().to_owned();
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(s.pid_file(), "0\n").unwrap();
    {
        // Another user's lock, with the file naming that user's process: not believed.
        let att = attacker_locks(&[(s.pid_file(), 0, 0)]);
        assert_eq!(att.outcome, "L");
        std::fs::write(s.pid_file(), format!("{}\n", att.pid)).unwrap();
        let st = s.run("status", &["-n", "0"]);
        assert_eq!(st.status.code(), Some(1), "{st:?}");
    }
    // The old daemon held byte 0 (alive) once ready.
    let old = lockers(&[(s.pid_file(), 0, 1)], None);
    assert_eq!(old.outcome, "L");
    std::fs::write(s.pid_file(), format!("{}\n", old.pid)).unwrap();
    let st = s.run("status", &["-n", "0"]);
    assert_eq!(st.status.code(), Some(0), "{st:?}");
    assert!(
        text(&st.stdout).contains(&format!("running (pid {})", old.pid)),
        "{st:?}"
    );
    let out = s.run("start", &[]);
    ok(&out);
    assert!(text(&out.stdout).contains("already running"), "{out:?}");
    let out = s.run("stop", &["--timeout", "5s"]);
    ok(&out);
    assert!(text(&out.stdout).contains("stopped"), "{out:?}");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(old.pid.as_raw())),
        "the old daemon survived stop"
    );
    assert_eq!(s.status_code(), 3);
}
