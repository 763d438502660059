//! Unit name validation.

use crate::error::{Error, Result};

/// Checks that `name` can be the stem of a `.service` unit name.
pub fn validate(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::usage("--name must not be empty"));
    }
    Ok(())
}
