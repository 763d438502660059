//! Host tests of socket activation without systemd (issue 12), PID-file backend: the
//! supervisor binds `--listen` addresses itself, hands them on at fd 3 with
//! `LISTEN_PID` the server's own PID, and keeps them open across restarts, so a client
//! connecting in a loop loses no connection while the service restarts.

mod support;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ok, text, BoundedOutput};

const BIN: &str = env!("CARGO_BIN_EXE_mydaemon");

/// The socket-activated test server (see the file).
pub const FD3_SERVER: &str = include_str!("support/fd3_server.py");

type Svc = support::PidfileService;

/// A free TCP port on 127.0.0.1 (bound and released: a race with other tests is
/// possible but the port is then refused loudly by `start`).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on 127.0.0.1 (bound and released).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One connection: the server's answer (its PID), or what went wrong.
fn ask(port: u16) -> Result<u32, String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).map_err(|e| format!("read: {e}"))?;
    s.trim().parse().map_err(|_| format!("answer {s:?}"))
}

/// What the client loop saw: answers (server PIDs) and failures.
#[derive(Default)]
struct Seen {
    answers: Vec<u32>,
    failures: Vec<String>,
}

/// Connects every 5 ms on a thread until told to stop.
fn client_loop(
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let r = ask(port);
            let mut s = seen.lock().unwrap();
            match r {
                Ok(pid) => s.answers.push(pid),
                Err(e) => s.failures.push(e),
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn restarts_under_a_client_loop_drop_no_connection() {
    let s = Svc::new("sk-restart");
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port},name=web");
    // A negative check first: with the service stopped, the client sees refusals.
    assert!(ask(port).is_err_and(|e| e.contains("refused")));
    ok(&s.run(
        "start",
        &[
            "--listen",
            &listen,
            "--",
            "/usr/bin/python3",
            "-c",
            FD3_SERVER,
        ],
    ));
    let first = ask(port).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let client = client_loop(port, stop.clone(), seen.clone());
    let t = Instant::now();
    for i in 0..20 {
        let before: std::collections::BTreeSet<u32> =
            seen.lock().unwrap().answers.iter().copied().collect();
        let out = s.run("restart", &[]);
        ok(&out);
        assert!(
            text(&out.stdout).contains("sockets kept open"),
            "restart {i}: {out:?}"
        );
        // The loop goes on until the new server has answered the client.
        support::wait_for(
            &format!("an answer from the server started by restart {i}"),
            Duration::from_secs(20),
            || {
                seen.lock()
                    .unwrap()
                    .answers
                    .iter()
                    .any(|p| !before.contains(p) && *p != first)
            },
        );
    }
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let seen = seen.lock().unwrap();
    // The first server (asked before the loop began) and one per restart.
    let servers: std::collections::BTreeSet<u32> = seen
        .answers
        .iter()
        .copied()
        .chain(std::iter::once(first))
        .collect();
    eprintln!(
        "20 restarts in {} ms: {} connections, {} failed, {} server processes answered",
        took.as_millis(),
        seen.answers.len(),
        seen.failures.len(),
        servers.len()
    );
    assert!(
        seen.failures.is_empty(),
        "failed connections: {:?}",
        seen.failures
    );
    assert_eq!(servers.len(), 21, "answered by {servers:?}");
    let st: serde_json::Value =
        serde_json::from_slice(&s.run("status", &["--json"]).stdout).unwrap();
    assert_eq!(st["n_restarts"], 20, "{st}");
    assert!(s.log().contains("serving web from fd 3"), "{}", s.log());
}

#[test]
fn a_port_already_taken_fails_the_start_in_words() {
    let s = Svc::new("sk-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = s.run(
        "start",
        &[
            "--listen",
            &format!("tcp:127.0.0.1:{port}"),
            "--",
            "/usr/bin/python3",
            "-c",
            FD3_SERVER,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on tcp:127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    assert_eq!(
        s.run("status", &[]).status.code(),
        Some(3),
        "nothing left running"
    );
}

#[test]
fn run_by_hand_binds_the_addresses_itself_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let script = "import os, socket\n\
        s = socket.socket(fileno=3)\n\
        u = socket.socket(fileno=4)\n\
        print(os.environ['LISTEN_FDNAMES'], s.getsockname(), u.type.name, \
        u.getsockname()[0], os.environ['LISTEN_PID'] == str(os.getpid()), flush=True)\n";
    let out = Command::new(BIN)
        .args(["--name", "byhand", "run", "--listen"])
        .arg(format!("unix:{},name=ctl", sock.display()))
        .arg("--listen")
        .arg(format!("udp:127.0.0.1:{}", free_udp_port()))
        .args(["--", "/usr/bin/python3", "-c", script])
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .bounded_output();
    ok(&out);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("ctl:byhand {} SOCK_DGRAM 127.0.0.1 True", sock.display())
    );
}
