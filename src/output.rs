//! Where the verbs print: stdout and stderr, or, in a fan-out over many hosts, the same
//! with the host before every line (`web1: ● mydaemon.service ...`). The fan-out sets the
//! prefix for the thread that works on a host ([`with_prefix`]); the verbs print through
//! `outln!` and `errln!` and need not know. Each call
//! writes whole lines under the stream's lock, so hosts never interleave within a line.

use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static PREFIX: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with every line printed through this module prefixed by `prefix: `.
pub fn with_prefix<R>(prefix: Option<String>, f: impl FnOnce() -> R) -> R {
    let old = PREFIX.with(|p| p.replace(prefix));
    let r = f();
    PREFIX.with(|p| *p.borrow_mut() = old);
    r
}

/// `text` with the prefix before each line (each line ends with a newline).
fn prefixed(text: &str) -> String {
    PREFIX.with(|p| match &*p.borrow() {
        None => {
            let mut s = text.to_owned();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        Some(pre) => text.lines().map(|l| format!("{pre}: {l}\n")).collect(),
    })
}

/// Prints `text` (one or more lines) on stdout. A closed stdout is ignored (the verbs
/// that print much make SIGPIPE end the process, as filters do).
pub fn out(text: &str) {
    let _ = try_out(text);
}

/// [`out`], telling whether stdout is still open (`logs` stops when its reader went away).
pub fn try_out(text: &str) -> std::io::Result<()> {
    let s = prefixed(text);
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes()).and_then(|()| o.flush())
}

/// Prints `text` (one or more lines) on stderr.
pub fn err(text: &str) {
    let s = prefixed(text);
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Prints one line on stdout as it is, never prefixed (a JSON line names its host).
pub fn raw(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}").and_then(|()| o.flush());
}

/// `println!` through [`out`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::out(&format!($($arg)*)) };
}
pub(crate) use outln;

/// `eprintln!` through [`err`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::err(&format!($($arg)*)) };
}
pub(crate) use errln;

/// `s` with its control characters, tab and newline aside, as `\xNN`: text from a
/// service or another machine (journal lines, status text, descriptions) cannot move the
/// cursor, rewrite the screen, or with a lone CR hide the host prefix of its line.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' && c != '\n' {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_the_host() {
        assert_eq!(prefixed("a\nb"), "a\nb\n");
        let s = with_prefix(Some("web1".into()), || prefixed("a\nb\n"));
        assert_eq!(s, "web1: a\nweb1: b\n");
        // Restored afterwards.
        assert_eq!(prefixed("c\n"), "c\n");
    }
}
