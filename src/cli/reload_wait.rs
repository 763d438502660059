//! `mydaemon reload-wait PID` (hidden): the `ExecReload=` of generated units. Sends
//! SIGHUP to the service's main process as a request and returns when the service has
//! reloaded; exits 1 when it reports the reload failed, exited, or did not answer.
//! See `crate::daemon::reload`.

use std::time::Duration;

use nix::unistd::Pid;

use crate::cli::Global;
use crate::daemon::reload::{request, Outcome};
use crate::error::{exit, Error, Result};
use crate::time::{format_duration, parse_positive_duration};

/// Options of `reload-wait`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The main process (`$MAINPID` in `ExecReload=`).
    #[arg(value_name = "PID")]
    pub pid: i32,
    /// Give up after this long (systemd's `TimeoutStartSec=` ends it sooner).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

/// Requests the reload and waits for its outcome.
pub fn exec(_g: &Global, a: &Args) -> Result<u8> {
    if a.pid <= 1 {
        return Err(Error::usage(format!(
            "not a service's main process: {}",
            a.pid
        )));
    }
    let outcome = request(Pid::from_raw(a.pid), a.timeout).map_err(Error::generic)?;
    match outcome {
        Outcome::Reloaded => Ok(exit::OK),
        Outcome::Failed => Err(Error::generic(format!(
            "the service (pid {}) reports its reload failed; its status says why",
            a.pid
        ))),
        Outcome::Exited => Err(Error::generic(format!(
            "the service (pid {}) exited while reloading",
            a.pid
        ))),
        Outcome::TimedOut => Err(Error::generic(format!(
            "the service (pid {}) did not finish reloading within {}",
            a.pid,
            format_duration(a.timeout)
        ))),
    }
}
