//! The command line: the clap tree, global options, and dispatch to one file per verb.
//!
//! Each verb file exposes an `Args` struct (its clap definition) and
//! `exec(&Global, &Args) -> Result<u8>`, which returns the exit code on success.
//! The work lives in library modules; verb files only translate.

use clap::{Parser, Subcommand};

use crate::backend::{Backend, BackendChoice, ServiceManager};
use crate::error::Result;
use crate::fallback::PidfileManager;
use crate::systemd::SystemdManager;

pub mod completions;
pub mod control;
pub mod enable;
pub mod hosts;
pub mod info;
pub mod install;
pub mod logs;
pub mod man;
pub mod reload_wait;
pub mod run;
pub mod status;
pub mod uninstall;
pub mod unit;

/// mydaemon: make a program a first-class systemd service, or a proper daemon where
/// systemd is absent.
#[derive(Parser, Debug)]
#[command(name = "mydaemon", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every verb takes (listed after the verb's own).
    #[command(flatten, next_help_heading = "Global options")]
    pub global: Global,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every verb.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Service name; the unit is NAME.service (NAME@INSTANCE for template instances).
    #[arg(long, global = true, default_value = "mydaemon", value_name = "NAME")]
    pub name: String,
    /// Use the per-user service manager and ~/.config/systemd/user.
    #[arg(long, global = true)]
    pub user: bool,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Which service manager answers: systemd when it runs (auto), or the PID-file fallback.
    #[arg(long, global = true, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Other machines (`-H`), over ssh.
    #[command(flatten)]
    pub hosts: hosts::HostArgs,
}

impl Global {
    /// The unit file name, `NAME.service`.
    pub fn unit_name(&self) -> String {
        format!("{}.service", self.name)
    }

    /// The service and verbosity these options name, for the library (a usage error
    /// for a name that is not a valid unit name).
    pub fn target(&self) -> Result<crate::backend::Target> {
        Ok(crate::backend::Target {
            name: crate::unit::name::UnitName::new(self.name.clone())?,
            user: self.user,
            quiet: self.quiet,
            verbose: self.verbose,
        })
    }
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Be the service process: notify readiness, ping the watchdog, run the workload.
    Run(run::RunArgs),
    /// Write the service (systemd unit or init.d script), reload and enable it.
    Install(install::Args),
    /// Stop, disable and remove the installed service.
    Uninstall(uninstall::Args),
    /// Print the systemd unit that `install` would write.
    Unit(unit::Args),
    /// Start the service and wait until it is ready.
    Start(control::StartArgs),
    /// Stop the service and wait until it has stopped.
    Stop(control::JobArgs),
    /// Restart the service and wait until it is ready again.
    Restart(control::StartArgs),
    /// Ask the service to reload its configuration (SIGHUP).
    Reload(control::JobArgs),
    /// Send SIGHUP to PID and wait until the service has reloaded (ExecReload=).
    #[command(hide = true)]
    ReloadWait(reload_wait::Args),
    /// Show the service's state; exit 0 running, 3 not running, 4 unknown.
    Status(status::Args),
    /// Enable the service to start at boot (or login, with --user).
    Enable(enable::Args),
    /// Disable the service.
    Disable(enable::Args),
    /// Show the service's log.
    Logs(logs::Args),
    /// Print what this process knows of itself (PID, user, groups, cwd, ...).
    Info(info::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Print the man page (or write all of them into a directory).
    Man(man::Args),
}

/// The backend that answers: chosen once per command line, from `--backend` (or, for
/// `install`/`uninstall`/`enable`/`disable`, from what their own flags imply). The
/// options each backend keeps come with it.
pub fn manager(
    g: &Global,
    forced: Option<Backend>,
    systemd: SystemdManager,
    pidfile: impl FnOnce() -> PidfileManager,
) -> Box<dyn ServiceManager> {
    match forced.unwrap_or_else(|| Backend::resolve(g.backend)) {
        Backend::Systemd => Box::new(systemd),
        Backend::Pidfile => Box::new(pidfile()),
    }
}

/// Runs the parsed command line; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    // `run` is the service process: it installs its own logger (journald or stderr).
    if !matches!(cli.command, Command::Run(_)) {
        crate::logging::init_cli(g.quiet, g.verbose);
    }
    // Verbs that only print die quietly when their reader goes away (`| head`), as
    // every Unix filter does; Rust's ignored SIGPIPE would make `println!` panic.
    // (Not the verbs that start a daemon: it must outlive a closed pipe.)
    if matches!(
        cli.command,
        Command::Unit(_)
            | Command::Status(_)
            | Command::Logs(_)
            | Command::Info(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        let _ = crate::sys::default_disposition(nix::sys::signal::Signal::SIGPIPE);
    }
    if !matches!(
        cli.command,
        Command::Completions(_) | Command::Man(_) | Command::Info(_)
    ) {
        crate::unit::name::validate(&g.name)?;
    }
    if g.hosts.any()
        && !matches!(
            cli.command,
            Command::Install(_)
                | Command::Uninstall(_)
                | Command::Start(_)
                | Command::Stop(_)
                | Command::Restart(_)
                | Command::Reload(_)
                | Command::Status(_)
                | Command::Enable(_)
                | Command::Disable(_)
                | Command::Logs(_)
        )
    {
        return Err(crate::error::Error::usage(
            "-H/--hosts-file work with install, uninstall, start, stop, restart, reload, \
             status, enable, disable and logs",
        ));
    }
    match &cli.command {
        Command::Run(a) => run::exec(g, a),
        Command::Install(a) => install::exec(g, a),
        Command::Uninstall(a) => uninstall::exec(g, a),
        Command::Unit(a) => unit::exec(g, a),
        Command::Start(a) => control::start(g, a),
        Command::Stop(a) => control::stop(g, a),
        Command::Restart(a) => control::restart(g, a),
        Command::Reload(a) => control::reload(g, a),
        Command::ReloadWait(a) => reload_wait::exec(g, a),
        Command::Status(a) => status::exec(g, a),
        Command::Enable(a) => enable::enable(g, a),
        Command::Disable(a) => enable::disable(g, a),
        Command::Logs(a) => logs::exec(g, a),
        Command::Info(a) => info::exec(g, a),
        Command::Completions(a) => completions::exec(a),
        Command::Man(a) => man::exec(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{Probe, Readiness};
    use clap::CommandFactory;
    use std::ffi::OsString;
    use std::path::Path;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_verb_has_help() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
        }
    }

    #[test]
    fn run_argv_is_absolute_and_parses_back() {
        let cli = crate::cli::Cli::try_parse_from([
            "mydaemon",
            "-v",
            "--name",
            "svc",
            "start",
            "--ready",
            "unix:rel/sock",
            "--",
            "sh",
            "-c",
            "exit 0",
        ])
        .unwrap();
        let crate::cli::Command::Start(a) = &cli.command else {
            panic!("not start");
        };
        let argv = crate::fallback::run_argv(&cli.global.target().unwrap(), &a.run).unwrap();
        let again = crate::cli::Cli::try_parse_from(
            std::iter::once(OsString::from("mydaemon")).chain(argv.iter().cloned()),
        )
        .unwrap();
        assert_eq!(again.global.name, "svc");
        assert_eq!(again.global.verbose, 1);
        let crate::cli::Command::Run(r) = &again.command else {
            panic!("not run: {argv:?}");
        };
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            r.ready,
            Some(Readiness::Probe(Probe::Unix(cwd.join("rel/sock"))))
        );
        assert!(Path::new(&r.command[0]).is_absolute(), "{:?}", r.command);
        assert!(r.command[0].ends_with("/sh"));
        assert_eq!(r.command[1..], ["-c", "exit 0"]);
    }

    #[test]
    fn the_services_environment_cannot_redirect_the_script() {
        let cli = crate::cli::Cli::try_parse_from([
            "mydaemon",
            "--name",
            "svc",
            "install",
            "--sysv",
            "--exec-path",
            "/bin/echo",
            "--description",
            "Svc",
            "--env",
            "NAME=other",
            "--env",
            "MYDAEMON=/bin/false",
            "--",
            "sleep",
            "60",
        ])
        .unwrap();
        let crate::cli::Command::Install(a) = &cli.command else {
            panic!("not install");
        };
        let script =
            crate::fallback::sysv::Script::from_options(&cli.global.target().unwrap(), &a.unit)
                .unwrap();
        let text = script.render();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc");
        std::fs::write(&path, &text).unwrap();
        // `$MYDAEMON` is /bin/echo: the script prints what it would run.
        let out = std::process::Command::new("sh")
            .arg(&path)
            .arg("status")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "--name svc --backend pidfile status -n 0\n",
            "{text}"
        );
        // The header says how to make this very script again.
        let regen = text
            .lines()
            .find_map(|l| l.strip_prefix("# Regenerate with: "))
            .unwrap();
        let sleep = crate::unit::command::resolve_program("sleep").unwrap();
        assert_eq!(
            regen,
            format!(
                "mydaemon install --sysv --name svc --exec-path /bin/echo --description Svc \
                 --env NAME=other --env MYDAEMON=/bin/false -- {sleep} 60"
            )
        );

        let cli = crate::cli::Cli::try_parse_from([
            "mydaemon", "install", "--sysv", "--env", "IFS=x", "--", "sleep", "1",
        ])
        .unwrap();
        let crate::cli::Command::Install(a) = &cli.command else {
            panic!("not install");
        };
        let e = crate::fallback::sysv::Script::from_options(&cli.global.target().unwrap(), &a.unit)
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
    }
}
