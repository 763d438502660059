//! Start, stop, restart and reload as systemd jobs, waited for without a race.
//!
//! The order is what makes it race-free: the `JobRemoved` match is registered (and, on a
//! bus, `Subscribe` called) *before* the call that queues the job, so the signal cannot
//! slip past between the reply and the wait; then the signal whose job path is the one the
//! call returned is the result. No polling: the wait is on the connection's message stream.
//! A start of a `Type=notify` service finishes when the service sends `READY=1` (that is
//! when systemd removes the start job), so `start` returns only then.

use futures_lite::StreamExt;
use zbus::{MatchRule, MessageStream, OwnedObjectPath};

use super::connection::{Route, Systemd};
use super::errors::from_zbus;
use super::manager::{manager, DESTINATION, MANAGER_INTERFACE, MANAGER_PATH};
use crate::error::Error;

/// The four job verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `StartUnit`.
    Start,
    /// `StopUnit`.
    Stop,
    /// `RestartUnit`.
    Restart,
    /// `ReloadUnit`.
    Reload,
}

impl Verb {
    /// The verb as the user typed it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Reload => "reload",
        }
    }
    /// "starting", "stopping", ...
    pub fn progressive(self) -> &'static str {
        match self {
            Verb::Start => "starting",
            Verb::Stop => "stopping",
            Verb::Restart => "restarting",
            Verb::Reload => "reloading",
        }
    }
}

/// How a job ended: systemd's `JobRemoved` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// `done`: it worked.
    Done,
    /// `--no-block`: queued, not waited for.
    Queued,
    /// Anything else: `failed`, `timeout`, `dependency`, `canceled`, `skipped`, ...
    Failed(String),
}

impl JobResult {
    /// The job result in words.
    pub fn describe(result: &str) -> &'static str {
        match result {
            "failed" => "the job failed",
            "timeout" => "the job timed out",
            "dependency" => "a unit it depends on failed",
            "canceled" => "the job was canceled (another job replaced it)",
            "skipped" => "the job was skipped (the unit was not active)",
            "invalid" => "the job is not applicable to this unit",
            "assert" => "an Assert= condition of the unit failed",
            "unsupported" => "the unit type does not support this job",
            "collected" => "the unit was garbage-collected before the job ran",
            "once" => "the unit may only be started once",
            _ => "the job did not complete",
        }
    }
}

/// The match rule for the Manager's `JobRemoved` signal. On a bus it names systemd as
/// the sender, so that the bus drops a forged signal from another client (job paths are
/// no secret: `JobNew` announces them); on the private socket only systemd speaks, and
/// its messages carry no usable sender (see [`super::private_socket`]).
fn job_removed_rule(route: &Route) -> MatchRule<'static> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(MANAGER_INTERFACE)
        .member("JobRemoved")
        .path(MANAGER_PATH);
    if route.is_bus() {
        rule.sender(DESTINATION)
    } else {
        rule
    }
    .build()
    .expect("the JobRemoved match rule is valid")
}

/// Queues `verb` for `unit` and (unless `no_block`) waits for the job's result.
pub fn run(sd: &Systemd, verb: Verb, unit: &str, no_block: bool) -> Result<JobResult, Error> {
    zbus::block_on(run_async(sd, verb, unit, no_block))
}

/// Async form of [`run`].
pub async fn run_async(
    sd: &Systemd,
    verb: Verb,
    unit: &str,
    no_block: bool,
) -> Result<JobResult, Error> {
    let what = format!("{} {unit}", verb.progressive());
    let fail = |e: zbus::Error| from_zbus(e, &what, unit, sd.scope);
    let mgr = manager(&sd.conn).await.map_err(fail)?;
    let mut stream = if no_block {
        None
    } else {
        let stream = MessageStream::for_match_rule(job_removed_rule(&sd.route), &sd.conn, None)
            .await
            .map_err(fail)?;
        if sd.route.is_bus() {
            mgr.subscribe().await.map_err(fail)?;
        }
        Some(stream)
    };
    let job: OwnedObjectPath = match verb {
        Verb::Start => mgr.start_unit(unit, "replace").await,
        Verb::Stop => mgr.stop_unit(unit, "replace").await,
        Verb::Restart => mgr.restart_unit(unit, "replace").await,
        Verb::Reload => mgr.reload_unit(unit, "replace").await,
    }
    .map_err(fail)?;
    log::debug!("{what}: job {}", job.as_str());
    let Some(stream) = stream.as_mut() else {
        return Ok(JobResult::Queued);
    };
    wait_job(stream, job.as_str())
        .await
        .map_err(|e| e.context(&what))
}

/// Waits on `stream` (a `JobRemoved` match registered before the job was queued) for the
/// removal of `job`; returns its result.
pub async fn wait_job(stream: &mut MessageStream, job: &str) -> Result<JobResult, Error> {
    while let Some(msg) = stream.next().await {
        let msg =
            msg.map_err(|e| Error::generic(format!("lost the connection to systemd: {e}")))?;
        let body = msg.body();
        let Ok((_id, path, _unit, result)) =
            body.deserialize::<(u32, zbus::ObjectPath<'_>, &str, &str)>()
        else {
            continue;
        };
        if path.as_str() == job {
            return Ok(if result == "done" {
                JobResult::Done
            } else {
                JobResult::Failed(result.to_string())
            });
        }
    }
    Err(Error::generic(
        "systemd closed the connection before the job finished",
    ))
}
