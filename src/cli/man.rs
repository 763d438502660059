//! `mydaemon man`: man pages from clap's own generator.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// Options of `man`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Write mydaemon.1 and one page per verb (mydaemon-VERB.1) into this directory
    /// instead of printing mydaemon.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints or writes the man pages.
pub fn exec(a: &Args) -> Result<u8> {
    let cmd = Cli::command();
    match &a.out_dir {
        None => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::io("write", "stdout", e))?;
        }
        Some(dir) => {
            clap_mangen::generate_to(cmd, dir)
                .map_err(|e| Error::io("write man pages into", dir.display(), e))?;
        }
    }
    Ok(0)
}
