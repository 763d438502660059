//! The PID file: written atomically by the daemon and locked for its whole life, so
//! liveness comes from the kernel, never from a number in a file.
//!
//! # Locks
//! The daemon holds a POSIX record lock (`fcntl(F_SETLK)`) on byte [`ALIVE`] of the
//! file for as long as it lives; the kernel drops it when the process dies, however it
//! dies. A record lock rather than `flock(2)` for two reasons:
//! - it can be *queried* (`F_GETLK`) without being taken: `status` and `stop` never
//!   hold it even for an instant, so they cannot make a concurrent `start` believe the
//!   service is running (a non-blocking `flock` probe could);
//! - the kernel names the holder's PID, so `stop` signals exactly the process that
//!   holds the lock, whatever the file says.
//!
//! Record locks are not inherited by children and are released when the holder closes
//! *any* descriptor of the file, so the daemon opens the file exactly once.
//!
//! Two more bytes: [`STARTING`] is held from creation until the service is ready
//! (another `start` waits for it instead of reporting success too early), and
//! [`MUTATE`] is taken briefly, blocking, by whoever replaces or removes the file, so
//! a `start` replacing a stale file and a `stop` cleaning it up never race.
//!
//! # Atomic writes
//! The daemon writes `PID\n` into a temporary file in the same directory, locks it,
//! and then renames it over the old (stale) file while holding [`MUTATE`] on the old
//! one, or links it into place when there was none. Readers never see a partial file,
//! and a process that locked an inode that has since been replaced notices (the inode
//! at the path changed) and starts over.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::stat::fstat;
use nix::unistd::Pid;

use super::paths::{check_owner, errno, Paths, SafeDir};
use crate::error::{Error, Result};

/// Byte locked by the daemon for its whole life.
pub const ALIVE: i64 = 0;
/// Byte locked from creation until the service reported ready.
pub const STARTING: i64 = 1;
/// Byte locked briefly by whoever replaces or removes the file.
pub const MUTATE: i64 = 2;

fn flock_struct(kind: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl
}

/// Takes (or, `wait`, waits for) a write lock on `byte`.
fn lock<F: AsFd>(fd: &F, byte: i64, wait: bool) -> nix::Result<()> {
    let fl = flock_struct(libc::F_WRLCK, byte);
    loop {
        let r = if wait {
            fcntl(fd, FcntlArg::F_SETLKW(&fl))
        } else {
            fcntl(fd, FcntlArg::F_SETLK(&fl))
        };
        match r {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) | Err(Errno::EDEADLK) if wait => continue,
            Err(e) => return Err(e),
        }
    }
}

fn unlock<F: AsFd>(fd: &F, byte: i64) -> nix::Result<()> {
    let fl = flock_struct(libc::F_UNLCK, byte);
    fcntl(fd, FcntlArg::F_SETLK(&fl)).map(drop)
}

/// The process holding `byte`, if any (asks the kernel; takes nothing).
fn holder<F: AsFd>(fd: &F, byte: i64) -> nix::Result<Option<Pid>> {
    let mut fl = flock_struct(libc::F_WRLCK, byte);
    fcntl(fd, FcntlArg::F_GETLK(&mut fl))?;
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(Pid::from_raw(fl.l_pid)))
    }
}

/// What the PID file says, as the kernel's locks decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No PID file: not running.
    Absent,
    /// A PID file nobody holds: the daemon died without cleaning up.
    Stale {
        /// The PID the file names, if it parses.
        pid: Option<i32>,
    },
    /// A live daemon holds the lock.
    Running {
        /// The lock holder (the daemon).
        pid: Pid,
        /// Still starting: not ready yet.
        starting: bool,
        /// When the daemon wrote the file.
        since: SystemTime,
    },
}

/// The PID file of one service.
#[derive(Debug)]
pub struct PidFile {
    dir: SafeDir,
    name: OsString,
}

/// The daemon's side: the locked file, held until the process ends.
#[derive(Debug)]
pub struct Held {
    fd: OwnedFd,
    dir: SafeDir,
    name: OsString,
}

/// What [`PidFile::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    /// We hold the lock; the file names us.
    Held(Held),
    /// Another live daemon holds it.
    Busy {
        /// Its PID.
        pid: Pid,
        /// Whether it is still starting.
        starting: bool,
    },
}

impl PidFile {
    /// Opens the PID file's directory (creating it when `create`: mode 0755 for root,
    /// 0700 otherwise).
    pub fn open(paths: &Paths, create: bool) -> Result<PidFile> {
        let mode = if nix::unistd::geteuid().is_root() {
            0o755
        } else {
            0o700
        };
        let dir = SafeDir::open(paths.pid_dir(), create.then_some(mode))?;
        Ok(PidFile {
            dir,
            name: paths.pid_name().to_owned(),
        })
    }

    /// Opens the directory if it exists; `None` when it does not (nothing can be
    /// running then).
    pub fn open_existing(paths: &Paths) -> Result<Option<PidFile>> {
        match std::fs::symlink_metadata(paths.pid_dir()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => PidFile::open(paths, false).map(Some),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.join(&self.name)
    }

    fn err(&self, action: &str, e: Errno) -> Error {
        if e == Errno::ELOOP {
            return Error::generic(format!(
                "{} is a symlink; refusing to use it as a PID file",
                self.path().display()
            ));
        }
        errno(action, &self.path(), e)
    }

    /// Opens the file at the path now; `None` if there is none.
    fn open_current(&self, write: bool) -> Result<Option<OwnedFd>> {
        let flags = if write {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        match self.dir.open_file(&self.name, flags, 0) {
            Ok(fd) => {
                let st = fstat(&fd).map_err(|e| self.err("stat", e))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Err(Error::generic(format!(
                        "{} is not a regular file",
                        self.path().display()
                    )));
                }
                check_owner(&self.path(), &st)?;
                Ok(Some(fd))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.err("open", e)),
        }
    }

    /// Whether `fd` is still the file at the path (not replaced or removed since).
    fn is_current(&self, fd: &OwnedFd) -> Result<bool> {
        let mine = fstat(fd).map_err(|e| self.err("stat", e))?;
        match self.dir.stat(&self.name) {
            Ok(now) => Ok(now.st_dev == mine.st_dev && now.st_ino == mine.st_ino),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.err("stat", e)),
        }
    }

    /// The service's state, from the lock (never taking it).
    pub fn state(&self) -> Result<State> {
        for _ in 0..100 {
            let Some(fd) = self.open_current(false)? else {
                return Ok(State::Absent);
            };
            let alive = holder(&fd, ALIVE).map_err(|e| self.err("query the lock on", e))?;
            let starting = holder(&fd, STARTING).map_err(|e| self.err("query the lock on", e))?;
            let st = fstat(&fd).map_err(|e| self.err("stat", e))?;
            // pread on this descriptor: no second descriptor of the file is opened.
            let mut buf = [0u8; 64];
            let n = nix::sys::uio::pread(&fd, &mut buf, 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            if !self.is_current(&fd)? {
                continue; // replaced while we looked: look again
            }
            return Ok(match alive {
                Some(pid) => State::Running {
                    pid,
                    starting: starting.is_some(),
                    since: SystemTime::UNIX_EPOCH
                        + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32),
                },
                None => State::Stale {
                    pid: text.trim().parse().ok(),
                },
            });
        }
        Err(Error::generic(format!(
            "{} keeps changing; try again",
            self.path().display()
        )))
    }

    /// Writes `pid` into a fresh, locked (ALIVE and STARTING) temporary file.
    fn fresh(&self, pid: Pid) -> Result<(OwnedFd, OsString)> {
        let base = self.name.to_string_lossy();
        for attempt in 0..10 {
            let tmp: OsString = format!(".{base}.{pid}.{attempt}.tmp").into();
            let fd = match self.dir.open_file(
                &tmp,
                OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
                0o644,
            ) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => {
                    // Left by a process that died mid-start with our PID: ours now.
                    let _ = self.dir.unlink(&tmp);
                    continue;
                }
                Err(e) => return Err(self.err("create", e)),
            };
            // World-readable whatever the daemon's umask, as PID files are.
            let _ = nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(0o644));
            let filled = (|| {
                // Uncontested: nobody else knows this inode yet.
                lock(&fd, ALIVE, false).map_err(|e| self.err("lock", e))?;
                lock(&fd, STARTING, false).map_err(|e| self.err("lock", e))?;
                // Written through this very descriptor: closing a second one would
                // drop our record locks.
                let text = format!("{pid}\n");
                let n =
                    nix::unistd::write(&fd, text.as_bytes()).map_err(|e| self.err("write", e))?;
                if n != text.len() {
                    return Err(self.err("write", Errno::EIO));
                }
                nix::unistd::fdatasync(&fd).map_err(|e| self.err("write", e))
            })();
            if let Err(e) = filled {
                let _ = self.dir.unlink(&tmp); // no half-written file left behind
                return Err(e);
            }
            return Ok((fd, tmp));
        }
        Err(Error::generic(format!(
            "cannot create a temporary file next to {}",
            self.path().display()
        )))
    }

    /// Takes the PID file for process `pid` (the caller): the file names it and it
    /// holds the lock until it exits; or reports the live daemon that holds it.
    pub fn acquire(self, pid: Pid) -> Result<Acquired> {
        for _ in 0..100 {
            match self.open_current(true)? {
                None => {
                    let (fd, tmp) = self.fresh(pid)?;
                    let linked = self.dir.link(&tmp, &self.name);
                    let _ = self.dir.unlink(&tmp);
                    match linked {
                        Ok(()) => return Ok(Acquired::Held(self.held(fd))),
                        Err(Errno::EEXIST) => continue, // someone was faster: look again
                        Err(e) => return Err(self.err("create", e)),
                    }
                }
                Some(old) => {
                    lock(&old, MUTATE, true).map_err(|e| self.err("lock", e))?;
                    if !self.is_current(&old)? {
                        continue;
                    }
                    if let Some(other) =
                        holder(&old, ALIVE).map_err(|e| self.err("query the lock on", e))?
                    {
                        let starting = holder(&old, STARTING)
                            .map_err(|e| self.err("query the lock on", e))?
                            .is_some();
                        return Ok(Acquired::Busy {
                            pid: other,
                            starting,
                        });
                    }
                    // Stale: replace it while holding MUTATE on it.
                    let (fd, tmp) = self.fresh(pid)?;
                    if let Err(e) = self.dir.rename(&tmp, &self.name) {
                        let _ = self.dir.unlink(&tmp);
                        return Err(self.err("replace", e));
                    }
                    drop(old); // releases MUTATE on the old inode
                    return Ok(Acquired::Held(self.held(fd)));
                }
            }
        }
        Err(Error::generic(format!(
            "{} keeps changing; try again",
            self.path().display()
        )))
    }

    fn held(self, fd: OwnedFd) -> Held {
        Held {
            fd,
            dir: self.dir,
            name: self.name,
        }
    }

    /// What the running daemon published with [`Held::publish`] (call only while
    /// [`state`](PidFile::state) says it runs; a file of another owner is ignored).
    pub fn published(&self) -> Option<String> {
        let fd = self
            .dir
            .open_file(&state_name(&self.name), OFlag::O_RDONLY, 0)
            .ok()?;
        let st = fstat(&fd).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || check_owner(&self.path(), &st).is_err() {
            return None;
        }
        // Written whole by a rename, so its size is final; a long STATUS= text with
        // escaped control characters can take well over 8 KiB.
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// Removes the file if nobody holds it (a stale file); returns whether it did.
    pub fn remove_stale(&self) -> Result<bool> {
        for _ in 0..100 {
            let Some(fd) = self.open_current(true)? else {
                return Ok(false);
            };
            lock(&fd, MUTATE, true).map_err(|e| self.err("lock", e))?;
            if !self.is_current(&fd)? {
                continue;
            }
            if holder(&fd, ALIVE)
                .map_err(|e| self.err("query the lock on", e))?
                .is_some()
            {
                return Ok(false);
            }
            self.dir
                .unlink(&self.name)
                .map_err(|e| self.err("remove", e))?;
            let _ = self.dir.unlink(&state_name(&self.name));
            return Ok(true);
        }
        Ok(false)
    }

    /// The directory's descriptor (kept open across daemonization).
    pub fn dir_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.dir.as_fd().as_raw_fd()
    }
}

/// The name of the state file kept next to the PID file `name`.
fn state_name(name: &OsStr) -> OsString {
    let mut n = OsString::from(".");
    n.push(name);
    n.push(".state");
    n
}

impl Held {
    /// Publishes `text` (the daemon's state for `status`: JSON) next to the PID file,
    /// atomically (temporary file, rename). Failures are ignored: it is informative.
    pub fn publish(&self, text: &str) {
        let final_name = state_name(&self.name);
        let mut tmp = final_name.clone();
        tmp.push(".tmp");
        let Ok(fd) = self.dir.open_file(
            &tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
            0o644,
        ) else {
            return;
        };
        let _ = nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(0o644));
        if nix::unistd::write(&fd, text.as_bytes()).ok() == Some(text.len()) {
            let _ = self.dir.rename(&tmp, &final_name);
        } else {
            let _ = self.dir.unlink(&tmp);
        }
    }

    /// The service is ready: releases the STARTING byte.
    pub fn ready(&self) {
        let _ = unlock(&self.fd, STARTING);
    }

    /// Removes the PID file (on a clean exit), if it is still ours; the lock goes
    /// when the process exits.
    pub fn remove(&self) {
        if lock(&self.fd, MUTATE, true).is_err() {
            return;
        }
        let mine = fstat(&self.fd).ok();
        let now = self.dir.stat(&self.name).ok();
        if let (Some(m), Some(n)) = (mine, now) {
            if m.st_dev == n.st_dev && m.st_ino == n.st_ino {
                let _ = self.dir.unlink(&self.name);
                let _ = self.dir.unlink(&state_name(&self.name));
            }
        }
        let _ = unlock(&self.fd, MUTATE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fallback::paths::PathArgs;

    fn paths(dir: &std::path::Path) -> Paths {
        Paths::resolve(
            "t",
            &PathArgs {
                pid_file: Some(dir.join("run/t.pid")),
                log_dir: Some(dir.join("log")),
            },
        )
        .unwrap()
    }

    #[test]
    fn absent_then_held_then_removed() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let pf = PidFile::open(&p, true).unwrap();
        assert_eq!(pf.state().unwrap(), State::Absent);
        let me = nix::unistd::getpid();
        let Acquired::Held(held) = PidFile::open(&p, false).unwrap().acquire(me).unwrap() else {
            panic!("not acquired");
        };
        assert_eq!(
            std::fs::read_to_string(&p.pid_file).unwrap(),
            format!("{me}\n")
        );
        held.remove();
        assert!(!p.pid_file.exists());
        // No temporary files left behind.
        let left: Vec<_> = std::fs::read_dir(p.pid_dir()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_file_nobody_holds_is_stale_and_replaced() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let pf = PidFile::open(&p, true).unwrap();
        std::fs::write(&p.pid_file, "1\n").unwrap();
        assert_eq!(pf.state().unwrap(), State::Stale { pid: Some(1) });
        let me = nix::unistd::getpid();
        assert!(matches!(
            PidFile::open(&p, false).unwrap().acquire(me).unwrap(),
            Acquired::Held(_)
        ));
        assert_eq!(
            std::fs::read_to_string(&p.pid_file).unwrap(),
            format!("{me}\n")
        );
    }

    #[test]
    fn a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let pf = PidFile::open(&p, true).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "42\n").unwrap();
        std::os::unix::fs::symlink(&victim, &p.pid_file).unwrap();
        let e = pf.state().unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        let e = PidFile::open(&p, false)
            .unwrap()
            .acquire(nix::unistd::getpid())
            .unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "42\n");
    }
}
