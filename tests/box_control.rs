//! systemd control over D-Bus, in the real-systemd test box: install → start → status →
//! stop → uninstall through mydaemon alone; failures named in words; privilege, unknown
//! names, control with no dbus-daemon (private socket), a lingering user's manager, and
//! the init.d script on a real root (the box's /etc).
//! They need root: without it `make test` shows them as skipped.

mod testbox;

use std::process::Output;

use testbox::{TestBox, BIN};

use testbox::text;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Runs `mydaemon ARGS` as root in the box.
fn md(bx: &TestBox, args: &str) -> Output {
    bx.sh(&format!("{BIN} {args}"))
}

fn md_ok(bx: &TestBox, args: &str) -> String {
    let out = md(bx, args);
    assert_eq!(
        code(&out),
        0,
        "mydaemon {args}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `status --json -n 0` parsed, with the exit code.
fn status_json(bx: &TestBox, name: &str) -> (i32, serde_json::Value) {
    let out = md(bx, &format!("--name {name} status --json -n 0"));
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&out.stdout)));
    (code(&out), v)
}

fn systemctl_prop(bx: &TestBox, unit: &str, prop: &str) -> String {
    bx.sh_ok(&format!("systemctl show -p {prop} --value {unit}"))
        .trim()
        .to_string()
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn install_start_status_stop_uninstall_through_mydaemon() {
    let bx = TestBox::boot();
    let out = md_ok(&bx, "install --systemd");
    assert!(
        out.contains("Created symlink"),
        "install says what systemd enabled: {out}"
    );
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "UnitFileState"),
        "enabled"
    );
    let (c, st) = status_json(&bx, "mydaemon");
    assert_eq!(c, 3, "installed but not started: {st}");
    assert_eq!(st["active_state"], "inactive");

    // Installing the same unit again, or enabling an enabled one, changes nothing, so
    // systemd is not reloaded for it (a reload reruns generators, reloads every unit).
    let reloads = || {
        bx.sh_ok("journalctl --no-pager -q -o cat _PID=1 | grep -c '^Reloading.$' || true")
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    // (journald writes what PID 1 logged a moment later)
    bx.wait_for(
        "the first install's reload in the journal",
        std::time::Duration::from_secs(10),
        |_| reloads() >= 1,
    );
    let before = reloads();
    let again = md_ok(&bx, "install --systemd");
    assert!(again.contains("up to date"), "{again}");
    md_ok(&bx, "enable");
    // A reload of our own after those returned, as a marker: once its line is in the
    // journal, the line of any reload they made is there too.
    bx.sh_ok("systemctl daemon-reload");
    bx.wait_for(
        "the marker reload in the journal",
        std::time::Duration::from_secs(10),
        |_| reloads() > before,
    );
    assert_eq!(
        reloads(),
        before + 1,
        "no reload for an unchanged unit (only the marker's)"
    );

    md_ok(&bx, "start");
    // start returned: the Type=notify service has sent READY, no waiting needed.
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "ActiveState"),
        "active"
    );
    let (c, st) = status_json(&bx, "mydaemon");
    assert_eq!(c, 0, "{st}");
    let pid = st["main_pid"].as_u64().unwrap();
    assert!(pid > 1);
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "MainPID"),
        pid.to_string()
    );
    let exe = bx.sh_ok(&format!("readlink /proc/{pid}/exe"));
    assert!(exe.trim().ends_with("mydaemon"), "main PID runs {exe}");
    assert_eq!(st["load_state"], "loaded");
    assert_eq!(st["unit_file_state"], "enabled");
    assert_eq!(st["fragment_path"], "/etc/systemd/system/mydaemon.service");
    assert!(st["since"].as_str().unwrap().ends_with("UTC"));
    assert!(st["watchdog_usec"].as_u64().unwrap() > 0, "{st}");

    // The human form carries the same facts, and journal lines unless -n 0.
    let human = md_ok(&bx, "status -n 5");
    assert!(human.contains(&format!("Main PID: {pid}")), "{human}");
    assert!(human.contains("active (running)"), "{human}");

    // logs: the unit's journal, with systemd's own lines about it.
    let logs = md_ok(&bx, "logs -n 100");
    assert!(logs.contains("Started"), "{logs}");
    let logs = md_ok(&bx, "logs --since 2099-01-01");
    assert!(!logs.contains("Started"), "--since filters: {logs}");

    // The same jobs over the system bus (what non-root callers use): Subscribe, AddMatch,
    // the job and its JobRemoved, routed through dbus-daemon.
    let out = bx.sh(&format!("MYDAEMON_SYSTEMD_ROUTE=bus {BIN} -vv restart"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("through the system bus"), "{err}");
    let out = bx.sh(&format!(
        "MYDAEMON_SYSTEMD_ROUTE=bus {BIN} status --json -n 0"
    ));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = st["main_pid"].as_u64().unwrap();
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "MainPID"),
        pid.to_string()
    );

    md_ok(&bx, "reload");
    md_ok(&bx, "restart");
    let (c, st) = status_json(&bx, "mydaemon");
    assert_eq!(c, 0);
    assert_ne!(
        st["main_pid"].as_u64().unwrap(),
        pid,
        "restart makes a new process"
    );

    // --no-block returns once queued; the stop still happens.
    md_ok(&bx, "stop --no-block");
    bx.wait_for(
        "the queued stop",
        std::time::Duration::from_secs(20),
        |bx| systemctl_prop(bx, "mydaemon.service", "ActiveState") == "inactive",
    );
    md_ok(&bx, "start");
    md_ok(&bx, "stop");
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "ActiveState"),
        "inactive"
    );
    let (c, st) = status_json(&bx, "mydaemon");
    assert_eq!(c, 3, "{st}");
    assert_eq!(st["main_pid"], 0);

    // reload of a stopped service: LSB 7, in words.
    let out = md(&bx, "reload");
    assert_eq!(code(&out), 7, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );

    // disable / enable report systemd's changes.
    let out = md_ok(&bx, "disable");
    assert!(out.contains("Removed"), "{out}");
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "UnitFileState"),
        "disabled"
    );
    let out = md_ok(&bx, "enable --now");
    assert!(out.contains("Created symlink"), "{out}");
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "ActiveState"),
        "active"
    );

    // Uninstall a running service: stopped, disabled, removed, systemd reloaded.
    md_ok(&bx, "uninstall");
    assert_eq!(
        systemctl_prop(&bx, "mydaemon.service", "LoadState"),
        "not-found"
    );
    let left = bx.sh(
        "ls /etc/systemd/system/mydaemon.service /etc/systemd/system/*/mydaemon.service 2>/dev/null; \
         systemctl list-units --all --no-legend 'mydaemon*'; pgrep -x mydaemon",
    );
    assert_eq!(
        text(&left.stdout).trim(),
        "",
        "uninstall left something behind"
    );
    let (c, _) = status_json(&bx, "mydaemon");
    assert_eq!(c, 4, "after uninstall the name is unknown");
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn failing_commands_are_named_in_words() {
    let bx = TestBox::boot();

    // A command that fails at once. It counts as ready when it says so (`--ready
    // notify`, passed through `install` to `run`); with the default `--ready immediate`
    // the service is ready as soon as the command is spawned, and `start` rightly
    // succeeds before the command dies.
    //
    // It lingers a second after its last words: journald takes a stream line's unit from
    // the writer's cgroup, and when it reads the line only after the writer has gone
    // (the box is busy), the line belongs to no unit and `journalctl -u` cannot show it
    // (a journald limit; see the README's exec-mode notes).
    bx.write_file(
        "/usr/local/bin/fails-at-once",
        b"#!/bin/sh\necho 'cannot open config: boom-4711' >&2\nsleep 1\nexit 3\n",
    );
    bx.sh_ok("chmod 755 /usr/local/bin/fails-at-once");
    bx.sh_ok(&format!(
        "{BIN} --name bad install --ready notify -- /usr/local/bin/fails-at-once \
         && grep -q 'run --name bad --ready notify -- ' /etc/systemd/system/bad.service"
    ));
    let out = md(&bx, "--name bad start");
    let err = text(&out.stderr);
    assert_ne!(code(&out), 0, "{err}");
    assert!(err.contains("starting bad.service failed"), "{err}");
    assert!(
        err.contains("boom-4711"),
        "the journal lines are shown: {err}"
    );
    assert!(
        !err.contains("org.freedesktop"),
        "no raw D-Bus names: {err}"
    );

    // The binary moved away after install (the classic restart loop): 203/EXEC by name.
    md_ok(&bx, "--name bad uninstall --force");
    bx.sh_ok("cp /usr/local/bin/fails-at-once /usr/local/bin/moved-away");
    md_ok(
        &bx,
        "--name gone install --systemd -- /usr/local/bin/moved-away",
    );
    bx.sh_ok("rm /usr/local/bin/moved-away");
    let out = md(&bx, "--name gone start");
    let err = text(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    // The main process is `mydaemon run`, which says why in its STATUS= and the journal.
    assert!(
        err.contains("last status: failed to start: cannot run /usr/local/bin/moved-away"),
        "{err}"
    );

    // Exact words on units written by hand: exit status and signal.
    bx.write_file(
        "/etc/systemd/system/exit1.service",
        b"[Service]\nType=notify\nExecStart=/bin/sh -c 'exit 1'\n",
    );
    bx.write_file(
        "/etc/systemd/system/killed.service",
        b"[Service]\nType=notify\nExecStart=/bin/sh -c 'kill -KILL $$$$'\n",
    );
    bx.write_file(
        "/etc/systemd/system/noexec.service",
        b"[Service]\nType=exec\nExecStart=/nonexistent/prog\n",
    );
    bx.sh_ok("systemctl daemon-reload");
    let err = text(&md(&bx, "--name exit1 start").stderr);
    assert!(err.contains("main process: exited with status 1"), "{err}");
    let err = text(&md(&bx, "--name killed start").stderr);
    assert!(err.contains("killed by signal SIGKILL"), "{err}");
    let err = text(&md(&bx, "--name noexec start").stderr);
    assert!(
        err.contains("exited with status 203/EXEC: executable not found or not executable: /nonexistent/prog"),
        "{err}"
    );
    // A unit systemd cannot load: start is "not configured" (6), status names the error.
    bx.write_file(
        "/etc/systemd/system/badsetting.service",
        b"[Service]\nExecStart=relative/prog\n",
    );
    bx.sh_ok("systemctl daemon-reload");
    let out = md(&bx, "--name badsetting start");
    let err = text(&out.stderr);
    assert_eq!(code(&out), 6, "{err}");
    assert!(err.contains("could not load badsetting.service"), "{err}");
    let out = md(&bx, "--name badsetting status -n 0");
    assert_eq!(code(&out), 3);
    let human = text(&out.stdout);
    assert!(human.contains("bad-setting"), "{human}");
    assert!(human.contains("Error:"), "{human}");

    // status of the failed unit: exit 3 and the reason.
    let out = md(&bx, "--name exit1 status -n 0");
    assert_eq!(code(&out), 3);
    assert!(
        text(&out.stdout).contains("failed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn unknown_names_and_unprivileged_callers() {
    let bx = TestBox::boot();
    let out = md(&bx, "--name no-such-thing status");
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not installed"));
    let (c, st) = status_json(&bx, "no-such-thing");
    assert_eq!((c, st["load_state"].as_str()), (4, Some("not-found")));
    for verb in ["start", "stop", "restart"] {
        let out = md(&bx, &format!("--name no-such-thing {verb}"));
        let err = text(&out.stderr);
        assert_eq!(code(&out), 5, "{verb}: {err}");
        assert!(
            err.contains("`mydaemon --name no-such-thing install --systemd`"),
            "{err}"
        );
    }

    md_ok(&bx, "install --systemd");
    let nobody = |args: &str| {
        bx.sh(&format!(
            "setpriv --reuid nobody --regid nogroup --clear-groups {BIN} {args}"
        ))
    };
    for verb in ["start", "stop", "enable", "disable"] {
        let out = nobody(verb);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 4, "{verb} as nobody: {err}");
        assert!(err.contains("needs root"), "{err}");
        assert!(!err.contains("org.freedesktop"), "{err}");
    }
    // Reading is allowed to anyone, over the system bus.
    let out = nobody("status -n 0");
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("mydaemon.service"));
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn root_control_works_without_dbus_daemon() {
    let bx = TestBox::boot();
    bx.sh_ok("systemctl stop dbus.socket dbus.service");
    let bus = bx.sh("busctl --system status");
    assert_ne!(code(&bus), 0, "the system bus is really gone");

    let out = md_ok(&bx, "install --systemd --now");
    assert!(out.contains("Created symlink"), "{out}");
    let (c, st) = status_json(&bx, "mydaemon");
    assert_eq!(c, 0, "{st}");
    assert!(st["main_pid"].as_u64().unwrap() > 1);
    let err = text(&md(&bx, "-vv status -n 0").stderr);
    assert!(err.contains("/run/systemd/private"), "{err}");
    md_ok(&bx, "restart");
    md_ok(&bx, "stop");
    assert_eq!(status_json(&bx, "mydaemon").0, 3);
    md_ok(&bx, "uninstall");
    assert_eq!(status_json(&bx, "mydaemon").0, 4);

    // A non-root caller has no way in: it says so.
    let out = bx.sh(&format!(
        "setpriv --reuid nobody --regid nogroup --clear-groups {BIN} status"
    ));
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("cannot reach systemd"),
        "{}",
        text(&out.stderr)
    );

    // An install that cannot reach systemd (the bus it is told to use is gone) takes back
    // the unit it wrote: nothing half-installed.
    let out = bx.sh(&format!(
        "MYDAEMON_SYSTEMD_ROUTE=bus {BIN} --name halfway install --systemd"
    ));
    assert_ne!(code(&out), 0, "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("cannot reach systemd"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        bx.sh_ok("ls /etc/systemd/system/ | grep halfway; true")
            .trim(),
        ""
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn start_and_stop_over_the_private_socket_wait_for_the_job() {
    let bx = TestBox::boot();
    // Ready only a second after it starts; a second to stop. KillMode=mixed: SIGTERM to
    // the shell alone, so the `sleep 1` its trap forks cannot be caught by systemd's
    // kill loop over the cgroup (which, under load, sometimes killed it: a 40 ms stop).
    bx.write_file(
        "/etc/systemd/system/slow.service",
        b"[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nKillMode=mixed\n\
          ExecStart=/bin/sh -c 'trap \"sleep 1; exit 0\" TERM; sleep 1; \
          systemd-notify --ready; while :; do sleep 0.1; done'\n",
    );
    bx.sh_ok("systemctl daemon-reload");
    let timed = |args: &str| {
        let t = std::time::Instant::now();
        let out = md(&bx, args);
        (out, t.elapsed())
    };
    for _ in 0..2 {
        let (out, took) = timed("-vv --name slow start");
        let err = text(&out.stderr);
        assert_eq!(code(&out), 0, "{err}");
        assert!(
            err.contains("starting slow.service through /run/systemd/private"),
            "{err}"
        );
        assert!(err.contains("job /org/freedesktop/systemd1/job/"), "{err}");
        assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
        // Returned once systemd had READY=1: active, not activating.
        assert_eq!(systemctl_prop(&bx, "slow.service", "ActiveState"), "active");
        let (out, took) = timed("--name slow stop");
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
        assert_eq!(
            systemctl_prop(&bx, "slow.service", "ActiveState"),
            "inactive"
        );
    }
    // --no-block returns with the job queued, before READY=1.
    let (out, took) = timed("--name slow start --no-block");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(took < std::time::Duration::from_secs(60));
    assert_eq!(
        systemctl_prop(&bx, "slow.service", "ActiveState"),
        "activating"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn user_manager_of_a_lingering_user() {
    let bx = TestBox::boot();
    bx.add_lingering_user("alice");
    let out = bx.sh_as("alice", &format!("{BIN} --user install --now"));
    assert_eq!(
        code(&out),
        0,
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = bx.sh_as("alice", &format!("{BIN} --user status --json -n 0"));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["scope"], "user");
    assert_eq!(st["active_state"], "active");
    let pid = st["main_pid"].as_u64().unwrap();
    let owner = bx.sh_ok(&format!("stat -c %U /proc/{pid}"));
    assert_eq!(owner.trim(), "alice");
    // alice reads her service's journal (her own per-user journal file).
    let mut logs = String::new();
    let found = (0..100).any(|_| {
        let out = bx.sh_as("alice", &format!("{BIN} --user logs -n 20"));
        logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
        logs.contains("ready after") || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            false
        }
    });
    assert!(found, "alice's logs lack the service's lines:\n{logs}");
    // Over the user bus instead of the user manager's private socket.
    let out = bx.sh_as(
        "alice",
        &format!("MYDAEMON_SYSTEMD_ROUTE=bus {BIN} --user restart"),
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // The user manager's private socket, the job waited for: stopped on return.
    let out = bx.sh_as("alice", &format!("{BIN} -vv --user stop"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("stopping mydaemon.service through /run/user/")
            && err.contains("/systemd/private"),
        "{err}"
    );
    let out = bx.sh_as("alice", &format!("{BIN} --user status -n 0"));
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    let out = bx.sh_as("alice", &format!("{BIN} --user uninstall"));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn init_script_on_a_real_root_starts_enables_and_uninstalls() {
    let bx = TestBox::boot();
    // The SysV path on a real /etc (the box's): install --sysv --now runs the script.
    let out = md_ok(
        &bx,
        "--name sysvd --backend pidfile install --sysv --now -- /bin/sleep infinity",
    );
    assert!(out.contains("wrote /etc/init.d/sysvd"), "{out}");
    let script = bx.sh("/etc/init.d/sysvd status");
    assert_eq!(code(&script), 0, "{}", text(&script.stdout));
    assert!(
        text(&script.stdout).contains("running"),
        "{}",
        text(&script.stdout)
    );
    let pid = bx.sh_ok("cat /run/sysvd/sysvd.pid");
    let pid = pid.trim();
    assert!(
        bx.sh(&format!("kill -0 {pid}")).status.success(),
        "daemon {pid} is not alive"
    );

    let out = md_ok(&bx, "--name sysvd --backend pidfile enable");
    assert!(out.contains("/etc/rc2.d/S01sysvd"), "{out}");
    assert_eq!(
        bx.sh_ok("readlink /etc/rc0.d/K01sysvd").trim(),
        "../init.d/sysvd"
    );

    // uninstall stops the daemon through the script and removes script and links.
    md_ok(&bx, "--name sysvd --backend pidfile uninstall --sysv");
    // Gone, or a zombie that the box's PID 1 has yet to reap: it has exited either way.
    let stat = bx.sh_ok(&format!("cat /proc/{pid}/stat 2>/dev/null; true"));
    assert!(
        stat.trim().is_empty() || stat.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
        "the daemon still runs after uninstall: {stat}\n{}",
        bx.sh_ok("ps -ef")
    );
    assert_eq!(
        bx.sh_ok("ls /etc/init.d/sysvd /etc/rc?.d/*sysvd 2>/dev/null; true")
            .trim(),
        ""
    );
    let st = md(&bx, "--name sysvd --backend pidfile status");
    assert_eq!(code(&st), 3, "{}", text(&st.stdout));
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn a_clean_stop_reads_as_stopped_in_status() {
    let bx = TestBox::boot();
    // The built-in workload (exits 0 on SIGTERM) and exec mode (ends the way its command
    // ended: killed by the SIGTERM it forwarded).
    md_ok(&bx, "--name cleanb install --systemd --now");
    md_ok(
        &bx,
        "--name cleanx install --systemd --now -- /bin/sleep infinity",
    );
    for (name, exit) in [
        ("cleanb", "exited cleanly (status 0)"),
        ("cleanx", "exited cleanly after SIGTERM"),
    ] {
        let running = md_ok(&bx, &format!("--name {name} status -n 0"));
        assert!(running.contains("Status: \""), "{running}");
        md_ok(&bx, &format!("--name {name} stop"));
        let out = md(&bx, &format!("--name {name} status -n 0"));
        let human = text(&out.stdout);
        eprintln!("{name} after stop:\n{human}");
        assert_eq!(code(&out), 3, "{human}");
        assert!(
            human.contains("Active: inactive (dead) — stopped since"),
            "{human}"
        );
        assert!(human.contains(&format!("Main exit: {exit}\n")), "{human}");
        assert!(human.contains("Result: success\n"), "{human}");
        assert!(!human.contains("stopping"), "stale STATUS= shown: {human}");
        assert!(!human.contains("killed"), "{human}");
        let (_, st) = status_json(&bx, name);
        assert_eq!(st["main_exit"], exit, "{st}");
        // systemd itself saw what the words say.
        assert_eq!(
            systemctl_prop(&bx, &format!("{name}.service"), "Result"),
            "success"
        );
    }
    // status and logs print log lines one way, under systemd and without it:
    // `2026-12-01T09:29:07.123Z IDENT[PID]: message`.
    let log_line = |l: &str| {
        let b = l.as_bytes();
        let ident_pid = l
            .get(25..)
            .and_then(|r| r.split_once("]: "))
            .map(|(h, _)| h);
        l.len() > 25
            && b[..24].iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
            && b[24] == b' '
            && ident_pid.is_some_and(|h| {
                h.split_once('[').is_some_and(|(ident, pid)| {
                    !ident.is_empty() && !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit())
                })
            })
    };
    let tail_of = |out: &Output| -> Vec<String> {
        text(&out.stdout)
            .lines()
            .skip_while(|l| !l.is_empty())
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    // A PID-file service next to the systemd one.
    md_ok(&bx, "--name pf --backend pidfile start");
    for (name, backend) in [("cleanb", "systemd"), ("pf", "pidfile")] {
        let status = md(
            &bx,
            &format!("--name {name} --backend {backend} status -n 3"),
        );
        let status_lines = tail_of(&status);
        let logs = md_ok(&bx, &format!("--name {name} --backend {backend} logs -n 3"));
        eprintln!(
            "{backend} status:\n{}\n{backend} logs:\n{logs}",
            status_lines.join("\n")
        );
        assert_eq!(status_lines.len(), 3, "{}", text(&status.stdout));
        assert_eq!(logs.lines().count(), 3, "{logs}");
        for l in status_lines.iter().map(String::as_str).chain(logs.lines()) {
            assert!(
                log_line(l),
                "{backend}: not YYYY-MM-DDTHH:MM:SS.mmmZ IDENT[PID]: {l:?}"
            );
        }
        assert_eq!(
            status_lines,
            logs.lines().collect::<Vec<_>>(),
            "{backend}: the same lines, the same way"
        );
    }
    md_ok(&bx, "--name pf --backend pidfile stop");

    assert_eq!(
        systemctl_prop(&bx, "cleanx.service", "ExecMainCode"),
        "2",
        "exec mode ended by the signal, as its command did"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn uninstall_keeps_the_state_unless_purge_has_systemd_clean_it() {
    let bx = TestBox::boot();
    let exists = |path: &str| {
        bx.sh(&format!("test -e {path} || test -L {path}"))
            .status
            .success()
    };
    // The built-in workload keeps state.json in its StateDirectory= (DynamicUser=yes:
    // /var/lib/private/NAME, and /var/lib/NAME a link to it).
    for name in ["keep", "purge"] {
        md_ok(&bx, &format!("--name {name} install --systemd --now"));
        md_ok(&bx, &format!("--name {name} reload"));
        bx.wait_for(
            &format!("/var/lib/private/{name}/state.json"),
            std::time::Duration::from_secs(20),
            |_| exists(&format!("/var/lib/private/{name}/state.json")),
        );
        assert_eq!(
            bx.sh_ok(&format!("readlink /var/lib/{name}")).trim(),
            format!("private/{name}")
        );
    }
    // Plain uninstall: the unit goes, the state stays (as with systemctl disable and rm).
    let out = md_ok(&bx, "--name keep uninstall");
    assert!(!out.contains("directories"), "{out}");
    assert_eq!(
        systemctl_prop(&bx, "keep.service", "LoadState"),
        "not-found"
    );
    assert!(exists("/var/lib/private/keep/state.json"));
    assert!(exists("/var/lib/keep"));

    // --purge: systemd's CleanUnit removes both, and uninstall returns when it is done.
    let out = md_ok(&bx, "--name purge uninstall --purge");
    eprintln!("uninstall --purge:\n{out}");
    assert!(
        out.contains("removed the state, cache, logs and runtime directories of purge.service"),
        "{out}"
    );
    assert!(!exists("/var/lib/private/purge"), "state left");
    assert!(!exists("/var/lib/purge"), "link left");
    assert_eq!(
        systemctl_prop(&bx, "purge.service", "LoadState"),
        "not-found"
    );
    // The other service's state was not touched.
    assert!(exists("/var/lib/private/keep/state.json"));
    // The same through the system bus: the kept state goes once the unit is back.
    md_ok(&bx, "--name keep install --systemd");
    let out = bx.sh_ok(&format!(
        "MYDAEMON_SYSTEMD_ROUTE=bus {BIN} -vv --name keep uninstall --purge 2>&1"
    ));
    assert!(out.contains("through the system bus"), "{out}");
    assert!(out.contains("CleanResult=success"), "{out}");
    assert!(!exists("/var/lib/private/keep"), "{out}");
    assert!(!exists("/var/lib/keep"), "{out}");

    // A unit that names no directory: nothing to clean, and uninstall still succeeds.
    bx.write_file(
        "/etc/systemd/system/bare.service",
        b"[Service]\nExecStart=/bin/sleep infinity\n",
    );
    bx.sh_ok("systemctl daemon-reload && systemctl start bare");
    // (Through the system bus this time: Subscribe, and a match naming systemd.)
    let out = bx.sh_ok(&format!(
        "MYDAEMON_SYSTEMD_ROUTE=bus {BIN} --name bare uninstall --force --purge"
    ));
    assert!(
        out.contains("bare.service has no directories to remove"),
        "{out}"
    );
    assert_eq!(
        systemctl_prop(&bx, "bare.service", "LoadState"),
        "not-found"
    );

    // --purge with --root is refused (it needs the running systemd).
    let out = md(&bx, "--name x uninstall --root /tmp --purge");
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn sysv_uninstall_purge_removes_the_log() {
    let bx = TestBox::boot();
    md_ok(
        &bx,
        "--name sysvp --backend pidfile install --sysv --now -- /bin/sleep infinity",
    );
    assert!(bx.sh("test -s /var/log/sysvp/sysvp.log").status.success());
    assert!(bx.sh("test -d /run/sysvp").status.success());
    let out = md_ok(
        &bx,
        "--name sysvp --backend pidfile uninstall --sysv --purge",
    );
    eprintln!("uninstall --sysv --purge:\n{out}");
    assert!(out.contains("removed /var/log/sysvp/sysvp.log"), "{out}");
    assert_eq!(
        bx.sh_ok("ls -d /var/log/sysvp /run/sysvp /etc/init.d/sysvp 2>/dev/null; true")
            .trim(),
        "",
        "{out}"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn logs_follow_prints_new_entries_in_the_same_format() {
    let bx = TestBox::boot();
    md_ok(&bx, "--name follow install --systemd --now");
    bx.sh_ok(&format!(
        "{BIN} --name follow logs -f -n 100 > /run/follow.out 2>&1 </dev/null & echo started"
    ));
    let out = || String::from_utf8_lossy(&bx.read_file("/run/follow.out")).into_owned();
    // The initial lines are out: logs -f is reading the journal.
    bx.wait_for(
        "logs -f to print the start of follow.service",
        std::time::Duration::from_secs(20),
        |_| out().contains("Started follow.service"),
    );
    assert!(!out().contains("reload complete"), "{}", out());
    md_ok(&bx, "--name follow reload");
    bx.wait_for(
        "logs -f to print the reload that came after its first lines",
        std::time::Duration::from_secs(20),
        |_| out().contains("reload complete"),
    );
    let text = out();
    let line = text
        .lines()
        .find(|l| l.contains("reload complete"))
        .unwrap();
    // 2026-12-01T09:29:07.123Z follow[PID]: reload complete
    assert!(
        line.len() > 25 && line.as_bytes()[23] == b'Z' && line[24..].starts_with(" follow["),
        "not TIME IDENT[PID]: {line:?}"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn status_shows_control_characters_of_a_services_words_instead_of_obeying_them() {
    let bx = TestBox::boot();
    // A service whose STATUS= text carries a screen clear and a bell (systemd splits
    // STATUS= at CR and LF itself; ESC sequences could also move the cursor back over a
    // host prefix under -H).
    bx.sh_ok(
        "systemd-run -q --unit esc.service -p Type=notify -p NotifyAccess=all \
         sh -c 'systemd-notify --ready --status=\"$(printf \"a\\033[2Jb\\007c\")\"; exec sleep 600'",
    );
    let out = md(&bx, "--name esc status -n 0");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Status: \"a\\x1b[2Jb\\x07c\""),
        "the status text should be shown escaped: {stdout:?}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "raw control characters reached the terminal: {stdout:?}"
    );
}
