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
