//! `install --sysv` / `uninstall --sysv`: an LSB init script for SysV hosts.
//!
//! The script (`/etc/init.d/NAME`, or under `--root DIR`) has a proper
//! `### BEGIN INIT INFO` block and maps each action to this binary with the PID-file
//! backend: `start`, `stop`, `restart`, `reload`, `force-reload` (= reload: the
//! service supports it) and `status`, so `service NAME status` answers with the LSB
//! codes. Every argument is single-quoted for the shell, so any byte but NUL comes
//! through unchanged. Extra options for every action (`--pid-file`, `--log-dir`,
//! `--timeout`) may be set as `MYDAEMON_OPTS` in `/etc/default/NAME`, the Debian
//! convention (split on spaces).
//!
//! The script is written atomically with mode 0755 by [`crate::install::write_file`]
//! and carries the mydaemon marker: a script mydaemon did not write is neither
//! replaced nor removed without `--force`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::backend::Target;
use crate::error::{Error, Result};
use crate::install::{self, Written, MARKER};
use crate::spec::UnitOptions;
use crate::unit::Restart;

/// Where init scripts live.
pub const INIT_D: &str = "etc/init.d";

/// What the script runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Service name (`Provides:`).
    pub name: String,
    /// Absolute path of the mydaemon binary.
    pub exe: String,
    /// One-line description.
    pub description: String,
    /// Arguments of `start`/`restart` after the verb (supervision, `-- CMD ARGS`).
    pub start_args: Vec<String>,
    /// Environment exported before running.
    pub env: Vec<(String, String)>,
    /// How to regenerate it (for the header comment).
    pub regenerate: String,
}

use crate::unit::quote::posix_shell_word as sh_quote;

fn words(args: &[String]) -> String {
    args.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Script {
    /// Builds the script from `install`'s unit settings. Settings a SysV script
    /// cannot honour (another user, sandboxing, unit ordering, ...) are refused, not
    /// dropped.
    pub fn from_options(g: &Target, o: &UnitOptions) -> Result<Script> {
        super::paths::file_name(&g.name)?;
        let mut unsupported = Vec::new();
        if o.exec_user.is_some() {
            unsupported.push("--exec-user");
        }
        if o.exec_group.is_some() {
            unsupported.push("--exec-group");
        }
        if !o.env_file.is_empty() {
            unsupported.push("--env-file");
        }
        if o.working_dir.is_some() {
            unsupported.push("--working-dir");
        }
        if !o.after.is_empty() {
            unsupported.push("--after");
        }
        if !o.wants.is_empty() {
            unsupported.push("--wants");
        }
        if o.hardening.is_some() {
            unsupported.push("--hardening");
        }
        if !unsupported.is_empty() {
            return Err(Error::usage(format!(
                "{} cannot be honoured by an init.d script",
                unsupported.join(", ")
            ))
            .with_hint("leave them out with --sysv, or install a systemd unit"));
        }
        if g.user {
            return Err(Error::usage(
                "--sysv installs a system init script; it cannot be combined with --user",
            ));
        }
        let exe = crate::spec::exec_path(o)?;
        let description = o
            .description
            .clone()
            .unwrap_or_else(|| format!("{} (mydaemon)", g.name));
        if description.contains(['\n', '\r']) {
            return Err(Error::usage("--description must be one line"));
        }
        let mut env = Vec::new();
        for e in &o.env {
            let (k, v) = crate::spec::parse_env(e)?;
            if k == "IFS" {
                // The script splits $MYDAEMON_OPTS on it.
                return Err(Error::usage("--env IFS=...: not with --sysv")
                    .with_hint("the init script needs the shell's own IFS"));
            }
            env.push((k, v));
        }
        let mut start_args: Vec<String> = Vec::new();
        match o.restart {
            Restart::OnFailure => {}
            Restart::No => start_args.extend(["--restart-burst".into(), "0".into()]),
            other => {
                return Err(Error::usage(format!(
                    "--restart {} is not available with --sysv (on-failure or no)",
                    other.as_str()
                )))
            }
        }
        let run_options = crate::spec::run_options(&o.run)?;
        start_args.extend(run_options.iter().cloned());
        if !o.watchdog_sec.is_zero() && !o.run.command.is_empty() {
            // Exec mode pings for the command while it is healthy, as under systemd.
            start_args.extend([
                "--watchdog-sec".into(),
                crate::time::format_duration(o.watchdog_sec),
            ]);
        }
        let mut command = Vec::new();
        if let Some((cmd, rest)) = o.run.command.split_first() {
            command.push(crate::unit::command::resolve_program(cmd)?);
            command.extend(rest.iter().cloned());
            start_args.push("--".into());
            start_args.extend(command.iter().cloned());
        }
        let regenerate = crate::spec::regenerate_args(
            g,
            o,
            "install --sysv",
            &crate::spec::Resolved {
                env_files: &[],
                working_dir: None,
                run_options: &run_options,
                command: &command,
            },
        );
        // One comment line: control characters come out as $'...'.
        let regenerate = std::iter::once("mydaemon".to_owned())
            .chain(regenerate.iter().map(|a| crate::unit::quote::shell_word(a)))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Script {
            name: g.name.to_string(),
            exe,
            description,
            start_args,
            env,
            regenerate,
        })
    }

    /// The script's text.
    pub fn render(&self) -> String {
        let name = &self.name;
        let start = if self.start_args.is_empty() {
            "start".to_owned()
        } else {
            format!("start {}", words(&self.start_args))
        };
        let restart = if self.start_args.is_empty() {
            "restart".to_owned()
        } else {
            format!("restart {}", words(&self.start_args))
        };
        // The service's environment first: the script's own variables come after, so
        // `--env NAME=...` cannot redirect the script.
        let mut env = String::new();
        for (k, v) in &self.env {
            let _ = writeln!(env, "export {k}={}", sh_quote(v));
        }
        format!(
            r#"#!/bin/sh
{MARKER}; edits are lost when it is regenerated.
# Regenerate with: {regen}
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: {desc}
# Description:       {desc}; run by mydaemon as a daemon with a locked
#                    PID file, supervised and restarted on failure.
### END INIT INFO

{env}MYDAEMON={exe}
NAME={qname}
# Extra options for every action (--pid-file PATH, --log-dir DIR, --timeout D).
MYDAEMON_OPTS=${{MYDAEMON_OPTS:-}}
[ -r /etc/default/{qname} ] && . /etc/default/{qname}

md() {{
    verb=$1
    shift
    # shellcheck disable=SC2086
    "$MYDAEMON" --name "$NAME" --backend pidfile "$verb" $MYDAEMON_OPTS "$@"
}}

case "$1" in
    start)
        md {start}
        ;;
    stop)
        md stop
        ;;
    restart)
        md {restart}
        ;;
    reload|force-reload)
        md reload
        ;;
    status)
        md status -n 0
        ;;
    *)
        echo "Usage: $0 {{start|stop|restart|reload|force-reload|status}}" >&2
        exit 2
        ;;
esac
"#,
            regen = self.regenerate,
            desc = self.description,
            exe = sh_quote(&self.exe),
            qname = sh_quote(name),
        )
    }
}

/// `ROOT/etc/init.d` (or `/etc/init.d`).
pub fn init_dir(root: Option<&Path>) -> PathBuf {
    root.unwrap_or(Path::new("/")).join(INIT_D)
}

/// `install --sysv`: writes the script; with `now`, starts the service.
pub fn install(
    g: &Target,
    o: &UnitOptions,
    root: Option<&Path>,
    force: bool,
    now: bool,
) -> Result<u8> {
    if let Some(r) = root {
        if !r.is_dir() {
            return Err(Error::usage(format!(
                "--root {}: no such directory",
                r.display()
            )));
        }
    }
    let script = Script::from_options(g, o)?;
    let dir = init_dir(root);
    let (path, how) = install::write_file(&dir, &g.name, &script.render(), 0o755, force)
        .map_err(|e| crate::error::privilege_hint(e, "install --sysv"))?;
    if !g.quiet {
        match how {
            Written::Created => println!("wrote {}", path.display()),
            Written::Replaced => println!("replaced {}", path.display()),
            Written::Unchanged => println!("{} is up to date", path.display()),
        }
        if root.is_none() {
            println!(
                "enable it at boot with `mydaemon --name {0} enable` (or `update-rc.d {0} defaults`)",
                g.name
            );
        }
    }
    if now && root.is_none() {
        return run_script(&path, "start");
    }
    Ok(0)
}

/// The `rc?.d/[SK]NNname` links to the script under `root`.
pub fn rc_links(root: Option<&Path>, name: &str) -> Vec<PathBuf> {
    let etc = root.unwrap_or(Path::new("/")).join("etc");
    let mut links = Vec::new();
    let Ok(entries) = std::fs::read_dir(&etc) else {
        return links;
    };
    for d in entries.flatten() {
        let dn = d.file_name();
        let dn = dn.to_string_lossy();
        let is_rc = dn.len() == 5 && dn.starts_with("rc") && dn.ends_with(".d");
        if !is_rc {
            continue;
        }
        let Ok(inner) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for l in inner.flatten() {
            let f: OsString = l.file_name();
            let f = f.to_string_lossy();
            let b = f.as_bytes();
            let matches = b.len() == name.len() + 3
                && (b[0] == b'S' || b[0] == b'K')
                && b[1].is_ascii_digit()
                && b[2].is_ascii_digit()
                && &f[3..] == name;
            let is_link = std::fs::symlink_metadata(l.path())
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if matches && is_link {
                links.push(l.path());
            }
        }
    }
    links.sort();
    links
}

/// The runlevels of the script's `# Default-Start:` and `# Default-Stop:` header lines.
pub fn default_runlevels(script: &str) -> (Vec<String>, Vec<String>) {
    let levels = |key: &str| -> Vec<String> {
        script
            .lines()
            .find_map(|l| l.strip_prefix('#')?.trim_start().strip_prefix(key))
            .map(|v| {
                v.split_whitespace()
                    .filter(|w| w.len() == 1 && w.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    (levels("Default-Start:"), levels("Default-Stop:"))
}

/// The installed script `ROOT/etc/init.d/NAME` and its text; exit 5 when missing.
fn installed_script(name: &str, root: Option<&Path>) -> Result<(PathBuf, String)> {
    let path = init_dir(root).join(super::paths::file_name(name)?);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_installed(format!(
            "{name} is not installed: {} does not exist",
            path.display()
        ))
        .with_hint(format!("run `mydaemon --name {name} install --sysv` first"))),
        Err(e) => Err(Error::io("read", path.display(), e)),
    }
}

/// Runs the script with `action` (so `/etc/default/NAME` applies); its exit code.
fn run_script(path: &Path, action: &str) -> Result<u8> {
    let status = std::process::Command::new("/bin/sh")
        .arg(path)
        .arg(action)
        .status()
        .map_err(|e| Error::io("run", path.display(), e))?;
    Ok(crate::error::exit_code_of(status))
}

/// `enable` without systemd: `rcN.d/S01NAME` links for the script's `Default-Start`
/// runlevels and `K01NAME` for its `Default-Stop` ones, as `update-rc.d NAME defaults`
/// makes them; links already there for other sequence numbers are replaced. With
/// `now`, also starts the service.
pub fn enable(g: &Target, root: Option<&Path>, now: bool) -> Result<u8> {
    let (path, text) = installed_script(&g.name, root)?;
    let (start, stop) = default_runlevels(&text);
    if start.is_empty() {
        return Err(Error::not_configured(format!(
            "{} has no `# Default-Start:` runlevels; nothing to enable",
            path.display()
        )));
    }
    let etc = root.unwrap_or(Path::new("/")).join("etc");
    let target = Path::new("../init.d").join(&g.name);
    let wanted: Vec<PathBuf> = start
        .iter()
        .map(|l| etc.join(format!("rc{l}.d/S01{}", g.name)))
        .chain(
            stop.iter()
                .map(|l| etc.join(format!("rc{l}.d/K01{}", g.name))),
        )
        .collect();
    let hint = |e: Error| crate::error::root_hint(e, "enable", false);
    for old in rc_links(root, &g.name) {
        if !wanted.contains(&old) || std::fs::read_link(&old).ok().as_deref() != Some(&target) {
            std::fs::remove_file(&old).map_err(|e| hint(Error::io("remove", old.display(), e)))?;
        }
    }
    let mut made = 0;
    for link in &wanted {
        if std::fs::symlink_metadata(link).is_ok() {
            continue;
        }
        let dir = link.parent().expect("rcN.d/LINK has a parent");
        std::fs::create_dir_all(dir).map_err(|e| hint(Error::io("create", dir.display(), e)))?;
        std::os::unix::fs::symlink(&target, link)
            .map_err(|e| hint(Error::io("create symlink", link.display(), e)))?;
        made += 1;
        if !g.quiet {
            println!("created symlink {} -> {}", link.display(), target.display());
        }
    }
    if made == 0 && !g.quiet {
        println!("{} is already enabled", g.name);
    }
    if now && root.is_none() {
        return run_script(&path, "start");
    }
    Ok(0)
}

/// `disable` without systemd: removes the script's `rc?.d` links; with `now`, also
/// stops the service.
pub fn disable(g: &Target, root: Option<&Path>, now: bool) -> Result<u8> {
    let links = rc_links(root, &g.name);
    let script = installed_script(&g.name, root);
    if links.is_empty() {
        let (path, _) = script?;
        if !g.quiet {
            println!("{} is not enabled", g.name);
        }
        if now && root.is_none() {
            return run_script(&path, "stop");
        }
        return Ok(0);
    }
    if now && root.is_none() {
        if let Ok((path, _)) = &script {
            let code = run_script(path, "stop")?;
            if code != 0 {
                return Ok(code);
            }
        }
    }
    for l in links {
        std::fs::remove_file(&l).map_err(|e| {
            crate::error::root_hint(Error::io("remove", l.display(), e), "disable", false)
        })?;
        if !g.quiet {
            println!("removed {}", l.display());
        }
    }
    Ok(0)
}

/// `uninstall --sysv`: stops the service (on this system), removes the script and
/// its `rc?.d` links.
pub fn uninstall(g: &Target, root: Option<&Path>, force: bool, purge: bool) -> Result<u8> {
    let dir = init_dir(root);
    let path = dir.join(super::paths::file_name(&g.name)?);
    let content = match std::fs::read(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::not_installed(format!(
                "{} is not installed: {} does not exist",
                g.name,
                path.display()
            )))
        }
        Err(e) => return Err(Error::io("read", path.display(), e)),
    };
    if !force && !install::is_generated(&content) {
        return Err(Error::generic(format!(
            "{} exists and was not generated by mydaemon; refusing to remove it",
            path.display()
        ))
        .with_hint("look at it first; pass --force to override"));
    }
    if root.is_none() && install::is_generated(&content) {
        // Through the script, so options from /etc/default/NAME apply.
        let code = run_script(&path, "stop")?;
        if code != 0 {
            return Err(Error::generic(format!(
                "`{} stop` failed (exit {code}); nothing was removed",
                path.display()
            )));
        }
    }
    for l in rc_links(root, &g.name) {
        std::fs::remove_file(&l).map_err(|e| Error::io("remove", l.display(), e))?;
        if !g.quiet {
            println!("removed {}", l.display());
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io("remove", path.display(), e))?;
    if !g.quiet {
        println!("removed {}", path.display());
    }
    if purge {
        purge_files(g)?;
    }
    Ok(0)
}

/// `uninstall --sysv --purge`: once the service is stopped, its log file (and the log
/// directory, when nothing else is in it) and the PID file's directory, if empty, at
/// their default places. Nothing is followed through a symlink: `unlink` and `rmdir`
/// act on the link itself.
fn purge_files(g: &Target) -> Result<()> {
    let paths = super::paths::Paths::resolve(&g.name, &super::paths::PathArgs::default())?;
    let gone = |r: std::io::Result<()>, what: &Path| match r {
        Ok(()) => {
            if !g.quiet {
                println!("removed {}", what.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    gone(std::fs::remove_file(&paths.log_file), &paths.log_file)
        .map_err(|e| Error::io("remove", paths.log_file.display(), e))?;
    for dir in [paths.log_dir.as_path(), paths.pid_dir()] {
        // Kept when something else is in it (rmdir refuses): not ours to remove.
        let _ = gone(std::fs::remove_dir(dir), dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let hard = [
            "plain",
            "two words",
            "it's",
            "'",
            "\"$HOME\" `id` $(id) \\ ; & | * ? ~ # !",
            "line\nbreak",
            "tab\there",
            "",
            "-leading",
            "ünïcødé",
        ];
        let script = format!("printf '%s\\0' {}", words(&hard.map(String::from)));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success());
        let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        assert_eq!(got.len(), hard.len() + 1);
        for (g, want) in got.iter().zip(hard) {
            assert_eq!(*g, want.as_bytes());
        }
    }

    #[test]
    fn header_and_actions() {
        let s = Script {
            name: "svc".into(),
            exe: "/usr/local/bin/mydaemon".into(),
            description: "A service".into(),
            start_args: vec!["--".into(), "/bin/echo".into(), "a b".into()],
            env: vec![("K".into(), "v w".into())],
            regenerate: "mydaemon --name svc install --sysv".into(),
        };
        let t = s.render();
        assert!(t.starts_with("#!/bin/sh\n# Generated by mydaemon"), "{t}");
        assert!(install::is_generated(t.as_bytes()));
        let header: Vec<&str> = t
            .lines()
            .skip_while(|l| *l != "### BEGIN INIT INFO")
            .take_while(|l| *l != "### END INIT INFO")
            .collect();
        for want in [
            "# Provides:          svc",
            "# Required-Start:    $remote_fs $syslog",
            "# Required-Stop:     $remote_fs $syslog",
            "# Default-Start:     2 3 4 5",
            "# Default-Stop:      0 1 6",
            "# Short-Description: A service",
        ] {
            assert!(header.contains(&want), "{want} missing in {header:?}");
        }
        assert!(t.contains("md start -- /bin/echo 'a b'"), "{t}");
        assert!(t.contains("export K='v w'"), "{t}");
        for action in [
            "start)",
            "stop)",
            "restart)",
            "reload|force-reload)",
            "status)",
        ] {
            assert!(t.contains(action), "{action}");
        }
    }
}
