//! Host tests of `mydaemon run` without systemd: a datagram socket stands in for
//! systemd's notify socket, signals come from `kill(2)`. They check the notify
//! protocol as sent, exec-mode exit codes and signal propagation, readiness and health
//! probes, the notify relay, the state file, and that the idle loop does not wake.

mod support;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use support::BoundedOutput;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_mydaemon");

/// A fake service manager: the notify socket, plus the daemon it started.
struct Daemon {
    child: Child,
    sock: UnixDatagram,
    lines: Receiver<String>,
    log: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `mydaemon ARGS` with `$NOTIFY_SOCKET` and extra environment `env`.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_program(BIN, args, env)
    }

    /// Starts `program ARGS` with `$NOTIFY_SOCKET` and extra environment `env`.
    fn start_program(program: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("NOTIFY_SOCKET", &path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("STATE_DIRECTORY")
            .env_remove("CONFIGURATION_DIRECTORY")
            .env_remove("RUNTIME_DIRECTORY")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            sock,
            lines,
            log: Vec::new(),
            _dir: dir,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// Waits for a notify datagram with a line starting with `want`; returns every datagram seen
    /// up to and including it.
    fn await_notify(&mut self, want: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l.starts_with(want));
                seen.push(msg);
                if hit {
                    return seen;
                }
            }
        }
        panic!(
            "no notify message with {want:?} within {timeout:?}; got {seen:?}\nlog:\n{}",
            self.drain_log().join("\n")
        );
    }

    /// Every notify datagram arriving within `window`.
    fn notifications_for(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        seen
    }

    /// Waits for a stderr line that is exactly `want` (what the child printed).
    fn await_child_line(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line == want {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "the child did not print {want:?}; log:\n{}",
            self.drain_log().join("\n")
        );
    }

    /// Waits for a stderr line containing `want`.
    fn await_log(&mut self, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(want) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line with {want:?}; log:\n{}",
            self.drain_log().join("\n")
        );
    }

    fn drain_log(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        self.log.clone()
    }

    /// Waits for the daemon to exit (panics after `timeout`).
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "daemon still running after {timeout:?}; log:\n{}",
                    self.drain_log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const T: Duration = Duration::from_secs(10);

fn status_of(args: &[&str]) -> ExitStatus {
    Command::new(BIN).args(args).bounded_output().status
}

#[test]
fn exec_mode_propagates_exit_codes() {
    assert_eq!(
        status_of(&["run", "--", "sh", "-c", "exit 7"]).code(),
        Some(7)
    );
    assert_eq!(status_of(&["run", "--", "true"]).code(), Some(0));
}

#[test]
fn exec_mode_dies_of_the_childs_signal() {
    let s = status_of(&["run", "--", "sh", "-c", "kill -TERM $$; sleep 5"]);
    assert_eq!(s.signal(), Some(Signal::SIGTERM as i32), "{s:?}");
    // A core-dumping signal becomes 128+N rather than a core of our own.
    let s = status_of(&["run", "--", "sh", "-c", "kill -SEGV $$; sleep 5"]);
    assert_eq!(s.code(), Some(128 + Signal::SIGSEGV as i32), "{s:?}");
}

#[test]
fn exec_mode_missing_command_fails_cleanly() {
    let s = status_of(&["run", "--", "/nonexistent/mydaemon-test"]);
    assert_eq!(s.code(), Some(1));
}

#[test]
fn exec_mode_forwards_signals() {
    let script = r#"
        trap 'echo got-HUP >&2' HUP
        trap 'echo got-USR1 >&2' USR1
        trap 'echo got-USR2 >&2' USR2
        trap 'exit 42' TERM
        echo child-up >&2
        while :; do sleep 0.05; done"#;
    let mut d = Daemon::start(&["run", "--", "sh", "-c", script], &[]);
    d.await_notify("READY=1", T);
    d.await_child_line("child-up", T);
    for (sig, want) in [
        (Signal::SIGHUP, "got-HUP"),
        (Signal::SIGUSR1, "got-USR1"),
        (Signal::SIGUSR2, "got-USR2"),
    ] {
        d.signal(sig);
        d.await_child_line(want, T);
    }
    d.signal(Signal::SIGTERM);
    d.await_notify("STOPPING=1", T);
    assert_eq!(d.wait(T).code(), Some(42));
}

#[test]
fn exec_mode_reload_is_bracketed() {
    let mut d = Daemon::start(
        &[
            "run",
            "--",
            "sh",
            "-c",
            "trap 'echo got-HUP >&2' HUP; echo child-up >&2; while :; do sleep 0.05; done",
        ],
        &[],
    );
    d.await_notify("READY=1", T);
    d.await_child_line("child-up", T);
    d.signal(Signal::SIGHUP);
    let seen = d.await_notify("READY=1", T);
    assert!(
        seen.iter()
            .any(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        "{seen:?}"
    );
    d.await_child_line("got-HUP", T);
    d.signal(Signal::SIGTERM);
    // sh dies of the forwarded SIGTERM: so does mydaemon.
    assert_eq!(d.wait(T).signal(), Some(Signal::SIGTERM as i32));
}

#[test]
fn ready_waits_for_the_tcp_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let script = format!(
        "import socket,sys,time\ntime.sleep(0.6)\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',{port}))\ns.listen()\nprint('listening',file=sys.stderr,flush=True)\ntime.sleep(30)\n"
    );
    let ready = format!("tcp:127.0.0.1:{port}");
    let started = Instant::now();
    let mut d = Daemon::start(
        &["run", "--ready", &ready, "--", "python3", "-c", &script],
        &[],
    );
    let seen = d.await_notify("READY=1", T);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "ready too early: {seen:?}"
    );
    // The port did open (the child says so right after listen()).
    d.await_log("listening", T);
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

#[test]
fn ready_timeout_stops_the_command_and_fails() {
    let started = Instant::now();
    let mut d = Daemon::start(
        &[
            "run",
            "--ready",
            "file:/nonexistent/ready",
            "--ready-timeout",
            "300ms",
            "--",
            "sleep",
            "30",
        ],
        &[],
    );
    let s = d.wait(T);
    assert_eq!(s.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    d.await_log("not ready after 300ms", T);
}

#[test]
fn notify_relay_passes_on_the_childs_messages() {
    let script = r#"
import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = os.environ["NOTIFY_SOCKET"]
time.sleep(0.3)
s.sendto(b"STATUS=warming up\nMAINPID=1\n", addr)
time.sleep(0.3)
s.sendto(b"READY=1\nSTATUS=serving\n", addr)
s.sendto(b"WATCHDOG=1\n", addr)
time.sleep(30)
"#;
    let started = Instant::now();
    let mut d = Daemon::start(
        &["run", "--ready", "notify", "--", "python3", "-c", script],
        &[],
    );
    let seen = d.await_notify("READY=1", T);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(seen.iter().any(|m| m == "STATUS=warming up\n"), "{seen:?}");
    // The child's ping is relayed, in the same datagram as READY=1 when mydaemon read
    // both in one wake-up (it usually does), else in one of its own.
    let ready = seen.last().unwrap();
    assert!(
        ready == "READY=1\nSTATUS=serving\n" || ready == "READY=1\nSTATUS=serving\nWATCHDOG=1\n",
        "{seen:?}"
    );
    assert!(seen.iter().all(|m| !m.contains("MAINPID")), "{seen:?}");
    let mut later = d.notifications_for(Duration::from_millis(200));
    later.extend(seen);
    assert!(
        later.iter().any(|m| m.lines().any(|l| l == "WATCHDOG=1")),
        "{later:?}"
    );
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

#[test]
fn builtin_lifecycle_state_file_and_watchdog() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let mut d = Daemon::start(
        &["--name", "hb", "run", "--interval", "100ms"],
        &[("STATE_DIRECTORY", state_dir), ("WATCHDOG_USEC", "400000")],
    );
    let seen = d.await_notify("READY=1", T);
    assert_eq!(
        seen.last().unwrap(),
        "READY=1\nSTATUS=heartbeat 0, every 100ms\n"
    );
    d.await_notify("STATUS=heartbeat 3, up", T);
    d.await_notify("WATCHDOG=1", T);
    let line = d.await_log("heartbeat 4", T);
    assert!(
        line.contains(" hb[") && line.contains("info: heartbeat 4 event=heartbeat count=4"),
        "{line}"
    );
    d.signal(Signal::SIGTERM);
    d.await_notify("STOPPING=1", T);
    assert_eq!(d.wait(T).code(), Some(0));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["name"], "hb");
    assert_eq!(state["stopped"], true);
    assert!(state["heartbeats"].as_u64().unwrap() >= 4, "{state}");
}

#[test]
fn builtin_reload_rereads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("hb.conf");
    std::fs::write(&conf, "MESSAGE=first\n").unwrap();
    let mut d = Daemon::start(
        &[
            "run",
            "--interval",
            "50ms",
            "--config",
            conf.to_str().unwrap(),
        ],
        &[],
    );
    d.await_notify("READY=1", T);
    d.await_log("heartbeat 1: first", T);
    std::fs::write(&conf, "MESSAGE=second\nINTERVAL=60ms\n").unwrap();
    d.signal(Signal::SIGHUP);
    let seen = d.await_notify("READY=1", T);
    assert!(
        seen.iter().any(|m| m.starts_with("RELOADING=1")),
        "{seen:?}"
    );
    d.await_log("reload complete", T);
    d.await_log(": second", T);
    // A broken file is logged; the service keeps running with what it had.
    std::fs::write(&conf, "INTERVAL=never\n").unwrap();
    d.signal(Signal::SIGHUP);
    d.await_notify("READY=1", T);
    d.await_log("reload failed", T);
    d.await_log(": second", T);
    d.signal(Signal::SIGINT);
    assert_eq!(d.wait(T).code(), Some(0));
}

#[test]
fn health_check_gates_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let health = format!("exec:test -e {}", flag.display());
    let mut d = Daemon::start(
        &[
            "run",
            "--health",
            &health,
            "--health-interval",
            "50ms",
            "--",
            "sleep",
            "30",
        ],
        &[("WATCHDOG_USEC", "200000")],
    );
    d.await_notify("READY=1", T);
    d.await_notify("WATCHDOG=1", T);
    std::fs::remove_file(&flag).unwrap();
    d.await_log("health check", T);
    // Drain what was in flight, then no more pings.
    d.notifications_for(Duration::from_millis(150));
    let seen = d.notifications_for(Duration::from_millis(500));
    assert!(seen.iter().all(|m| !m.contains("WATCHDOG")), "{seen:?}");
    std::fs::write(&flag, "").unwrap();
    d.await_notify("WATCHDOG=1", T);
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

#[test]
fn watchdog_for_another_pid_is_ignored() {
    let mut d = Daemon::start(
        &["run", "--interval", "1h"],
        &[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")],
    );
    d.await_notify("READY=1", T);
    let seen = d.notifications_for(Duration::from_millis(400));
    assert!(seen.iter().all(|m| !m.contains("WATCHDOG")), "{seen:?}");
}

/// Voluntary context switches of `pid` (each is a sleep in poll(2) or similar).
fn voluntary_switches(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn idle_loop_sleeps_until_its_deadlines() {
    // Watchdog 1 s (pings every 500 ms), heartbeat every 1 s. Counted between watchdog
    // pings (the events themselves, not a window of wall time): over 4 ping intervals
    // that is 4 pings and 2 heartbeats at most, ±1 for where each count falls in a
    // wake-up. A poll every 100 ms would add 20, a busy loop thousands.
    let mut d = Daemon::start(
        &["run", "--interval", "1s"],
        &[("WATCHDOG_USEC", "1000000")],
    );
    d.await_notify("READY=1", T);
    d.await_notify("WATCHDOG=1", T);
    let before = voluntary_switches(d.pid());
    let started = Instant::now();
    for _ in 0..4 {
        d.await_notify("WATCHDOG=1", T);
    }
    let woke = voluntary_switches(d.pid()) - before;
    let took = started.elapsed();
    assert!(
        woke <= 7,
        "{woke} wake-ups over 4 watchdog intervals ({took:?}) idle"
    );
    assert!(
        woke >= 3,
        "{woke} wake-ups over 4 watchdog pings: each ping is one"
    );
}

/// A command that says `READY=1` on its notify socket after 0.1 s, then sleeps.
const NOTIFY_LATE: &str = r#"
import os, socket, time
time.sleep(0.1)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1\n", os.environ["NOTIFY_SOCKET"])
time.sleep(60)
"#;

#[test]
fn idle_exec_mode_health_checks_share_the_pings_wake_ups() {
    // Watchdog 2 s: pings every 1 s, and a health check every 1 s (the default, half
    // the watchdog interval). The command is ready at some point between two pings;
    // the schedules must still meet: one wake-up per ping, health check and ping
    // together (a unix: probe answers at once), counted over 4 pings (±1 for where
    // each count falls). Misaligned they take two; a wake-up for each readable-looking
    // descriptor or an early timer served twice, more.
    let dir = tempfile::tempdir().unwrap();
    let health = dir.path().join("health");
    let _listener = std::os::unix::net::UnixListener::bind(&health).unwrap();
    let probe = format!("unix:{}", health.display());
    let mut d = Daemon::start(
        &[
            "run",
            "--ready",
            "notify",
            "--health",
            &probe,
            "--",
            "python3",
            "-c",
            NOTIFY_LATE,
        ],
        &[("WATCHDOG_USEC", "2000000")],
    );
    d.await_notify("READY=1", T);
    d.await_notify("WATCHDOG=1", T);
    let before = voluntary_switches(d.pid());
    let started = Instant::now();
    for _ in 0..4 {
        d.await_notify("WATCHDOG=1", T);
    }
    let woke = voluntary_switches(d.pid()) - before;
    let took = started.elapsed();
    assert!(
        woke <= 5,
        "{woke} wake-ups over 4 watchdog pings ({took:?}) idle, health checks included"
    );
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

#[test]
fn an_unhealthy_idle_command_wakes_no_more_than_a_healthy_one() {
    // Watchdog 1.6 s, health check every 800 ms (the default), failing: pings are
    // withheld, and the loop wakes for the health checks (and, once, for a last
    // chance before systemd's watchdog would fire), about 4 times in 3.2 s. Asking
    // the service every eighth of the interval would be 16 more.
    let mut d = Daemon::start(
        &[
            "run",
            "--health",
            "unix:/nonexistent/mydaemon-health",
            "--",
            "sleep",
            "60",
        ],
        &[("WATCHDOG_USEC", "1600000")],
    );
    d.await_notify("READY=1", T);
    d.await_log("health check", T);
    let before = voluntary_switches(d.pid());
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(3200));
    let woke = voluntary_switches(d.pid()) - before;
    let took = started.elapsed();
    assert!(
        woke <= 8,
        "{woke} wake-ups in {took:?} of an idle, unhealthy command"
    );
    let seen = d.notifications_for(Duration::from_millis(10));
    assert!(seen.iter().all(|m| !m.contains("WATCHDOG")), "{seen:?}");
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

/// The state directory in `$STATE_DIRECTORY` is where the file goes (path check).
#[test]
fn state_file_lands_in_the_first_state_directory() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let dirs = format!("{}:{}", a.path().display(), b.path().display());
    let mut d = Daemon::start(&["run", "--interval", "1h"], &[("STATE_DIRECTORY", &dirs)]);
    d.await_notify("READY=1", T);
    assert!(Path::new(&a.path().join("state.json")).exists());
    assert!(!PathBuf::from(b.path()).join("state.json").exists());
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait(T).code(), Some(0));
}

/// The example service on the library trait (`examples/greeter.rs`), which `cargo test`
/// builds next to the binary: ready once listening, greets, reloads, stops cleanly.
#[test]
fn greeter_example_serves_reloads_and_stops() {
    let exe = Path::new(BIN).parent().unwrap().join("examples/greeter");
    assert!(
        exe.exists(),
        "{} not built (`make test` and `cargo test` build examples; `--test` alone does not)",
        exe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let greeting = dir.path().join("greeting");
    std::fs::write(&greeting, "first greeting\n").unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut d = Daemon::start_program(
        exe.to_str().unwrap(),
        &[&addr.to_string(), greeting.to_str().unwrap()],
        &[],
    );
    d.await_notify("READY=1", T);
    let greet = || {
        use std::io::Read;
        let mut s = String::new();
        std::net::TcpStream::connect(addr)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert_eq!(greet(), "first greeting\n");
    d.await_notify("STATUS=1 greetings served", T);
    std::fs::write(&greeting, "second greeting\n").unwrap();
    d.signal(Signal::SIGHUP);
    let seen = d.await_notify("READY=1", T);
    assert!(
        seen.iter().any(|m| m.starts_with("RELOADING=1")),
        "{seen:?}"
    );
    assert_eq!(greet(), "second greeting\n");
    d.signal(Signal::SIGTERM);
    d.await_notify("STOPPING=1", T);
    assert_eq!(d.wait(T).code(), Some(0));
}

/// CPU time (user + system, in clock ticks) of `pid`.
fn cpu_ticks(pid: Pid) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn stopping_during_a_readiness_probe_does_not_spin() {
    // The probe command runs 300 ms (then fails); the command takes a second to stop.
    let mut d = Daemon::start(
        &[
            "run",
            "--ready",
            "exec:sleep 0.3; exit 1",
            "--",
            "sh",
            "-c",
            "trap 'sleep 1; exit 0' TERM; echo child-up >&2; while :; do sleep 0.05; done",
        ],
        &[],
    );
    d.await_child_line("child-up", T);
    d.signal(Signal::SIGTERM);
    d.await_notify("STOPPING=1", T);
    let before = cpu_ticks(d.pid());
    std::thread::sleep(Duration::from_millis(800));
    let spent = cpu_ticks(d.pid()) - before;
    assert!(spent <= 10, "{spent} ticks of CPU in 800 ms while stopping");
    assert_eq!(d.wait(T).code(), Some(0));
}

/// Exec mode believes only the command and its descendants (systemd's
/// `NotifyAccess=main`, widened to the command's own children so that a script's
/// `systemd-notify` is heard): a READY=1 from another process is ignored and logged,
/// rate-limited; one from a child of the command still counts.
#[test]
fn notify_relay_ignores_a_process_that_is_not_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = format!(
        "echo \"notify-socket=$NOTIFY_SOCKET\" >&2\n\
         while [ ! -e '{}' ]; do sleep 0.05; done\n\
         python3 -c 'import os, socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"READY=1\\nSTATUS=from a child\", os.environ[\"NOTIFY_SOCKET\"])'\n\
         exec sleep 30\n",
        go.display()
    );
    let mut d = Daemon::start(
        &["run", "--ready", "notify", "--", "sh", "-c", &script],
        &[],
    );
    let line = d.await_log("notify-socket=/", T);
    let path = line.split_once("notify-socket=").unwrap().1.to_owned();
    let forger = UnixDatagram::unbound().unwrap();
    forger
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // More than the kernel queues (10) and more than the log allows (10 per 30 s):
    // blocking sends, so each is read before the queue takes more.
    for _ in 0..30 {
        forger.send_to(b"READY=1\nSTATUS=forged\n", &path).unwrap();
    }
    let seen = d.notifications_for(Duration::from_millis(500));
    assert!(
        seen.iter()
            .all(|m| !m.lines().any(|l| l == "READY=1") && !m.contains("forged")),
        "{seen:?}"
    );
    let want = format!(
        "ignoring a notification from pid {}, not the command",
        std::process::id()
    );
    d.await_log(&want, T);
    let n = d.drain_log().iter().filter(|l| l.contains(&want)).count();
    assert!((1..=10).contains(&n), "{n} lines for 30 forged datagrams");
    // The command's own child is believed.
    std::fs::write(&go, "").unwrap();
    let seen = d.await_notify("READY=1", T);
    assert!(
        seen.last().unwrap().contains("STATUS=from a child"),
        "{seen:?}"
    );
    assert!(seen.iter().all(|m| !m.contains("forged")), "{seen:?}");
    d.signal(Signal::SIGTERM);
    d.wait(T);
}

#[test]
fn notify_readiness_times_out_when_the_command_stays_silent() {
    let started = Instant::now();
    let mut d = Daemon::start(
        &[
            "run",
            "--ready",
            "notify",
            "--ready-timeout",
            "300ms",
            "--",
            "sleep",
            "30",
        ],
        &[],
    );
    assert_eq!(d.wait(T).code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    d.await_log("sent no READY=1 within 300ms", T);
    let seen = d.notifications_for(Duration::from_millis(100));
    assert!(!seen.is_empty(), "the STATUS= updates were sent");
    assert!(seen.iter().all(|m| !m.starts_with("READY=1")), "{seen:?}");
}

/// A loopback TCP address whose SYNs go unanswered, like a hung service's: a listener
/// with backlog 0, its one-slot accept queue filled by a connection nobody accepts.
/// Keep both descriptors alive while the address is in use.
fn blackhole() -> (
    std::os::fd::OwnedFd,
    std::net::TcpStream,
    std::net::SocketAddr,
) {
    use nix::sys::socket::{
        bind, getsockname, listen, socket, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let l = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(l.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&l, Backlog::new(0).unwrap()).unwrap();
    let addr: SockaddrIn = getsockname(l.as_raw_fd()).unwrap();
    let addr = std::net::SocketAddr::V4(addr.into());
    let filler = std::net::TcpStream::connect(addr).unwrap();
    // The queue is full: a further connect neither succeeds nor fails.
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
        other => panic!("{addr} is no blackhole on this host: {other:?}"),
    }
    (l, filler, addr)
}

#[test]
fn a_hanging_tcp_health_probe_does_not_block_the_loop() {
    let (_listener, _filler, addr) = blackhole();
    let health = format!("tcp:{addr}");
    let mut d = Daemon::start(
        &[
            "run",
            "--health",
            &health,
            "--health-interval",
            "100ms",
            "--health-timeout",
            "3s",
            "--",
            "sleep",
            "30",
        ],
        &[("WATCHDOG_USEC", "400000")],
    );
    // The first probe starts with READY=1 and hangs for 3 s; meanwhile the loop keeps
    // pinging the watchdog (every 200 ms) ...
    d.await_notify("READY=1", T);
    let seen = d.notifications_for(Duration::from_millis(700));
    let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 2, "{pings} pings while the probe hangs: {seen:?}");
    // ... and handles SIGTERM at once.
    let asked = Instant::now();
    d.signal(Signal::SIGTERM);
    d.wait(T);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "SIGTERM took {took:?} with a probe hanging"
    );
}

#[test]
fn a_command_ready_only_after_the_timeout_is_never_reported_ready() {
    // On SIGTERM (mydaemon giving up on it) the command finally says READY=1.
    let script = "import os, signal, socket, sys, time\n\
        def term(s, f):\n\
        \x20   socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1\\nSTATUS=finally up', os.environ['NOTIFY_SOCKET'])\n\
        \x20   time.sleep(0.2)\n\
        \x20   sys.exit(0)\n\
        signal.signal(signal.SIGTERM, term)\n\
        time.sleep(30)\n";
    let mut d = Daemon::start(
        &[
            "run",
            "--ready",
            "notify",
            "--ready-timeout",
            "300ms",
            "--",
            "python3",
            "-c",
            script,
        ],
        &[],
    );
    let seen = d.await_notify("STOPPING=1", T);
    assert_eq!(d.wait(T).code(), Some(1));
    let mut seen = seen;
    seen.extend(d.notifications_for(Duration::from_millis(100)));
    assert!(
        seen.iter().all(|m| !m.lines().any(|l| l == "READY=1")),
        "READY=1 after giving up: {seen:?}"
    );
    d.await_log("sent no READY=1 within 300ms", T);
}
