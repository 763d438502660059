//! Generated units against a real systemd (the test box, `tests/testbox`):
//!
//! - a property test: thousands of random argument vectors, environment values and
//!   descriptions, weighted toward the characters systemd treats specially, are rendered,
//!   loaded by systemd, and read back over D-Bus (`ExecStart`, `Environment`,
//!   `Description`): equal to the input; a sample is also started, and the program's
//!   actual argv and environment are compared byte for byte; values a unit cannot hold
//!   are refused with an error;
//! - `--name` validation agrees with systemd's own on random names;
//! - odd program, working-directory and environment-file paths round trip;
//! - the default unit passes `systemd-analyze verify` with no output and scores at most
//!   1.5 on `systemd-analyze security`; generated units start and reload under the
//!   system manager and a user manager;
//! - `install --root` produces what `systemctl --root` calls enabled; a live install
//!   is loaded and enabled, and refused when it could not start; a user without write
//!   access gets exit 4 and nothing written.
//!
//! They need root: without it `make test` shows them as skipped.

mod testbox;

use std::collections::BTreeSet;
use std::fs;
use std::time::Instant;

use mydaemon::unit::{Level, ServiceSpec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use testbox::{TestBox, BIN};

/// Cases per batch (units loaded by one daemon-reload) and number of batches.
const BATCH: usize = 250;
const BATCHES: usize = 10;
/// Every `EXEC_EVERY`-th unit of a batch is also started and its real argv compared.
const EXEC_EVERY: usize = 4;

/// The program the property units run: prints its argument count on a line, its
/// arguments NUL-terminated, then its environment NUL-terminated (stdout goes to a
/// file, see the drop-in).
const ARGDUMP: &str = "#!/bin/sh\necho $#\nprintf '%s\\0' \"$@\"\nexec env -0\n";
const ARGDUMP_PATH: &str = "/usr/local/bin/argdump";
/// Applies to every `pq-*.service`: run once, stdout into /run/argdump/UNIT.
const DROPIN: &str = "[Service]\nType=oneshot\nRestart=no\nWatchdogSec=0\n\
                      StandardOutput=truncate:/run/argdump/%n\n";

/// Strings that systemd's parser or the shell treat specially, whole.
const HARD_WORDS: &[&str] = &[
    "",
    " ",
    ";",
    "\\;",
    "$",
    "$$",
    "$HOME",
    "${HOME}",
    "$PQ_0",
    "${PQ_0}",
    "%",
    "%%",
    "%n",
    "%i",
    "\\",
    "\"",
    "'",
    "\n",
    "\n[Service]\nExecStartPre=/bin/false",
    "x\n[Install]\nWantedBy=evil.target",
    "-",
    "@",
    "+",
    "!",
    "!!",
    ":",
    "#",
    "\\x41",
    "\\n",
    "a\\",
];

fn hard_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just(' '),
        Just('\t'),
        Just('\n'),
        Just('\r'),
        Just('"'),
        Just('\''),
        Just('\\'),
        Just('%'),
        Just('$'),
        Just(';'),
        Just('{'),
        Just('}'),
        Just('#'),
        Just('='),
        Just('-'),
        Just('@'),
        Just('+'),
        Just('!'),
        Just(':'),
        Just('\u{1}'),
        Just('\u{1b}'),
        Just('\u{7f}'),
        Just('\u{85}'),
        Just('é'),
        Just('ß'),
        Just('\u{2028}'),
        Just('😀'),
    ]
}

/// What no unit can hold: the generator mixes a little of it in, to check refusals.
fn poison_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('\0'),
        Just('\u{fffe}'),
        Just('\u{fdd0}'),
        Just('\u{10ffff}')
    ]
}

fn hard_string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        600 => hard_char(),
        300 => proptest::char::range('a', 'z'),
        200 => any::<char>(),
        1 => poison_char(),
    ];
    prop_oneof![
        1 => proptest::sample::select(HARD_WORDS).prop_map(str::to_string),
        5 => proptest::collection::vec(ch, 0..14).prop_map(String::from_iter),
        1 => (proptest::sample::select(HARD_WORDS), proptest::collection::vec(hard_char(), 0..4))
            .prop_map(|(w, cs)| format!("{w}{}", String::from_iter(cs))),
    ]
}

/// One generated unit: arguments after the command, environment values, description.
#[derive(Debug, Clone)]
struct Case {
    args: Vec<String>,
    env: Vec<String>,
    description: String,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(hard_string(), 0..6),
        proptest::collection::vec(hard_string(), 0..3),
        prop_oneof![
            // Mostly text a description can hold (control characters and the edges
            // systemd would strip or join replaced), sometimes raw.
            12 => hard_string().prop_map(|s| {
                let s: String = s
                    .chars()
                    .map(|c| if c.is_ascii_control() { '_' } else { c })
                    .collect();
                format!("<{s}>")
            }),
            1 => hard_string(),
        ],
    )
        .prop_map(|(args, env, description)| Case {
            args,
            env,
            description,
        })
}

/// What systemd cannot hold anywhere: NUL and Unicode noncharacters.
fn unrepresentable(s: &str) -> bool {
    s.chars().any(|c| {
        let u = c as u32;
        c == '\0' || (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
    })
}

/// Whether `Description=` must refuse `d` (one line, nothing systemd would strip).
fn bad_description(d: &str) -> bool {
    unrepresentable(d)
        || d.is_empty()
        || d.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f)
        || d.ends_with('\\')
        || d.starts_with(' ')
        || d.ends_with(' ')
}

/// systemd's `bus_label_escape()`: the D-Bus object path label of a unit name.
fn bus_label(name: &str) -> String {
    let mut s = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(b as char);
        } else {
            s.push_str(&format!("_{b:02x}"));
        }
    }
    s
}

fn spec_for(name: &str, c: &Case) -> ServiceSpec {
    let mut s = ServiceSpec::new(name, ARGDUMP_PATH);
    s.command = std::iter::once("/bin/true".to_string())
        .chain(c.args.iter().cloned())
        .collect();
    s.env = c
        .env
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("PQ_{i}"), v.clone()))
        .collect();
    s.description = Some(c.description.clone());
    s.hardening = Level::Strict;
    s.watchdog = std::time::Duration::ZERO;
    s.regenerate = std::iter::once("unit".to_string())
        .chain(c.args.iter().cloned())
        .collect();
    s
}

/// Parses one `busctl --json=short get-property` line into its `data`.
fn data(line: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad busctl JSON {line:?}: {e}"));
    v["data"].clone()
}

/// What systemd made of a property-test unit, as read back over D-Bus.
struct ReadBack {
    /// The argv of each `ExecStart=` command.
    exec_start: Vec<Vec<String>>,
    environment: Vec<String>,
    exec_start_pre: usize,
    description: String,
    load_state: String,
}

/// Reads `ExecStart`, `Environment`, `ExecStartPre`, `Description` and `LoadState` of
/// each `NAME.service` over the box's system bus, from this process: one connection and
/// every call in flight at once (a `busctl` process per unit cost most of this test's
/// time).
fn read_back(bx: &TestBox, names: &[&str]) -> Vec<ReadBack> {
    use std::collections::HashMap;
    use zbus::{OwnedVariant, Variant};
    let addr = format!(
        "unix:path=/proc/{}/root/run/dbus/system_bus_socket",
        bx.pid()
    );
    let strings = |v: &Variant<'_>| -> Vec<String> {
        match v {
            Variant::Array(a) => a
                .inner()
                .iter()
                .map(|e| match e {
                    Variant::Str(s) => s.as_str().to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect(),
            other => panic!("not an array of strings: {other:?}"),
        }
    };
    zbus::block_on(async {
        let conn = zbus::connection::Builder::address(addr.as_str())
            .build()
            .await
            .unwrap_or_else(|e| panic!("connect to the box's system bus ({addr}): {e}"));
        let get_all = |name: &str, interface: &'static str| {
            let path = format!(
                "/org/freedesktop/systemd1/unit/{}",
                bus_label(&format!("{name}.service"))
            );
            let conn = &conn;
            async move {
                let reply = conn
                    .call_method(
                        Some("org.freedesktop.systemd1"),
                        path.as_str(),
                        Some("org.freedesktop.DBus.Properties"),
                        "GetAll",
                        &(interface),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("GetAll {interface} of {path}: {e}"));
                reply
                    .body()
                    .deserialize::<HashMap<String, OwnedVariant>>()
                    .unwrap()
            }
        };
        let calls = names.iter().map(|name| async move {
            let (unit, service) = futures_lite::future::zip(
                get_all(name, "org.freedesktop.systemd1.Unit"),
                get_all(name, "org.freedesktop.systemd1.Service"),
            )
            .await;
            let exec_start = match &*service["ExecStart"] {
                Variant::Array(a) => a
                    .inner()
                    .iter()
                    .map(|cmd| match cmd {
                        Variant::Structure(st) => strings(&st.fields()[1]),
                        other => panic!("{name}: ExecStart entry {other:?}"),
                    })
                    .collect(),
                other => panic!("{name}: ExecStart {other:?}"),
            };
            let exec_start_pre = match &*service["ExecStartPre"] {
                Variant::Array(a) => a.inner().len(),
                other => panic!("{name}: ExecStartPre {other:?}"),
            };
            let text = |v: &OwnedVariant| match &**v {
                Variant::Str(s) => s.as_str().to_string(),
                other => panic!("{name}: not a string: {other:?}"),
            };
            ReadBack {
                exec_start,
                environment: strings(&service["Environment"]),
                exec_start_pre,
                description: text(&unit["Description"]),
                load_state: text(&unit["LoadState"]),
            }
        });
        let mut out = Vec::with_capacity(names.len());
        // In flight together, a batch at a time (dbus-daemon limits a connection's
        // outstanding calls).
        let calls: Vec<_> = calls.collect();
        let mut calls = calls.into_iter();
        loop {
            let chunk: Vec<_> = calls.by_ref().take(64).collect();
            if chunk.is_empty() {
                break;
            }
            out.extend(join_all(chunk).await);
        }
        out
    })
}

/// Awaits every future, polling them together; results in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in futures.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

/// Splits NUL-terminated entries `a\0\0b\0` into ["a", "", "b"].
fn nul_list(bytes: &[u8]) -> Vec<String> {
    let Some(body) = bytes.strip_suffix(b"\0") else {
        assert!(bytes.is_empty(), "entries must end with NUL: {bytes:?}");
        return Vec::new();
    };
    body.split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).expect("UTF-8"))
        .collect()
}

/// A runner seeded from `MYDAEMON_PROPTEST_SEED`, or from the clock; the seed is printed
/// so that a failure can be replayed.
fn seeded_runner() -> TestRunner {
    let seed: u64 = match std::env::var("MYDAEMON_PROPTEST_SEED") {
        Ok(s) => s.parse().expect("MYDAEMON_PROPTEST_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("proptest seed {seed} (replay with MYDAEMON_PROPTEST_SEED={seed})");
    let bytes: Vec<u8> = seed.to_le_bytes().repeat(4);
    TestRunner::new_with_rng(
        proptest::test_runner::Config::default(),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &bytes,
        ),
    )
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn random_arguments_and_environment_come_back_exactly() {
    let bx = TestBox::boot();
    let root = format!("/proc/{}/root", bx.pid());
    bx.write_file(ARGDUMP_PATH, ARGDUMP.as_bytes());
    bx.sh_ok(&format!("chmod 755 {ARGDUMP_PATH}; mkdir -p /run/argdump"));
    bx.write_file(
        "/etc/systemd/system/pq-.service.d/10-test.conf",
        DROPIN.as_bytes(),
    );

    let mut runner = seeded_runner();
    let strategy = case();
    let started = Instant::now();
    let (mut loaded, mut executed, mut refused) = (0usize, 0usize, 0usize);
    for b in 0..BATCHES {
        // Render a batch; refused cases must be exactly the unrepresentable ones.
        let mut batch: Vec<(String, Case)> = Vec::new();
        for i in 0..BATCH {
            let c = strategy.new_tree(&mut runner).unwrap().current();
            let name = format!("pq-{b}-{i}");
            let must_refuse = c.args.iter().chain(&c.env).any(|s| unrepresentable(s))
                || bad_description(&c.description);
            match spec_for(&name, &c).render() {
                Ok(text) => {
                    assert!(
                        !must_refuse,
                        "rendered a unit that cannot hold {c:?}:\n{text}"
                    );
                    fs::write(format!("{root}/etc/systemd/system/{name}.service"), text).unwrap();
                    batch.push((name, c));
                }
                Err(e) => {
                    assert!(must_refuse, "refused {c:?}: {e}");
                    assert_eq!(e.exit_code(), 2, "{e}");
                    assert!(!e.to_string().contains("panicked"));
                    refused += 1;
                }
            }
        }
        bx.sh_ok("systemctl daemon-reload");

        // Read every unit back over the box's D-Bus, from this process.
        let names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
        let props = read_back(&bx, &names);
        for ((name, c), p) in batch.iter().zip(props) {
            let mut want: Vec<String> = ["run", "--name", name, "--", "/bin/true"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            // Before execution systemd keeps `$$` (it becomes `$` when the command runs).
            want.extend(c.args.iter().map(|a| a.replace('$', "$$")));
            want.insert(0, ARGDUMP_PATH.to_string());
            assert_eq!(p.exec_start.len(), 1, "{name}: one command");
            assert_eq!(p.exec_start[0], want, "{name}: ExecStart of {c:?}");
            let want_env: Vec<String> = c
                .env
                .iter()
                .enumerate()
                .map(|(i, v)| format!("PQ_{i}={v}"))
                .collect();
            assert_eq!(p.environment, want_env, "{name}: Environment of {c:?}");
            assert_eq!(p.exec_start_pre, 0, "{name}: ExecStartPre");
            assert_eq!(p.description, c.description, "{name}");
            assert_eq!(p.load_state, "loaded", "{name}");
            loaded += 1;
        }

        // Run a sample: the program's real argv and environment, byte for byte.
        let sample: Vec<&(String, Case)> = batch.iter().step_by(EXEC_EVERY).collect();
        let names: Vec<String> = sample.iter().map(|(n, _)| format!("{n}.service")).collect();
        bx.sh_ok(&format!("systemctl start {}", names.join(" ")));
        for (name, c) in sample {
            let dump = fs::read(format!("{root}/run/argdump/{name}.service")).unwrap();
            let nl = dump.iter().position(|b| *b == b'\n').expect("argc line");
            let argc: usize = std::str::from_utf8(&dump[..nl]).unwrap().parse().unwrap();
            let mut argv = nul_list(&dump[nl + 1..]);
            let env: BTreeSet<String> = argv.split_off(argc).into_iter().collect();
            let mut want: Vec<String> = ["run", "--name", name, "--", "/bin/true"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            want.extend(c.args.iter().cloned());
            assert_eq!(argv, want, "{name}: argv as executed, for {c:?}");
            for (i, v) in c.env.iter().enumerate() {
                let kv = format!("PQ_{i}={v}");
                assert!(env.contains(&kv), "{name}: {kv:?} missing from {env:?}");
            }
            executed += 1;
        }
        bx.sh_ok("rm -f /etc/systemd/system/pq-*.service /run/argdump/*");
    }
    // systemd complained about none of the files.
    let complaints = bx.sh("journalctl -b --no-pager -o cat | grep -F '/etc/systemd/system/pq-'");
    assert!(
        complaints.stdout.is_empty(),
        "systemd warned while parsing:\n{}",
        String::from_utf8_lossy(&complaints.stdout)
    );
    eprintln!(
        "property test: {loaded} units loaded and read back, {executed} executed, \
         {refused} refused, in {:?}",
        started.elapsed()
    );
    assert_eq!(loaded + refused, BATCH * BATCHES);
    assert!(
        loaded >= 2000 && refused >= 50,
        "want ≥ 2000 loaded and some refusals"
    );
}

/// The score `systemd-analyze security UNIT` gives (its "Overall exposure level").
fn exposure(bx: &TestBox, unit: &str) -> f64 {
    let out = bx.sh_ok(&format!("systemd-analyze security --no-pager {unit} 2>&1"));
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    let after = line.split(':').nth(1).expect("score after ':'");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn default_unit_verifies_clean_and_scores_at_most_1_5() {
    let bx = TestBox::boot();
    // The man page Documentation= points to, as `make install` installs it.
    bx.sh_ok(&format!(
        "mkdir -p /usr/local/share/man/man1 && {BIN} man --out-dir /usr/local/share/man/man1"
    ));
    bx.sh_ok(&format!(
        "{BIN} unit --exec-path {BIN} > /etc/systemd/system/mydaemon.service"
    ));
    let out = bx.sh("systemd-analyze verify /etc/systemd/system/mydaemon.service 2>&1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify said:\n{text}"
    );

    bx.sh_ok("systemctl daemon-reload");
    let strict = exposure(&bx, "mydaemon.service");
    eprintln!("systemd-analyze security, strict (default): {strict}");
    assert!(strict <= 1.5, "strict scores {strict}");

    // The other levels, for the record (and the README).
    bx.sh_ok(&format!(
        "{BIN} unit --name std --exec-path {BIN} -- /bin/sleep infinity > /etc/systemd/system/std.service && \
         {BIN} unit --name off --exec-path {BIN} --hardening off > /etc/systemd/system/off.service && \
         systemctl daemon-reload"
    ));
    let standard = exposure(&bx, "std.service");
    let off = exposure(&bx, "off.service");
    eprintln!("systemd-analyze security, standard: {standard}, off: {off}");
    assert!(
        strict < standard && standard < off,
        "{strict} {standard} {off}"
    );
    let out = bx.sh("systemd-analyze verify /etc/systemd/system/std.service 2>&1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify std said:\n{text}"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn install_root_is_enabled_as_systemctl_sees_it_and_uninstall_cleans_up() {
    let bx = TestBox::boot();
    bx.sh_ok("mkdir -p /tmp/img");
    let said = bx.sh_ok(&format!(
        "{BIN} install --root /tmp/img --name img --exec-path {BIN}"
    ));
    assert!(
        said.contains("/tmp/img/etc/systemd/system/img.service"),
        "{said}"
    );
    let unit = bx.sh_ok(&format!("{BIN} unit --name img --exec-path {BIN}"));
    assert_eq!(
        bx.read_file("/tmp/img/etc/systemd/system/img.service"),
        unit.as_bytes()
    );
    assert_eq!(
        bx.sh_ok("stat -c %a /tmp/img/etc/systemd/system/img.service")
            .trim(),
        "644"
    );
    // systemctl itself agrees it is enabled in that image.
    assert_eq!(
        bx.sh_ok("systemctl --root=/tmp/img is-enabled img.service")
            .trim(),
        "enabled"
    );

    // A foreign file is left alone without --force.
    bx.write_file(
        "/tmp/img/etc/systemd/system/other.service",
        b"[Service]\nExecStart=/bin/true\n",
    );
    let out = bx.sh(&format!(
        "{BIN} install --root /tmp/img --name other --exec-path {BIN}"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not generated by mydaemon"));
    assert_eq!(
        bx.read_file("/tmp/img/etc/systemd/system/other.service"),
        b"[Service]\nExecStart=/bin/true\n"
    );

    bx.sh_ok(&format!("{BIN} uninstall --root /tmp/img --name img"));
    let state = bx.sh("systemctl --root=/tmp/img is-enabled img.service 2>&1");
    assert!(!state.status.success(), "still there: {state:?}");
    assert!(
        bx.sh("test -e /tmp/img/etc/systemd/system/multi-user.target.wants/img.service")
            .status
            .code()
            == Some(1)
    );
    let out = bx.sh(&format!("{BIN} uninstall --root /tmp/img --name img"));
    assert_eq!(out.status.code(), Some(5), "{out:?}");
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn permission_denied_is_exit_4_and_writes_nothing() {
    let bx = TestBox::boot();
    bx.sh_ok("mkdir -p /tmp/ro/etc/systemd/system && chmod -R 755 /tmp/ro");
    let as_nobody = |args: &str| {
        bx.sh(&format!(
            "cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- {BIN} {args}"
        ))
    };
    for args in [
        format!("install --root /tmp/ro --exec-path {BIN}"),
        format!("install --systemd --exec-path {BIN}"),
    ] {
        let out = as_nobody(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args}: {err}");
        assert!(err.contains("permission denied"), "{err}");
        assert!(
            err.contains("sudo mydaemon install") && err.contains("--user"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        bx.sh_ok("find /tmp/ro -type f -o -type l | wc -l").trim(),
        "0"
    );
    assert_eq!(
        bx.sh("test -e /etc/systemd/system/mydaemon.service")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        bx.sh_ok("ls -A /etc/systemd/system | grep -c '^\\.mydaemon' || true")
            .trim(),
        "0"
    );

    // uninstall of a unit nobody may remove.
    bx.sh_ok(&format!("{BIN} install --root /tmp/ro --exec-path {BIN}"));
    let out = as_nobody("uninstall --root /tmp/ro");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sudo mydaemon uninstall"));
    assert_eq!(
        bx.sh("test -f /tmp/ro/etc/systemd/system/mydaemon.service")
            .status
            .code(),
        Some(0)
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn live_install_writes_the_system_unit_and_uninstall_removes_it() {
    let bx = TestBox::boot();
    let out = bx.sh(&format!("{BIN} install --exec-path {BIN} --name live"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("/etc/systemd/system/live.service"),
        "{stdout}"
    );
    let unit = bx.sh_ok(&format!("{BIN} unit --exec-path {BIN} --name live"));
    assert_eq!(
        bx.read_file("/etc/systemd/system/live.service"),
        unit.as_bytes()
    );
    assert_eq!(
        bx.sh_ok("systemctl show -p LoadState,UnitFileState --value live.service"),
        "loaded\nenabled\n"
    );
    let out = bx.sh(&format!("{BIN} uninstall --name live"));
    assert!(out.status.success(), "{out:?}");

    // A unit for this system that could not start is not written.
    for (args, code, why) in [
        ("--exec-user nosuchuser", 2, "no such user"),
        (
            "--exec-user root --exec-group nosuchgroup",
            2,
            "no such group",
        ),
        (
            "--exec-path /usr/local/bin/not-there",
            5,
            "not an executable file",
        ),
    ] {
        let out = bx.sh(&format!("{BIN} install --name never {args}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args}: {err}");
        assert!(err.contains(why), "{args}: {err}");
        assert_eq!(
            bx.sh("test -e /etc/systemd/system/never.service")
                .status
                .code(),
            Some(1)
        );
    }
    assert_eq!(
        bx.sh("test -e /etc/systemd/system/live.service")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        bx.sh("ls /etc/systemd/system/*.wants/live.service 2>/dev/null | wc -l")
            .stdout,
        b"0\n"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn generated_units_start_and_reload_in_the_system_and_user_managers() {
    let bx = TestBox::boot();
    // System manager: the strict built-in workload, and a command under `standard`.
    bx.sh_ok(&format!(
        "{BIN} unit --name gs --exec-path {BIN} > /etc/systemd/system/gs.service && \
         {BIN} unit --name gc --exec-path {BIN} --env 'GREETING=a b' --watchdog-sec 1m500ms \
           -- sleep infinity > /etc/systemd/system/gc.service && \
         systemctl daemon-reload && systemctl start gs gc"
    ));
    // --watchdog-sec takes a duration; systemd reads back what was asked (µs).
    assert_eq!(
        bx.sh_ok(
            "systemctl show -p WatchdogUSec --value gs; busctl get-property \
                  org.freedesktop.systemd1 /org/freedesktop/systemd1/unit/gc_2eservice \
                  org.freedesktop.systemd1.Service WatchdogUSec"
        ),
        "30s\nt 60500000\n"
    );
    for u in ["gs", "gc"] {
        assert_eq!(
            bx.sh_ok(&format!("systemctl is-active {u}")).trim(),
            "active"
        );
    }
    // ExecReload= works inside the strict sandbox and leaves the service running.
    bx.sh_ok("systemctl reload gs");
    assert_eq!(
        bx.sh_ok(
            "systemctl show -p ActiveState --value gs; systemctl show -p NRestarts --value gs"
        ),
        "active\n0\n"
    );

    // A per-user manager: no User=/DynamicUser=, only hardening a user manager applies.
    bx.add_lingering_user("alice");
    let out = bx.sh_as(
        "alice",
        &format!(
            "set -e; {BIN} --user install --name gu --exec-path {BIN} >/dev/null 2>&1 || true; \
             test -f ~/.config/systemd/user/gu.service; \
             {BIN} --user unit --name gx --exec-path {BIN} -- sleep infinity \
               > ~/.config/systemd/user/gx.service; \
             systemctl --user daemon-reload; systemctl --user start gu gx; \
             systemctl --user is-active gu gx; systemctl --user reload gu; \
             systemctl --user is-active gu"
        ),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text == "active\nactive\nactive\n",
        "user units: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the user unit verifies clean too (with the man page in place).
    bx.sh_ok(&format!(
        "mkdir -p /usr/local/share/man/man1 && {BIN} man --out-dir /usr/local/share/man/man1"
    ));
    let out = bx.sh_as(
        "alice",
        "systemd-analyze --user verify ~/.config/systemd/user/gu.service 2>&1",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "user verify: {text}"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn odd_program_paths_and_names_round_trip() {
    let bx = TestBox::boot();
    let root = format!("/proc/{}/root", bx.pid());
    let prog = "/opt/my app/50% off/ünï prog";
    bx.write_file(prog, ARGDUMP.as_bytes());
    bx.sh_ok(&format!("chmod 755 '{prog}'"));
    let dir = "/opt/my app/50% off";
    let env_file = format!("{dir}/env file #1");
    bx.write_file(&env_file, b"FROM_FILE=yes it is\n");
    // The unit name may hold `\` and `:` (systemd's own escaping); paths spaces, `%`,
    // `#` and non-ASCII.
    let name = "odd\\x2dname:1";
    let mut s = ServiceSpec::new(name, prog);
    s.command = vec![prog.to_string(), "a b".into()];
    s.watchdog = std::time::Duration::ZERO;
    s.working_dir = Some(dir.to_string());
    s.env_files = vec![env_file.clone()];
    let text = s.render().unwrap();
    fs::write(format!("{root}/etc/systemd/system/{name}.service"), &text).unwrap();
    bx.write_file(
        &format!("/etc/systemd/system/{name}.service.d/10-test.conf"),
        b"[Service]\nType=oneshot\nStandardOutput=truncate:/run/odd.out\n",
    );
    bx.sh_ok("systemctl daemon-reload");
    let path = format!(
        "/org/freedesktop/systemd1/unit/{}",
        bus_label(&format!("{name}.service"))
    );
    let exec = data(&bx.sh_ok(&format!(
        "busctl --json=short get-property org.freedesktop.systemd1 {path} \
         org.freedesktop.systemd1.Service ExecStart"
    )));
    assert_eq!(exec[0][0], serde_json::json!(prog), "{text}");
    assert_eq!(
        exec[0][1],
        serde_json::json!([prog, "run", "--name", name, "--", prog, "a b"]),
        "{text}"
    );
    let props = bx.sh_ok(&format!(
        "busctl --json=short get-property org.freedesktop.systemd1 {path} \
         org.freedesktop.systemd1.Service WorkingDirectory EnvironmentFiles"
    ));
    let props: Vec<&str> = props.lines().collect();
    assert_eq!(data(props[0]), serde_json::json!(dir), "{text}");
    assert_eq!(
        data(props[1]),
        serde_json::json!([[env_file, false]]),
        "{text}"
    );
    bx.sh_ok(&format!("systemctl start '{name}.service'"));
    let dump = bx.read_file("/run/odd.out");
    let nl = dump.iter().position(|b| *b == b'\n').unwrap();
    let argc: usize = std::str::from_utf8(&dump[..nl]).unwrap().parse().unwrap();
    let mut argv = nul_list(&dump[nl + 1..]);
    let env = argv.split_off(argc);
    assert_eq!(argv, ["run", "--name", name, "--", prog, "a b"]);
    assert!(env.contains(&"FROM_FILE=yes it is".to_string()), "{env:?}");
}

/// Random `--name` candidates, mostly from the unit-name alphabet.
fn name_candidate() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        20 => proptest::char::range('a', 'z'),
        3 => proptest::char::range('0', '9'),
        2 => proptest::char::range('A', 'Z'),
        2 => Just('-'),
        2 => Just('_'),
        2 => Just('.'),
        2 => Just(':'),
        2 => Just('\\'),
        2 => Just('@'),
        1 => hard_char(),
    ];
    prop_oneof![
        8 => proptest::collection::vec(ch.clone(), 0..12).prop_map(String::from_iter),
        1 => proptest::collection::vec(ch, 240..252).prop_map(String::from_iter),
    ]
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn names_are_accepted_exactly_when_systemd_accepts_them() {
    let bx = TestBox::boot();
    let mut runner = seeded_runner();
    let strategy = name_candidate();
    let names: Vec<String> = (0..600)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .filter(|n| !n.contains(['\0', '\'', '\n']) && !n.ends_with(".service"))
        .collect();
    // Ask systemd about each NAME.service: LoadUnit fails for an invalid name.
    let mut script = String::new();
    for n in &names {
        script.push_str(&format!(
            "if busctl -- call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
             org.freedesktop.systemd1.Manager LoadUnit s '{n}.service' >/dev/null 2>&1; \
             then echo ok; else echo bad; fi\n"
        ));
    }
    let out = bx.sh_ok(&script);
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), names.len());
    let (mut valid, mut invalid, mut templates) = (0, 0, 0);
    for (n, systemd) in names.iter().zip(verdicts) {
        let ours = mydaemon::unit::name::validate(n);
        if n.ends_with('@') && !n[..n.len() - 1].contains('@') && n.len() > 1 {
            // A bare template: systemd may know the name, but nothing can run it.
            assert!(ours.is_err(), "{n:?}: a bare template must be refused");
            templates += 1;
            continue;
        }
        match (&ours, systemd) {
            (Ok(()), "ok") => valid += 1,
            (Err(e), "bad") => {
                assert_eq!(e.exit_code(), 2);
                invalid += 1;
            }
            _ => panic!("{n:?}: we say {ours:?}, systemd says {systemd}"),
        }
    }
    eprintln!("names: {valid} valid, {invalid} invalid, {templates} bare templates, all as systemd judges");
    assert!(
        valid > 100 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
}
