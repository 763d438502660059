//! Host tests of the verbs that need no service manager: `info`, `completions`, `man`,
//! and the command-line contract (help on every verb, usage errors exit 2).

mod support;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use support::BoundedOutput;

fn mydaemon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mydaemon"))
        .args(args)
        .bounded_output()
}

#[test]
fn info_json_describes_this_process() {
    let out = mydaemon(&["info", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    // The child's parent is this test process.
    assert_eq!(v["ppid"].as_i64(), Some(std::process::id() as i64));
    assert_eq!(
        v["uid"]["id"].as_u64(),
        Some(nix::unistd::getuid().as_raw() as u64)
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(v["cwd"].as_str(), Some(cwd.to_str().unwrap()));
    assert!(v["exe"].as_str().unwrap().ends_with("/mydaemon"));
    assert!(v["groups"].is_array());
}

#[test]
fn info_text_names_the_fields() {
    let out = mydaemon(&["info"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for field in [
        "pid:",
        "ppid:",
        "uid:",
        "gid:",
        "groups:",
        "cwd:",
        "executable:",
    ] {
        assert!(text.contains(field), "missing {field} in:\n{text}");
    }
}

#[test]
fn completions_come_from_clap() {
    for shell in ["bash", "zsh", "fish"] {
        let out = mydaemon(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("mydaemon"), "{shell}");
        assert!(text.contains("install"), "{shell} completion lacks verbs");
    }
    let out = mydaemon(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}

#[test]
fn man_pages_render_for_every_verb() {
    let out = mydaemon(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH mydaemon"), "not a roff page:\n{page}");

    let dir = tempfile::tempdir().unwrap();
    let out = mydaemon(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    for verb in ["start", "status", "install", "run"] {
        assert!(
            dir.path().join(format!("mydaemon-{verb}.1")).is_file(),
            "no page for {verb}"
        );
    }
}

#[test]
fn every_verb_has_help() {
    let verbs = [
        "run",
        "install",
        "uninstall",
        "unit",
        "start",
        "stop",
        "restart",
        "reload",
        "status",
        "enable",
        "disable",
        "logs",
        "info",
        "completions",
        "man",
    ];
    for verb in verbs {
        let out = mydaemon(&[verb, "--help"]);
        assert!(out.status.success(), "{verb} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage: mydaemon"), "{verb}:\n{text}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = mydaemon(&["status", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn install_without_a_running_manager_enables_offline_as_systemctl_would() {
    // A per-user install where no user manager runs (no $XDG_RUNTIME_DIR/systemd/private).
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mydaemon"))
            .args(["--name", "offline", "--user"])
            .args(args)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env("XDG_RUNTIME_DIR", home.path().join("run"))
            .bounded_output()
    };
    let units = home.path().join(".config/systemd/user");
    let link = units.join("default.target.wants/offline.service");

    let out = run(&["install", "--systemd"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        units.join("offline.service"),
        "{out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("starts when it does"));

    // --now cannot start it: installed and enabled, then exit 7 saying why.
    let out = run(&["install", "--systemd", "--now"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was not started"),
        "{out:?}"
    );
    assert!(link.exists());

    let out = run(&["uninstall", "--systemd"]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!units.join("offline.service").exists());
}

#[test]
fn printing_verbs_end_quietly_when_the_reader_is_gone() {
    let bin = env!("CARGO_BIN_EXE_mydaemon");
    for verb in [&["info"][..], &["completions", "bash"], &["man"], &["unit"]] {
        // Stdout is a pipe whose reading end is closed before the verb starts: its first
        // write meets EPIPE, whatever the timing.
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        drop(read_end);
        let log = tempfile::tempfile().unwrap();
        let mut child = Command::new(bin)
            .args(verb)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(write_end))
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap();
        let status = support::wait_within(
            &mut child,
            std::time::Duration::from_secs(30),
            &format!("mydaemon {verb:?} writing to a closed pipe"),
        );
        let err = std::fs::read_to_string(format!("/proc/self/fd/{}", log.as_raw_fd())).unwrap();
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{verb:?}: {err}"
        );
        assert_ne!(status.code(), Some(101), "{verb:?} panicked: {err}");
    }
}

/// Options whose absence has no default to show: they add something when given.
const NO_DEFAULT: &[&str] = &[
    "--health",     // no health probe
    "--since",      // every line
    "--env",        // repeatable, nothing by default
    "--env-file",   // repeatable
    "--after",      // repeatable
    "--wants",      // repeatable
    "--root",       // this system rather than an image tree
    "--out-dir",    // prints instead of writing files
    "--listen",     // repeatable, no sockets by default
    "--host",       // repeatable, this machine by default
    "--hosts-file", // this machine by default
];

#[test]
fn help_lists_the_verbs_options_first_then_global_ones_and_every_default() {
    let verbs = [
        "run",
        "install",
        "uninstall",
        "unit",
        "start",
        "stop",
        "restart",
        "reload",
        "status",
        "enable",
        "disable",
        "logs",
        "info",
        "man",
    ];
    for verb in verbs {
        let out = mydaemon(&[verb, "--help"]);
        assert!(out.status.success(), "{verb} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let headings: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
            .collect();
        assert_eq!(
            headings.last(),
            Some(&"Global options:"),
            "{verb}: global options come last:\n{text}"
        );
        let global = text.find("\nGlobal options:\n").unwrap();
        for g in [
            "\n      --name <NAME>",
            "\n      --user\n",
            "\n  -q, --quiet",
            "\n  -v, --verbose",
            "\n      --backend",
        ] {
            let at = text.find(g).unwrap_or_else(|| panic!("{verb}: no {g}"));
            assert!(
                at > global,
                "{verb}: {g} is not under Global options:\n{text}"
            );
        }
        // Each option block: its first line starts with spaces then `-`; the block runs to
        // the next one. An option that takes a value shows its default.
        let mut blocks: Vec<String> = Vec::new();
        for l in text.lines() {
            let t = l.trim_start();
            let option = t.starts_with("--")
                || (t.starts_with('-') && t.chars().nth(1).is_some_and(char::is_alphabetic));
            if option && l.len() - t.len() >= 2 {
                blocks.push(String::new());
            }
            if let Some(b) = blocks.last_mut() {
                b.push_str(t);
                b.push(' ');
            }
        }
        for b in &blocks {
            let flag = b
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .unwrap_or("");
            let takes_value = b.split(' ').any(|w| w.starts_with('<'));
            if !takes_value || NO_DEFAULT.contains(&flag) {
                continue;
            }
            assert!(
                b.contains("[default:"),
                "{verb}: {flag} shows no default: {b}"
            );
        }
    }
}

/// Item 7 of issue 11: a duration that would be written back as `0us` is refused
/// when parsed (exit 2), and what `unit` writes into `ExecStart=` parses back.
#[test]
fn sub_microsecond_durations_are_usage_errors_and_written_durations_round_trip() {
    // Its own paths: on a version that accepts the value, start must not touch /run.
    let t = tempfile::tempdir().unwrap();
    let pid = t.path().join("d.pid");
    let pid = pid.to_str().unwrap();
    let log = t.path().to_str().unwrap();
    let own = ["--pid-file", pid, "--log-dir", log];
    let start = ["--name", "d", "--backend", "pidfile", "start"];
    for args in [
        [&start[..], &own, &["--interval", "0.0000001"]].concat(),
        [
            &start[..],
            &own,
            &["--ready-timeout", "0.0000001", "--", "true"],
        ]
        .concat(),
        vec!["--name", "d", "unit", "--interval", "0.0000001"],
        vec!["--name", "d", "run", "--interval", "0.0000001"],
    ] {
        let args = &args[..];
        let out = mydaemon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("round to zero"),
            "{args:?}: {out:?}"
        );
    }
    let out = mydaemon(&[
        "--name",
        "d",
        "unit",
        "--exec-path",
        "/usr/local/bin/mydaemon",
        "--interval",
        "1.0015",
    ]);
    assert!(out.status.success(), "{out:?}");
    let unit = String::from_utf8(out.stdout).unwrap();
    assert!(unit.contains("--interval 1001500us"), "{unit}");
}
