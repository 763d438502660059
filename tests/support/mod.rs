//! Helpers every test target shares: waiting for a child process with a deadline, so
//! that no test can hang on a command that does not finish. A test target includes it
//! with `mod support;` (the test box re-exports it).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `cmd` with stdin from `/dev/null` and stdout/stderr captured, waiting at most
/// `limit` for it to exit and for its output to end. Past that, kills it and panics
/// naming `what` and what it printed so far.
#[track_caller]
pub fn output_within(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = match wait_until(&mut child, deadline) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let out = |rx: &mpsc::Receiver<Vec<u8>>| {
                String::from_utf8_lossy(
                    &rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default(),
                )
                .into_owned()
            };
            panic!(
                "timed out after {limit:?} waiting for {what} to exit (killed it)\n\
                 --- stdout ---\n{}--- stderr ---\n{}",
                out(&stdout),
                out(&stderr)
            );
        }
    };
    let rest = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
    let collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| {
        rx.recv_timeout(rest).unwrap_or_else(|_| {
            panic!(
                "{what} exited ({status}) but its {name} stayed open (a process it left holds it)"
            )
        })
    };
    Output {
        status,
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

/// Waits at most `limit` for `child` to exit; past that, kills it and panics naming `what`.
#[track_caller]
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    match wait_until(child, Instant::now() + limit) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {limit:?} waiting for {what} to exit (killed it)");
        }
    }
}

/// Polls until `cond` holds (at most every 20 ms); panics naming `what` after `limit`.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The child's exit status once it has exited, or `None` at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// How long a command run by [`BoundedOutput::bounded_output`] may take.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// `Command::output` with a deadline: [`output_within`] with [`COMMAND_LIMIT`], naming
/// the command when it times out.
pub trait BoundedOutput {
    /// Runs the command (stdin from `/dev/null`) and returns its output; panics if it
    /// has not finished within [`COMMAND_LIMIT`].
    fn bounded_output(&mut self) -> Output;
}

impl BoundedOutput for Command {
    #[track_caller]
    fn bounded_output(&mut self) -> Output {
        let what = format!("{self:?}");
        output_within(self, COMMAND_LIMIT, &what)
    }
}

/// A service of the PID-file backend (`--backend pidfile`) whose PID file and log live
/// in a temporary directory of its own; stopped when dropped. Test files add their own
/// methods (`impl PidfileService { ... }`: it is defined in their crate).
pub struct PidfileService {
    /// Holds `run/NAME.pid` and `log/NAME.log`.
    pub dir: tempfile::TempDir,
    /// The service's `--name`.
    pub name: String,
}

impl PidfileService {
    /// A service `name` in a fresh temporary directory (nothing started).
    pub fn new(name: &str) -> PidfileService {
        PidfileService {
            dir: tempfile::tempdir().unwrap(),
            name: name.to_owned(),
        }
    }

    /// Its `--pid-file`.
    pub fn pid_file(&self) -> std::path::PathBuf {
        self.dir
            .path()
            .join("run")
            .join(format!("{}.pid", self.name))
    }

    /// Its `--log-dir`.
    pub fn log_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("log")
    }

    /// The log file the backend writes in [`PidfileService::log_dir`].
    pub fn log_file(&self) -> std::path::PathBuf {
        self.log_dir().join(format!("{}.log", self.name))
    }

    /// `mydaemon --name NAME --backend pidfile VERB --pid-file … --log-dir … EXTRA`.
    pub fn command(&self, verb: &str, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mydaemon"));
        c.args(["--name", &self.name, "--backend", "pidfile", verb])
            .arg("--pid-file")
            .arg(self.pid_file())
            .arg("--log-dir")
            .arg(self.log_dir())
            .args(extra)
            .stdin(Stdio::null());
        c
    }

    /// Runs [`PidfileService::command`] with a deadline.
    #[track_caller]
    pub fn run(&self, verb: &str, extra: &[&str]) -> Output {
        self.command(verb, extra).bounded_output()
    }

    /// The log so far (empty if none yet).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }
}

impl Drop for PidfileService {
    fn drop(&mut self) {
        let _ = self.run("stop", &["--timeout", "2s"]);
    }
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The exit status, stdout and stderr of `out`, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Panics with the exit code, stdout and stderr unless `out` is a success.
#[track_caller]
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}
