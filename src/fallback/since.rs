//! `logs --since TIME` for the PID-file backend: journalctl's common time forms, and
//! the timestamps that start the daemon's log lines.
//!
//! Accepted, as `journalctl --since` reads them: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`,
//! `YYYY-MM-DD HH:MM:SS` (a `T` may replace the space) in local time, or in UTC with
//! a trailing `Z` or ` UTC`; `today`, `yesterday`, `now`; and a time before now,
//! `-1h30m` or `1h30m ago` (the units of `--interval`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::days_from_civil;

fn at_epoch_secs(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

use crate::sys::{local_epoch, local_today};

fn number<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]]`: the fields, or `None`.
fn date_time(s: &str) -> Option<(i64, u32, u32, u32, u32, u32)> {
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut ymd = date.split('-');
    let y: i64 = number(ymd.next()?, 4)?;
    let mo: u32 = number(ymd.next()?, 2)?;
    let d: u32 = number(ymd.next()?, 2)?;
    if ymd.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (h, mi, sec) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t = t.split_once('.').map_or(t, |(whole, _)| whole);
            let mut hms = t.split(':');
            let h: u32 = number(hms.next()?, 2)?;
            let mi: u32 = number(hms.next()?, 2)?;
            let sec: u32 = match hms.next() {
                Some(x) => number(x, 2)?,
                None => 0,
            };
            if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            (h, mi, sec)
        }
    };
    Some((y, mo, d, h, mi, sec))
}

/// Parses `--since` relative to `now`; the error says which forms are accepted.
pub fn parse(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let bad = || {
        format!(
            "--since {text:?}: not a time; use YYYY-MM-DD [HH:MM[:SS]] (local; add Z for UTC), \
             today, yesterday, now, or -DURATION / \"DURATION ago\" (e.g. -1h30m)"
        )
    };
    let t = text.trim();
    match t {
        "now" => return Ok(now),
        "today" | "yesterday" => {
            let (y, m, d) = local_today(now);
            // Day 0 is the last of the month before: mktime normalises it, and a day
            // with a daylight-saving change keeps its 23 or 25 hours.
            let d = if t == "yesterday" { d - 1 } else { d };
            let midnight = local_epoch(y, m, d, 0, 0, 0).ok_or_else(bad)?;
            return Ok(at_epoch_secs(midnight));
        }
        _ => {}
    }
    let relative = t
        .strip_prefix('-')
        .or_else(|| t.strip_suffix(" ago").map(str::trim_end));
    if let Some(d) = relative {
        let d = crate::time::parse_duration(d).map_err(|_| bad())?;
        return now.checked_sub(d).ok_or_else(bad);
    }
    let (body, utc) = match t.strip_suffix('Z').or_else(|| t.strip_suffix(" UTC")) {
        Some(b) => (b, true),
        None => (t, false),
    };
    let (y, mo, d, h, mi, s) = date_time(body).ok_or_else(bad)?;
    let secs = if utc {
        days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64
    } else {
        local_epoch(y, mo, d, h, mi, s).ok_or_else(bad)?
    };
    Ok(at_epoch_secs(secs))
}

/// The time a log line starts with (`2026-11-27T00:10:05.123Z ...`, as the daemon
/// writes them), or `None` for a line without one (output of the command itself).
pub fn line_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_once(' ').map_or(line, |(s, _)| s);
    let body = stamp.strip_suffix('Z')?;
    let (y, mo, d, h, mi, s) = date_time(body)?;
    let millis = body
        .split_once('.')
        .and_then(|(_, f)| number::<u64>(f, 3))
        .unwrap_or(0);
    let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64;
    Some(at_epoch_secs(secs) + Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> SystemTime {
        line_time(&format!("{s} x")).unwrap()
    }

    #[test]
    fn log_line_stamps_round_trip_with_the_writer() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_745_405_123);
        let stamp = crate::time::rfc3339(t);
        assert_eq!(
            line_time(&format!("{stamp} mydaemon[1]: info: hi")),
            Some(t)
        );
        assert_eq!(line_time("plain output of the command"), None);
        assert_eq!(line_time("2026-13-01T00:00:00.000Z x"), None);
        assert_eq!(
            utc("1970-01-02T00:00:01.500Z"),
            UNIX_EPOCH + Duration::from_millis(86_401_500)
        );
        assert_eq!(utc("2000-03-01T00:00:00.000Z"), at_epoch_secs(951_868_800));
    }

    #[test]
    fn since_forms() {
        let now = utc("2026-11-27T12:00:00.000Z");
        assert_eq!(parse("now", now), Ok(now));
        assert_eq!(parse("-1h30m", now), Ok(utc("2026-11-27T10:30:00.000Z")));
        assert_eq!(parse("10m ago", now), Ok(utc("2026-11-27T11:50:00.000Z")));
        assert_eq!(
            parse("2026-11-27 08:15Z", now),
            Ok(utc("2026-11-27T08:15:00.000Z"))
        );
        assert_eq!(
            parse("2026-11-27T08:15:30 UTC", now),
            Ok(utc("2026-11-27T08:15:30.000Z"))
        );
        // Local forms agree with the C library's idea of local time.
        let local = parse("2026-11-27 08:15:30", now).unwrap();
        assert_eq!(
            Some(local),
            local_epoch(2026, 11, 27, 8, 15, 30).map(at_epoch_secs)
        );
        let today = parse("today", now).unwrap();
        let yesterday = parse("yesterday", now).unwrap();
        assert!(
            today <= now && now.duration_since(today).unwrap() < Duration::from_secs(86_400 + 3600)
        );
        assert!(today.duration_since(yesterday).unwrap() >= Duration::from_secs(82_800));
        // Across a month's start.
        let first = utc("2026-12-01T12:00:00.000Z");
        assert_eq!(
            parse("yesterday", first).unwrap(),
            local_epoch(2026, 11, 30, 0, 0, 0)
                .map(at_epoch_secs)
                .unwrap()
        );
        for bad in [
            "",
            "soon",
            "2026-11-27 25:00",
            "27.11.2026",
            "-",
            "5 parsecs ago",
        ] {
            let e = parse(bad, now).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }
}
