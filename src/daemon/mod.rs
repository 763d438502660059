//! The service process: run loop, signals, watchdog timer, exec mode, readiness and
//! health probes.
//!
//! A workload implements [`Service`]; a [`Runner`] drives it from one thread blocked in
//! `poll(2)` on a signalfd, the service's descriptors and the earliest deadline. The
//! runner sends `READY=1` when the service says it is ready, keeps `STATUS=` current,
//! answers SIGHUP with `RELOADING=1` … `READY=1` and SIGTERM/SIGINT with `STOPPING=1`,
//! and pings the watchdog at half `WATCHDOG_USEC` while [`Service::health`] holds.
//! The built-in [`Heartbeat`] and the exec mode are its two users in this crate.

pub mod builtin;
pub mod exec;
pub mod log;
pub mod probe;
pub mod relay;
pub mod runner;
pub mod service;
pub mod signals;
pub mod time;

pub use builtin::Heartbeat;
pub use exec::{ExecOptions, ExecService};
pub use probe::{Probe, Readiness};
pub use runner::Runner;
pub use service::{BoxError, Context, Exit, Service, ServiceResult};
pub use signals::Received;
