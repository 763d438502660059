//! The PID file, and the private lock that says whether the daemon lives.
//!
//! # Who can assert liveness
//! The PID file (`NAME.pid`, mode 0644) is for tools that read it; it carries no lock
//! and proves nothing. Liveness is a POSIX record lock held by the daemon for its whole
//! life on a separate *lock file*, `.NAME.pid.lock` next to it, created mode 0600 and
//! checked to be a regular file with one link owned by us (or root) before any use.
//! Another user cannot open that file, so cannot take, hold or fake any lock on it:
//! `F_GETLK` names the daemon or nobody. (On the world-readable PID file, anyone could
//! take a read lock, which `F_GETLK` then reported as "the daemon".)
//!
//! The kernel drops the daemon's lock when the process dies, however it dies. A record
//! lock rather than `flock(2)` because it can be *queried* (`F_GETLK`) without being
//! taken, and the kernel names the holder's PID (0 when the holder is in another PID
//! namespace: [`State::Elsewhere`]).
//!
//! A daemon of an earlier version locked the PID file itself; while one runs (there
//! is no lock file), its lock is believed only if the holder is the PID the file names
//! and runs as the file's owner, so an upgrade neither starts a second copy nor lets
//! another user's lock count.
//!
//! # Bytes
//! [`ALIVE`] is held by the daemon for its life. [`STARTING`] from creation until the
//! service is ready. [`MUTATE`] is taken briefly by whoever creates, replaces or
//! removes the files. No lock is ever awaited with `F_SETLKW`: every attempt is
//! `F_SETLK`, retried for at most [`LOCK_DEADLINE`], then an error naming the holder.
//!
//! # Replacing and removing
//! The lock file is removed (with the PID file) only by a holder of [`MUTATE`] when
//! nobody holds [`ALIVE`] or by the daemon itself on its way out; whoever locks a lock
//! file checks afterwards that it is still the file at the path, and starts over if not.
//! The PID file is written into a fresh temporary file (`O_EXCL`, unpredictable name)
//! and renamed into place: readers never see a partial file.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::stat::fstat;
use nix::unistd::Pid;

use super::paths::{errno, Paths, SafeDir};
use crate::error::{Error, Result};

/// Byte locked by the daemon for its whole life.
pub const ALIVE: i64 = 0;
/// Byte locked from creation until the service reported ready.
pub const STARTING: i64 = 1;
/// Byte locked briefly by whoever creates, replaces or removes the files.
pub const MUTATE: i64 = 2;
/// The longest any lock attempt is retried ([`MUTATE`] is only ever held for the
/// length of a few system calls by a process of the same user).
pub const LOCK_DEADLINE: Duration = Duration::from_secs(5);

/// Tries once to take a write lock on `byte` (`EAGAIN`/`EACCES`: someone holds it).
fn try_lock<F: AsFd>(fd: &F, byte: i64) -> nix::Result<()> {
    let fl = crate::sys::flock_struct(libc::F_WRLCK, byte);
    loop {
        match fcntl(fd, FcntlArg::F_SETLK(&fl)) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes a write lock on `byte`, retrying without ever blocking until [`LOCK_DEADLINE`];
/// then `ETIMEDOUT`.
fn lock_deadline<F: AsFd>(fd: &F, byte: i64) -> nix::Result<()> {
    let deadline = Instant::now() + LOCK_DEADLINE;
    let mut pause = Duration::from_micros(200);
    loop {
        match try_lock(fd, byte) {
            Err(Errno::EAGAIN | Errno::EACCES) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(Errno::EAGAIN | Errno::EACCES) => return Err(Errno::ETIMEDOUT),
            other => return other,
        }
    }
}

fn unlock<F: AsFd>(fd: &F, byte: i64) -> nix::Result<()> {
    let fl = crate::sys::flock_struct(libc::F_UNLCK, byte);
    fcntl(fd, FcntlArg::F_SETLK(&fl)).map(drop)
}

/// Who holds `byte`, if anyone (asks the kernel; takes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Nobody,
    Pid(Pid),
    /// A process this PID namespace cannot see (`l_pid` 0).
    Invisible,
}

fn holder<F: AsFd>(fd: &F, byte: i64) -> nix::Result<Holder> {
    let mut fl = crate::sys::flock_struct(libc::F_WRLCK, byte);
    fcntl(fd, FcntlArg::F_GETLK(&mut fl))?;
    Ok(if fl.l_type == libc::F_UNLCK as libc::c_short {
        Holder::Nobody
    } else if fl.l_pid <= 0 {
        Holder::Invisible
    } else {
        Holder::Pid(Pid::from_raw(fl.l_pid))
    })
}

/// What the files say, as the kernel's locks decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No PID file and no lock file: not running.
    Absent,
    /// Nobody holds the lock: the daemon died without cleaning up.
    Stale {
        /// The PID the PID file names, if it parses.
        pid: Option<i32>,
    },
    /// A live daemon holds the lock.
    Running {
        /// The lock holder (the daemon).
        pid: Pid,
        /// Still starting: not ready yet.
        starting: bool,
        /// When the daemon took the lock.
        since: SystemTime,
    },
    /// The lock is held by a process in another PID namespace (its PID is invisible
    /// here, so it can be neither named nor signalled).
    Elsewhere,
}

/// The PID file of one service.
#[derive(Debug)]
pub struct PidFile {
    dir: SafeDir,
    name: OsString,
}

/// The daemon's side: the locked lock file, held until the process ends.
#[derive(Debug)]
pub struct Held {
    fd: OwnedFd,
    dir: SafeDir,
    name: OsString,
}

/// What [`PidFile::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    /// We hold the lock; the PID file names us.
    Held(Held),
    /// Another live daemon holds it.
    Busy {
        /// Its PID.
        pid: Pid,
        /// Whether it is still starting.
        starting: bool,
    },
}

/// The name of a file kept next to the PID file `name`: `.NAME.SUFFIX`, or, when that
/// would be longer than a file name may be (a long service name), `.HASH.SUFFIX` with
/// a hash of `name`.
pub fn aux_name(name: &OsStr, suffix: &str) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    let mut n = OsString::from(".");
    if name.len() + suffix.len() + 2 > 120 {
        n.push(format!("{:016x}", super::paths::name_hash(name.as_bytes())));
    } else {
        n.push(name);
    }
    n.push(".");
    n.push(suffix);
    n
}

/// The name of the lock file kept next to the PID file `name`.
fn lock_name(name: &OsStr) -> OsString {
    aux_name(name, "lock")
}

/// The name of the state file kept next to the PID file `name`.
fn state_name(name: &OsStr) -> OsString {
    aux_name(name, "state")
}

/// The name of the private (0700) directory of the notify socket.
fn notify_dir_name(name: &OsStr) -> OsString {
    aux_name(name, "notify")
}

/// The notify socket's name inside that directory.
const NOTIFY_SOCKET: &str = "notify";

/// Removes the notify socket and its directory, if there.
fn remove_notify_dir(dir: &SafeDir, name: &OsStr) {
    let d = notify_dir_name(name);
    let mut sock = d.clone();
    sock.push("/");
    sock.push(NOTIFY_SOCKET);
    let _ = dir.unlink(&sock);
    let _ = nix::unistd::unlinkat(
        dir.as_fd(),
        d.as_os_str(),
        nix::unistd::UnlinkatFlags::RemoveDir,
    );
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

    fn lock_path(&self) -> std::path::PathBuf {
        self.dir.join(&lock_name(&self.name))
    }

    fn err(&self, action: &str, e: Errno) -> Error {
        if e == Errno::ETIMEDOUT {
            return Error::generic(format!(
                "{} stayed locked for {}s; try again",
                self.lock_path().display(),
                LOCK_DEADLINE.as_secs()
            ));
        }
        errno(action, &self.lock_path(), e)
    }

    /// Opens the lock file (creating it, mode 0600, when `create`).
    fn open_lock(&self, create: bool) -> Result<Option<OwnedFd>> {
        let flags = if create {
            OFlag::O_RDWR | OFlag::O_CREAT
        } else {
            OFlag::O_RDWR
        };
        let fd = self
            .dir
            .open_regular(&lock_name(&self.name), flags, 0o600)
            .map_err(|e| {
                if e.kind() == crate::error::Kind::Privilege {
                    Error::privilege(format!(
                        "{}: permission denied; the service's lock belongs to another user",
                        self.lock_path().display()
                    ))
                } else {
                    e
                }
            })?;
        if let Some(fd) = &fd {
            // Whatever the umask or whoever made it: nobody else may open it.
            let st = fstat(fd).map_err(|e| self.err("stat", e))?;
            if st.st_mode & 0o077 != 0 {
                nix::sys::stat::fchmod(fd, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| self.err("chmod", e))?;
            }
        }
        Ok(fd)
    }

    /// Whether `fd` is still the lock file at the path (not replaced or removed since).
    fn is_current(&self, fd: &OwnedFd) -> Result<bool> {
        let mine = fstat(fd).map_err(|e| self.err("stat", e))?;
        match self.dir.stat(&lock_name(&self.name)) {
            Ok(now) => Ok(now.st_dev == mine.st_dev && now.st_ino == mine.st_ino),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.err("stat", e)),
        }
    }

    /// The PID the PID file names (a stale one's, for messages), never blocking.
    fn named_pid(&self) -> Result<Option<i32>> {
        let Some(fd) = self.dir.open_regular(&self.name, OFlag::O_RDONLY, 0)? else {
            return Ok(None);
        };
        let mut buf = [0u8; 64];
        let n = nix::sys::uio::pread(&fd, &mut buf, 0).unwrap_or(0);
        Ok(String::from_utf8_lossy(&buf[..n]).trim().parse().ok())
    }

    /// A daemon of an earlier version, which locked the PID file itself (there is no
    /// lock file): believed only if the holder is the PID the file names and runs as
    /// the file's owner (us or root), since anyone who can read the file can lock it.
    fn legacy_holder(&self) -> Result<Option<State>> {
        use std::os::unix::fs::MetadataExt;
        let Some(fd) = self.dir.open_regular(&self.name, OFlag::O_RDONLY, 0)? else {
            return Ok(None);
        };
        let Holder::Pid(pid) = holder(&fd, ALIVE).map_err(|e| self.err("query the lock on", e))?
        else {
            return Ok(None);
        };
        let st = fstat(&fd).map_err(|e| self.err("stat", e))?;
        let mut buf = [0u8; 64];
        let n = nix::sys::uio::pread(&fd, &mut buf, 0).unwrap_or(0);
        let named: Option<i32> = String::from_utf8_lossy(&buf[..n]).trim().parse().ok();
        let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
        if named != Some(pid.as_raw()) || owner.ok() != Some(st.st_uid) {
            return Ok(None);
        }
        let starting = holder(&fd, STARTING).map_err(|e| self.err("query the lock on", e))?;
        Ok(Some(State::Running {
            pid,
            starting: starting != Holder::Nobody,
            since: SystemTime::UNIX_EPOCH
                + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32),
        }))
    }

    fn pid_file_exists(&self) -> bool {
        self.dir.stat(&self.name).is_ok()
    }

    /// The service's state, from the lock (never taking it).
    pub fn state(&self) -> Result<State> {
        for _ in 0..100 {
            let Some(fd) = self.open_lock(false)? else {
                if self.pid_file_exists() {
                    if let Some(running) = self.legacy_holder()? {
                        return Ok(running);
                    }
                    return Ok(State::Stale {
                        pid: self.named_pid()?,
                    });
                }
                return Ok(State::Absent);
            };
            let alive = holder(&fd, ALIVE).map_err(|e| self.err("query the lock on", e))?;
            let starting = holder(&fd, STARTING).map_err(|e| self.err("query the lock on", e))?;
            let st = fstat(&fd).map_err(|e| self.err("stat", e))?;
            if !self.is_current(&fd)? {
                continue; // replaced while we looked: look again
            }
            return Ok(match alive {
                Holder::Pid(pid) => State::Running {
                    pid,
                    starting: starting != Holder::Nobody,
                    since: SystemTime::UNIX_EPOCH
                        + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32),
                },
                Holder::Invisible => State::Elsewhere,
                Holder::Nobody => State::Stale {
                    pid: self.named_pid()?,
                },
            });
        }
        Err(Error::generic(format!(
            "{} keeps changing; try again",
            self.lock_path().display()
        )))
    }

    /// Writes `pid` into the PID file: a fresh temporary file renamed into place.
    fn write_pid(&self, pid: Pid) -> Result<()> {
        let text = format!("{pid}\n");
        self.dir
            .replace_file(&self.name, text.as_bytes(), 0o644)
            .map_err(|e| errno("write", &self.path(), e))
    }

    /// Takes the PID file for process `pid` (the caller): it holds the lock until it
    /// exits and the PID file names it; or reports the live daemon that holds it.
    pub fn acquire(self, pid: Pid) -> Result<Acquired> {
        for _ in 0..100 {
            let Some(fd) = self.open_lock(true)? else {
                continue;
            };
            lock_deadline(&fd, MUTATE).map_err(|e| self.err("lock", e))?;
            if !self.is_current(&fd)? {
                continue; // removed or replaced before we locked it
            }
            match try_lock(&fd, ALIVE) {
                Ok(()) => {}
                Err(Errno::EAGAIN | Errno::EACCES) => {
                    let starting = holder(&fd, STARTING)
                        .map_err(|e| self.err("query the lock on", e))?
                        != Holder::Nobody;
                    match holder(&fd, ALIVE).map_err(|e| self.err("query the lock on", e))? {
                        Holder::Pid(other) => {
                            return Ok(Acquired::Busy {
                                pid: other,
                                starting,
                            })
                        }
                        Holder::Invisible => {
                            return Err(elsewhere(&self.lock_path()));
                        }
                        Holder::Nobody => continue, // it just died: try again
                    }
                }
                Err(e) => return Err(self.err("lock", e)),
            }
            try_lock(&fd, STARTING).map_err(|e| self.err("lock", e))?;
            // Our PID in the lock file too: its mtime says since when we run.
            let text = format!("{pid}\n");
            let _ = nix::unistd::ftruncate(&fd, 0);
            let _ = nix::sys::uio::pwrite(&fd, text.as_bytes(), 0);
            self.write_pid(pid)?;
            let _ = unlock(&fd, MUTATE);
            return Ok(Acquired::Held(Held {
                fd,
                dir: self.dir,
                name: self.name,
            }));
        }
        Err(Error::generic(format!(
            "{} keeps changing; try again",
            self.lock_path().display()
        )))
    }

    /// What the running daemon published with [`Held::publish`] (call only while
    /// [`state`](PidFile::state) says it runs; a file of another owner is ignored).
    pub fn published(&self) -> Option<String> {
        let fd = self
            .dir
            .open_regular(&state_name(&self.name), OFlag::O_RDONLY, 0)
            .ok()
            .flatten()?;
        // Written whole by a rename, so its size is final; a long STATUS= text with
        // escaped control characters can take well over 8 KiB.
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }

    /// Removes the files if nobody holds the lock (stale files); returns whether it did.
    pub fn remove_stale(&self) -> Result<bool> {
        for _ in 0..100 {
            let Some(fd) = self.open_lock(false)? else {
                // A PID file without a lock file (nobody could hold it).
                return match self.dir.unlink(&self.name) {
                    Ok(()) => {
                        let _ = self.dir.unlink(&state_name(&self.name));
                        Ok(true)
                    }
                    Err(Errno::ENOENT) => Ok(false),
                    Err(e) => Err(errno("remove", &self.path(), e)),
                };
            };
            lock_deadline(&fd, MUTATE).map_err(|e| self.err("lock", e))?;
            if !self.is_current(&fd)? {
                continue;
            }
            if holder(&fd, ALIVE).map_err(|e| self.err("query the lock on", e))? != Holder::Nobody {
                return Ok(false);
            }
            match self.dir.unlink(&self.name) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(errno("remove", &self.path(), e)),
            }
            let _ = self.dir.unlink(&state_name(&self.name));
            remove_notify_dir(&self.dir, &self.name);
            // Temporary files a killed daemon may have left mid-write.
            self.dir.remove_temps(&self.name);
            self.dir.remove_temps(&state_name(&self.name));
            self.dir
                .unlink(&lock_name(&self.name))
                .map_err(|e| self.err("remove", e))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The error for a lock held from another PID namespace (exit 4).
    pub fn elsewhere(&self) -> Error {
        elsewhere(&self.lock_path())
    }

    /// The directory's descriptor (kept open across daemonization).
    pub fn dir_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.dir.as_fd().as_raw_fd()
    }
}

/// The error for a lock held from another PID namespace.
pub fn elsewhere(lock: &std::path::Path) -> Error {
    Error::privilege(format!(
        "{} is held by a process in another PID namespace, which cannot be seen or signalled from here",
        lock.display()
    ))
    .with_hint("run the command in the PID namespace the service was started in")
}

impl Held {
    /// Publishes `text` (the daemon's state for `status`: JSON) next to the PID file,
    /// atomically (a fresh temporary file with an unpredictable name, renamed).
    /// Failures are ignored: it is informative.
    pub fn publish(&self, text: &str) {
        let _ = self
            .dir
            .replace_file(&state_name(&self.name), text.as_bytes(), 0o644);
    }

    /// The directory for the notify socket: `.NAME.pid.notify` next to the PID file,
    /// mode 0700, ours (created if missing; anything else there is refused). Returns
    /// the socket's path in it (any old socket there removed: we hold the lock).
    pub fn notify_socket_path(&self) -> Result<std::path::PathBuf> {
        let d = notify_dir_name(&self.name);
        let path = self.dir.join(&d);
        match nix::sys::stat::mkdirat(
            self.dir.as_fd(),
            d.as_os_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(errno("create directory", &path, e)),
        }
        let dfd = self
            .dir
            .open_file(&d, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0)
            .map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => Error::generic(format!(
                    "{} is not a directory; refusing to use it",
                    path.display()
                )),
                e => errno("open directory", &path, e),
            })?;
        let st = fstat(&dfd).map_err(|e| errno("stat", &path, e))?;
        if st.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(Error::generic(format!(
                "{} belongs to uid {}; refusing to use it",
                path.display(),
                st.st_uid
            )));
        }
        if st.st_mode & 0o077 != 0 {
            nix::sys::stat::fchmod(&dfd, nix::sys::stat::Mode::from_bits_truncate(0o700))
                .map_err(|e| errno("chmod", &path, e))?;
        }
        let mut sock = d;
        sock.push("/");
        sock.push(NOTIFY_SOCKET);
        let _ = self.dir.unlink(&sock);
        Ok(self.dir.join(&sock))
    }

    /// The service is ready: releases the STARTING byte.
    pub fn ready(&self) {
        let _ = unlock(&self.fd, STARTING);
    }

    /// Removes the PID file, the state file and the lock file (on a clean exit), if
    /// the lock file is still ours; the lock goes when the process exits.
    pub fn remove(&self) {
        if lock_deadline(&self.fd, MUTATE).is_err() {
            return;
        }
        let mine = fstat(&self.fd).ok();
        let now = self.dir.stat(&lock_name(&self.name)).ok();
        if let (Some(m), Some(n)) = (mine, now) {
            if m.st_dev == n.st_dev && m.st_ino == n.st_ino {
                let _ = self.dir.unlink(&self.name);
                let _ = self.dir.unlink(&state_name(&self.name));
                remove_notify_dir(&self.dir, &self.name);
                let _ = self.dir.unlink(&lock_name(&self.name));
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
    fn a_symlink_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let pf = PidFile::open(&p, true).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "42\n").unwrap();
        std::os::unix::fs::symlink(&victim, &p.pid_file).unwrap();
        let e = pf.state().unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        // The daemon replaces the link itself; the victim is untouched.
        assert!(matches!(
            PidFile::open(&p, false)
                .unwrap()
                .acquire(nix::unistd::getpid())
                .unwrap(),
            Acquired::Held(_)
        ));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "42\n");
        // A symlink as the lock file is refused.
        let lock = p.pid_dir().join(".t.pid.lock");
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let e = pf.state().unwrap_err();
        assert!(e.message().contains("symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "42\n");
    }

    #[test]
    fn stale_files_go_with_the_temporaries_a_killed_daemon_left() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let pf = PidFile::open(&p, true).unwrap();
        let dir = p.pid_dir();
        std::fs::write(&p.pid_file, "1\n").unwrap();
        std::fs::write(dir.join(".t.pid.lock"), "1\n").unwrap();
        std::fs::write(dir.join("..t.pid.state.0123456789abcdef.tmp"), "{").unwrap();
        std::fs::write(dir.join(".t.pid.fedcba9876543210.tmp"), "1").unwrap();
        std::fs::write(dir.join("keep.tmp"), "").unwrap();
        std::fs::write(dir.join(".t.pid.notes.tmp"), "").unwrap();
        assert!(pf.remove_stale().unwrap());
        let mut left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".t.pid.notes.tmp", "keep.tmp"]);
    }

    #[test]
    fn the_lock_file_is_private_and_a_fifo_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let Acquired::Held(held) = PidFile::open(&p, true)
            .unwrap()
            .acquire(nix::unistd::getpid())
            .unwrap()
        else {
            panic!("not acquired");
        };
        let lock = p.pid_dir().join(".t.pid.lock");
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let pmode = std::fs::metadata(&p.pid_file).unwrap().permissions().mode();
        assert_eq!(pmode & 0o777, 0o644);
        held.remove();
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = PidFile::open(&p, false).unwrap().state().unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
    }
}
