//! The service spec from its settings: [`UnitOptions`] (shared by `unit`, `install`
//! and `install --sysv`) become a [`ServiceSpec`] ([`build_spec`]), resolving programs
//! on disk and checking the service can reach them; rendering itself is pure
//! ([`ServiceSpec::render`]).

use crate::daemon::options::RunArgs;
use crate::error::{Error, Result};
pub use crate::unit::Scope;
use crate::unit::{command, quote, HomeAccess, Level, Restart, ServiceSpec, DEFAULT_WATCHDOG};

/// The service a verb acts on, and how much it says: what the library takes instead of
/// the command line's global options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Service name; the unit is `NAME.service`.
    pub name: crate::unit::name::UnitName,
    /// The per-user service manager rather than the system one.
    pub user: bool,
    /// Print only errors.
    pub quiet: bool,
    /// More output (repeated: debug); passed on to a daemon the verb starts.
    pub verbose: u8,
}

impl Target {
    /// The unit file name, `NAME.service`.
    pub fn unit_name(&self) -> String {
        self.name.unit_file()
    }

    /// The service manager it is under.
    pub fn scope(&self) -> Scope {
        Scope::from_user(self.user)
    }
}

/// Unit settings, shared by `unit` and `install`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UnitOptions {
    /// Description= of the unit (one line) [default: "NAME (mydaemon built-in
    /// workload)", or "NAME (CMD under mydaemon)"].
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Run the service as this user [default: a dynamic user, DynamicUser=yes].
    #[arg(long, value_name = "USER")]
    pub exec_user: Option<String>,
    /// Run the service with this group [default: the user's primary group].
    #[arg(long, value_name = "GROUP")]
    pub exec_group: Option<String>,
    /// Set an environment variable for the service (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from this file when the service starts (repeatable).
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_file: Vec<String>,
    /// Working directory of the service [default: /, as systemd has it].
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Watchdog timeout, a duration (30s, 500ms, 1m; a bare number is seconds); 0
    /// disables the watchdog.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_watchdog)]
    pub watchdog_sec: std::time::Duration,
    /// When systemd restarts the service.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Restart::OnFailure)]
    pub restart: Restart,
    /// Start after this unit, e.g. network-online.target (repeatable).
    #[arg(long, value_name = "UNIT")]
    pub after: Vec<String>,
    /// Also start this unit, e.g. network-online.target (repeatable).
    #[arg(long, value_name = "UNIT")]
    pub wants: Vec<String>,
    /// Sandboxing level [default: strict for the built-in workload, standard with -- CMD].
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub hardening: Option<Level>,
    /// Path of the mydaemon binary to put in ExecStart= (default: this binary), for
    /// packaging when the binary is installed elsewhere.
    #[arg(long, value_name = "PATH", hide = true)]
    pub exec_path: Option<String>,
    /// What `mydaemon run` does in the service: the built-in workload's options, or
    /// `-- CMD ARGS` with its readiness and health options. They go into `ExecStart=`.
    #[command(
        flatten,
        next_help_heading = "Service process (passed to `mydaemon run`)"
    )]
    pub run: RunArgs,
}

/// `--watchdog-sec`: a duration; zero disables it; systemd counts in microseconds.
fn parse_watchdog(text: &str) -> std::result::Result<std::time::Duration, String> {
    let d = crate::time::parse_duration(text)?;
    if !d.is_zero() && d.as_micros() == 0 {
        return Err(format!("{text:?}: shorter than systemd's resolution (1us)"));
    }
    Ok(std::time::Duration::from_micros(d.as_micros() as u64))
}

/// Splits `KEY=VALUE` (`--env`), checking the key.
pub fn parse_env(s: &str) -> Result<(String, String)> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(
            Error::usage(format!("--env {s:?} has no `=`")).with_hint("write --env KEY=VALUE")
        );
    };
    quote::check_env_key(k)?;
    Ok((k.to_string(), v.to_string()))
}

fn absolute(opt: &str, p: &str) -> Result<String> {
    if p.is_empty() {
        return Err(Error::usage(format!("{opt} is empty")));
    }
    let abs = command::absolute(opt, std::path::Path::new(p))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::usage(format!("{opt} {p}: not valid UTF-8")))
}

/// The mydaemon binary the service runs: `--exec-path` (checked), else this one.
pub fn exec_path(o: &UnitOptions) -> Result<String> {
    match &o.exec_path {
        Some(p) => {
            quote::check_program_path(p).map_err(|e| e.context("--exec-path"))?;
            Ok(p.clone())
        }
        None => command::own_executable(),
    }
}

/// Builds the unit model from the command line: resolves this binary and `-- CMD`,
/// checks the service can reach them, and records the arguments that regenerate it.
pub fn build_spec(g: &Target, o: &UnitOptions) -> Result<ServiceSpec> {
    build_spec_for(g, o, true)
}

/// [`build_spec`] for a unit that runs on this machine (`here`), or on another one
/// (`install -H`): there `-- CMD` must be an absolute path, taken as it is (it is
/// checked on that machine, not looked up or checked here), and nothing is checked
/// against this machine's files.
pub fn build_spec_for(g: &Target, o: &UnitOptions, here: bool) -> Result<ServiceSpec> {
    let exec_path = exec_path(o)?;
    let mut spec = ServiceSpec::new(g.name.clone(), exec_path);
    spec.user_manager = g.user;
    spec.description = o.description.clone();
    spec.exec_user = o.exec_user.clone();
    spec.exec_group = o.exec_group.clone();
    spec.env = o.env.iter().map(|e| parse_env(e)).collect::<Result<_>>()?;
    spec.env_files = o
        .env_file
        .iter()
        .map(|f| absolute("--env-file", f))
        .collect::<Result<_>>()?;
    for f in spec.env_files.iter().filter(|_| here) {
        if !std::path::Path::new(f).exists() {
            log::warn!(
                "--env-file {f} does not exist yet; the service will not start until it does"
            );
        }
    }
    spec.working_dir = o
        .working_dir
        .as_deref()
        .map(|w| absolute("--working-dir", w))
        .transpose()?;
    spec.watchdog = o.watchdog_sec;
    spec.restart = o.restart;
    spec.after = o.after.clone();
    spec.wants = o.wants.clone();
    spec.run_options = run_options(&o.run)?;
    spec.listen = o.run.listen.clone();
    if let Some((cmd, args)) = o.run.command.split_first() {
        let program = if here {
            command::resolve_program(cmd)?
        } else if cmd.starts_with('/') {
            quote::check_program_path(cmd)?;
            cmd.clone()
        } else {
            return Err(Error::usage(format!(
                "-H: the command `{cmd}` is not looked up here; give its absolute path there"
            ))
            .with_hint(format!("e.g. `-- /usr/bin/{cmd}`")));
        };
        let mut c = vec![program];
        c.extend(args.iter().cloned());
        spec.command = c;
    }
    spec.hardening = o.hardening.unwrap_or(if spec.command.is_empty() {
        Level::Strict
    } else {
        Level::Standard
    });
    if !spec.user_manager && spec.hardening != Level::Off {
        let mut paths = vec![spec.exec_path.as_str()];
        paths.extend(spec.command.first().map(String::as_str));
        paths.extend(spec.working_dir.as_deref());
        spec.home = command::home_access(&paths);
        if spec.home == HomeAccess::ReadOnly && spec.hardening == Level::Strict {
            log::warn!(
                "the program or working directory is under /home, /root or /run/user: \
                 using ProtectHome=read-only instead of ProtectHome=yes"
            );
        }
    }
    if here && !spec.user_manager && spec.exec_user.is_none() {
        command::check_reachable_by_others(&spec.exec_path)?;
        if let Some(c) = spec.command.first() {
            command::check_reachable_by_others(c)?;
        }
    }
    spec.regenerate = regenerate_args(
        g,
        o,
        "unit",
        &Resolved {
            env_files: &spec.env_files,
            working_dir: spec.working_dir.as_deref(),
            run_options: &spec.run_options,
            command: &spec.command,
        },
    );
    spec.validate()?;
    Ok(spec)
}

/// The `mydaemon run` options of `r` as arguments, without the command: `--config`
/// made absolute, every value checked to be representable.
pub fn run_options(r: &RunArgs) -> Result<Vec<String>> {
    r.check()?;
    let mut opts = RunArgs {
        command: Vec::new(),
        ..r.clone()
    };
    if let Some(c) = &opts.config {
        let c = c
            .to_str()
            .ok_or_else(|| Error::usage("--config: not valid UTF-8"))?;
        opts.config = Some(absolute("--config", c)?.into());
    }
    opts.to_args()
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::usage(format!("{a:?}: not valid UTF-8")))
        })
        .collect()
}

/// Checks that a unit installed on this very system could start: its program exists
/// and is executable, and `--exec-user`/`--exec-group` name an existing user and group.
/// (`unit` and `install --root` skip this: their unit may be for another machine.)
pub fn check_runnable_here(spec: &ServiceSpec) -> Result<()> {
    use nix::unistd::{Group, User};
    use std::os::unix::fs::PermissionsExt;
    let exec_ok = std::fs::metadata(&spec.exec_path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !exec_ok {
        return Err(Error::not_installed(format!(
            "{} is not an executable file here, so the service could not start",
            spec.exec_path
        ))
        .with_hint("install the binary there first (make install), or drop --exec-path"));
    }
    let numeric = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if let Some(u) = &spec.exec_user {
        if !numeric(u) && !matches!(User::from_name(u), Ok(Some(_))) {
            return Err(Error::usage(format!(
                "--exec-user {u}: no such user on this system"
            ))
            .with_hint(format!("create it first (useradd --system {u}), or leave out --exec-user for a dynamic user")));
        }
    }
    if let Some(gr) = &spec.exec_group {
        if !numeric(gr) && !matches!(Group::from_name(gr), Ok(Some(_))) {
            return Err(
                Error::usage(format!("--exec-group {gr}: no such group on this system"))
                    .with_hint(format!("create it first (groupadd --system {gr})")),
            );
        }
    }
    Ok(())
}

/// Values of [`UnitOptions`] as the generator resolved them (absolute paths, the
/// command's program found in `$PATH`), for [`regenerate_args`].
pub struct Resolved<'a> {
    /// `--env-file` paths.
    pub env_files: &'a [String],
    /// `--working-dir`.
    pub working_dir: Option<&'a str>,
    /// The `run` options ([`run_options`]).
    pub run_options: &'a [String],
    /// `-- CMD ARGS`.
    pub command: &'a [String],
}

/// The `mydaemon` arguments, after the global ones and starting with `verb` (`unit`,
/// `install --sysv`), that produce the same file again (non-default options only).
pub fn regenerate_args(g: &Target, o: &UnitOptions, verb: &str, r: &Resolved) -> Vec<String> {
    let mut a: Vec<String> = verb.split(' ').map(str::to_owned).collect();
    let mut opt = |k: &str, v: &str| {
        a.push(k.to_string());
        a.push(v.to_string());
    };
    if g.name != "mydaemon" {
        opt("--name", &g.name);
    }
    if let Some(p) = &o.exec_path {
        opt("--exec-path", p);
    }
    if let Some(d) = &o.description {
        opt("--description", d);
    }
    if let Some(u) = &o.exec_user {
        opt("--exec-user", u);
    }
    if let Some(u) = &o.exec_group {
        opt("--exec-group", u);
    }
    for e in &o.env {
        opt("--env", e);
    }
    for f in r.env_files {
        opt("--env-file", f);
    }
    if let Some(w) = r.working_dir {
        opt("--working-dir", w);
    }
    if o.watchdog_sec != DEFAULT_WATCHDOG {
        opt(
            "--watchdog-sec",
            &crate::unit::systemd_timespan(o.watchdog_sec),
        );
    }
    if o.restart != Restart::OnFailure {
        opt("--restart", o.restart.as_str());
    }
    for u in &o.after {
        opt("--after", u);
    }
    for u in &o.wants {
        opt("--wants", u);
    }
    if let Some(h) = o.hardening {
        opt("--hardening", h.as_str());
    }
    if g.user {
        a.insert(1, "--user".into());
    }
    a.extend(r.run_options.iter().cloned());
    if !r.command.is_empty() {
        a.push("--".into());
        a.extend(r.command.iter().cloned());
    }
    a
}
