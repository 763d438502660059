//! sd_notify messages (READY, STATUS, STOPPING, RELOADING, WATCHDOG); never fatal.
