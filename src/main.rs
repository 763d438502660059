//! The `mydaemon` binary: parse, dispatch, turn the outcome into an exit code.

#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mydaemon::cli::Cli::parse();
    match mydaemon::cli::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("mydaemon: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
