//! Reloads that mean reloaded, under a real systemd (issue 12): the generated unit's
//! `ExecReload=` waits for the service, so `mydaemon reload` and `systemctl reload`
//! return only once it has reloaded, and fail when the reload failed.
//! They need root: without it `make test` shows them as skipped.

mod testbox;

use std::process::Output;
use std::time::{Duration, Instant};

use testbox::{TestBox, BIN};

/// The slow-reloading test command (see the file).
const SLOW_RELOADER: &str = include_str!("support/slow_reloader.py");

use testbox::text;

fn prop(bx: &TestBox, unit: &str, prop: &str) -> String {
    bx.sh_ok(&format!("systemctl show -p {prop} --value {unit}"))
        .trim()
        .to_string()
}

/// Runs `script` in the box, returning its output and how long it took.
fn timed(bx: &TestBox, script: &str) -> (Output, Duration) {
    let t = Instant::now();
    let out = bx.sh(script);
    (out, t.elapsed())
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn reload_waits_for_the_service_and_reports_its_failure() {
    let bx = TestBox::boot();
    bx.write_file("/usr/local/bin/slow-reloader", SLOW_RELOADER.as_bytes());
    bx.sh_ok("chmod 755 /usr/local/bin/slow-reloader");
    bx.sh_ok(&format!(
        "{BIN} --name slow install --now --ready notify -- /usr/local/bin/slow-reloader 2"
    ));
    assert!(
        bx.read_file("/etc/systemd/system/slow.service")
            .windows(b"reload-wait $MAINPID".len())
            .any(|w| w == b"reload-wait $MAINPID"),
        "ExecReload= is the waiting helper"
    );
    assert_eq!(prop(&bx, "slow.service", "StatusText"), "serving");

    // `mydaemon reload`: returns after the command's 2 s of work, not before.
    let (out, took) = timed(&bx, &format!("{BIN} --name slow reload"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("mydaemon reload took {} ms", took.as_millis());
    assert!(took >= Duration::from_secs(2), "returned after {took:?}");
    assert_eq!(prop(&bx, "slow.service", "StatusText"), "reloaded 1");
    assert_eq!(prop(&bx, "slow.service", "ActiveState"), "active");

    // `systemctl reload`: the same.
    let (out, took) = timed(&bx, "systemctl reload slow");
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("systemctl reload took {} ms", took.as_millis());
    assert!(took >= Duration::from_secs(2), "returned after {took:?}");
    assert_eq!(prop(&bx, "slow.service", "StatusText"), "reloaded 2");
    // The command's own RELOADING=1 … READY=1 were not passed on as more reloads:
    // still active, two reloads logged by mydaemon.
    let journal = bx.journal("slow.service");
    assert_eq!(journal.matches("reload complete").count(), 2, "{journal}");

    // A reload the command never confirms fails after --reload-timeout, in words.
    bx.sh_ok(&format!(
        "{BIN} --name stuck install --now --ready notify --reload-timeout 1s \
         -- /usr/local/bin/slow-reloader 600"
    ));
    let (out, took) = timed(&bx, &format!("{BIN} --name stuck reload"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took >= Duration::from_secs(1), "returned after {took:?}");
    assert!(
        err.contains("reload failed: ") && err.contains("slow-reloader sent no READY=1 within 1s"),
        "the service's words: {err}"
    );
    let (out, _) = timed(&bx, "systemctl reload stuck");
    assert_ne!(
        out.status.code(),
        Some(0),
        "systemctl reload of a failing reload"
    );
    // Still running, on what it had.
    assert_eq!(prop(&bx, "stuck.service", "ActiveState"), "active");
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn a_broken_config_fails_the_reload_of_the_built_in_workload_in_its_words() {
    let bx = TestBox::boot();
    bx.write_file("/etc/hb.conf", b"INTERVAL=1s\n");
    bx.sh_ok(&format!(
        "{BIN} --name hb install --now --config /etc/hb.conf"
    ));
    // A good configuration reloads (the negative case first proves the path works).
    bx.sh_ok(&format!("{BIN} --name hb reload"));
    bx.write_file("/etc/hb.conf", b"INTERVAL=soon\n");
    let out = bx.sh(&format!("{BIN} --name hb reload"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reload failed: /etc/hb.conf: line 1"), "{err}");
    let out = bx.sh("systemctl reload hb");
    assert_ne!(
        out.status.code(),
        Some(0),
        "systemctl reload of a broken config"
    );
    // Still running on the previous configuration; a fixed file reloads again.
    assert_eq!(prop(&bx, "hb.service", "ActiveState"), "active");
    bx.write_file("/etc/hb.conf", b"INTERVAL=2s\n");
    bx.sh_ok(&format!("{BIN} --name hb reload"));
}
