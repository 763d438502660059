//! `cargo bench --bench control`: mydaemon against systemctl, side by side in one test box.
//!
//! Boots the real-systemd test box with the release binary (the bench profile), installs
//! and starts `mydaemon.service` through mydaemon, then times inside the box, with
//! `bench/timeit.py` (rounds interleaved ABBA, medians, every command exec'd directly):
//! - `mydaemon status -n 0` against
//!   `systemctl show -p ActiveState,SubState,MainPID,StatusText mydaemon.service`;
//! - `mydaemon start` + `mydaemon stop` against `systemctl start` + `systemctl stop`.
//!
//! Prints the medians and the ratios (mydaemon / systemctl; target ≤ 1.0). Absolute times
//! are never asserted: they depend on the machine. `MYDAEMON_BENCH_ROUNDS` sets the number
//! of rounds (default 41 for status, 21 for start+stop). Without root it skips as the
//! tests do.

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

    let status = timeit(
        &bx,
        rounds.unwrap_or(41),
        &serde_json::json!({
            "subject": [[BIN, "status", "-n", "0"]],
            "reference": [["systemctl", "show", "-p",
                           "ActiveState,SubState,MainPID,StatusText", unit]],
        }),
    );
    bx.sh_ok(&format!("{BIN} stop"));
    let cycle = timeit(
        &bx,
        rounds.unwrap_or(21),
        &serde_json::json!({
            "subject": [[BIN, "start"], [BIN, "stop"]],
            "reference": [["systemctl", "start", unit], ["systemctl", "stop", unit]],
            // Untimed, before each sequence: the generated unit's start limit (5 in 60 s)
            // would otherwise refuse the later rounds.
            "setup": [["systemctl", "reset-failed", unit]],
        }),
    );
    println!("mydaemon control bench (test box, systemd as PID 1, root: private socket)");
    report(
        "status",
        "`mydaemon status -n 0`",
        "`systemctl show -p ActiveState,SubState,MainPID,StatusText`",
        &status,
        1.0,
    );
    report(
        "start+stop",
        "`mydaemon start; mydaemon stop`",
        "`systemctl start; systemctl stop`",
        &cycle,
        1.0,
    );
}
