//! `mydaemon unit`: print the generated systemd unit, exactly what `install` writes.
//!
//! The work is in [`crate::spec`]: [`UnitOptions`] are the unit settings shared by
//! `unit` and `install`, [`build_spec`] turns them into a
//! [`ServiceSpec`](crate::unit::ServiceSpec), and rendering is pure.

use std::io::Write;

use crate::cli::Global;
use crate::error::{Error, Result};
pub use crate::spec::{build_spec, check_runnable_here, UnitOptions};

/// Options of `unit`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print NAME.socket, the socket unit `install` writes beside NAME.service when
    /// there are --listen addresses, instead of the service unit.
    #[arg(long)]
    pub socket: bool,
    /// Unit settings.
    #[command(flatten, next_help_heading = "Unit settings")]
    pub unit: UnitOptions,
}

/// Prints the unit.
pub fn exec(g: &Global, a: &Args) -> Result<u8> {
    let spec = build_spec(&g.target()?, &a.unit)?;
    let text = if a.socket {
        spec.render_socket()?.ok_or_else(|| {
            Error::usage("--socket prints the socket unit of a service with --listen ADDR")
        })?
    } else {
        spec.render()?
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::generic(format!("cannot write the unit to stdout: {e}")))?;
    Ok(0)
}
