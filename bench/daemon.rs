//! `cargo bench --bench daemon`: `mydaemon run` under systemd, in the test box.
//!
//! - Start+stop cycle (`systemctl start` + `systemctl stop`, bench/timeit.py: rounds
//!   interleaved ABBA, medians) of a `mydaemon run` unit (built-in workload) against a
//!   plain `Type=simple` unit running `sleep infinity` (target ≤ 1.2):
//!   * `md-plain`: the same bare unit settings as the reference, so the ratio is the cost
//!     of mydaemon itself (exec, readiness, STOPPING=1, graceful exit); also against
//!     sleep as `Type=exec`, whose start waits for the exec as a notify start must;
//!   * `md-strict`: the strict unit `mydaemon unit` generates, against the same plain
//!     sleep unit, and, to show where the difference goes, against `sleep-strict`: sleep
//!     under the very same `[Service]` sandbox lines as `Type=exec`, so that its start,
//!     like a notify unit's, waits for systemd to set the sandbox up and exec the
//!     program (a `Type=simple` start returns right after the fork).
//! - Idle footprint of the generated strict unit with `WatchdogSec=30` and a 60 s
//!   heartbeat: resident memory (target ≤ 4 MiB), private memory (`RssAnon`, target
//!   ≤ 512 KiB) and wake-ups (voluntary context switches) over 60 s of idling (target
//!   ≤ 4); measured at the same time, exec mode in the same kind of unit: a command
//!   that says `READY=1` on its notify socket and listens on a TCP port, checked by
//!   `--health tcp:` every 10 s (the default with `WatchdogSec=30`; target ≤ 6 wake-ups,
//!   one per check, the pings sharing them).
//!
//! Ratios and counts are printed, never asserted; a command that fails, a unit that
//! fails to start, or an idle unit restarted during the measurement (watchdog) fails
//! the bench. `MYDAEMON_BENCH_ROUNDS` (default 41) and `MYDAEMON_IDLE_SECS` (default 60)
//! tune it; `MYDAEMON_BENCH_BIN` measures another build of mydaemon (a before/after
//! comparison) instead of this one's. Without root it skips as the tests do.

#[path = "../tests/testbox/mod.rs"]
mod testbox;

#[path = "common.rs"]
mod common;

use std::time::Duration;

use common::{report, rounds_from_env, timeit};
use testbox::{TestBox, BIN};

/// `systemctl show -p NAME --value UNIT`.
fn prop(bx: &TestBox, unit: &str, name: &str) -> String {
    bx.sh_ok(&format!("systemctl show -p {name} --value {unit}"))
        .trim()
        .to_owned()
}

/// `VmRSS` (KiB), `RssAnon` (KiB: private memory) and voluntary context switches (each
/// one a sleep the process woke from) of `pid` inside the box.
fn footprint(bx: &TestBox, pid: &str) -> (u64, u64, u64) {
    let status = bx.sh_ok(&format!("cat /proc/{pid}/status"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (
        field("VmRSS:"),
        field("RssAnon:"),
        field("voluntary_ctxt_switches:"),
    )
}

/// Installs the units compared: `md-plain`, `md-strict`, `sleep-plain`,
/// `sleep-plain-exec`, `sleep-strict`.
fn install_units(bx: &TestBox) {
    bx.write_file(
        "/etc/systemd/system/md-plain.service",
        format!("[Service]\nType=notify\nNotifyAccess=main\nExecStart={BIN} --name md-plain run\n")
            .as_bytes(),
    );
    bx.write_file(
        "/etc/systemd/system/sleep-plain.service",
        b"[Service]\nType=simple\nExecStart=/bin/sleep infinity\n",
    );
    bx.write_file(
        "/etc/systemd/system/sleep-plain-exec.service",
        b"[Service]\nType=exec\nExecStart=/bin/sleep infinity\n",
    );
    let strict = bx.sh_ok(&format!("{BIN} unit --name md-strict --exec-path {BIN}"));
    bx.write_file("/etc/systemd/system/md-strict.service", strict.as_bytes());
    // The same unit with sleep as an exec service: every sandbox line kept.
    let sleep_strict: String = strict
        .lines()
        .filter(|l| !l.starts_with("WatchdogSec=") && !l.starts_with("NotifyAccess="))
        .map(|l| {
            if l.starts_with("ExecStart=") {
                "ExecStart=/bin/sleep infinity".to_owned()
            } else if l == "Type=notify" {
                "Type=exec".to_owned()
            } else if l.starts_with("ExecReload=") {
                String::new()
            } else {
                l.replace("md-strict", "sleep-strict")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    bx.write_file(
        "/etc/systemd/system/sleep-strict.service",
        sleep_strict.as_bytes(),
    );
    // Lift every service's start limit (the generated unit allows 5 starts in 60 s) for
    // the loops of starts: a drop-in for all services of the box.
    bx.sh_ok(
        "mkdir -p /etc/systemd/system/service.d && \
         printf '[Unit]\\nStartLimitIntervalSec=0\\n' \
             > /etc/systemd/system/service.d/bench-start-limit.conf",
    );
    bx.sh_ok("systemctl daemon-reload");
    for unit in ["md-plain", "md-strict", "sleep-plain", "sleep-strict"] {
        bx.sh_ok(&format!(
            "test \"$(systemctl show -p StartLimitIntervalUSec --value {unit})\" = 0"
        ));
    }
}

fn start_stop(bx: &TestBox, rounds: usize, subject: &str, reference: &str) -> common::Figures {
    timeit(
        bx,
        rounds,
        &serde_json::json!({
            "subject": [["systemctl", "start", subject], ["systemctl", "stop", subject]],
            "reference": [["systemctl", "start", reference], ["systemctl", "stop", reference]],
        }),
    )
}

fn main() {
    let rounds = rounds_from_env().unwrap_or(41);
    let idle_secs: u64 = std::env::var("MYDAEMON_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let bx = match std::env::var_os("MYDAEMON_BENCH_BIN") {
        Some(bin) => TestBox::boot_with_binary(std::path::Path::new(&bin)),
        None => TestBox::boot(),
    };
    install_units(&bx);

    println!("mydaemon daemon bench (test box, systemd as PID 1)");
    for (subject, reference, what) in [
        ("md-plain", "sleep-plain", "start+stop, no sandbox"),
        (
            "md-plain",
            "sleep-plain-exec",
            "start+stop, no sandbox, sleep as Type=exec",
        ),
        (
            "md-strict",
            "sleep-plain",
            "start+stop, generated strict unit",
        ),
        (
            "md-strict",
            "sleep-strict",
            "start+stop, both strict, sleep as Type=exec",
        ),
    ] {
        let f = start_stop(&bx, rounds, subject, reference);
        report(what, subject, reference, &f, 1.2);
    }

    // Both idle units at once, over the same window.
    let unit = bx.sh_ok(&format!(
        "{BIN} unit --name idle --exec-path {BIN} --watchdog-sec 30 --interval 60s"
    ));
    bx.write_file("/etc/systemd/system/idle.service", unit.as_bytes());
    let unit = bx.sh_ok(&format!(
        "{BIN} unit --name idle-exec --exec-path {BIN} --watchdog-sec 30 --ready notify \
         --health tcp:127.0.0.1:8391 -- /usr/bin/python3 -c '{IDLE_COMMAND}'"
    ));
    bx.write_file("/etc/systemd/system/idle-exec.service", unit.as_bytes());
    bx.sh_ok("systemctl daemon-reload && systemctl start idle idle-exec");
    let units = ["idle", "idle-exec"];
    let pids = units.map(|u| prop(&bx, u, "MainPID"));
    std::thread::sleep(Duration::from_secs(1));
    let before = pids.clone().map(|p| footprint(&bx, &p).2);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let flag = |ok: bool| if ok { "" } else { "  ABOVE TARGET" };
    for ((unit, pid), before) in units.iter().zip(&pids).zip(before) {
        let (rss, anon, after) = footprint(&bx, pid);
        // A watchdog restart (or any) would make the figures those of another process.
        let state = ["ActiveState", "NRestarts", "MainPID"].map(|p| prop(&bx, unit, p));
        assert_eq!(
            state,
            ["active", "0", pid.as_str()],
            "{unit} did not stay up, unrestarted, over the idle measurement"
        );
        let wakeups = after - before;
        // The targets are the built-in loop's; exec mode's health checks (every 10 s)
        // wake it 6 times a minute by themselves, the pings riding along.
        let (what, wake_target) = if *unit == "idle" {
            ("--interval 60s", 4)
        } else {
            ("exec mode, --ready notify, --health tcp: every 10 s", 6)
        };
        println!(
            "idle {unit} (strict unit, WatchdogSec=30, {what}, {idle_secs} s): resident {rss} KiB \
             (target <= 4096){}, private (RssAnon) {anon} KiB (target <= 512){}, \
             wake-ups {wakeups} (target <= {wake_target}){}",
            flag(rss <= 4096),
            flag(anon <= 512),
            flag(wakeups <= wake_target),
        );
    }
    bx.sh_ok("systemctl stop idle idle-exec");
}

/// The exec-mode idle command (python3, in single quotes): listens on
/// 127.0.0.1:8391 for the health probe, says `READY=1`, sleeps. Connections are left
/// in its backlog (six in a minute).
const IDLE_COMMAND: &str = "import os, socket, time
l = socket.socket(); l.bind((\"127.0.0.1\", 8391)); l.listen(64)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"READY=1\", os.environ[\"NOTIFY_SOCKET\"])
time.sleep(1e9)";
