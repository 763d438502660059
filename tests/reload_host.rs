//! Host tests of reloads that mean reloaded (issue 12), PID-file backend: `reload`
//! returns when the service has reloaded, and fails with its words when it failed.

mod support;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{ok, text};

/// The slow-reloading test command (see the file).
pub const SLOW_RELOADER: &str = include_str!("support/slow_reloader.py");

type Svc = support::PidfileService;

impl support::PidfileService {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.run("status", &["--json"]).stdout).unwrap()
    }
}

#[test]
fn reload_returns_only_when_the_command_has_reloaded() {
    let s = Svc::new("rl-slow");
    ok(&s.run(
        "start",
        &[
            "--ready",
            "notify",
            "--",
            "python3",
            "-c",
            SLOW_RELOADER,
            "2",
        ],
    ));
    let t = Instant::now();
    let out = s.run("reload", &[]);
    let took = t.elapsed();
    ok(&out);
    eprintln!("reload took {} ms", took.as_millis());
    assert!(took >= Duration::from_secs(2), "returned after {took:?}");
    assert!(took < Duration::from_secs(10), "returned after {took:?}");
    let v = s.json();
    assert_eq!(v["reloads"], 1, "{v}");
    assert_eq!(v["status_text"], "reloaded 1", "{v}");
    // The command's own RELOADING=1 … READY=1 were not passed on as a second reload.
    let log = s.log();
    assert_eq!(log.matches("reload complete").count(), 1, "{log}");
}

#[test]
fn a_reload_the_command_never_confirms_fails_after_the_reload_timeout() {
    let s = Svc::new("rl-timeout");
    // 60 s of work against a 1 s reload timeout.
    ok(&s.run(
        "start",
        &[
            "--ready",
            "notify",
            "--reload-timeout",
            "1s",
            "--",
            "python3",
            "-c",
            SLOW_RELOADER,
            "60",
        ],
    ));
    let t = Instant::now();
    let out = s.run("reload", &[]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("reload failed: ") && err.contains("python3 sent no READY=1 within 1s"),
        "{err}"
    );
    assert!(took >= Duration::from_secs(1), "returned after {took:?}");
    assert_eq!(s.json()["last_reload"], "failed");
}

#[test]
fn the_built_in_workload_reports_a_broken_config_as_a_failed_reload() {
    let s = Svc::new("rl-config");
    let conf: PathBuf = s.dir.path().join("hb.conf");
    std::fs::write(&conf, "INTERVAL=1s\n").unwrap();
    ok(&s.run("start", &["--config", conf.to_str().unwrap()]));
    ok(&s.run("reload", &[]));
    std::fs::write(&conf, "INTERVAL=soon\n").unwrap();
    let out = s.run("reload", &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("reload failed: "), "{err}");
    assert!(err.contains("hb.conf: line 1"), "{err}");
    // Still running, on the previous configuration; a fixed file reloads again.
    std::fs::write(&conf, "INTERVAL=2s\n").unwrap();
    ok(&s.run("reload", &[]));
    assert_eq!(s.json()["last_reload"], "ok");
}
