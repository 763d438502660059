//! The service process: run loop, signals, watchdog timer, exec mode, readiness and
//! health probes.
//!
//! A workload implements [`Service`]; a [`Runner`] drives it from one thread blocked in
//! `poll(2)` on a signalfd, the service's descriptors and the earliest deadline. The
//! runner sends `READY=1` when the service says it is ready, keeps `STATUS=` current,
//! answers SIGHUP with `RELOADING=1` … `READY=1` and SIGTERM/SIGINT with `STOPPING=1`,
//! and pings the watchdog at half `WATCHDOG_USEC` while [`Service::health`] holds.
//! The built-in [`Heartbeat`] and the exec mode are its two users in this crate.
//!
//! A service of your own (also in the README; `examples/greeter.rs` is a whole one):
//!
//! ```no_run
//! use mydaemon::{Context, Exit, Received, Runner, Service, ServiceResult};
//! use std::time::Duration;
//!
//! struct Tick {
//!     n: u64,
//! }
//!
//! impl Service for Tick {
//!     fn start(&mut self, ctx: &mut Context) -> ServiceResult {
//!         ctx.wake_in(Duration::from_secs(5));
//!         ctx.ready(); // READY=1
//!         Ok(())
//!     }
//!     fn run(&mut self, ctx: &mut Context) -> ServiceResult {
//!         self.n += 1; // the work
//!         ctx.set_status(format!("tick {}", self.n)); // STATUS=
//!         ctx.wake_in(Duration::from_secs(5));
//!         Ok(())
//!     }
//!     fn stop(&mut self, ctx: &mut Context, _: Received) -> ServiceResult {
//!         ctx.exit(Exit::Code(0)); // after STOPPING=1
//!         Ok(())
//!     }
//! }
//!
//! mydaemon::daemon::log::init("tick", log::LevelFilter::Info);
//! match Runner::new("tick").run(&mut Tick { n: 0 }) {
//!     Ok(exit) => exit.terminate(),
//!     Err(e) => {
//!         log::error!("{e}");
//!         std::process::exit(1)
//!     }
//! }
//! ```

pub(crate) mod builtin;
pub(crate) mod exec;
pub(crate) mod journal_stream;
pub mod listen;
pub mod log;
pub mod options;
pub(crate) mod probe;
pub(crate) mod relay;
pub(crate) mod reload;
pub(crate) mod runner;
pub(crate) mod service;
pub(crate) mod signals;

pub use builtin::Heartbeat;
pub use exec::{ExecOptions, ExecService};
pub use listen::{Listener, Listeners};
pub use probe::{Probe, Readiness};
pub use runner::Runner;
pub use service::{BoxError, Context, Exit, Service, ServiceResult};
pub use signals::Received;
