//! Unit name validation, following systemd's `unit_name_is_valid()`.
//!
//! A unit name is `PREFIX[@INSTANCE].TYPE`, at most 255 bytes. The prefix uses
//! `[A-Za-z0-9:_.\-\\]` and is not empty; the instance may also contain `@` and must not
//! be empty when the `@` is there (a bare `NAME@` is a template, which cannot run).

use crate::error::{Error, Result};

/// Longest unit name systemd accepts, in bytes (`UNIT_NAME_MAX - 1`).
pub const UNIT_NAME_MAX: usize = 255;

/// Unit type suffixes accepted in `--after`/`--wants`.
pub const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

const ALLOWED: &str = "letters, digits and `:_.-\\`, with `@INSTANCE` for template instances";

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":-_.\\".contains(c)
}

/// Checks a name without its type suffix. `what` names the option in errors.
fn check_stem(what: &str, stem: &str, suffix_len: usize) -> Result<()> {
    if stem.is_empty() {
        return Err(Error::usage(format!("{what} must not be empty")));
    }
    if stem.len() + suffix_len > UNIT_NAME_MAX {
        return Err(Error::usage(format!(
            "{what} is too long: {} bytes; a unit name is at most {UNIT_NAME_MAX} bytes including its suffix",
            stem.len() + suffix_len
        )));
    }
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    let bad = |c: char| {
        Error::usage(format!(
            "{what} `{stem}` contains {c:?}; allowed: {ALLOWED}"
        ))
    };
    if let Some(c) = prefix.chars().find(|&c| !valid_char(c)) {
        return Err(bad(c));
    }
    if prefix.is_empty() {
        return Err(Error::usage(format!(
            "{what} `{stem}` has nothing before `@`; allowed: {ALLOWED}"
        )));
    }
    if let Some(instance) = instance {
        if let Some(c) = instance.chars().find(|&c| !valid_char(c) && c != '@') {
            return Err(bad(c));
        }
        if instance.is_empty() {
            return Err(Error::usage(format!(
                "{what} `{stem}` is a bare template: a template cannot be installed or run by itself"
            ))
            .with_hint(format!("name an instance of it, e.g. `{stem}main`")));
        }
    }
    Ok(())
}

/// Checks that `name` can be the stem of a `.service` unit name (`--name`).
pub fn validate(name: &str) -> Result<()> {
    if let Some(stem) = name.strip_suffix(".service") {
        return Err(
            Error::usage(format!("--name `{name}` includes the .service suffix"))
                .with_hint(format!("give the name without it: --name {stem}")),
        );
    }
    check_stem("--name", name, ".service".len())
}

/// Checks a full unit name such as `network-online.target` (`--after`, `--wants`).
pub fn validate_unit(what: &str, unit: &str) -> Result<()> {
    let Some((stem, suffix)) = unit.rsplit_once('.') else {
        return Err(
            Error::usage(format!("{what} `{unit}` has no unit type suffix")).with_hint(
                "give a full unit name, e.g. network-online.target or postgresql.service",
            ),
        );
    };
    if !UNIT_TYPES.contains(&suffix) {
        return Err(Error::usage(format!(
            "{what} `{unit}`: `.{suffix}` is not a unit type; one of: {}",
            UNIT_TYPES.join(", ")
        )));
    }
    check_stem(what, stem, suffix.len() + 1)
}

/// A service name that passed [`validate`]; the unit is `NAME.service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UnitName(String);

impl UnitName {
    /// Checks `name` ([`validate`]) and keeps it.
    pub fn new(name: impl Into<String>) -> Result<UnitName> {
        let name = name.into();
        validate(&name)?;
        Ok(UnitName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unit file name, `NAME.service`.
    pub fn unit_file(&self) -> String {
        format!("{}.service", self.0)
    }
}

impl std::ops::Deref for UnitName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UnitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UnitName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for UnitName {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

impl From<UnitName> for String {
    fn from(n: UnitName) -> String {
        n.0
    }
}

impl From<UnitName> for std::ffi::OsString {
    fn from(n: UnitName) -> std::ffi::OsString {
        n.0.into()
    }
}

impl PartialEq<&str> for UnitName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for n in [
            "mydaemon",
            "a",
            "web-1",
            "foo_bar.baz",
            "x:y",
            "sys\\x2dfoo",
            "getty@tty1",
            "a@b@c",
            "A9",
        ] {
            validate(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        let longest = "a".repeat(UNIT_NAME_MAX - ".service".len());
        validate(&longest).unwrap();
    }

    #[test]
    fn bad_names_say_what_is_allowed() {
        for n in [
            "a b", "a/b", "a%b", "ü", "a\nb", "a$b", "a;b", "a\"b", "a'b", "@x",
        ] {
            let e = validate(n).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{n:?}");
            let text = e.to_string();
            assert!(
                text.contains("allowed: letters, digits") || text.contains("nothing before"),
                "{n:?}: {text}"
            );
        }
    }

    #[test]
    fn empty_too_long_template_and_suffix() {
        assert!(validate("").unwrap_err().message().contains("empty"));
        let long = "a".repeat(UNIT_NAME_MAX - ".service".len() + 1);
        assert!(validate(&long).unwrap_err().message().contains("too long"));
        let e = validate("getty@").unwrap_err();
        assert!(e.message().contains("template"), "{e}");
        assert!(e.to_string().contains("getty@main"), "{e}");
        let e = validate("foo.service").unwrap_err();
        assert!(e.to_string().contains("--name foo"), "{e}");
    }

    #[test]
    fn full_unit_names() {
        for u in ["network-online.target", "postgresql.service", "a@b.socket"] {
            validate_unit("--after", u).unwrap();
        }
        for u in [
            "network",
            "foo.bar",
            "a b.service",
            "x@.service",
            ".service",
        ] {
            let e = validate_unit("--after", u).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{u}");
            assert!(e.message().starts_with("--after"), "{e}");
        }
    }
}
