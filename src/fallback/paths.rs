//! Where the PID file and the log live, and opening files there without ever
//! following a symlink.
//!
//! Defaults, as the issue fixes them: root → `/run/NAME/NAME.pid` and
//! `/var/log/NAME/NAME.log`; anyone else → `$XDG_RUNTIME_DIR/NAME/NAME.pid` and
//! `$XDG_STATE_HOME/NAME/NAME.log` (`~/.local/state/NAME`). `--pid-file` and
//! `--log-dir` override them.
//!
//! Every file is opened relative to a [`SafeDir`]: the directory is opened once with
//! `O_DIRECTORY|O_NOFOLLOW` and checked (a real directory, owned by us or root, not
//! writable by others unless sticky); files inside are opened with `openat(2)` and
//! `O_NOFOLLOW`, renamed and unlinked relative to that descriptor, so nothing can swap
//! a symlink in between the check and the use.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{geteuid, linkat, unlinkat, UnlinkatFlags};

use crate::error::{Error, Result};

/// The `--pid-file`/`--log-dir` options (PID-file backend only).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "PID-file backend")]
pub struct PathArgs {
    /// PID-file backend only: the PID file [default: /run/NAME/NAME.pid as root,
    /// $XDG_RUNTIME_DIR/NAME/NAME.pid otherwise].
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// PID-file backend only: the directory of the log file NAME.log [default:
    /// /var/log/NAME as root, ~/.local/state/NAME otherwise].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

/// The resolved, absolute locations for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The PID file.
    pub pid_file: PathBuf,
    /// The directory holding the log file.
    pub log_dir: PathBuf,
    /// `log_dir/NAME.log`: the daemon's stdout and stderr.
    pub log_file: PathBuf,
}

/// `name` as a file name in the PID-file backend's directories: `.` and `..` are
/// valid unit names but would name the directory itself or its parent.
pub fn file_name(name: &str) -> Result<&str> {
    if name == "." || name == ".." {
        return Err(Error::usage(format!(
            "--name {name}: not usable without systemd, where the name is a file name"
        ))
        .with_hint("choose a name with a letter or digit in it"));
    }
    Ok(name)
}

impl Paths {
    /// Resolves the paths of service `name` from the options and the environment.
    pub fn resolve(name: &str, a: &PathArgs) -> Result<Paths> {
        let name = file_name(name)?;
        let root = geteuid().is_root();
        let pid_file = match &a.pid_file {
            Some(p) => absolute("--pid-file", p)?,
            None => runtime_dir(root)?.join(name).join(format!("{name}.pid")),
        };
        let log_dir = match &a.log_dir {
            Some(d) => absolute("--log-dir", d)?,
            None => state_dir(root)?.join(name),
        };
        if pid_file.file_name().is_none() {
            return Err(Error::usage(format!(
                "--pid-file {}: not a file name",
                pid_file.display()
            )));
        }
        let log_file = log_dir.join(format!("{name}.log"));
        Ok(Paths {
            pid_file,
            log_dir,
            log_file,
        })
    }

    /// The directory of the PID file.
    pub fn pid_dir(&self) -> &Path {
        self.pid_file.parent().unwrap_or(Path::new("/"))
    }

    /// The PID file's name inside [`pid_dir`](Paths::pid_dir).
    pub fn pid_name(&self) -> &OsStr {
        self.pid_file.file_name().unwrap_or(OsStr::new("pid"))
    }
}

use crate::unit::command::absolute;

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `/run` for root, `$XDG_RUNTIME_DIR` otherwise.
fn runtime_dir(root: bool) -> Result<PathBuf> {
    if root {
        return Ok(PathBuf::from("/run"));
    }
    env_dir("XDG_RUNTIME_DIR").ok_or_else(|| {
        Error::not_configured("$XDG_RUNTIME_DIR is not set: no place for the PID file")
            .with_hint("log in through a session that sets it, or pass --pid-file PATH")
    })
}

/// `/var/log` for root, `$XDG_STATE_HOME` (`~/.local/state`) otherwise.
fn state_dir(root: bool) -> Result<PathBuf> {
    if root {
        return Ok(PathBuf::from("/var/log"));
    }
    if let Some(s) = env_dir("XDG_STATE_HOME") {
        return Ok(s);
    }
    env_dir("HOME")
        .map(|h| h.join(".local/state"))
        .ok_or_else(|| {
            Error::not_configured("$HOME is not set: no place for the log")
                .with_hint("pass --log-dir DIR")
        })
}

/// A directory opened without following symlinks and checked for ownership; the
/// anchor for every file operation of the fallback.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeDir {
    /// Opens `path` (creating it, and missing parents, with `mode` when `create`).
    ///
    /// Refused: a symlink as the last component, something that is not a directory,
    /// a directory owned by another user (other than root), or one that others may
    /// write to without the sticky bit.
    pub fn open(path: &Path, create: Option<u32>) -> Result<SafeDir> {
        if let Some(mode) = create {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("create directory", parent.display(), e))?;
                }
            }
            if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
                let pfd = open(
                    parent,
                    OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                    Mode::empty(),
                )
                .map_err(|e| errno("open directory", parent, e))?;
                match mkdirat(&pfd, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno("create directory", path, e)),
                }
            }
        }
        let fd = open(
            path,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => Error::generic(format!(
                "{} is a symlink or not a directory; refusing to use it",
                path.display()
            )),
            e => errno("open directory", path, e),
        })?;
        let st = fstat(&fd).map_err(|e| errno("stat", path, e))?;
        check_owner(path, &st)?;
        let others_write = st.st_mode & 0o002 != 0;
        let sticky = st.st_mode & 0o1000 != 0;
        if others_write && !sticky {
            return Err(Error::generic(format!(
                "{} is writable by every user; refusing to keep service files there",
                path.display()
            ))
            .with_hint("use a directory only you (or root) can write to"));
        }
        Ok(SafeDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full path of `name` in this directory (for messages).
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// `openat(name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`; a symlink fails with
    /// `ELOOP`.
    pub fn open_file(&self, name: &OsStr, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
        openat(
            &self.fd,
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
    }

    /// Opens `name` (with `flags` and, when it creates it, `mode`) without following a
    /// symlink or blocking (a FIFO: `O_NONBLOCK`, which stays set), and checks it is a
    /// regular file with one link, owned by us or root. `None`: absent.
    pub fn open_regular(&self, name: &OsStr, flags: OFlag, mode: u32) -> Result<Option<OwnedFd>> {
        let path = self.join(name);
        let not_regular = || {
            Error::generic(format!(
                "{} is not a regular file (a FIFO, socket or device?); refusing to use it",
                path.display()
            ))
        };
        let fd = match self.open_file(name, flags | OFlag::O_NONBLOCK | OFlag::O_NOCTTY, mode) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(Error::generic(format!(
                    "{} is a symlink; refusing to use it",
                    path.display()
                )))
            }
            // Opening a FIFO with no reader for writing, without blocking.
            Err(Errno::ENXIO) => return Err(not_regular()),
            Err(e) => return Err(errno("open", &path, e)),
        };
        let st = fstat(&fd).map_err(|e| errno("stat", &path, e))?;
        if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Err(not_regular());
        }
        check_owner(&path, &st)?;
        if st.st_nlink > 1 {
            return Err(Error::generic(format!(
                "{} has {} hard links; refusing to use it",
                path.display(),
                st.st_nlink
            )));
        }
        Ok(Some(fd))
    }

    /// `lstat` of `name` relative to this directory.
    pub fn stat(&self, name: &OsStr) -> nix::Result<FileStat> {
        fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// Renames `from` to `to`, both in this directory (atomic replace).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> nix::Result<()> {
        nix::fcntl::renameat(&self.fd, from, &self.fd, to)
    }

    /// Hard-links `from` as `to` (fails with `EEXIST` if `to` exists).
    pub fn link(&self, from: &OsStr, to: &OsStr) -> nix::Result<()> {
        linkat(&self.fd, from, &self.fd, to, nix::fcntl::AtFlags::empty())
    }

    /// Removes the file `name`.
    pub fn unlink(&self, name: &OsStr) -> nix::Result<()> {
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)
    }

    /// Creates a new file next to `base` with an unpredictable name
    /// (`.BASE.XXXXXXXXXXXXXXXX.tmp`), `O_EXCL|O_NOFOLLOW`, mode `mode`: nothing
    /// planted in advance (a FIFO, a symlink) is ever opened.
    pub fn create_temp(&self, base: &OsStr, mode: u32) -> nix::Result<(OwnedFd, OsString)> {
        use std::os::unix::ffi::OsStrExt;
        for _ in 0..16 {
            let mut name = OsString::from(".");
            if base.len() > 200 {
                name.push(format!("{:016x}", name_hash(base.as_bytes())));
            } else {
                name.push(base);
            }
            name.push(format!(".{:016x}.tmp", random_u64()));
            match self.open_file(
                &name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NONBLOCK,
                mode,
            ) {
                Ok(fd) => return Ok((fd, name)),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Errno::EEXIST)
    }

    /// Removes temporary files [`create_temp`](SafeDir::create_temp) made for `base`
    /// that a killed process left behind (only regular files of ours).
    pub fn remove_temps(&self, base: &OsStr) {
        use std::os::unix::ffi::OsStrExt;
        let mut prefix = OsString::from(".");
        if base.len() > 200 {
            prefix.push(format!("{:016x}", name_hash(base.as_bytes())));
        } else {
            prefix.push(base);
        }
        prefix.push(".");
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let b = name.as_bytes();
            let Some(rest) = b.strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let is_temp = rest.len() == 20
                && rest.ends_with(b".tmp")
                && rest[..16].iter().all(u8::is_ascii_hexdigit);
            if !is_temp {
                continue;
            }
            if let Ok(st) = self.stat(&name) {
                if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG
                    && st.st_uid == geteuid().as_raw()
                {
                    let _ = self.unlink(&name);
                }
            }
        }
    }

    /// Replaces `name` atomically with a file holding `data`, mode `mode` (whatever
    /// the umask): a fresh temporary file ([`create_temp`](SafeDir::create_temp)),
    /// written, renamed over `name`.
    pub fn replace_file(&self, name: &OsStr, data: &[u8], mode: u32) -> nix::Result<()> {
        let (fd, tmp) = self.create_temp(name, mode)?;
        let filled = (|| {
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))?;
            let mut done = 0;
            while done < data.len() {
                match nix::unistd::write(&fd, &data[done..]) {
                    Ok(0) => return Err(Errno::EIO),
                    Ok(n) => done += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            self.rename(&tmp, name)
        })();
        if filled.is_err() {
            let _ = self.unlink(&tmp);
        }
        filled
    }
}

impl AsFd for SafeDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// FNV-1a, 64 bits: short stable names derived from long ones.
pub fn name_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub use crate::sys::random_u64;

/// Refuses a file or directory owned by someone other than us or root.
pub fn check_owner(path: &Path, st: &FileStat) -> Result<()> {
    let me = geteuid().as_raw();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(Error::generic(format!(
            "{} belongs to uid {}, not to you (uid {me}) or root; refusing to use it",
            path.display(),
            st.st_uid
        )));
    }
    Ok(())
}

/// An [`Error`] for a failed system call on `path`.
pub fn errno(action: &str, path: &Path, e: Errno) -> Error {
    Error::io(action, path.display(), std::io::Error::from(e))
}

/// Opens (creating with mode 0640) the log file for appending, never through a
/// symlink; refuses anything but a regular file of ours.
pub fn open_log(paths: &Paths) -> Result<OwnedFd> {
    let mode = if geteuid().is_root() { 0o750 } else { 0o700 };
    let dir = SafeDir::open(&paths.log_dir, Some(mode))?;
    let name: OsString = paths
        .log_file
        .file_name()
        .unwrap_or(OsStr::new("log"))
        .to_owned();
    let fd = dir
        .open_regular(
            &name,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            0o640,
        )?
        // O_CREAT: absent only if it vanished between the two calls.
        .ok_or_else(|| errno("open log file", &paths.log_file, Errno::ENOENT))?;
    // The daemon's stdout and stderr: blocking writes, as usual.
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_APPEND))
        .map_err(|e| errno("set flags of", &paths.log_file, e))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn overrides_are_made_absolute() {
        let a = PathArgs {
            pid_file: Some("rel/x.pid".into()),
            log_dir: Some("/l".into()),
        };
        let p = Paths::resolve("svc", &a).unwrap();
        assert!(p.pid_file.is_absolute());
        assert!(p.pid_file.ends_with("rel/x.pid"));
        assert_eq!(p.log_file, Path::new("/l/svc.log"));
        assert_eq!(p.pid_name(), "x.pid");
    }

    #[test]
    fn symlinked_and_world_writable_dirs_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = t.path().join("link");
        symlink(&real, &link).unwrap();
        let e = SafeDir::open(&link, None).unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = SafeDir::open(&real, None).unwrap_err();
        assert!(e.message().contains("writable by every user"), "{e}");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(
            SafeDir::open(&real, None).is_ok(),
            "sticky is fine, like /tmp"
        );
    }

    #[test]
    fn log_is_never_opened_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(
            "svc",
            &PathArgs {
                pid_file: Some(t.path().join("p.pid")),
                log_dir: Some(t.path().join("log")),
            },
        )
        .unwrap();
        let fd = open_log(&paths).unwrap();
        assert_eq!(fstat(&fd).unwrap().st_mode & 0o777, 0o640);
        drop(fd);
        std::fs::remove_file(&paths.log_file).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        symlink(&victim, &paths.log_file).unwrap();
        let e = open_log(&paths).unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
