//! systemd units as pure data: the model, its rendering, quoting, name checks and
//! hardening levels. Nothing here does I/O.

pub mod name;
