//! Start, stop, restart and reload as systemd jobs, waited for without a race.
//!
//! The order is what makes it race-free: the `JobRemoved` match is registered (and, on a
//! bus, `Subscribe` called) *before* the call that queues the job, so the signal cannot
//! slip past between the reply and the wait; then the signal whose job path is the one the
//! call returned is the result. No polling: the wait is on the connection's message stream.
//! A start of a `Type=notify` service finishes when the service sends `READY=1` (that is
//! when systemd removes the start job), so `start` returns only then.
//!
//! On a private socket (root, `--user`) the same happens in one blocking exchange
//! ([`run_direct`]): systemd sends its signals there to every client unasked, so there is
//! nothing to register; the call and the wait share one write and one read loop.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use futures_lite::StreamExt;
use zbus::{MatchRule, MessageStream, OwnedObjectPath, OwnedVariant};

use super::connection::{Route, Scope, Systemd, METHOD_TIMEOUT};
use super::direct::{Exchange, Incoming, Properties};
use super::errors::{from_name, from_zbus, invocation};
use super::manager::{manager, unit_path, DESTINATION, MANAGER_INTERFACE, MANAGER_PATH};
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
    /// The Manager method that queues the job.
    pub fn method(self) -> &'static str {
        match self {
            Verb::Start => "StartUnit",
            Verb::Stop => "StopUnit",
            Verb::Restart => "RestartUnit",
            Verb::Reload => "ReloadUnit",
        }
    }
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
    match &sd.route {
        Route::Ssh(r) => wait_job_alive(sd, stream, job.as_str(), r.ssh.connect_timeout).await,
        _ => wait_job(stream, job.as_str()).await,
    }
    .map_err(|e| e.context(&what))
}

/// [`wait_job`] over ssh: a job may take as long as it takes, but the far end must stay
/// alive. ssh's keep-alives notice a host that is gone, not one whose bridge or bus
/// stopped forwarding while its sshd still answers; so every `every` without a message,
/// systemd there is pinged, and a ping not answered within `every` ends the wait.
async fn wait_job_alive(
    sd: &Systemd,
    stream: &mut MessageStream,
    job: &str,
    every: Duration,
) -> Result<JobResult, Error> {
    loop {
        let quiet =
            futures_lite::future::or(async { Some(wait_job(&mut *stream, job).await) }, async {
                async_io::Timer::after(every).await;
                None
            })
            .await;
        if let Some(r) = quiet {
            return r;
        }
        let ping = sd.conn.call_method(
            Some(DESTINATION),
            MANAGER_PATH,
            Some("org.freedesktop.DBus.Peer"),
            "Ping",
            &(),
        );
        let answered = futures_lite::future::or(async { Some(ping.await) }, async {
            async_io::Timer::after(every).await;
            None
        })
        .await;
        match answered {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(Error::generic(format!(
                    "lost the connection to systemd there while waiting for the job ({e})"
                )))
            }
            None => {
                return Err(Error::generic(format!(
                    "systemd there stopped answering while waiting for the job (no reply to a ping within {} s); the job may still finish there",
                    every.as_secs()
                ))
                .with_hint("check the host (`systemctl -H HOST list-jobs`); raise --connect-timeout for slow links"))
            }
        }
    }
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

/// Another unit's properties to read along with a job (`stop` looks at the socket unit
/// beside the service): the unit, and its calls as [`super::direct::units_properties`]
/// takes them.
pub type AlsoRead<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

/// What [`run_direct`] got: the job's result and, when asked, the other unit's properties
/// (`None` when they could not be read).
#[derive(Debug)]
pub struct Outcome {
    /// The job's result.
    pub result: JobResult,
    /// The properties of [`AlsoRead`]'s unit.
    pub also: Option<HashMap<String, OwnedVariant>>,
}

/// [`run`] over the private socket at `socket`, in one blocking exchange with no executor
/// and no thread ([`super::direct`]): the authentication, the call that queues the job
/// and `also`'s property calls go out in one write; then the replies and the job's
/// `JobRemoved` are read as they come. On its private socket systemd sends its signals
/// to every connection unasked (sd-bus `bus_foreach_bus`, from the moment the
/// authentication is done, so before it reads the call), hence no match rule and no
/// `Subscribe`. A `JobRemoved` that came before the call's reply is kept until the reply
/// names the job. The wait for the job has no time limit of ours: systemd's own
/// (`TimeoutStartSec=`...) ends it.
///
/// The outer `Err`: systemd did not take the connection (no socket, authentication
/// refused or unanswered); nothing was queued, another route may be tried. The inner
/// one: the job failed to queue, or the connection broke while waiting.
pub fn run_direct(
    socket: &Path,
    scope: Scope,
    verb: Verb,
    unit: &str,
    no_block: bool,
    also: Option<AlsoRead<'_>>,
) -> io::Result<Result<Outcome, Error>> {
    let mut calls = vec![zbus::Message::method_call(MANAGER_PATH, verb.method())
        .destination(DESTINATION)
        .interface(MANAGER_INTERFACE)
        .build(&(unit, "replace"))
        .map_err(io::Error::other)?];
    if let Some((other, props)) = also {
        let path = unit_path(other);
        for p in props {
            calls.push(super::direct::properties_call(&path, *p)?);
        }
    }
    let mut ex = Exchange::open(socket, &calls, METHOD_TIMEOUT)?;
    log::debug!("{} {unit} through {}", verb.progressive(), socket.display());
    let serials = ex.serials().to_vec();
    Ok(wait_direct(
        &mut ex, &serials, scope, verb, unit, no_block, also,
    ))
}

/// What [`wait_direct`] reads: an [`Exchange`] (or, in the tests, captured messages).
trait Inbox {
    /// The next message.
    fn next(&mut self) -> io::Result<Incoming>;
    /// From now on, wait for messages as long as it takes.
    fn wait_forever(&mut self) -> io::Result<()>;
}

impl Inbox for Exchange {
    fn next(&mut self) -> io::Result<Incoming> {
        Exchange::next(self)
    }
    fn wait_forever(&mut self) -> io::Result<()> {
        self.set_read_timeout(None)
    }
}

/// The reading half of [`run_direct`]: `serials` are those of the job's call and then
/// of `also`'s calls.
fn wait_direct(
    ex: &mut impl Inbox,
    serials: &[u32],
    scope: Scope,
    verb: Verb,
    unit: &str,
    no_block: bool,
    also: Option<AlsoRead<'_>>,
) -> Result<Outcome, Error> {
    let what = format!("{} {unit}", verb.progressive());
    let lost =
        |e: io::Error| Error::generic(format!("{what}: lost the connection to systemd: {e}"));
    let call = serials[0];
    let mut props = also.map(|(_, p)| (Properties::new(&serials[1..]), p));
    let mut job: Option<String> = None;
    // JobRemoved (path, result) seen before the reply named our job.
    let mut removed: Vec<(String, String)> = Vec::new();
    let mut result = None;
    loop {
        if let Some(job) = &job {
            if result.is_none() {
                result = if no_block {
                    Some(JobResult::Queued)
                } else {
                    removed.iter().find(|(p, _)| p == job).map(|(_, r)| {
                        if r == "done" {
                            JobResult::Done
                        } else {
                            JobResult::Failed(r.clone())
                        }
                    })
                };
            }
            if result.is_some() && props.as_ref().is_none_or(|(p, _)| p.complete()) {
                break;
            }
        }
        let msg = ex.next().map_err(lost)?;
        if msg.reply_serial == Some(call) && msg.is_reply() {
            if msg.is_error() {
                let (name, desc) = msg.error();
                return Err(from_name(
                    &name,
                    &desc,
                    &what,
                    unit,
                    &invocation(scope, unit),
                ));
            }
            let path = msg.body::<OwnedObjectPath>().map_err(|e| {
                Error::generic(format!("{what}: systemd's answer could not be read: {e}"))
            })?;
            log::debug!("{what}: job {}", path.as_str());
            job = Some(path.as_str().to_owned());
            if !no_block {
                ex.wait_forever().map_err(lost)?;
            }
        } else if msg.is_signal(MANAGER_PATH, MANAGER_INTERFACE, "JobRemoved") {
            if let Ok((_id, path, _unit, r)) = msg.body::<(u32, OwnedObjectPath, String, String)>()
            {
                if job.as_deref().is_none_or(|j| j == path.as_str()) {
                    removed.push((path.as_str().to_owned(), r));
                }
            }
        } else if let Some((p, list)) = props.as_mut() {
            p.take(&msg, list);
        }
    }
    Ok(Outcome {
        result: result.expect("the loop ends with a result"),
        also: props.and_then(|(p, _)| p.outcome().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::systemd::direct::tests::unhex;

    /// The reply to `StartUnit("mydaemon.service", "replace")` (serial 1) as systemd 252
    /// sent it on /run/systemd/private: fields REPLY_SERIAL, SENDER, SIGNATURE "o"; the job
    /// is /org/freedesktop/systemd1/job/17775.
    const START_REPLY: &str = concat!(
        "6c020101280000000500000037000000050175000100000007017300180000006f72672e66726565",
        "6465736b746f702e73797374656d6431000000000000000008016700016f0000230000002f6f7267",
        "2f667265656465736b746f702f73797374656d64312f6a6f622f313737373500",
    );
    /// The `JobRemoved` of that job (result `done`) as systemd 252 sent it next.
    const JOB_REMOVED: &str = concat!(
        "6c0401014d0000000f000000a200000001016f00190000002f6f72672f667265656465736b746f70",
        "2f73797374656d64310000000000000002017300200000006f72672e667265656465736b746f702e",
        "73797374656d64312e4d616e616765720000000000000000030173000a0000004a6f6252656d6f76",
        "656400000000000007017300180000006f72672e667265656465736b746f702e73797374656d6431",
        "00000000000000000801670004756f7373000000000000006f450000230000002f6f72672f667265",
        "656465736b746f702f73797374656d64312f6a6f622f313737373500100000006d796461656d6f6e",
        "2e736572766963650000000004000000646f6e6500",
    );

    /// Messages in a row, then the end of the stream.
    struct Captured(std::collections::VecDeque<Vec<u8>>, bool);

    impl Inbox for Captured {
        fn next(&mut self) -> io::Result<Incoming> {
            let msg = self.0.pop_front().ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "end of the captured stream")
            })?;
            Ok(Incoming::parse(msg).expect("a message"))
        }
        fn wait_forever(&mut self) -> io::Result<()> {
            self.1 = true;
            Ok(())
        }
    }

    fn wait(msgs: Vec<Vec<u8>>, serials: &[u32], no_block: bool) -> Result<Outcome, Error> {
        let mut inbox = Captured(msgs.into(), false);
        wait_direct(
            &mut inbox,
            serials,
            Scope::System,
            Verb::Start,
            "mydaemon.service",
            no_block,
            None,
        )
    }

    fn job_removed(job: &str, result: &str) -> Vec<u8> {
        zbus::Message::signal(MANAGER_PATH, MANAGER_INTERFACE, "JobRemoved")
            .build(&(
                7u32,
                zbus::ObjectPath::try_from(job).unwrap(),
                "x.service",
                result,
            ))
            .unwrap()
            .data()
            .bytes()
            .to_vec()
    }

    #[test]
    fn the_reply_then_the_job_removed_is_done() {
        let out = wait(vec![unhex(START_REPLY), unhex(JOB_REMOVED)], &[1], false).unwrap();
        assert_eq!(out.result, JobResult::Done);
    }

    #[test]
    fn a_job_removed_before_the_reply_is_not_missed() {
        let other = job_removed("/org/freedesktop/systemd1/job/9", "failed");
        let msgs = vec![other, unhex(JOB_REMOVED), unhex(START_REPLY)];
        assert_eq!(wait(msgs, &[1], false).unwrap().result, JobResult::Done);
    }

    #[test]
    fn another_jobs_result_is_not_ours() {
        let other = job_removed("/org/freedesktop/systemd1/job/9", "failed");
        let mine = job_removed("/org/freedesktop/systemd1/job/17775", "timeout");
        let msgs = vec![unhex(START_REPLY), other.clone(), mine];
        assert_eq!(
            wait(msgs, &[1], false).unwrap().result,
            JobResult::Failed("timeout".into())
        );
        // The stream ends before our job does: the connection was lost, in words.
        let err = wait(vec![unhex(START_REPLY), other], &[1], false).unwrap_err();
        assert!(
            err.message()
                .starts_with("starting mydaemon.service: lost the connection to systemd"),
            "{err}"
        );
    }

    #[test]
    fn no_block_returns_at_the_reply_and_keeps_the_time_limit() {
        let mut inbox = Captured(vec![unhex(START_REPLY)].into(), false);
        let out = wait_direct(
            &mut inbox,
            &[1],
            Scope::System,
            Verb::Start,
            "mydaemon.service",
            true,
            None,
        )
        .unwrap();
        assert_eq!((out.result, inbox.1), (JobResult::Queued, false));
    }

    #[test]
    fn an_error_reply_is_the_error_in_words() {
        let call = zbus::Message::method_call(MANAGER_PATH, "StartUnit")
            .build(&("nope.service", "replace"))
            .unwrap();
        let serial = call.primary_header().serial_num().get();
        let err = zbus::Message::error(&call.header(), "org.freedesktop.systemd1.NoSuchUnit")
            .build(&("Unit nope.service not found.",))
            .unwrap();
        let e = wait(vec![err.data().bytes().to_vec()], &[serial], false).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::NotInstalled, "{e}");
        assert!(e.message().contains("is not installed"), "{e}");
    }

    #[test]
    fn the_other_units_properties_come_along() {
        // Serial 2: the captured reply above answers serial 1.
        let get = zbus::Message::method_call("/u", "Get")
            .serial(2.try_into().unwrap())
            .build(&())
            .unwrap();
        let reply = zbus::Message::method_return(&get.header())
            .build(&zbus::Variant::from("active"))
            .unwrap();
        let serial = get.primary_header().serial_num().get();
        let props = [("org.freedesktop.systemd1.Unit", Some("ActiveState"))];
        let mut inbox = Captured(
            vec![
                unhex(START_REPLY),
                reply.data().bytes().to_vec(),
                unhex(JOB_REMOVED),
            ]
            .into(),
            false,
        );
        let out = wait_direct(
            &mut inbox,
            &[1, serial],
            Scope::System,
            Verb::Stop,
            "mydaemon.service",
            false,
            Some(("mydaemon.socket", &props)),
        )
        .unwrap();
        assert_eq!(out.result, JobResult::Done);
        assert!(inbox.1, "no time limit while the job runs");
        let also = out.also.expect("the properties");
        assert_eq!(&*also["ActiveState"], &zbus::Variant::from("active"));
    }
}
