//! Quoting for systemd unit files, so that every value comes back from systemd's own
//! parser byte for byte.
//!
//! systemd reads a unit line by line (`\n`, `\r` and NUL end a line; a line ending in an
//! odd number of backslashes continues on the next one), then each setting parses its
//! value its own way:
//!
//! - **Command lines** (`ExecStart=`, systemd.service(5) "Command lines"): the value is
//!   split into words by `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`: double
//!   or single quotes group a word, and C escapes (`\\`, `\"`, `\n`, `\t`, `\xNN`, ...)
//!   are decoded inside and outside quotes. Each word then has its `%` specifiers
//!   expanded (`%%` is a literal `%`), and when the command is executed, `$NAME`,
//!   `${NAME}` are replaced by environment variables (`$$` is a literal `$`). An
//!   unquoted `;` word separates commands. A prefix (`-@+!:`) is only read on the first
//!   word, which this crate always makes an absolute path (starting with `/`).
//! - **`Environment=`**: split into words the same way (quotes, C escapes), `%`
//!   specifiers expanded; `$` is *not* special.
//! - **Single-line values** (`Description=`, paths): no quotes, no escapes; only `%`
//!   specifiers. Leading and trailing whitespace is stripped by the parser.
//!
//! So [`exec_arg`] double-quotes any word that is not plain, escapes `\` and `"`, writes
//! every control character as a C escape (so no value can end the line or add a
//! directive), doubles `%` and `$`. NUL cannot be represented anywhere and is refused.

use crate::error::{Error, Result};

/// Characters that never need quoting in a command-line word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:,+=@^".contains(c)
}

/// Writes `c` into `out` the way a double-quoted systemd word needs it.
fn push_escaped(out: &mut String, c: char, double_dollar: bool) {
    match c {
        '\\' => out.push_str("\\\\"),
        '"' => out.push_str("\\\""),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '%' => out.push_str("%%"),
        '$' if double_dollar => out.push_str("$$"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c => out.push(c),
    }
}

/// True for code points systemd's `unichar_is_valid()` rejects although they are valid
/// UTF-8: the noncharacters U+FDD0..U+FDEF and U+xFFFE/U+xFFFF. systemd drops
/// environment assignments and D-Bus strings holding them.
fn is_systemd_invalid(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
}

/// Refuses what no systemd setting can hold: NUL, and Unicode noncharacters.
fn refuse_unrepresentable(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::usage(format!(
            "{what} contains a NUL byte, which a systemd unit cannot represent"
        ))
        .with_hint("remove the NUL byte from the value"));
    }
    if let Some(c) = s.chars().find(|&c| is_systemd_invalid(c)) {
        return Err(Error::usage(format!(
            "{what} contains the Unicode noncharacter U+{:04X}, which systemd refuses",
            c as u32
        ))
        .with_hint("remove it from the value"));
    }
    Ok(())
}

/// Quotes one word of a command line (`ExecStart=`): systemd's parser, specifier
/// expansion and `$` substitution turn the result back into exactly `arg`.
///
/// Refuses NUL. Plain words (letters, digits, `-_./:,+=@^`) are written as they are.
pub fn exec_arg(arg: &str) -> Result<String> {
    refuse_unrepresentable("a command argument", arg)?;
    if !arg.is_empty() && arg.chars().all(is_plain) {
        return Ok(arg.to_string());
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        push_escaped(&mut out, c, true);
    }
    out.push('"');
    Ok(out)
}

/// Renders a whole command line: the executable (absolute path) and its arguments.
///
/// The executable must be an absolute path that systemd accepts as a program path: no
/// quotes, backslashes, `$` or control characters (systemd refuses those in the path,
/// or would substitute variables in `argv[0]` only).
pub fn exec_line(executable: &str, args: &[String]) -> Result<String> {
    check_program_path(executable)?;
    let mut line = exec_arg(executable)?;
    for a in args {
        line.push(' ');
        line.push_str(&exec_arg(a)?);
    }
    Ok(line)
}

/// Checks a program path for `ExecStart=`: absolute, normalized, and free of the
/// characters systemd refuses in a program path.
pub fn check_program_path(path: &str) -> Result<()> {
    refuse_unrepresentable("the program path", path)?;
    if !path.starts_with('/') {
        return Err(Error::usage(format!(
            "program path `{path}` is not absolute"
        )));
    }
    if let Some(c) = path
        .chars()
        .find(|&c| (c as u32) < 0x20 || c as u32 == 0x7f || "\"'\\$".contains(c))
    {
        return Err(Error::usage(format!(
            "program path {path:?} contains {c:?}, which systemd does not accept in an executable path"
        ))
        .with_hint("move or link the program to a path without quotes, backslashes, `$` or control characters"));
    }
    if path.ends_with('/') || path.split('/').any(|c| c == "." || c == "..") || path.contains("//")
    {
        return Err(Error::usage(format!(
            "program path `{path}` is not a normalized file path"
        )));
    }
    Ok(())
}

/// Checks an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, as systemd requires.
pub fn check_env_key(key: &str) -> Result<()> {
    let mut chars = key.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if !ok {
        return Err(
            Error::usage(format!("invalid environment variable name {key:?}")).with_hint(
                "a name is letters, digits and `_`, not starting with a digit: --env KEY=VALUE",
            ),
        );
    }
    Ok(())
}

/// Renders the value of one `Environment=` assignment, `"KEY=VALUE"` quoted so that
/// systemd's parser gives back exactly `KEY=VALUE` (`%` doubled, `$` left alone: it is
/// not substituted in `Environment=`).
pub fn env_assignment(key: &str, value: &str) -> Result<String> {
    check_env_key(key)?;
    refuse_unrepresentable(&format!("the value of environment variable {key}"), value)?;
    let mut out = String::with_capacity(key.len() + value.len() + 3);
    out.push('"');
    out.push_str(key);
    out.push('=');
    for c in value.chars() {
        push_escaped(&mut out, c, false);
    }
    out.push('"');
    Ok(out)
}

/// Renders a single-line value that systemd takes verbatim except for `%` specifiers
/// (`Description=`): refuses what would end the line, continue it, or be stripped.
pub fn single_line(field: &str, value: &str) -> Result<String> {
    refuse_unrepresentable(field, value)?;
    if let Some(c) = value
        .chars()
        .find(|&c| (c as u32) < 0x20 || c as u32 == 0x7f)
    {
        return Err(
            Error::usage(format!("{field} must be a single line: it contains {c:?}"))
                .with_hint("remove newlines and other control characters"),
        );
    }
    if value.ends_with('\\') {
        return Err(Error::usage(format!(
            "{field} must not end with a backslash: systemd would join it with the next line"
        )));
    }
    if value.is_empty() {
        return Err(Error::usage(format!("{field} must not be empty")));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(Error::usage(format!(
            "{field} must not start or end with a space: systemd strips it"
        )));
    }
    Ok(value.replace('%', "%%"))
}

/// Renders an absolute path setting taken verbatim except for `%` specifiers
/// (`WorkingDirectory=`, `EnvironmentFile=`).
pub fn path_value(field: &str, path: &str) -> Result<String> {
    let v = single_line(field, path)?;
    if !path.starts_with('/') {
        return Err(Error::usage(format!(
            "{field} `{path}` is not an absolute path"
        )));
    }
    if path.split('/').any(|c| c == "." || c == "..") {
        return Err(Error::usage(format!(
            "{field} `{path}` contains `.` or `..`: give a normalized absolute path"
        )));
    }
    Ok(v)
}

/// Characters a shell word may hold unquoted (in any POSIX shell, and in bash and zsh;
/// not `^`, a glob operator in zsh with `EXTENDED_GLOB`).
fn is_shell_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:,+=@%".contains(c)
}

/// Quotes a word for a POSIX shell script (`/bin/sh`, dash included): plain words as
/// they are, others in single quotes (`'` written as `'\''`); a newline stays inside
/// the quotes, so the word may span lines.
pub fn posix_shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_shell_plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// Quotes a word for the shell on one line (the "Regenerate:" comment, log lines): as
/// [`posix_shell_word`], but words with control characters in bash's `$'...'` (also
/// zsh, ksh, POSIX.1-2024) so the line stays one line.
pub fn shell_word(word: &str) -> String {
    if word.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    posix_shell_word(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of systemd's parser for one double-quoted or plain word followed by
    /// specifier and `$` expansion, used to check round trips without systemd
    /// (the box test checks against the real parser).
    fn parse_exec_word(s: &str, dollars: bool) -> String {
        let mut out = Vec::<u8>::new();
        let b = s.as_bytes();
        let mut i = 0;
        let quoted = b.first() == Some(&b'"');
        if quoted {
            assert_eq!(b.last(), Some(&b'"'));
            i = 1;
        }
        let end = if quoted { b.len() - 1 } else { b.len() };
        while i < end {
            let c = b[i];
            if c == b'\\' {
                let n = b[i + 1];
                i += 2;
                match n {
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'x' => {
                        let h = std::str::from_utf8(&b[i..i + 2]).unwrap();
                        out.push(u8::from_str_radix(h, 16).unwrap());
                        i += 2;
                    }
                    _ => panic!("unknown escape"),
                }
            } else {
                assert!(quoted || c != b'"', "unescaped quote");
                assert!(c >= 0x20 && c != 0x7f, "raw control character");
                out.push(c);
                i += 1;
            }
        }
        let s = String::from_utf8(out).unwrap();
        let s = s.replace("%%", "\u{0}");
        assert!(!s.contains('%'), "lone % would be a specifier");
        let s = s.replace('\u{0}', "%");
        if dollars {
            // Every `$` must be doubled.
            let t = s.replace("$$", "\u{0}");
            assert!(!t.contains('$'), "lone $ would be substituted");
            t.replace('\u{0}', "$")
        } else {
            s
        }
    }

    const HARD: &[&str] = &[
        "",
        " ",
        "a b",
        "\"",
        "'",
        "\\",
        "\\\\",
        "\\\"",
        "%",
        "%%",
        "%n",
        "$",
        "$$",
        "$HOME",
        "${HOME}",
        "$$HOME",
        "\t",
        "\n",
        "\r",
        "\x01\x1b\x7f",
        "\n[Service]\nExecStartPre=/bin/rm -rf /",
        ";",
        "\\;",
        "-",
        "@x",
        "+x",
        "!!x",
        ":x",
        "#comment",
        "ünïcødé ✓ 😀",
        "\u{2028}\u{85}",
        "a\\",
        "trailing\\\\",
    ];

    #[test]
    fn exec_args_round_trip() {
        for h in HARD {
            let q = exec_arg(h).unwrap();
            assert!(!q.contains('\n') && !q.contains('\r'), "{q:?}");
            assert_eq!(parse_exec_word(&q, true), *h, "quoted as {q}");
        }
    }

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(exec_arg("--name").unwrap(), "--name");
        assert_eq!(exec_arg("/usr/bin/x").unwrap(), "/usr/bin/x");
        assert_eq!(exec_arg("a b").unwrap(), "\"a b\"");
        assert_eq!(exec_arg("").unwrap(), "\"\"");
        assert_eq!(exec_arg(";").unwrap(), "\";\"");
        assert_eq!(exec_arg("50%").unwrap(), "\"50%%\"");
        assert_eq!(exec_arg("$HOME").unwrap(), "\"$$HOME\"");
        assert_eq!(exec_arg("a\"b").unwrap(), "\"a\\\"b\"");
        assert_eq!(exec_arg("\x1b").unwrap(), "\"\\x1b\"");
    }

    #[test]
    fn nul_is_refused() {
        let e = exec_arg("a\0b").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("NUL"));
        assert!(env_assignment("K", "\0").is_err());
        assert!(single_line("Description=", "\0").is_err());
        for nonchar in [
            "\u{fffe}",
            "\u{ffff}",
            "\u{fdd0}",
            "\u{10ffff}",
            "\u{1fffe}",
        ] {
            let e = exec_arg(nonchar).unwrap_err();
            assert!(e.message().contains("noncharacter"), "{e}");
            assert!(env_assignment("K", nonchar).is_err());
        }
        exec_arg("\u{fdcf}\u{fdf0}\u{fffd}").unwrap();
    }

    #[test]
    fn env_round_trip_keeps_dollar() {
        for h in HARD {
            let q = env_assignment("KEY", h).unwrap();
            assert!(!q.contains('\n') && !q.contains('\r'), "{q:?}");
            assert_eq!(
                parse_exec_word(&q, false),
                format!("KEY={h}"),
                "quoted as {q}"
            );
        }
        assert_eq!(env_assignment("A", "$x 5%").unwrap(), "\"A=$x 5%%\"");
    }

    #[test]
    fn env_keys_are_checked() {
        for ok in ["A", "_", "a_1", "PATH"] {
            check_env_key(ok).unwrap();
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "Ä", "A\n"] {
            let e = check_env_key(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains("letters, digits"));
        }
    }

    #[test]
    fn single_line_refuses_injection() {
        assert_eq!(single_line("D", "a 100% b").unwrap(), "a 100%% b");
        assert_eq!(single_line("D", "ü \"q\" 'x'").unwrap(), "ü \"q\" 'x'");
        for bad in [
            "a\nb",
            "x\n[Service]\nExecStart=/bin/sh",
            "a\rb",
            "tab\there",
            "ends\\",
            " lead",
            "trail ",
        ] {
            let e = single_line("Description=", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let e = single_line("Description=", "a\nb").unwrap_err();
        assert!(e.message().contains("single line"), "{e}");
    }

    #[test]
    fn program_paths() {
        check_program_path("/usr/bin/x").unwrap();
        check_program_path("/opt/my app/x").unwrap();
        for bad in [
            "x", "bin/x", "/a/\"b", "/a/'b", "/a\\b", "/a$b", "/a\nb", "/a/../b", "/a//b", "/a/",
        ] {
            assert!(check_program_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            exec_line("/opt/my app/x", &["50%".into()]).unwrap(),
            "\"/opt/my app/x\" \"50%%\""
        );
    }

    #[test]
    fn paths() {
        assert_eq!(path_value("W", "/srv/a%b").unwrap(), "/srv/a%%b");
        assert!(path_value("W", "srv").is_err());
        assert!(path_value("W", "/srv/../etc").is_err());
        assert!(path_value("W", "/srv\n").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("--name"), "--name");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("a\nb"), "$'a\\nb'");
        assert_eq!(shell_word(""), "''");
        assert!(!shell_word("\r\u{85}").contains(['\r', '\u{85}']));
        assert_eq!(shell_word("50%"), "50%");
        assert_eq!(shell_word("^x"), "'^x'");
        assert_eq!(posix_shell_word("a\nb"), "'a\nb'");
        assert_eq!(posix_shell_word("it's"), "'it'\\''s'");
    }
}
