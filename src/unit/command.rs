//! Finding programs on disk for a unit: this binary's own path, a `-- CMD` resolved
//! through `$PATH`, and whether the service will be able to reach them.
//!
//! This is the only part of [`crate::unit`] that does I/O; it runs before a
//! [`super::ServiceSpec`] is built, so rendering stays pure.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::hardening::{self, HomeAccess};
use crate::error::{Error, Result};

/// `$PATH` used when the variable is unset (systemd's default for services).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn utf8(path: &Path) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Error::usage(format!(
            "path {} is not valid UTF-8, which a unit file cannot hold",
            path.display()
        ))
    })
}

/// The absolute path of the running `mydaemon` binary.
pub fn own_executable() -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::generic(format!("cannot find this program's own path: {e}")))?;
    utf8(&exe)
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves the program of `-- CMD` to an absolute path, as systemd needs it: a name
/// without `/` is searched in `$PATH`, a relative path is made absolute from the current
/// directory. Symlinks are kept (so upgrades that move the target keep working).
///
/// Errors: not found (exit 5), not an executable file (exit 2).
pub fn resolve_program(cmd: &str) -> Result<String> {
    if cmd.is_empty() {
        return Err(Error::usage("the command after `--` is empty"));
    }
    let candidate: PathBuf = if cmd.contains('/') {
        let abs = std::path::absolute(cmd)
            .map_err(|e| Error::usage(format!("cannot make `{cmd}` absolute: {e}")))?;
        // Normalize the directory part (`.`, `..`, symlinked dirs), keep the file name.
        let parent = abs.parent().unwrap_or(Path::new("/"));
        let file = abs.file_name().ok_or_else(|| {
            Error::usage(format!("command `{cmd}` names a directory, not a program"))
        })?;
        let parent = std::fs::canonicalize(parent)
            .map_err(|e| Error::not_installed(format!("command `{cmd}` not found: {e}")))?;
        parent.join(file)
    } else {
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
        let found = path
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(cmd))
            .find(|p| is_executable_file(p));
        match found {
            Some(p) => p,
            None => {
                return Err(
                    Error::not_installed(format!("command `{cmd}` not found in $PATH"))
                        .with_hint("install it, or give its absolute path after `--`"),
                )
            }
        }
    };
    let meta = std::fs::metadata(&candidate).map_err(|e| {
        Error::not_installed(format!("command {} not found: {e}", candidate.display()))
    })?;
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "command {} is not a regular file",
            candidate.display()
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(
            Error::usage(format!("command {} is not executable", candidate.display()))
                .with_hint(format!("chmod +x {}", candidate.display())),
        );
    }
    utf8(&candidate)
}

/// Whether any of `paths` (or what they link to) lies where `ProtectHome=yes` would
/// hide it.
pub fn home_access(paths: &[&str]) -> HomeAccess {
    let hidden = |p: &str| {
        hardening::HOME_DIRS
            .iter()
            .any(|d| hardening::is_under(p, d))
    };
    for p in paths {
        let real = std::fs::canonicalize(p)
            .ok()
            .and_then(|r| r.to_str().map(str::to_string));
        if hidden(p) || real.as_deref().is_some_and(hidden) {
            return HomeAccess::ReadOnly;
        }
    }
    HomeAccess::NotNeeded
}

/// For a service running as a dynamic user (not root, in no group): checks that it can
/// reach and execute `path` — every directory above it searchable by others, and the
/// file executable by others. Paths that do not exist here are not checked (for
/// `--exec-path` of a binary not yet installed).
pub fn check_reachable_by_others(path: &str) -> Result<()> {
    let Ok(real) = std::fs::canonicalize(path) else {
        return Ok(());
    };
    let hint = || {
        "install it where every user can run it (e.g. /usr/local/bin), \
         or run the service as a user who can: --exec-user USER"
    };
    for dir in real.ancestors().skip(1) {
        if let Ok(m) = std::fs::metadata(dir) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                return Err(Error::usage(format!(
                    "the service runs as a dynamic user, which cannot reach {path}: \
                     {} is mode {:04o} (not searchable by others)",
                    dir.display(),
                    mode & 0o7777
                ))
                .with_hint(hint()));
            }
        }
    }
    if let Ok(m) = std::fs::metadata(&real) {
        let mode = m.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(Error::usage(format!(
                "the service runs as a dynamic user, which cannot execute {path}: it is mode {:04o}",
                mode & 0o7777
            ))
            .with_hint(hint()));
        }
    }
    Ok(())
}

/// `p` made absolute against the working directory (not resolving links), or a usage
/// error naming the option `opt` it came from.
pub fn absolute(opt: &str, p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::usage(format!("{opt} {}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn resolves_through_path_and_relative() {
        let p = resolve_program("sh").unwrap();
        assert!(p.starts_with('/') && p.ends_with("/sh"), "{p}");
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("prog");
        fs::write(&prog, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let weird = format!("{}/sub/../prog", dir.path().display());
        let real = fs::canonicalize(dir.path()).unwrap().join("prog");
        assert_eq!(resolve_program(&weird).unwrap(), real.to_str().unwrap());
    }

    #[test]
    fn missing_and_non_executable_are_errors() {
        let e = resolve_program("no-such-program-mydaemon-test").unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.message().contains("not found in $PATH"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data");
        fs::write(&f, "x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve_program(f.to_str().unwrap()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("chmod +x"), "{e}");
        let e = resolve_program(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
        assert_eq!(
            resolve_program(&format!("{}/nope", dir.path().display()))
                .unwrap_err()
                .exit_code(),
            5
        );
    }

    #[test]
    fn home_paths_need_read_only_home() {
        assert_eq!(home_access(&["/usr/bin/x"]), HomeAccess::NotNeeded);
        assert_eq!(
            home_access(&["/usr/bin/x", "/home/a/bin/x"]),
            HomeAccess::ReadOnly
        );
        assert_eq!(home_access(&["/root/x"]), HomeAccess::ReadOnly);
        assert_eq!(home_access(&["/run/user/1000/x"]), HomeAccess::ReadOnly);
    }

    #[test]
    fn unreachable_programs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("private");
        fs::create_dir(&inner).unwrap();
        let prog = inner.join("prog");
        fs::write(&prog, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o700)).unwrap();
        let e = check_reachable_by_others(prog.to_str().unwrap()).unwrap_err();
        assert!(e.message().contains("mode 0700"), "{e}");
        assert!(e.to_string().contains("--exec-user"), "{e}");
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_reachable_by_others(prog.to_str().unwrap()).unwrap_err();
        assert!(e.message().contains("cannot execute"), "{e}");
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        check_reachable_by_others(prog.to_str().unwrap()).unwrap();
        check_reachable_by_others("/nonexistent/path").unwrap();
    }
}
