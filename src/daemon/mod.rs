//! The service process: run loop, signals, watchdog timer, exec mode, readiness and
//! health probes.
