//! `install -H`/`uninstall -H`: the unit file on another machine, written and removed as
//! [`crate::install`] does here (temp file in the same directory, mode 0644, rename; a
//! file without the mydaemon marker is left alone unless forced), by a small POSIX
//! shell script run over ssh with the unit on its stdin. The script answers with one
//! word on its stdout, read by [`parse_answer`].

use std::time::Duration;

use crate::error::{Error, Result};
use crate::spec::Scope;
use crate::ssh;
use crate::ssh::Remote;
use crate::unit::{ServiceSpec, MARKER};

/// Shared head of both scripts: `$dir` (the user's config dir when empty), `$f`, and
/// `generated`, true when `$f` has the marker in its first five lines.
const HEAD: &str = r#"set -u
dir=$1 name=$2 force=$3 marker=$4
[ -n "$dir" ] || dir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
f=$dir/$name
generated() {
  n=0
  while [ $n -lt 5 ] && IFS= read -r l; do
    n=$((n + 1))
    case $l in "$marker"*) return 0 ;; esac
  done < "$f"
  return 1
}
"#;

/// Writes the unit (stdin) to `$f`; `$5` is the program the unit runs, `$6`/`$7` its
/// user and group, `$8` the command it runs (empty: none), `$9` the unit's length in
/// bytes: a stdin cut short (the connection lost mid-way) reaches `cat` as a plain end
/// of file, and a truncated unit must not replace the file. Answers `no-exec`,
/// `no-user`, `no-group`, `short`, `foreign`, `unchanged`, `replaced` or `created`, then
/// the path.
const WRITE: &str = r#"exe=$5 user=$6 group=$7 cmd=$8 size=$9
[ -f "$exe" ] && [ -x "$exe" ] || { echo "no-exec $exe"; exit 0; }
[ -z "$cmd" ] || { [ -f "$cmd" ] && [ -x "$cmd" ]; } || { echo "no-exec $cmd"; exit 0; }
case $user in ''|*[!0-9]*) [ -z "$user" ] || getent passwd "$user" >/dev/null || { echo "no-user $user"; exit 0; } ;; esac
case $group in ''|*[!0-9]*) [ -z "$group" ] || getent group "$group" >/dev/null || { echo "no-group $group"; exit 0; } ;; esac
mkdir -p "$dir" || exit 1
tmp=$(mktemp "$dir/.$name.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp" || exit 1
[ "$(wc -c < "$tmp")" -eq "$size" ] || { echo "short $f"; exit 0; }
state=created
if [ -e "$f" ] || [ -L "$f" ]; then
  if [ -f "$f" ] && [ ! -L "$f" ] && cmp -s "$tmp" "$f" && [ "$(stat -c %a "$f")" = 644 ]; then
    echo "unchanged $f"; exit 0
  fi
  if [ "$force" != 1 ] && { [ -L "$f" ] || ! generated; }; then echo "foreign $f"; exit 0; fi
  state=replaced
fi
chmod 0644 "$tmp" && sync "$tmp" 2>/dev/null; mv -f "$tmp" "$f" || exit 1
trap - EXIT
echo "$state $f"
"#;

/// Checks (`$5` = check) or removes `$f` and its `*.wants`/`*.requires` links.
/// Answers `missing`, `foreign`, `ok` (check), or `link PATH`... then `removed PATH`.
const REMOVE: &str = r#"[ -e "$f" ] || [ -L "$f" ] || { echo "missing $f"; exit 0; }
if [ "$force" != 1 ] && { [ -L "$f" ] || ! generated; }; then echo "foreign $f"; exit 0; fi
[ "$5" = check ] && { echo "ok $f"; exit 0; }
for l in "$dir"/*.wants/"$name" "$dir"/*.requires/"$name"; do
  if [ -L "$l" ]; then rm -f "$l" && echo "link $l"; fi
done
rm -f "$f" || exit 1
echo "removed $f"
"#;

/// How long a file operation on the remote host may take, on top of the connect timeout.
const FILE_LIMIT: Duration = Duration::from_secs(30);

/// The unit directory argument of the scripts: empty for the user's (found there).
fn dir_arg(scope: Scope) -> &'static str {
    match scope {
        Scope::System => crate::install::SYSTEM_UNIT_DIR,
        Scope::User => "",
    }
}

/// The remote command line of `sh -c SCRIPT sh ARGS...`.
fn command(script: &str, args: &[&str]) -> String {
    let mut words = vec!["sh", "-c", script, "sh"];
    words.extend_from_slice(args);
    ssh::remote_command(&words)
}

/// One answer of a script: the first word and the rest of each stdout line.
pub fn parse_answer(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(' ') {
            Some((w, rest)) => (w.to_owned(), rest.to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

/// Runs a script; its answer lines, or the error of ssh or of the script.
fn run(remote: &Remote, cmd: &str, input: &[u8]) -> Result<Vec<(String, String)>> {
    let limit = remote.ssh.connect_timeout + FILE_LIMIT;
    let out = ssh::run(&remote.host, &remote.ssh, cmd, input, limit)?;
    if !out.status.success() {
        if out.status.code() != Some(255) && out.stderr.contains("Permission denied") {
            let who = remote.host.user.as_deref().unwrap_or("your login");
            return Err(Error::privilege(format!(
                "cannot change the unit files there: {}",
                out.stderr.trim()
            ))
            .with_hint(format!(
                "{who} may not write there: log in as root (-H root@{}), or use --user",
                remote.host.host
            )));
        }
        return Err(ssh::failure(&remote.ssh, out.status, &out.stderr));
    }
    Ok(parse_answer(&String::from_utf8_lossy(&out.stdout)))
}

/// What [`write_unit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrote {
    /// A new file at this path.
    Created(String),
    /// A mydaemon unit (or, forced, another) replaced.
    Replaced(String),
    /// Already there as it is.
    Unchanged(String),
}

/// Writes `text` (the rendered `spec`) on `remote` for `scope`, after checking that the
/// program it runs (and its user and group, by name) exist there.
pub fn write_unit(
    remote: &Remote,
    scope: Scope,
    spec: &ServiceSpec,
    text: &str,
    force: bool,
) -> Result<Wrote> {
    let script = format!("{HEAD}{WRITE}");
    let force = if force { "1" } else { "0" };
    let size = text.len().to_string();
    let cmd = command(
        &script,
        &[
            dir_arg(scope),
            &spec.unit_name(),
            force,
            MARKER,
            &spec.exec_path,
            spec.exec_user.as_deref().unwrap_or(""),
            spec.exec_group.as_deref().unwrap_or(""),
            spec.command.first().map(String::as_str).unwrap_or(""),
            &size,
        ],
    );
    let answer = run(remote, &cmd, text.as_bytes())?;
    let Some((word, rest)) = answer.last().cloned() else {
        return Err(Error::generic("the remote shell gave no answer"));
    };
    match word.as_str() {
        "created" => Ok(Wrote::Created(rest)),
        "replaced" => Ok(Wrote::Replaced(rest)),
        "unchanged" => Ok(Wrote::Unchanged(rest)),
        "no-exec" => Err(Error::not_installed(format!(
            "{rest} is not an executable file there, so the service could not start; nothing was written"
        ))
        .with_hint("install it there first (mydaemon: same path as here, or --exec-path; the command: its path there after --)")),
        "no-user" => Err(Error::usage(format!("--exec-user {rest}: no such user there"))
            .with_hint("create it there first, or leave out --exec-user for a dynamic user")),
        "no-group" => Err(Error::usage(format!("--exec-group {rest}: no such group there"))),
        "foreign" => Err(foreign(&rest, "replace")),
        "short" => Err(Error::generic(format!(
            "the unit reached the host cut short (connection lost?); {rest} was left as it was"
        ))
        .with_hint("run the install again")),
        other => Err(Error::generic(format!(
            "unexpected answer from the remote shell: {other} {rest}"
        ))),
    }
}

fn foreign(path: &str, verb: &str) -> Error {
    Error::generic(format!(
        "{path} exists there and was not generated by mydaemon (or is masked); refusing to {verb} it"
    ))
    .with_hint("look at it first (`systemctl -H HOST cat UNIT`); pass --force to override")
}

/// Checks that `unit_name` can be removed from `remote` (exists, generated or forced).
pub fn check_removable(remote: &Remote, scope: Scope, unit_name: &str, force: bool) -> Result<()> {
    remove_or_check(remote, scope, unit_name, force, true).map(drop)
}

/// Removes `unit_name` and its enable links from `remote`; the paths removed (links
/// first, the unit last).
pub fn remove_unit(
    remote: &Remote,
    scope: Scope,
    unit_name: &str,
    force: bool,
) -> Result<Vec<String>> {
    remove_or_check(remote, scope, unit_name, force, false)
}

fn remove_or_check(
    remote: &Remote,
    scope: Scope,
    unit_name: &str,
    force: bool,
    check: bool,
) -> Result<Vec<String>> {
    let script = format!("{HEAD}{REMOVE}");
    let force = if force { "1" } else { "0" };
    let mode = if check { "check" } else { "remove" };
    let cmd = command(&script, &[dir_arg(scope), unit_name, force, MARKER, mode]);
    let mut removed = Vec::new();
    for (word, rest) in run(remote, &cmd, b"")? {
        match word.as_str() {
            "missing" => {
                return Err(Error::not_installed(format!(
                    "{unit_name} is not installed there: {rest} does not exist"
                )))
            }
            "foreign" => return Err(foreign(&rest, "remove")),
            "ok" => {}
            "link" | "removed" => removed.push(rest),
            other => {
                return Err(Error::generic(format!(
                    "unexpected answer from the remote shell: {other} {rest}"
                )))
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs a script here with `sh`, as the remote shell would.
    fn sh(script: &str, args: &[&str], input: &str) -> Vec<(String, String)> {
        use std::io::Write;
        let mut c = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A script that answers before reading its input closes the pipe early.
        let _ = c.stdin.take().unwrap().write_all(input.as_bytes());
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        parse_answer(&String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn the_scripts_write_atomically_and_respect_foreign_files() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("etc");
        let dir = dir.to_str().unwrap();
        let write = format!("{HEAD}{WRITE}");
        let remove = format!("{HEAD}{REMOVE}");
        let unit = format!("{MARKER}\n[Service]\nExecStart=/bin/true\n");
        let w = |force: &str, exe: &str, text: &str| {
            let size = text.len().to_string();
            sh(
                &write,
                &[dir, "x.service", force, MARKER, exe, "", "", "", &size],
                text,
            )
        };
        let f = format!("{dir}/x.service");
        assert_eq!(w("0", "/nonexistent/bin", &unit)[0].0, "no-exec");
        let cmd = sh(
            &write,
            &[
                dir,
                "x.service",
                "0",
                MARKER,
                "/bin/sh",
                "",
                "",
                "/nonexistent/app",
                "1",
            ],
            &unit,
        );
        assert_eq!(cmd, [("no-exec".into(), "/nonexistent/app".into())]);
        assert_eq!(w("0", "/bin/sh", &unit), [("created".into(), f.clone())]);
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(w("0", "/bin/sh", &unit)[0].0, "unchanged");
        assert_eq!(
            w("0", "/bin/sh", &format!("{unit}# more\n"))[0].0,
            "replaced"
        );
        // A file of someone else's: refused unless forced; no temp file left behind.
        std::fs::write(&f, "[Service]\nExecStart=/bin/false\n").unwrap();
        assert_eq!(w("0", "/bin/sh", &unit)[0].0, "foreign");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
        assert_eq!(w("1", "/bin/sh", &unit)[0].0, "replaced");
        // A unit cut short on the way (the connection lost: `cat` sees a plain end of
        // file) replaces nothing, and leaves no temp file.
        let before = std::fs::read_to_string(&f).unwrap();
        let longer = format!("{unit}# a longer unit\n");
        let cut = sh(
            &write,
            &[
                dir,
                "x.service",
                "1",
                MARKER,
                "/bin/sh",
                "",
                "",
                "",
                &longer.len().to_string(),
            ],
            &longer[..longer.len() - 5],
        );
        assert_eq!(cut, [("short".into(), f.clone())]);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
        // Removal: the links too.
        std::fs::create_dir(format!("{dir}/multi-user.target.wants")).unwrap();
        let link = format!("{dir}/multi-user.target.wants/x.service");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let r = |mode: &str| sh(&remove, &[dir, "x.service", "0", MARKER, mode], "");
        assert_eq!(r("check"), [("ok".into(), f.clone())]);
        assert_eq!(
            r("remove"),
            [("link".into(), link.clone()), ("removed".into(), f.clone())]
        );
        assert_eq!(r("check")[0].0, "missing");
        // Its answer to a connection gone (stdout closed: SIGPIPE, on which dash does not
        // run the EXIT trap) leaves no temp file either.
        let mut c = Command::new("sh")
            .arg("-c")
            .arg(&write)
            .args([
                "sh",
                dir,
                "x.service",
                "1",
                MARKER,
                "/bin/sh",
                "",
                "",
                "",
                "999",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take());
        {
            use std::io::Write;
            let _ = c.stdin.take().unwrap().write_all(unit.as_bytes());
        }
        assert!(!c.wait().unwrap().success());
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["multi-user.target.wants"]);
        // A user's directory comes from $XDG_CONFIG_HOME when none is given.
        let out = Command::new("sh")
            .arg("-c")
            .arg(&write)
            .args([
                "sh",
                "",
                "y.service",
                "0",
                MARKER,
                "/bin/sh",
                "",
                "",
                "/bin/sh",
                "0",
            ])
            .env("XDG_CONFIG_HOME", d.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            parse_answer(&String::from_utf8_lossy(&out.stdout)),
            [(
                "created".into(),
                format!("{}/systemd/user/y.service", d.path().display())
            )]
        );
    }
}
