//! `mydaemon info`: what this process knows of itself.

use std::path::PathBuf;

use nix::unistd::{
    getegid, geteuid, getgid, getgroups, getpid, getppid, getuid, Gid, Group, Uid, User,
};
use serde::Serialize;

use crate::cli::Global;
use crate::error::Result;

/// Options of `info`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A numeric id with its name, when the name resolves.
#[derive(Debug, Serialize)]
pub struct NamedId {
    /// The numeric id.
    pub id: u32,
    /// The user or group name, if the id has one.
    pub name: Option<String>,
}

/// The facts `info` prints.
#[derive(Debug, Serialize)]
pub struct ProcessInfo {
    /// This process.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Real user.
    pub uid: NamedId,
    /// Effective user.
    pub euid: NamedId,
    /// Real group.
    pub gid: NamedId,
    /// Effective group.
    pub egid: NamedId,
    /// Supplementary groups.
    pub groups: Vec<NamedId>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Executable path.
    pub exe: Option<PathBuf>,
}

fn user(uid: Uid) -> NamedId {
    NamedId {
        id: uid.as_raw(),
        name: User::from_uid(uid).ok().flatten().map(|u| u.name),
    }
}

fn group(gid: Gid) -> NamedId {
    NamedId {
        id: gid.as_raw(),
        name: Group::from_gid(gid).ok().flatten().map(|g| g.name),
    }
}

impl ProcessInfo {
    /// Reads the facts about the calling process.
    pub fn current() -> ProcessInfo {
        ProcessInfo {
            pid: getpid().as_raw(),
            ppid: getppid().as_raw(),
            uid: user(getuid()),
            euid: user(geteuid()),
            gid: group(getgid()),
            egid: group(getegid()),
            groups: getgroups()
                .unwrap_or_default()
                .into_iter()
                .map(group)
                .collect(),
            cwd: std::env::current_dir().ok(),
            exe: std::env::current_exe().ok(),
        }
    }
}

fn show(id: &NamedId) -> String {
    match &id.name {
        Some(n) => format!("{} ({n})", id.id),
        None => id.id.to_string(),
    }
}

fn show_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(unknown)".into())
}

/// Prints the facts.
pub fn exec(_g: &Global, a: &Args) -> Result<u8> {
    let info = ProcessInfo::current();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).expect("plain data serializes")
        );
        return Ok(0);
    }
    let groups: Vec<String> = info.groups.iter().map(show).collect();
    println!("pid:        {}", info.pid);
    println!("ppid:       {}", info.ppid);
    println!("uid:        {}", show(&info.uid));
    println!("euid:       {}", show(&info.euid));
    println!("gid:        {}", show(&info.gid));
    println!("egid:       {}", show(&info.egid));
    println!(
        "groups:     {}",
        if groups.is_empty() {
            "(none)".into()
        } else {
            groups.join(", ")
        }
    );
    println!("cwd:        {}", show_path(&info.cwd));
    println!("executable: {}", show_path(&info.exe));
    Ok(0)
}
