//! The real-systemd test box: boots systemd as PID 1 in private namespaces, with the
//! `mydaemon` binary under test bind-mounted at [`BIN`], and runs commands inside it.
//!
//! Integration tests include it with `mod testbox;`; a benchmark can include it with
//! `#[path = "../tests/testbox/mod.rs"] mod testbox;` and call
//! [`TestBox::boot_with_binary`].
//!
//! ```ignore
//! mod testbox;
//! use testbox::{TestBox, BIN};
//! #[test]
//! #[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
//! fn starts_under_systemd() {
//!     let bx = TestBox::boot(); // panics naming the reason when the box cannot boot
//!     bx.write_file("/etc/systemd/system/x.service", b"[Service]\nExecStart=/bin/sleep 9\n");
//!     bx.sh_ok("systemctl daemon-reload && systemctl start x");
//!     let uid = bx.add_lingering_user("alice"); // then bx.sh_as("alice", "systemctl --user ...")
//! }
//! ```
//! Root commands get a clean root-login environment and stdin from /dev/null; use
//! [`TestBox::command`] for anything else (stdin, a long-running child).
//!
//! How a box is built (needs root with full capabilities, systemd and util-linux):
//! - a fresh cgroup-v2 directory is created on the host (`mydaemon-testbox.<pid>.<n>` at
//!   the root of the cgroup2 hierarchy) and `unshare` is started inside it, so the box's
//!   cgroup namespace is rooted there and boxes never see each other's cgroups;
//! - `unshare --pid --fork --mount --uts --ipc --net --cgroup` runs `boot.sh` (embedded)
//!   as PID 1 of the new namespaces; it mounts a tmpfs in the box's own temp dir, an
//!   overlay with `/` as lower layer and that tmpfs as upper layer, fresh `proc`, `sysfs`
//!   (read-only), `cgroup2`, tmpfs on `/run`, `/tmp`, `/dev` (minimal device nodes, a new
//!   devpts instance), bind-mounts the binary, masks the units the tests don't need
//!   ([`MASKED_UNITS`]),
//!   `pivot_root`s and execs `/lib/systemd/systemd` with `container=mydaemon-testbox`;
//! - the host PID of that systemd is the only child of `unshare`; the box is ready when
//!   `systemctl is-system-running --wait` says `running` or `degraded`.
//!
//! Nothing written inside reaches the host: every writable mount is a tmpfs that lives only
//! in the box's mount namespace. The box's console (systemd's own messages) goes to
//! `console.log` in the box's host temp dir, shown when boot fails ([`TestBox::console_log`]).
//!
//! Dropping the box kills its whole cgroup (`cgroup.kill`) and PID namespace, reaps
//! `unshare`, and removes the cgroup and the temp dir. A box is `Send + Sync` and may be
//! shared between test threads (no parent-death signal ties it to the thread that booted
//! it). If the test process dies without dropping a box (killed; or a box kept in a
//! `static`, which is never dropped), the next box that boots kills and removes the
//! cgroups and temp dirs of boxes whose test process is gone.
#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

pub mod fleet;

#[allow(unused_imports)]
pub use support::{output_within, show, text, wait_within};

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the binary under test appears inside every box.
pub const BIN: &str = "/usr/bin/mydaemon";

/// The boot script run as PID 1 of the new namespaces before it execs systemd.
const BOOT_SCRIPT: &str = include_str!("boot.sh");

/// `PATH` and the rest of the environment of a root login, for [`TestBox::sh`].
const ROOT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LOGNAME=root",
    "SHELL=/bin/bash",
    "LANG=C.UTF-8",
    "TERM=dumb",
];

/// Units masked in every box: consoles and gettys, timers, host services (postgresql,
/// cron, ssh: installing openssh-server enables it on the host; a fleet server box runs
/// an sshd unit of its own, see `fleet.rs`), and what cannot work or only slows boot in
/// a container (udev, sysctl, binfmt, kernel modules, hardware and persistent-state
/// services). The journal is flushed into the box's own empty `/var/log/journal` (see
/// `boot.sh`), so users get their own journal files, as on a real host.
pub const MASKED_UNITS: &[&str] = &[
    "getty.target",
    "console-getty.service",
    "getty@.service",
    "serial-getty@.service",
    "container-getty@.service",
    "postgresql.service",
    "postgresql@.service",
    "timers.target",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "systemd-tmpfiles-clean.timer",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-modules-load.service",
    "systemd-timesyncd.service",
    "systemd-pstore.service",
    "remote-fs.target",
    "systemd-networkd-wait-online.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-hwdb-update.service",
    "systemd-random-seed.service",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "ldconfig.service",
    "systemd-journal-catalog-update.service",
    "systemd-update-done.service",
    "cron.service",
    "anacron.service",
    "ssh.service",
    "ssh.socket",
    "ssh@.service",
    "sshd-unix-local.socket",
    "sshd-vsock.socket",
    "rsyslog.service",
    "networking.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "kmod-static-nodes.service",
    "systemd-remount-fs.service",
    "modprobe@.service",
];

/// How long a box may take to boot (the machine may be busy with parallel builds).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one command run in a box may take before `timeout` ends it: tests never hang
/// on a command (the suite's own guard, `.config/nextest.toml`, is 120 s a test).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Prefix of the cgroups (`<prefix><test pid>.<n>`) and temp dirs
/// (`<prefix><test pid>.<random>`) this module creates.
const CGROUP_PREFIX: &str = "mydaemon-testbox.";

static BOX_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running systemd in private namespaces. See the module documentation.
pub struct TestBox {
    /// The `unshare` process; its only child is the box's PID 1.
    unshare: Option<Child>,
    /// Host PID of the box's systemd (0 until found).
    pid: i32,
    /// Host temp dir: `console.log` and `m/` (where the box mounts its private tmpfs).
    dir: Option<tempfile::TempDir>,
    /// The box's cgroup directory on the host.
    cgroup: PathBuf,
    /// `cgroup.procs` of that cgroup, open for writing: a child writes "0" to it to join.
    procs: File,
    /// Time from `boot()` until the box was running.
    boot_time: Duration,
}

/// Says why a box cannot be used.
fn skip(why: &str) -> Result<TestBox, String> {
    Err(format!("the test box cannot boot: {why}"))
}

/// The mount point of the cgroup-v2 hierarchy on the host, if any.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        // "id parent major:minor root mountpoint opts [optional...] - fstype source superopts"
        let (pre, post) = line.split_once(" - ")?;
        if post.split(' ').next() == Some("cgroup2") {
            let mount = pre.split(' ').nth(4)?;
            let path = PathBuf::from(mount.replace("\\040", " "));
            // Prefer /sys/fs/cgroup (pure v2) over /sys/fs/cgroup/unified (hybrid).
            if path == Path::new("/sys/fs/cgroup") {
                return Some(path);
            }
            found.get_or_insert(path);
        }
    }
    found
}

/// Kills every process in a cgroup tree and removes its directories, bottom up.
fn destroy_cgroup(cg: &Path, timeout: Duration) -> bool {
    if !cg.exists() {
        return true;
    }
    let _ = fs::write(cg.join("cgroup.kill"), "1");
    let deadline = Instant::now() + timeout;
    loop {
        if remove_cgroup_tree(cg) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        let _ = fs::write(cg.join("cgroup.kill"), "1");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn remove_cgroup_tree(cg: &Path) -> bool {
    if let Ok(entries) = fs::read_dir(cg) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    fs::remove_dir(cg).is_ok() || !cg.exists()
}

/// The owner PID in a name made by this module: `mydaemon-testbox.<pid>.<rest>`.
fn owner_of(name: &str) -> Option<u32> {
    name.strip_prefix(CGROUP_PREFIX)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Removes the cgroups (killing what they hold), then the temp dirs, that test processes
/// left behind when they died without dropping their boxes (killed, or a box in a
/// `static`, which is never dropped).
fn remove_stale_boxes(cgroup_root: &Path) {
    let dead =
        |name: &str| owner_of(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    for root in [cgroup_root.to_path_buf(), std::env::temp_dir()] {
        let Ok(entries) = fs::read_dir(&root) else {
            continue;
        };
        for e in entries.flatten() {
            if !dead(&e.file_name().to_string_lossy()) {
                continue;
            }
            if root == cgroup_root {
                destroy_cgroup(&e.path(), Duration::from_millis(500));
            } else {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The PIDs whose parent is `ppid` (scans /proc: `/proc/PID/task/*/children` is not
/// available on every kernel).
fn children_of(ppid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(ppid)
        {
            out.push(pid);
        }
    }
    out
}

/// Renders an `Output` for a panic message.
fn describe(what: &str, out: &Output) -> String {
    let limit = if out.status.code() == Some(124) {
        format!(" (124: still running after {COMMAND_LIMIT:?}, ended by timeout)")
    } else {
        String::new()
    };
    format!(
        "{what}: {}{limit}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl TestBox {
    /// Boots a box with the `mydaemon` binary of this build (`CARGO_BIN_EXE_mydaemon`).
    /// Panics with the reason when it cannot (not root, no systemd, ...): box tests are
    /// `#[ignore]`d, so that without root they show as skipped, and whoever runs them
    /// (`make test` as root, CI) wants them to run.
    #[track_caller]
    pub fn boot() -> TestBox {
        match option_env!("CARGO_BIN_EXE_mydaemon") {
            Some(bin) => Self::boot_with_binary(Path::new(bin)),
            None => panic!("CARGO_BIN_EXE_mydaemon is not set for this build target"),
        }
    }

    /// Boots a box with `binary` bind-mounted at [`BIN`] (a release build, say).
    /// Panics with the reason when it cannot, as [`TestBox::boot`] does.
    #[track_caller]
    pub fn boot_with_binary(binary: &Path) -> TestBox {
        Self::try_boot_with_binary(binary).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Boots a box with `binary`, or says why it cannot.
    pub fn try_boot_with_binary(binary: &Path) -> Result<TestBox, String> {
        Self::try_boot_with_files(binary, &[])
    }

    /// Boots a box with `binary` and extra files in its `/etc`, present before systemd
    /// starts (`(absolute path under /etc/, contents)`: a unit and a drop-in that wants it
    /// start during the boot), or says why it cannot.
    pub fn try_boot_with_files(binary: &Path, etc: &[(&str, &[u8])]) -> Result<TestBox, String> {
        let started = Instant::now();
        if let Some((bad, _)) = etc
            .iter()
            .find(|(p, _)| !p.starts_with("/etc/") || p.split('/').any(|c| c == ".."))
        {
            return skip(&format!("boot file {bad} is not a path under /etc/"));
        }
        if !nix::unistd::geteuid().is_root() {
            return skip("the test box needs root (namespaces, mounts, cgroups); not root");
        }
        if !binary.is_file() {
            return skip(&format!("binary {} does not exist", binary.display()));
        }
        let Ok(binary) = binary.canonicalize() else {
            return skip(&format!("cannot resolve {}", binary.display()));
        };
        for tool in [
            "/lib/systemd/systemd",
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
        ] {
            if !Path::new(tool).exists() {
                return skip(&format!("{tool} is not installed"));
            }
        }
        let Some(cg_root) = cgroup2_mount() else {
            return skip("no cgroup2 hierarchy is mounted on the host");
        };
        remove_stale_boxes(&cg_root);

        let n = BOX_COUNTER.fetch_add(1, Ordering::Relaxed);
        let cgroup = cg_root.join(format!("{CGROUP_PREFIX}{}.{n}", std::process::id()));
        if let Err(e) = fs::create_dir(&cgroup) {
            return skip(&format!("cannot create cgroup {}: {e}", cgroup.display()));
        }
        let procs = match OpenOptions::new()
            .write(true)
            .open(cgroup.join("cgroup.procs"))
        {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&cgroup);
                return skip(&format!(
                    "cannot open {}/cgroup.procs: {e}",
                    cgroup.display()
                ));
            }
        };
        let dir = match tempfile::Builder::new()
            .prefix(&format!("{CGROUP_PREFIX}{}.", std::process::id()))
            .tempdir()
        {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::remove_dir(&cgroup);
                return skip(&format!("cannot create a temp dir: {e}"));
            }
        };

        // From here on, Drop cleans up whatever exists.
        let mut bx = TestBox {
            unshare: None,
            pid: 0,
            dir: Some(dir),
            cgroup,
            procs,
            boot_time: Duration::ZERO,
        };
        match bx.start(&binary, n, etc) {
            Ok(()) => {
                bx.boot_time = started.elapsed();
                Ok(bx)
            }
            Err(why) => {
                let mut log = bx.console_log();
                if bx.pid > 0 {
                    let journal = bx.sh("journalctl -b --no-pager -n 80 2>&1");
                    log.push_str("--- box journal ---\n");
                    log.push_str(&String::from_utf8_lossy(&journal.stdout));
                }
                skip(&format!(
                    "box did not boot: {why}\n--- box console ---\n{log}"
                ))
            }
        }
    }

    /// Starts `unshare` + systemd, finds its PID, waits until it is running.
    fn start(&mut self, binary: &Path, n: u32, etc: &[(&str, &[u8])]) -> Result<(), String> {
        let dir = self.dir.as_ref().expect("temp dir").path().to_path_buf();
        let mnt = dir.join("m");
        fs::create_dir(&mnt).map_err(|e| format!("mkdir {}: {e}", mnt.display()))?;
        let hostname = format!("box{n}");
        let prep = dir.join("prep");
        prepare_etc(&prep, &hostname, etc)
            .map_err(|e| format!("prepare {}: {e}", prep.display()))?;
        let log = File::create(dir.join("console.log")).map_err(|e| format!("console.log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;

        let mut cmd = Command::new("/usr/bin/unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--cgroup",
            "--",
            "/bin/sh",
            "-c",
            BOOT_SCRIPT,
            "testbox-boot",
        ])
        .arg(&mnt)
        .arg(binary)
        .arg(&hostname)
        .arg(&prep)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
        let fd = self.procs.as_raw_fd();
        // SAFETY: only an async-signal-safe write between fork and exec.
        unsafe {
            cmd.pre_exec(move || join_cgroup(fd));
        }
        let child = cmd.spawn().map_err(|e| format!("spawn unshare: {e}"))?;
        let unshare_pid = child.id();
        self.unshare = Some(child);

        // The box's PID 1 is unshare's only child; it is systemd once boot.sh has exec'd.
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Some(status) = self.unshare.as_mut().unwrap().try_wait().ok().flatten() {
                return Err(format!("unshare exited early ({status})"));
            }
            if let [pid] = children_of(unshare_pid)[..] {
                let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.file_name() == Some(OsStr::new("systemd")) {
                    self.pid = pid;
                    break;
                }
            }
            if Instant::now() >= deadline {
                return Err("systemd did not start in time".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }

        // Wait for the boot to finish. Before systemd listens on its private socket,
        // systemctl fails to connect; retry until it answers.
        let state = loop {
            let out = self.sh("timeout 5 systemctl is-system-running --wait 2>&1");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match state.as_str() {
                "running" | "degraded" => break state,
                // "offline" (and connection errors) just mean: not listening yet.
                "maintenance" | "stopping" => {
                    return Err(format!("system state {state}"));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(format!("boot did not finish in time (last: {state:?})"));
            }
            if self
                .unshare
                .as_mut()
                .unwrap()
                .try_wait()
                .ok()
                .flatten()
                .is_some()
            {
                return Err("the box's systemd died".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if state == "degraded" {
            let failed = self.sh("systemctl list-units --failed --no-legend --no-pager");
            eprintln!(
                "testbox: booted degraded; failed units:\n{}",
                String::from_utf8_lossy(&failed.stdout)
            );
        }
        Ok(())
    }

    /// Host PID of the box's systemd (PID 1 inside).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The box's cgroup on the host (the root of its cgroup namespace).
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// How long `boot()` took until the box was running.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// What the box's systemd wrote to its console so far.
    pub fn console_log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| fs::read(d.path().join("console.log")).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// A `Command` that runs `argv` inside the box as root (all namespaces of PID 1, its
    /// root directory, in the box's cgroup), with the environment of a root login.
    /// Stdio is left to the caller; use it when a test needs stdin or a handle.
    /// Inside, `timeout` ends it after [`COMMAND_LIMIT`] (exit 124: see [`describe`]).
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Command {
        self.command_for(COMMAND_LIMIT, argv)
    }

    /// [`TestBox::command`] with its own time limit (a benchmark's long loop, say).
    pub fn command_for<S: AsRef<OsStr>>(&self, limit: Duration, argv: &[S]) -> Command {
        assert!(self.pid > 0, "test box is not running");
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg("-t")
            .arg(self.pid.to_string())
            .args(["-a", "--", "/usr/bin/timeout", "--kill-after=5"])
            .arg(format!("{}", limit.as_secs().max(1)))
            .args(["/usr/bin/env", "-i"])
            .args(ROOT_ENV)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        let fd = self.procs.as_raw_fd();
        // SAFETY: only an async-signal-safe write between fork and exec.
        unsafe {
            // Best effort: inside, the command then sits in the root cgroup ("0::/")
            // rather than outside the box's tree. Where the box's systemd has enabled
            // controllers in its root (a pure cgroup-v2 host) the kernel refuses
            // processes there; the command then stays in the test's cgroup, which is
            // harmless (it still dies with the box's PID namespace).
            cmd.pre_exec(move || {
                let _ = join_cgroup(fd);
                Ok(())
            });
        }
        cmd
    }

    /// Runs `sh -c script` inside the box as root, stdin from /dev/null.
    pub fn sh(&self, script: &str) -> Output {
        self.command(&["/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Like [`TestBox::sh`], but panics with stdout and stderr unless it exits 0.
    /// Returns stdout.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        if !out.status.success() {
            panic!("{}", describe(&format!("in the box: {script}"), &out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sh -c script` inside the box as `user` (via `runuser`), in its home
    /// directory, with `XDG_RUNTIME_DIR` and `DBUS_SESSION_BUS_ADDRESS` set when the user
    /// has a runtime dir (`/run/user/UID`). Stdin from /dev/null.
    pub fn sh_as(&self, user: &str, script: &str) -> Output {
        const WRAP: &str = r#"uid=$(id -u -- "$1") || exit 125
if [ -d "/run/user/$uid" ]; then
    export XDG_RUNTIME_DIR="/run/user/$uid"
    export DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus"
fi
home=$(getent passwd "$1" | cut -d: -f6)
[ -n "$home" ] && [ -d "$home" ] && cd "$home"
exec runuser -u "$1" -- /bin/sh -c "$2""#;
        self.command(&["/bin/sh", "-c", WRAP, "sh-as", user, script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Creates `name` (unless it exists), enables lingering, waits until the user's
    /// service manager is running and its session bus socket exists. Returns the UID.
    #[track_caller]
    pub fn add_lingering_user(&self, name: &str) -> u32 {
        assert!(
            !name.is_empty()
                && name.len() <= 32
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
            "not a portable user name: {name:?}"
        );
        let uid: u32 = self
            .sh_ok(&format!(
                "id -u -- '{name}' >/dev/null 2>&1 || useradd -m -s /bin/sh -- '{name}'\n\
                 loginctl enable-linger -- '{name}'\nid -u -- '{name}'"
            ))
            .trim()
            .parse()
            .expect("uid from id -u");
        self.wait_for(
            &format!("user manager of {name} (uid {uid})"),
            Duration::from_secs(60),
            |bx| {
                let out = bx.sh_as(name, "systemctl --user is-system-running 2>&1");
                let state = String::from_utf8_lossy(&out.stdout);
                matches!(state.trim(), "running" | "degraded")
                    && bx
                        .sh(&format!("test -S /run/user/{uid}/bus"))
                        .status
                        .success()
            },
        );
        uid
    }

    /// The messages of `unit` in the box's journal, one per line (`journalctl -o cat`).
    pub fn journal(&self, unit: &str) -> String {
        let out = self
            .command(&["journalctl", "--no-pager", "-o", "cat", "-u", unit])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `contents` to `path` inside the box (creating parent directories), as root.
    #[track_caller]
    pub fn write_file(&self, path: &str, contents: &[u8]) {
        let mut child = self
            .command(&[
                "/bin/sh",
                "-c",
                r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#,
                "write-file",
                path,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsenter");
        let mut stdin = child.stdin.take().expect("stdin");
        let written = stdin.write_all(contents);
        drop(stdin);
        let out = child.wait_with_output().expect("wait nsenter");
        if written.is_err() || !out.status.success() {
            panic!(
                "{}",
                describe(&format!("write_file {path} ({written:?})"), &out)
            );
        }
    }

    /// Reads a file inside the box (panics if it cannot).
    #[track_caller]
    pub fn read_file(&self, path: &str) -> Vec<u8> {
        let mut child = self
            .command(&["/bin/cat", "--", path])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run nsenter");
        let mut buf = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut buf)
            .expect("read");
        let status = child.wait().expect("wait nsenter");
        assert!(status.success(), "read_file {path}: {status}");
        buf
    }

    /// Polls `cond` (every 20 ms) until it holds; panics naming `what` after `timeout`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&TestBox) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Writes what boot.sh copies into the box's `/etc`: its hostname, a fresh machine ID,
/// the unit masks, `default.target` (multi-user) and the caller's `extra` files. Creating
/// these here, not in the shell, saves one process per file at every boot.
fn prepare_etc(prep: &Path, hostname: &str, extra: &[(&str, &[u8])]) -> std::io::Result<()> {
    let etc = prep.join("etc");
    let units = etc.join("systemd/system");
    fs::create_dir_all(&units)?;
    fs::write(etc.join("hostname"), format!("{hostname}\n"))?;
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    fs::write(
        etc.join("machine-id"),
        format!("{}\n", uuid.trim().replace('-', "")),
    )?;
    for unit in MASKED_UNITS {
        std::os::unix::fs::symlink("/dev/null", units.join(unit))?;
    }
    std::os::unix::fs::symlink(
        "/lib/systemd/system/multi-user.target",
        units.join("default.target"),
    )?;
    for (path, contents) in extra {
        let file = prep.join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().expect("a path under /etc/"))?;
        fs::write(file, contents)?;
    }
    Ok(())
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is open as `fd`
/// (writing "0" means "the writer"). Async-signal-safe: used between fork and exec.
fn join_cgroup(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: the fd is owned by the TestBox, which outlives the spawned command.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::unistd::write(fd, b"0")?;
    Ok(())
}

impl Drop for TestBox {
    fn drop(&mut self) {
        // Kill everything in the box's cgroup: systemd, its services, nsenter'd commands.
        let _ = fs::write(self.cgroup.join("cgroup.kill"), "1");
        if let Some(child) = self.unshare.as_mut() {
            // Killing PID 1 kills the whole PID namespace. Only while unshare is alive,
            // so that the PID still names our box (unshare has not reaped it).
            if self.pid > 0 && child.try_wait().ok().flatten().is_none() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !destroy_cgroup(&self.cgroup, Duration::from_secs(5)) {
            eprintln!("testbox: could not remove cgroup {}", self.cgroup.display());
        }
        // The box's tmpfs on m/ lived only in its mount namespace, gone with its last
        // process; the host side of the temp dir is plain files.
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("testbox: could not remove {}: {e}", path.display());
            }
        }
    }
}
