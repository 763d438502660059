//! The fan-out of `-H`: one verb on many hosts at once. Hosts run in parallel (at most
//! `parallel` at a time, each on a thread of its own with its own ssh connection), every
//! line a host prints starts with the host, failures are printed as they happen, and a
//! summary ends the run: how many hosts succeeded, which failed and why.
//!
//! Exit code: 0 when every host succeeded (for `status`: every one runs); when some did
//! not, their common code if they agree (all 3: none runs), else 1. With one host the
//! output is that host's as it is, without prefix or summary, as `systemctl -H` prints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Kind, Result};
use crate::output::{self, errln};
use crate::ssh::{with_host, Host, Remote, SshOptions};
use crate::systemd::SystemdManager;

/// The hosts of one command line and how to reach them.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The hosts, in the order given.
    pub hosts: Vec<Host>,
    /// ssh's options for every host.
    pub ssh: SshOptions,
    /// How many hosts at a time.
    pub parallel: usize,
    /// `status --json`: a failed host is a JSON line too.
    pub json: bool,
    /// `--quiet`: the summary only when something failed.
    pub quiet: bool,
}

/// How one host ended.
pub type Outcome = Result<u8>;

impl Fleet {
    /// Runs `verb` (`f` on a [`SystemdManager`] for each host, cloned from `base`) on
    /// every host; returns the exit code (see the module doc). With one host, its own
    /// result (its error named by the host).
    pub fn run(
        &self,
        verb: &str,
        base: &SystemdManager,
        f: impl Fn(&SystemdManager) -> Outcome + Sync,
    ) -> Result<u8> {
        let manager = |h: &Host| SystemdManager {
            remote: Some(Remote {
                host: h.clone(),
                ssh: self.ssh.clone(),
            }),
            ..base.clone()
        };
        if let [host] = self.hosts.as_slice() {
            return match f(&manager(host)) {
                Err(e) if self.json => {
                    output::raw(&error_json(host, &e));
                    Err(in_context(host, e))
                }
                r => r.map_err(|e| in_context(host, e)),
            };
        }
        let next = AtomicUsize::new(0);
        let outcomes: Mutex<Vec<Option<Outcome>>> =
            Mutex::new((0..self.hosts.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..self.parallel.clamp(1, self.hosts.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(host) = self.hosts.get(i) else {
                        return;
                    };
                    let label = host.to_string();
                    let r = output::with_prefix(Some(label.clone()), || {
                        let r = f(&manager(host)).map_err(|e| hint_for(host, e));
                        if let Err(e) = &r {
                            if self.json {
                                output::raw(&error_json(host, e));
                            }
                            errln!("mydaemon: {e}");
                        }
                        r
                    });
                    outcomes.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                });
            }
        });
        let outcomes: Vec<Outcome> = outcomes
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::generic("not run"))))
            .collect();
        let (summary, code) = summarize(verb, &self.hosts, &outcomes);
        if code != 0 || !self.quiet {
            output::err(&summary);
        }
        Ok(code)
    }
}

/// A host's error, its message led by the host (for one host, printed by `main`).
fn in_context(host: &Host, e: Error) -> Error {
    hint_for(host, e).context(host)
}

/// Hints name the host (`mydaemon -H HOST ...`); a refusal by the remote manager names
/// the fix there: root, or polkit rights.
fn hint_for(host: &Host, e: Error) -> Error {
    let e = match e.hint().map(|h| with_host(h, host)) {
        Some(h) => e.with_hint(h),
        None => e,
    };
    if e.kind() == Kind::Privilege && e.message().contains("permission denied by systemd") {
        let who = host.user.as_deref().unwrap_or("your login");
        return e.with_hint(format!(
            "{who} may not manage units there: log in as root (-H root@{}), or grant that user polkit rights",
            host.host
        ));
    }
    e
}

/// The JSON line of a host that failed: `{"host":..,"error":..,"hint":..,"exit":N}`.
pub fn error_json(host: &Host, e: &Error) -> String {
    serde_json::json!({
        "host": host.to_string(),
        "error": e.message(),
        "hint": e.hint(),
        "exit": e.exit_code(),
    })
    .to_string()
}

/// What a non-zero code without an error means, for the summary.
fn code_in_words(verb: &str, code: u8) -> String {
    match (verb, code) {
        ("status", 3) => "not running (exit 3)".into(),
        ("status", 4) => "unknown (exit 4)".into(),
        (_, c) => format!("exit {c}"),
    }
}

/// The summary lines and the exit code of a run (see the module doc).
pub fn summarize(verb: &str, hosts: &[Host], outcomes: &[Outcome]) -> (String, u8) {
    let mut failed = Vec::new();
    let mut codes = Vec::new();
    for (h, o) in hosts.iter().zip(outcomes) {
        match o {
            Ok(0) => {}
            Ok(c) => {
                codes.push(*c);
                failed.push(format!("  {h}: {}", code_in_words(verb, *c)));
            }
            Err(e) => {
                codes.push(e.exit_code());
                let first = e.message().lines().next().unwrap_or("");
                failed.push(format!("  {h}: {first} (exit {})", e.exit_code()));
            }
        }
    }
    let ok = hosts.len() - failed.len();
    let mut text = format!(
        "{verb} on {} hosts: {ok} ok, {} failed\n",
        hosts.len(),
        failed.len()
    );
    for l in &failed {
        text.push_str(l);
        text.push('\n');
    }
    let code = match codes.split_first() {
        None => 0,
        Some((first, rest)) if rest.iter().all(|c| c == first) => *first,
        Some(_) => 1,
    };
    (text, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<Host> {
        (1..=n)
            .map(|i| Host::parse(&format!("web{i}")).unwrap())
            .collect()
    }

    #[test]
    fn all_ok_is_zero() {
        let (text, code) = summarize("start", &hosts(2), &[Ok(0), Ok(0)]);
        assert_eq!(code, 0);
        assert_eq!(text, "start on 2 hosts: 2 ok, 0 failed\n");
    }

    #[test]
    fn failures_are_named_and_agreeing_codes_kept() {
        let (text, code) = summarize(
            "status",
            &hosts(3),
            &[
                Ok(0),
                Ok(3),
                Err(Error::generic("cannot connect (Connection refused)")),
            ],
        );
        assert_eq!(code, 1);
        assert_eq!(
            text,
            "status on 3 hosts: 1 ok, 2 failed\n  web2: not running (exit 3)\n  \
             web3: cannot connect (Connection refused) (exit 1)\n"
        );
        let (_, code) = summarize("status", &hosts(3), &[Ok(3), Ok(0), Ok(3)]);
        assert_eq!(code, 3);
        let e = || Error::privilege("authentication refused");
        let (_, code) = summarize("stop", &hosts(2), &[Err(e()), Err(e())]);
        assert_eq!(code, 4);
    }

    #[test]
    fn a_failed_host_is_a_json_line_too() {
        let h = Host::parse("root@[::1]:2222").unwrap();
        let v: serde_json::Value = serde_json::from_str(&error_json(
            &h,
            &Error::generic("no answer within 2 s (--connect-timeout)").with_hint("x"),
        ))
        .unwrap();
        assert_eq!(v["host"], "root@[::1]:2222");
        assert_eq!(v["exit"], 1);
        assert_eq!(v["hint"], "x");
    }

    #[test]
    fn denied_names_root_or_polkit() {
        let h = Host::parse("ops@web1").unwrap();
        let e = hint_for(
            &h,
            Error::privilege("starting x: permission denied by systemd"),
        );
        assert!(e.hint().unwrap().contains("-H root@web1"), "{e}");
        assert!(e.hint().unwrap().contains("polkit"), "{e}");
        let e = hint_for(
            &h,
            Error::not_running("x").with_hint("start it: `mydaemon --name web start`"),
        );
        assert_eq!(
            e.hint(),
            Some("start it: `mydaemon -H ops@web1 --name web start`")
        );
    }
}
