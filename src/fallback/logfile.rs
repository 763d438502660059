//! `logs` for the PID-file backend: the last lines of `NAME.log`, and following it
//! (`-f`) across truncation and rotation, never through a symlink.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, SystemTime};

use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

use super::paths::{errno, Paths, SafeDir};
use super::since;
use crate::error::{Error, Result};

/// How often `logs -f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

fn open_log(paths: &Paths) -> Result<Option<(File, u64, u64)>> {
    let dir = match SafeDir::open(&paths.log_dir, None) {
        Ok(d) => d,
        Err(_) if !paths.log_dir.exists() => return Ok(None),
        Err(e) => return Err(e),
    };
    let name = paths.log_file.file_name().unwrap_or(OsStr::new("log"));
    // Never blocks (a FIFO planted there); only a regular file of ours is read.
    let Some(fd) = dir.open_regular(name, OFlag::O_RDONLY, 0)? else {
        return Ok(None);
    };
    let st = fstat(&fd).map_err(|e| errno("stat", &paths.log_file, e))?;
    let fd: OwnedFd = fd;
    Ok(Some((File::from(fd), st.st_ino, st.st_dev)))
}

/// The last `n` lines of `text` (without their newlines).
fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Reads backwards from the end of `f` until `n` lines are in hand.
fn tail_of(f: &mut File, n: usize) -> std::io::Result<(Vec<String>, u64)> {
    let end = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok((Vec::new(), end));
    }
    let mut start = end;
    let mut buf: Vec<u8> = Vec::new();
    while start > 0 {
        let step = start.min(64 * 1024);
        start -= step;
        f.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0u8; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        if buf.iter().filter(|&&b| b == b'\n').count() > n {
            break;
        }
    }
    Ok((last_lines(&String::from_utf8_lossy(&buf), n), end))
}

/// The last `n` lines of the log (empty when there is no log yet).
pub fn tail(paths: &Paths, n: usize) -> Result<Vec<String>> {
    let Some((mut f, _, _)) = open_log(paths)? else {
        return Ok(Vec::new());
    };
    tail_of(&mut f, n)
        .map(|(l, _)| l)
        .map_err(|e| Error::io("read", paths.log_file.display(), e))
}

/// The last `n` lines of what the log gained after byte `offset`.
pub fn since(paths: &Paths, offset: u64, n: usize) -> Result<Vec<String>> {
    let Some((mut f, _, _)) = open_log(paths)? else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_to_end(&mut buf))
        .map_err(|e| Error::io("read", paths.log_file.display(), e))?;
    Ok(last_lines(&String::from_utf8_lossy(&buf), n))
}

/// The last `n` lines of `f` written at or after `since` (a line without a timestamp
/// of its own, such as the command's output, belongs to the last stamped line above
/// it), and the end offset.
fn tail_since(f: &mut File, n: usize, since: SystemTime) -> std::io::Result<(Vec<String>, u64)> {
    f.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *f);
    let mut kept: VecDeque<String> = VecDeque::new();
    let mut in_range = false;
    let mut end = 0u64;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let got = reader.read_until(b'\n', &mut raw)?;
        if got == 0 {
            break;
        }
        end += got as u64;
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches('\n');
        if let Some(t) = since::line_time(line) {
            in_range = t >= since;
        }
        if in_range && n > 0 {
            if kept.len() == n {
                kept.pop_front();
            }
            kept.push_back(line.to_owned());
        }
    }
    Ok((kept.into(), end))
}

/// Prints the last `n` lines (only those since `since`, if given); with `follow`,
/// keeps printing what is appended (a truncated or replaced log is reopened from its
/// start) until interrupted.
pub fn show(paths: &Paths, n: usize, follow: bool, since: Option<SystemTime>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut current = open_log(paths)?;
    let mut pos = 0;
    match current.as_mut() {
        None => {
            if !follow {
                eprintln!("-- no log yet: {} --", paths.log_file.display());
                return Ok(());
            }
        }
        Some((f, _, _)) => {
            let (lines, end) = match since {
                Some(t) => tail_since(f, n, t),
                None => tail_of(f, n),
            }
            .map_err(|e| Error::io("read", paths.log_file.display(), e))?;
            for l in lines {
                if writeln!(out, "{l}").is_err() {
                    return Ok(()); // the reader went away (a pager closed)
                }
            }
            pos = end;
        }
    }
    if !follow {
        return Ok(());
    }
    let _ = out.flush();
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        // Rotated or recreated: read the new file from its start.
        if let Some((_, ino, dev)) = &current {
            let replaced = match std::fs::symlink_metadata(&paths.log_file) {
                Ok(m) => {
                    use std::os::unix::fs::MetadataExt;
                    m.ino() != *ino || m.dev() != *dev
                }
                Err(_) => false,
            };
            if replaced {
                current = None;
            }
        }
        if current.is_none() {
            current = open_log(paths)?;
            pos = 0;
        }
        let Some((f, _, _)) = current.as_mut() else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(pos);
        if len < pos {
            pos = 0; // truncated
        }
        if len == pos {
            continue;
        }
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
            pos += buf.len() as u64;
            if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reads_across_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let mut text = String::new();
        for i in 0..20000 {
            text.push_str(&format!("line {i}\n"));
        }
        f.write_all(text.as_bytes()).unwrap();
        let (lines, end) = tail_of(&mut f, 3).unwrap();
        assert_eq!(lines, ["line 19997", "line 19998", "line 19999"]);
        assert_eq!(end, text.len() as u64);
        let (all, _) = tail_of(&mut f, 100_000).unwrap();
        assert_eq!(all.len(), 20000);
        assert!(tail_of(&mut f, 0).unwrap().0.is_empty());
    }

    #[test]
    fn since_keeps_stamped_lines_and_the_output_under_them() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(
            b"2026-11-27T10:00:00.000Z md[1]: info: old\n\
              command output, old\n\
              2026-11-27T11:00:00.000Z md[1]: info: new\n\
              command output, new\n\
              2026-11-27T12:00:00.000Z md[1]: info: newest\n",
        )
        .unwrap();
        let since = since::line_time("2026-11-27T10:30:00.000Z").unwrap();
        let (lines, end) = tail_since(&mut f, 50, since).unwrap();
        assert_eq!(
            lines,
            [
                "2026-11-27T11:00:00.000Z md[1]: info: new",
                "command output, new",
                "2026-11-27T12:00:00.000Z md[1]: info: newest"
            ]
        );
        assert_eq!(end, f.metadata().unwrap().len());
        let (last, _) = tail_since(&mut f, 1, since).unwrap();
        assert_eq!(last, ["2026-11-27T12:00:00.000Z md[1]: info: newest"]);
        let (none, _) = tail_since(
            &mut f,
            50,
            since::line_time("2027-01-01T00:00:00.000Z").unwrap(),
        )
        .unwrap();
        assert!(none.is_empty());
    }
}
