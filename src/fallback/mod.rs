//! Without systemd: daemonize with a locked PID file, supervise, and the init.d script.
