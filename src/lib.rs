//! mydaemon: make a program a first-class systemd service, and keep it running as a
//! proper daemon where systemd is absent.
//!
//! The crate is both the `mydaemon` command and a library:
//! - [`unit`](mod@unit) renders hardened, exactly quoted systemd units (pure code, no I/O);
//! - [`systemd`] controls a running systemd over D-Bus;
//! - [`notify`] and [`daemon`] are the service process (`Type=notify`, watchdog, signals);
//! - [`fallback`] daemonizes with a locked PID file where systemd is absent;
//! - [`backend`] is the interface both answer, [`ServiceManager`](backend::ServiceManager)
//!   ([`systemd::SystemdManager`], [`fallback::PidfileManager`]), over the plain types of
//!   [`spec`] (a [`Target`](spec::Target) with its [`UnitName`](unit::name::UnitName),
//!   the unit settings);
//! - [`ssh`] and [`fleet`] take the verbs to other machines (`-H`): ssh's command line
//!   and failures in words, and the fan-out over many hosts with its summary;
//! - [`sys`] holds the process primitives and the only `unsafe` code;
//! - [`cli`] is the command line on top of them: it parses, picks the backend once and
//!   calls it.

#![deny(unsafe_code)]

pub mod backend;
pub mod cli;
pub mod daemon;
pub mod error;
pub mod fallback;
pub mod fleet;
pub(crate) mod install;
pub(crate) mod logging;
pub mod notify;
pub(crate) mod notify_socket;
pub(crate) mod output;
pub(crate) mod remote_files;
pub mod spec;
pub mod ssh;
#[allow(unsafe_code)]
pub mod sys;
pub mod systemd;
pub(crate) mod time;
pub mod unit;

/// The library side of `mydaemon run`: implement [`Service`], hand it to a [`Runner`].
pub use daemon::{Context, Exit, Listener, Listeners, Received, Runner, Service, ServiceResult};
pub use error::{Error, Result};
