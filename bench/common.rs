//! Shared by the benches that run in the test box: interleaved timing with
//! `bench/timeit.py` inside the box, and one report line per comparison.

use std::io::Write;
use std::process::Stdio;

use crate::testbox::TestBox;

const TIMEIT: &str = include_str!("timeit.py");

/// One comparison's medians (seconds), their ratio and ranges, from timeit.py's JSON.
#[allow(dead_code)] // not every bench prints the ranges
pub struct Figures {
    pub subject: f64,
    pub reference: f64,
    pub ratio: f64,
    /// Fastest and slowest round of the subject, of the reference (seconds).
    pub subject_range: (f64, f64),
    pub reference_range: (f64, f64),
}

/// Runs `bench/timeit.py` in the box: `spec` is its JSON (`subject`, `reference`,
/// optional `setup` command sequences), `rounds` interleaved ABBA.
pub fn timeit(bx: &TestBox, rounds: usize, spec: &serde_json::Value) -> Figures {
    let mut child = bx
        .command_for(
            std::time::Duration::from_secs(600),
            &["python3", "-", &rounds.to_string(), &spec.to_string()],
        )
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
        subject_range: range(&v["subject_range_s"]),
        reference_range: range(&v["reference_range_s"]),
    }
}

fn range(v: &serde_json::Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

/// Prints `WHAT: SUBJECT x ms, REFERENCE y ms, ratio r (target <= t) PASS|MISS`. A miss
/// is reported, not asserted: the figures depend on the machine and its load.
pub fn report(what: &str, subject: &str, reference: &str, f: &Figures, target: f64) {
    println!(
        "{what}: {subject} {:.2} ms, {reference} {:.2} ms, ratio {:.2} (target <= {target}) {}",
        f.subject * 1e3,
        f.reference * 1e3,
        f.ratio,
        if f.ratio <= target { "PASS" } else { "MISS" }
    );
}

/// `MYDAEMON_BENCH_ROUNDS`, if set to a number.
pub fn rounds_from_env() -> Option<usize> {
    std::env::var("MYDAEMON_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
}
