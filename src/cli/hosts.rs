//! `-H/--host`, `--hosts-file`, `--parallel`, `--connect-timeout`: the verbs on other
//! machines, over ssh (see [`crate::fleet`] for the fan-out, [`crate::ssh`] for ssh).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::BackendChoice;
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::ssh::{parse_hosts_file, Host, SshOptions};

/// The remote-host options (global).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HostArgs {
    /// Act on HOST's systemd over ssh (`ssh HOST systemd-stdio-bridge`, as systemctl -H);
    /// repeat for many hosts, run in parallel, each line led by its host, a summary at
    /// the end; exit 0 only if every host succeeded (else the hosts' code if they agree,
    /// else 1). Your ssh config, agent and known_hosts are used; no password prompts.
    #[arg(
        short = 'H',
        long = "host",
        global = true,
        value_name = "[USER@]HOST[:PORT]"
    )]
    pub host: Vec<String>,
    /// Read more hosts from FILE: one `[USER@]HOST[:PORT]` a line, # comments.
    #[arg(long, global = true, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// How many hosts at a time.
    #[arg(long, global = true, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Seconds a host may take to answer (ssh login and D-Bus handshake) before it is
    /// reported as unreachable.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_timeout: u64,
}

impl HostArgs {
    /// Whether any host was named.
    pub fn any(&self) -> bool {
        !self.host.is_empty() || self.hosts_file.is_some()
    }

    /// The hosts: `-H` first, then the file's; each once.
    pub fn hosts(&self) -> Result<Vec<Host>> {
        let mut hosts = self
            .host
            .iter()
            .map(|h| Host::parse(h))
            .collect::<Result<Vec<_>>>()?;
        if let Some(f) = &self.hosts_file {
            let text = read_hosts_file(f, Duration::from_secs(self.connect_timeout))?;
            hosts.extend(parse_hosts_file(&text, f)?);
        }
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.to_string()));
        if hosts.is_empty() {
            return Err(Error::usage("no hosts: the hosts file names none"));
        }
        Ok(hosts)
    }
}

/// The most a hosts file may hold (about 50,000 hosts).
const HOSTS_FILE_MAX: u64 = 1 << 20;

/// The text of a hosts file, read within `limit` (a FIFO nobody writes to would block
/// for ever; a pipe such as `--hosts-file <(grep web hosts)` is fine) and at most
/// [`HOSTS_FILE_MAX`] bytes (`/dev/zero` would fill the memory).
fn read_hosts_file(f: &Path, limit: Duration) -> Result<String> {
    let bad = |why: String| {
        Error::usage(format!("--hosts-file {}: {why}", f.display()))
            .with_hint("one [USER@]HOST[:PORT] a line, # comments")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let path = f.to_owned();
    // A reader stuck in open() or read() cannot be stopped; it ends with the process.
    std::thread::spawn(move || {
        let r = std::fs::File::open(&path).and_then(|file| {
            let mut buf = Vec::new();
            file.take(HOSTS_FILE_MAX + 1).read_to_end(&mut buf)?;
            Ok(buf)
        });
        let _ = tx.send(r);
    });
    let bytes = match rx.recv_timeout(limit) {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(bad(e.to_string())),
        Err(_) => {
            return Err(bad(format!(
                "nothing to read within {} s (a FIFO nobody writes to?)",
                limit.as_secs()
            )))
        }
    };
    if bytes.len() as u64 > HOSTS_FILE_MAX {
        return Err(bad(format!(
            "larger than {} KiB: not a hosts file?",
            HOSTS_FILE_MAX >> 10
        )));
    }
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))
}

/// The fleet for `verb` when hosts were named, else `None` (this machine).
/// `--backend pidfile` is this machine's only: with hosts, a usage error.
pub fn fleet(g: &Global, verb: &str, json: bool) -> Result<Option<Fleet>> {
    let h = &g.hosts;
    if !h.any() {
        return Ok(None);
    }
    if g.backend == BackendChoice::Pidfile {
        return Err(Error::usage(format!(
            "{verb} -H controls systemd on other machines; the PID-file backend is local only"
        ))
        .with_hint("leave out --backend pidfile (or -H)"));
    }
    Ok(Some(Fleet {
        hosts: h.hosts()?,
        ssh: SshOptions {
            connect_timeout: Duration::from_secs(h.connect_timeout),
        },
        parallel: usize::from(h.parallel),
        json,
        quiet: g.quiet,
    }))
}

/// A usage error for an option that does not apply to other machines.
pub fn local_only(verb: &str, option: &str) -> Error {
    Error::usage(format!("{verb} -H: {option} is for this machine only"))
        .with_hint(format!("leave out {option}, or -H"))
}
