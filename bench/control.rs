//! `cargo bench --bench control`: mydaemon against systemctl, side by side in one test box.
//!
//! Boots the real-systemd test box with the release binary (the bench profile), installs
//! and starts `mydaemon.service` through mydaemon, then times inside the box, with
//! `bench/timeit.py` (rounds interleaved ABBA, medians, every command exec'd directly):
//! - `mydaemon status -n 0` and `mydaemon status --json -n 0`, each against
//!   `systemctl show -p ActiveState,SubState,MainPID,StatusText mydaemon.service`
//!   (target: ratio ≤ 0.5);
//! - `mydaemon start` + `mydaemon stop` against `systemctl start` + `systemctl stop`
//!   (target: ratio ≤ 0.85).
//!
//! The unit's start limit is lifted for the measurement (a drop-in with
//! `StartLimitIntervalSec=0`: a loop of starts would otherwise hit it and time failures),
//! and every timed command must exit 0 (timeit.py fails the bench otherwise).
//!
//! Prints the medians, the ratios (mydaemon / systemctl) and PASS or MISS against each
//! target. Absolute times are never asserted: they depend on the machine.
//! `MYDAEMON_BENCH_ROUNDS` sets the number of rounds (default 41 for status, 21 for
//! start+stop). It needs root (the box), as the box tests do.

#[path = "../tests/testbox/mod.rs"]
mod testbox;

#[path = "common.rs"]
mod common;

use common::{report, rounds_from_env, timeit};
use testbox::{TestBox, BIN};

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rounds = rounds_from_env();
    let bx = TestBox::boot();
    bx.sh_ok(&format!("{BIN} install --systemd --now"));
    let unit = "mydaemon.service";
    // Lift the start limit (the generated unit allows 5 starts in 60 s) for the loop below.
    bx.sh_ok(&format!(
        "mkdir -p /etc/systemd/system/{unit}.d && \
         printf '[Unit]\\nStartLimitIntervalSec=0\\n' > /etc/systemd/system/{unit}.d/bench.conf && \
         systemctl daemon-reload && \
         test \"$(systemctl show -p StartLimitIntervalUSec --value {unit})\" = 0"
    ));
    let show = serde_json::json!([[
        "systemctl",
        "show",
        "-p",
        "ActiveState,SubState,MainPID,StatusText",
        unit
    ]]);

    let status = timeit(
        &bx,
        rounds.unwrap_or(41),
        &serde_json::json!({
            "subject": [[BIN, "status", "-n", "0"]],
            "reference": show,
        }),
    );
    let status_json = timeit(
        &bx,
        rounds.unwrap_or(41),
        &serde_json::json!({
            "subject": [[BIN, "status", "--json", "-n", "0"]],
            "reference": show,
        }),
    );
    bx.sh_ok(&format!("{BIN} stop"));
    let cycle = timeit(
        &bx,
        rounds.unwrap_or(21),
        &serde_json::json!({
            "subject": [[BIN, "start"], [BIN, "stop"]],
            "reference": [["systemctl", "start", unit], ["systemctl", "stop", unit]],
        }),
    );
    println!("mydaemon control bench (test box, systemd as PID 1, root: private socket)");
    report(
        "status",
        "`mydaemon status -n 0`",
        "`systemctl show -p ActiveState,SubState,MainPID,StatusText`",
        &status,
        0.5,
    );
    report(
        "status --json",
        "`mydaemon status --json -n 0`",
        "`systemctl show -p ActiveState,SubState,MainPID,StatusText`",
        &status_json,
        0.5,
    );
    report(
        "start+stop",
        "`mydaemon start; mydaemon stop`",
        "`systemctl start; systemctl stop`",
        &cycle,
        0.85,
    );
}
