//! `mydaemon run`: the service process itself.
//!
//! Without a command it runs the built-in heartbeat; with `-- CMD ARGS` it supervises
//! that command (exec mode). Either way the [`Runner`] speaks
//! systemd's notify protocol, pings the watchdog and handles signals.

use crate::cli::Global;
pub use crate::daemon::options::{RunArgs, DEFAULT_INTERVAL};
use crate::daemon::{ExecService, Exit, Heartbeat, Runner};
use crate::error::{Error, Result};

/// Runs the service until it is told to stop.
pub fn exec(g: &Global, a: &RunArgs) -> Result<u8> {
    a.check()?;
    // In exec mode the command's output carries its own name in the journal and
    // mydaemon's own lines say they are mydaemon's; the built-in workload is the service.
    let identifier = if a.command.is_empty() {
        g.name.as_str()
    } else {
        "mydaemon"
    };
    crate::daemon::log::init_with_identifier(
        &g.name,
        identifier,
        crate::daemon::log::level(g.quiet, g.verbose),
    );
    let mut runner = Runner::new(&g.name);
    if !a.listen.is_empty() {
        // Passed by systemd (NAME.socket) or the PID-file supervisor, named after the
        // --listen options; or, run by hand, bound here.
        let listeners = match crate::daemon::listen::Listeners::from_env() {
            Some(mut l) => {
                l.name_after(&a.listen, &g.name);
                l
            }
            None => crate::daemon::listen::Listeners::bind(&a.listen, &g.name)
                .map_err(Error::generic)?,
        };
        for l in listeners.iter() {
            log::info!("listening socket {}", l.describe());
        }
        runner = runner.with_listeners(listeners);
    }
    let result = match a.exec_options(crate::notify::watchdog_interval()) {
        Some(opts) => runner
            .with_reload_timeout(opts.reload_timeout)
            .run(&mut ExecService::new(opts)),
        None => {
            let mut hb = Heartbeat::from_env(
                &g.name,
                a.interval.unwrap_or(DEFAULT_INTERVAL),
                a.config.clone(),
            );
            runner.run(&mut hb)
        }
    };
    match result {
        Ok(exit @ Exit::Signal(_)) => exit.terminate(),
        Ok(exit) => Ok(exit.code()),
        Err(e) => {
            // Through the daemon's logger (journald, priority 3, under systemd) rather
            // than returned, which would print it a second time on stderr.
            log::error!(mydaemon_event = "failed"; "{e}");
            Ok(crate::error::exit::GENERIC)
        }
    }
}
