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

use std::io::Write;
use std::process::Stdio;

use testbox::{TestBox, BIN};

const TIMEIT: &str = include_str!("timeit.py");

/// One comparison's medians, from timeit.py's JSON.
struct Figures {
    subject: f64,
    reference: f64,
    ratio: f64,
}

fn timeit(bx: &TestBox, rounds: usize, spec: &serde_json::Value) -> Figures {
    let mut child = bx
        .command(&["python3", "-", &rounds.to_string(), &spec.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run timeit.py in the box");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(TIMEIT.as_bytes())
        .expect("feed timeit.py");
    let out = child.wait_with_output().expect("wait for timeit.py");
    assert!(
        out.status.success(),
        "timeit.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("timeit.py JSON");
    Figures {
        subject: v["subject_median_s"].as_f64().unwrap(),
        reference: v["reference_median_s"].as_f64().unwrap(),
        ratio: v["ratio"].as_f64().unwrap(),
    }
}

fn report(what: &str, subject: &str, reference: &str, f: &Figures) {
    println!(
        "{what}: {subject} {:.2} ms, {reference} {:.2} ms, ratio {:.2} (target <= 1.0){}",
        f.subject * 1e3,
        f.reference * 1e3,
        f.ratio,
        if f.ratio <= 1.0 { "" } else { "  ABOVE TARGET" }
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rounds: Option<usize> = std::env::var("MYDAEMON_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let Some(bx) = TestBox::boot() else { return };
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
    );
    report(
        "start+stop",
        "`mydaemon start; mydaemon stop`",
        "`systemctl start; systemctl stop`",
        &cycle,
    );
}
