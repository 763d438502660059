//! Smoke tests of the real-systemd test box (`tests/testbox`): a booted box runs systemd as
//! PID 1 with a working system bus, journald, logind and per-user managers, runs the
//! binary under test, keeps its writes to itself, and boots several times in parallel.
//! They need root: without it `make test` shows them as skipped.

mod testbox;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbox::{TestBox, BIN};

/// A string unique to this run, to recognise our own marks.
fn nonce() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}-{}", std::process::id(), t.as_nanos())
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn box_runs_real_systemd_with_bus_journal_and_user_manager() {
    let bx = TestBox::boot();
    eprintln!("box boot time: {:?}", bx.boot_time());
    let pid = bx.pid();
    assert!(pid > 1, "host PID of the box's systemd: {pid}");

    // PID 1 inside is systemd, and it is the process the box reports on the host.
    let exe = bx.sh_ok("readlink /proc/1/exe");
    assert!(exe.trim().ends_with("/systemd"), "PID 1 runs {exe:?}");
    let host_exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        host_exe.ends_with("systemd"),
        "host PID {pid} runs {host_exe:?}"
    );
    assert_eq!(
        bx.sh_ok("echo $container").trim(),
        "",
        "sh gets a clean env"
    );
    assert_eq!(
        bx.sh_ok("tr '\\0' '\\n' < /proc/1/environ | grep ^container=")
            .trim(),
        "container=mydaemon-testbox"
    );

    assert_eq!(
        bx.sh_ok("systemctl get-default").trim(),
        "multi-user.target"
    );
    let lo = bx.sh_ok("ip -o -4 addr show dev lo");
    assert!(lo.contains("127.0.0.1/8"), "loopback is up: {lo:?}");
    let state = bx.sh("systemctl is-system-running");
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    assert!(
        state == "running" || state == "degraded",
        "system state {state:?}"
    );

    // The system bus answers, and it is this systemd that answers.
    let version = bx.sh_ok(
        "busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
         org.freedesktop.systemd1.Manager Version",
    );
    let major = bx.sh_ok("systemctl --version | head -1 | cut -d' ' -f2");
    assert!(
        version.starts_with(&format!("s \"{}", major.trim())),
        "Version over the bus: {version:?}, systemctl says {major:?}"
    );

    // A written unit that logs a line shows up in the journal.
    let mark = format!("smoke-mark-{}", nonce());
    bx.write_file(
        "/etc/systemd/system/smoke-log.service",
        format!("[Service]\nType=oneshot\nExecStart=/bin/echo {mark}\n").as_bytes(),
    );
    bx.sh_ok("systemctl daemon-reload && systemctl start smoke-log.service");
    bx.wait_for(
        "the unit's line in the journal",
        Duration::from_secs(10),
        |bx| {
            bx.sh("journalctl -u smoke-log.service -o cat --no-pager")
                .stdout
                .windows(mark.len())
                .any(|w| w == mark.as_bytes())
        },
    );
    // A transient unit too.
    bx.sh_ok(&format!(
        "systemd-run --wait -q -u smoke-transient /bin/echo t-{mark}"
    ));
    bx.wait_for("the transient unit's line", Duration::from_secs(10), |bx| {
        bx.journal("smoke-transient").contains(&format!("t-{mark}"))
    });

    // The binary under test runs inside.
    let v = bx.sh_ok(&format!("{BIN} --version"));
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")),
        "{BIN} --version: {v:?}"
    );

    // Writes stay in the box, wherever they go.
    for path in [
        format!("/root/testbox-{mark}"),
        format!("/etc/testbox-{mark}"),
        format!("/var/lib/testbox-{mark}/f"),
        format!("/tmp/testbox-{mark}"),
    ] {
        bx.write_file(&path, b"box only\n");
        assert_eq!(bx.read_file(&path), b"box only\n");
        assert!(!Path::new(&path).exists(), "{path} leaked to the host");
    }
    bx.sh_ok(&format!(
        "echo x > /usr/testbox-{mark}; touch /dev/shm/testbox-{mark}"
    ));
    assert!(!Path::new(&format!("/usr/testbox-{mark}")).exists());
    assert!(!Path::new(&format!("/dev/shm/testbox-{mark}")).exists());
    assert_ne!(
        bx.sh_ok("hostname").trim(),
        String::from_utf8(Command::new("hostname").output().unwrap().stdout)
            .unwrap()
            .trim(),
        "the box has its own hostname"
    );

    // A lingering user gets a service manager and a session bus.
    let t = std::time::Instant::now();
    let uid = bx.add_lingering_user("alice");
    eprintln!("lingering user manager ready in {:?}", t.elapsed());
    assert!(uid >= 1000, "uid {uid}");
    let out = bx.sh_as(
        "alice",
        "id -u; echo $XDG_RUNTIME_DIR; systemctl --user is-system-running",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "{text:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines[0], uid.to_string());
    assert_eq!(lines[1], format!("/run/user/{uid}"));
    assert!(
        lines[2] == "running" || lines[2] == "degraded",
        "user manager: {text:?}"
    );
    let out = bx.sh_as(
        "alice",
        "busctl --user get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
         org.freedesktop.systemd1.Manager Version",
    );
    assert!(out.status.success(), "user bus: {out:?}");

    // Dropping the box ends its systemd and removes its cgroup.
    let cgroup = bx.cgroup().to_path_buf();
    assert!(cgroup.join("cgroup.procs").exists());
    drop(bx);
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    assert!(
        std::fs::read_link(format!("/proc/{pid}/exe")).map_or(true, |e| !e.ends_with("systemd")),
        "the box's systemd (host PID {pid}) survived the drop"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn three_boxes_boot_in_parallel_and_stay_apart() {
    let boxes: Vec<TestBox> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(TestBox::boot)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let times: Vec<_> = boxes.iter().map(|b| b.boot_time()).collect();
    eprintln!("3 parallel box boot times: {times:?}");
    let mark = nonce();
    for (i, bx) in boxes.iter().enumerate() {
        bx.write_file("/etc/which-box", format!("{i}-{mark}").as_bytes());
    }
    let mut hostnames = Vec::new();
    for (i, bx) in boxes.iter().enumerate() {
        assert_eq!(
            bx.read_file("/etc/which-box"),
            format!("{i}-{mark}").as_bytes()
        );
        // Each box sees only its own cgroup tree and its own processes.
        assert_eq!(
            bx.sh_ok("cat /proc/1/cgroup | grep '^0::'").trim(),
            "0::/init.scope"
        );
        let pids = bx.sh_ok("ls /proc | grep -c '^[0-9]'");
        assert!(
            pids.trim().parse::<u32>().unwrap() < 100,
            "processes: {pids}"
        );
        hostnames.push(bx.sh_ok("hostname"));
    }
    hostnames.sort();
    hostnames.dedup();
    assert_eq!(hostnames.len(), 3, "hostnames {hostnames:?}");
    let pids: Vec<i32> = boxes.iter().map(TestBox::pid).collect();
    drop(boxes);
    for pid in pids {
        assert!(
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .map_or(true, |e| !e.ends_with("systemd")),
            "host PID {pid} survived"
        );
    }
}

/// Run by `without_root_box_tests_fail_and_name_the_reason` as an unprivileged user
/// (left out of `make test` by `.config/nextest.toml`).
#[test]
#[ignore = "helper: run by without_root_box_tests_fail_and_name_the_reason"]
fn probe_boot() {
    let _bx = TestBox::boot();
    println!("PROBE-BOX=booted");
}

/// Without root the box cannot boot: a box test that is asked to run fails and says
/// why (it never passes quietly); `make test` leaves such tests out, as skipped.
#[test]
fn without_root_box_tests_fail_and_name_the_reason() {
    // Run this test binary's probe as nobody, from a copy nobody can execute.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("probe");
    // Copied by `cp`, not std::fs::copy: a write fd open in this process could leak into a
    // child forked meanwhile by another test thread and make the exec fail (ETXTBSY).
    let cp = Command::new("cp")
        .arg(std::env::current_exe().unwrap())
        .arg(&exe)
        .status()
        .unwrap();
    assert!(cp.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args([
        "--ignored",
        "--exact",
        "probe_boot",
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir("/");
    let out = testbox::output_within(&mut cmd, Duration::from_secs(60), "the box probe as nobody");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !out.status.success(),
        "a box test without root must fail, not pass: {stdout}\n{stderr}"
    );
    assert!(!stdout.contains("PROBE-BOX="), "{stdout}");
    assert!(
        stderr.contains("the test box cannot boot") && stderr.contains("not root"),
        "the failure names the reason: {stdout}\n{stderr}"
    );
}

/// Kills and reaps a child when dropped, so that a failing test leaves nothing behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn boot_reaps_cgroups_and_temp_dirs_left_by_dead_test_processes() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let root = testbox::cgroup2_mount().expect("a cgroup2 hierarchy on the host");
    // A box cgroup whose owner (PID 99999999, above any pid_max) is gone, still holding
    // a process, as after a test process was killed. A box booting meanwhile (tests run
    // in parallel) may reap it before the process is in: then the spawn fails; retry.
    let stale = root.join(format!("mydaemon-testbox.99999999.{}", std::process::id()));
    let mut orphan = None;
    for _ in 0..50 {
        let _ = std::fs::create_dir_all(stale.join("child"));
        let Ok(procs) = std::fs::OpenOptions::new()
            .write(true)
            .open(stale.join("child/cgroup.procs"))
        else {
            continue;
        };
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        // SAFETY: only a write(2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::write(&procs, b"0")?;
                Ok(())
            });
        }
        if let Ok(child) = cmd.spawn() {
            orphan = Some(KillOnDrop(child));
            break;
        }
    }
    let mut orphan = orphan.expect("a process in the stale cgroup");
    let stale_dir = std::env::temp_dir().join(format!(
        "mydaemon-testbox.99999999.{}.x",
        std::process::id()
    ));
    std::fs::create_dir_all(&stale_dir).unwrap();

    let bx = TestBox::boot();
    drop(bx);
    let status = orphan.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the stale box's process was killed"
    );
    assert!(!stale.exists(), "{} was removed", stale.display());
    assert!(!stale_dir.exists(), "{} was removed", stale_dir.display());
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn make_run_starts_the_daemon_under_systemd_from_a_clone_in_root() {
    let bx = TestBox::boot();
    // A fresh clone as root lands in /root (mode 0700): its target/release/mydaemon is
    // out of reach of the service's dynamic user. CARGO=true: the binary under test
    // stands in for the release build.
    // The Makefile is copied in by content: the checkout may be under the host's /tmp,
    // which the box replaces with its own.
    let makefile = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile"))
        .expect("read the Makefile");
    bx.write_file("/root/mydaemon/Makefile", &makefile);
    bx.sh_ok(&format!(
        "set -e; mkdir -p /root/mydaemon/target/release; chmod 700 /root; \
         cp {BIN} /root/mydaemon/target/release/mydaemon"
    ));
    let out = bx.sh("cd /root/mydaemon && make run CARGO=true 2>&1");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("make run:\n{text}");
    assert!(out.status.success(), "make run failed:\n{text}");
    assert!(text.contains("● mydaemon.service"), "{text}");
    assert!(text.contains("active (running)"), "{text}");
    assert_eq!(
        bx.sh_ok("systemctl is-active mydaemon.service").trim(),
        "active"
    );
    let exec = bx.sh_ok("systemctl show -p ExecStart --value mydaemon.service");
    assert!(exec.contains("path=/usr/local/bin/mydaemon ;"), "{exec}");
    // Again: nothing to change, still running.
    let out = bx.sh("cd /root/mydaemon && make run CARGO=true 2>&1");
    assert!(
        out.status.success(),
        "second make run:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
