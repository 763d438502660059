//! Hardening levels: the sandboxing directives a generated unit carries.
//!
//! Three levels, chosen with `--hardening`:
//!
//! - **`strict`** (default for the built-in workload): for a program that only needs its
//!   own state directory and the local system's sockets. The service runs as a dynamic
//!   user with no capabilities, sees the file system read-only except its
//!   `StateDirectory=` (`/var/lib/NAME`, `$STATE_DIRECTORY`), gets private `/tmp` and
//!   `/dev`, no home directories, no network at all (a private network namespace,
//!   `IPAddressDeny=any`, and only `AF_UNIX` sockets: enough for journald and the notify
//!   socket), no access to kernel tunables, modules, logs, clock, hostname or cgroups,
//!   only its own processes in `/proc`, no new namespaces, realtime, SUID/SGID files or
//!   writable-and-executable memory, and only the system calls of `@system-service`
//!   minus `@privileged` and `@resources`. `systemd-analyze security` scores it 0.2
//!   ("SAFE") on systemd 252; the tests require at most 1.5.
//! - **`standard`** (default when a command is given with `-- CMD`): for most daemons.
//!   Like `strict`, but the network is allowed (`AF_UNIX AF_INET AF_INET6 AF_NETLINK`,
//!   no private network namespace, no IP filter), home directories are visible read-only,
//!   all of `/proc` is visible (other users' processes stay hidden), writable-and-
//!   executable memory is allowed (JIT runtimes such as Java, Node.js, LuaJIT need it),
//!   and the system call filter is `@system-service` without further removals. It grants
//!   no capabilities either (`CapabilityBoundingSet=` empty), even with `--exec-user
//!   root`: a program that needs one (say, to bind a port below 1024) needs
//!   `--hardening off`. It scores 1.4 (`off`: 8.2; a unit without any hardening: 9.6).
//! - **`off`**: no sandboxing directives at all. The service still runs as a dynamic user
//!   unless `--exec-user` is given, and `DynamicUser=yes` by itself implies a read-only
//!   file system, read-only home directories, a private `/tmp` and `NoNewPrivileges=`.
//!
//! With `--user` (the per-user service manager), only directives that work without
//! privileges or user namespaces are written: `NoNewPrivileges=`, the system call
//! filter and architecture, `RestrictAddressFamilies=`, `RestrictNamespaces=`,
//! `RestrictRealtime=`, `RestrictSUIDSGID=`, `LockPersonality=`, `MemoryDenyWriteExecute=`
//! (strict only), and `UMask=`. File system, device, network-namespace and capability
//! sandboxing need privileges a user manager does not have.
//!
//! A unit that could not start is never generated:
//! - a program, command or working directory under `/home`, `/root` or `/run/user`
//!   gets `ProtectHome=read-only` instead of `ProtectHome=yes` (strict), so the service
//!   still sees it (see [`HomeAccess`]); with a dynamic user, every directory above the
//!   program must be searchable by others, or the unit is refused with the fix
//!   (install it under `/usr/local/bin`, or `--exec-user`);
//! - a program or working directory under `/tmp` or `/var/tmp` is refused whenever the
//!   service gets a private `/tmp` (any level, or a dynamic user);
//! - `install` on this system also refuses a missing program, user or group.

use std::fmt;

/// The `--hardening` level.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Full sandbox, no network: for the built-in workload (scores ≤ 1.5).
    Strict,
    /// Sandbox with network, read-only home: for most commands.
    Standard,
    /// No sandboxing directives.
    Off,
}

impl Level {
    /// The level's name as `--hardening` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Standard => "standard",
            Level::Off => "off",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the service must see something under `/home`, `/root` or `/run/user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HomeAccess {
    /// Nothing it needs is there: home directories can be hidden.
    #[default]
    NotNeeded,
    /// Its program, command or working directory is there: keep them visible read-only.
    ReadOnly,
}

/// Directories that `ProtectHome=yes` hides.
pub const HOME_DIRS: &[&str] = &["/home", "/root", "/run/user"];

/// Directories that `PrivateTmp=yes` replaces with empty ones.
pub const TMP_DIRS: &[&str] = &["/tmp", "/var/tmp"];

/// True when `path` is `dir` or below it (lexically).
pub fn is_under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The directives for `level`, in the order they are written.
///
/// `user_manager` selects the subset that works in a per-user service manager.
pub fn directives(
    level: Level,
    user_manager: bool,
    home: HomeAccess,
) -> Vec<(&'static str, String)> {
    let mut d: Vec<(&'static str, String)> = Vec::new();
    let mut push = |k: &'static str, v: &str| d.push((k, v.to_string()));
    if level == Level::Off {
        return d;
    }
    let strict = level == Level::Strict;
    if !user_manager {
        push("ProtectSystem", "strict");
        let protect_home = match (strict, home) {
            (true, HomeAccess::NotNeeded) => "yes",
            _ => "read-only",
        };
        push("ProtectHome", protect_home);
        push("PrivateTmp", "yes");
        push("PrivateDevices", "yes");
        push("PrivateMounts", "yes");
        push("DevicePolicy", "closed");
        if strict {
            push("PrivateNetwork", "yes");
            push("IPAddressDeny", "any");
        }
        push("PrivateUsers", "yes");
        push("ProtectHostname", "yes");
        push("ProtectClock", "yes");
        push("ProtectKernelTunables", "yes");
        push("ProtectKernelModules", "yes");
        push("ProtectKernelLogs", "yes");
        push("ProtectControlGroups", "yes");
        push("ProtectProc", "invisible");
        if strict {
            push("ProcSubset", "pid");
        }
        push("CapabilityBoundingSet", "");
        push("AmbientCapabilities", "");
        push("KeyringMode", "private");
        push("RemoveIPC", "yes");
    }
    push("NoNewPrivileges", "yes");
    push("RestrictNamespaces", "yes");
    push("RestrictRealtime", "yes");
    push("RestrictSUIDSGID", "yes");
    push("LockPersonality", "yes");
    if strict {
        push("MemoryDenyWriteExecute", "yes");
        push("RestrictAddressFamilies", "AF_UNIX");
    } else {
        push(
            "RestrictAddressFamilies",
            "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        );
    }
    push("SystemCallArchitectures", "native");
    push("SystemCallFilter", "@system-service");
    if strict {
        push("SystemCallFilter", "~@privileged @resources");
    }
    push("SystemCallErrorNumber", "EPERM");
    push("UMask", if strict { "0077" } else { "0027" });
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(level: Level, user: bool) -> Vec<&'static str> {
        directives(level, user, HomeAccess::NotNeeded)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn off_is_empty() {
        assert!(directives(Level::Off, false, HomeAccess::ReadOnly).is_empty());
        assert!(directives(Level::Off, true, HomeAccess::NotNeeded).is_empty());
    }

    #[test]
    fn strict_has_no_network_standard_does() {
        let s = directives(Level::Strict, false, HomeAccess::NotNeeded);
        assert!(s.contains(&("PrivateNetwork", "yes".into())));
        assert!(s.contains(&("RestrictAddressFamilies", "AF_UNIX".into())));
        assert!(s.contains(&("ProtectHome", "yes".into())));
        let t = directives(Level::Standard, false, HomeAccess::NotNeeded);
        assert!(!keys(Level::Standard, false).contains(&"PrivateNetwork"));
        assert!(!keys(Level::Standard, false).contains(&"MemoryDenyWriteExecute"));
        assert!(t.contains(&("ProtectHome", "read-only".into())));
        assert!(t
            .iter()
            .any(|(k, v)| *k == "RestrictAddressFamilies" && v.contains("AF_INET6")));
    }

    #[test]
    fn home_access_relaxes_protect_home() {
        let s = directives(Level::Strict, false, HomeAccess::ReadOnly);
        assert!(s.contains(&("ProtectHome", "read-only".into())));
        assert!(s.contains(&("PrivateNetwork", "yes".into())));
    }

    #[test]
    fn user_manager_gets_only_unprivileged_directives() {
        for level in [Level::Strict, Level::Standard] {
            let k = keys(level, true);
            for needs_privilege in [
                "ProtectSystem",
                "ProtectHome",
                "PrivateTmp",
                "PrivateDevices",
                "PrivateNetwork",
                "PrivateUsers",
                "CapabilityBoundingSet",
                "IPAddressDeny",
                "ProtectKernelTunables",
                "ProtectClock",
            ] {
                assert!(!k.contains(&needs_privilege), "{level}: {needs_privilege}");
            }
            assert!(k.contains(&"NoNewPrivileges"));
            assert!(k.contains(&"SystemCallFilter"));
        }
    }

    #[test]
    fn under() {
        assert!(is_under("/home/a/b", "/home"));
        assert!(is_under("/home", "/home"));
        assert!(!is_under("/homes/a", "/home"));
        assert!(!is_under("/usr/home", "/home"));
    }
}
