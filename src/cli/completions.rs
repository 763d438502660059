//! `mydaemon completions SHELL`: clap's own completion generator.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Result;

/// Options of `completions`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script on stdout.
pub fn exec(a: &Args) -> Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "mydaemon", &mut std::io::stdout());
    Ok(0)
}
