//! Time, shared by the daemon, the fallback and `status`: durations on the command line
//! ("500ms", "10s", "1m30s"), human-readable uptimes, RFC 3339 timestamps, and the
//! civil-calendar conversions behind them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a duration: a sequence of NUMBER UNIT pairs (`1m30s`, `500ms`, `1.5s`), units
/// `us`, `ms`, `s`/`sec`, `m`/`min`, `h`, `d`; a bare number is seconds, as in systemd.
///
/// The result is rounded to the nearest microsecond (systemd's resolution, and the
/// finest unit [`format_duration`] writes), so every value parsed is written back
/// exactly; a duration that is not zero but would round to zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = parse_exact(text)?;
    let micros = d.as_nanos().saturating_add(500) / 1000;
    if micros == 0 && !d.is_zero() {
        return Err(format!(
            "{text:?}: less than a microsecond, which would round to zero (the resolution is 1us)"
        ));
    }
    within_max(
        Duration::from_micros(micros.min(u64::MAX as u128) as u64),
        text,
    )
}

fn parse_exact(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, text);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: missing unit after the last number"))?;
        if num_len == 0 {
            return Err(format!("{text:?}: expected a number at {rest:?}"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{text:?}: bad number {:?}", &rest[..num_len]))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "us" | "usec" => 1e-6,
            "ms" | "msec" => 1e-3,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use us, ms, s, m, h or d)"
                ))
            }
        };
        total += secs_to_duration(number * scale, text)?;
        rest = rest[unit_len..].trim_start();
    }
    within_max(total, text)
}

/// The longest duration accepted: a deadline this far ahead still fits an `Instant`,
/// and nothing a service waits for is longer.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

fn within_max(d: Duration, text: &str) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!("{text:?}: too long (at most 100 years)"));
    }
    Ok(d)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?}: out of range"))
        .and_then(|d| within_max(d, text))
}

/// A clap value parser for durations that must not be zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(d)
}

/// A length of time for people, as `systemctl status` shows it: `1h 2min`, `450ms`,
/// `2d 3h` (the two largest units; for status output, "… ago", "up …"). For a form
/// that [`parse_duration`] reads back, see [`format_duration`].
pub fn format_span(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let parts = [
        (s / 86_400, "d"),
        (s % 86_400 / 3600, "h"),
        (s % 3600 / 60, "min"),
        (s % 60, "s"),
    ];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The duration in a form `parse_duration` reads back (`1m30s`, `500ms`, `1500us`):
/// exact for whole microseconds (anything [`parse_duration`] returns); finer parts are
/// dropped.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if !us.is_multiple_of(1000) || us == 0 {
        return format!("{us}us");
    }
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-11-27T00:10:05.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86400) as i64);
    let tod = secs % 86400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_a_century_are_refused() {
        for text in ["1e19", "1e10", "36600d", "99999999999h"] {
            let e = parse_duration(text).unwrap_err();
            assert!(
                e.contains("too long") || e.contains("out of range"),
                "{text}: {e}"
            );
        }
        assert_eq!(
            parse_duration("36000d"),
            Ok(Duration::from_secs(36_000 * 86_400))
        );
        // A deadline at the maximum fits an Instant.
        let _ = std::time::Instant::now() + MAX_DURATION;
    }

    #[test]
    fn parses_units_and_combinations() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("1m", Duration::from_secs(60)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("2h", Duration::from_secs(7200)),
            ("1d", Duration::from_secs(86400)),
            ("250us", Duration::from_micros(250)),
            ("30", Duration::from_secs(30)),
            ("0.25", Duration::from_millis(250)),
            (" 5 min ", Duration::from_secs(300)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10x", "1m30", "-1s", "ms10", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn format_round_trips() {
        for ms in [1, 500, 1000, 1500, 60_000, 90_000, 3_600_000, 93_784_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn sub_microsecond_durations_are_refused_not_rounded_to_zero() {
        for text in ["0.0000001", "0.0000004s", "0.0004ms", "0.4us"] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains("round to zero"), "{text}: {e}");
            assert!(parse_positive_duration(text).is_err(), "{text}");
        }
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.0000005"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("1.1"), Ok(Duration::from_millis(1100)));
        assert_eq!(parse_duration("0.3s"), Ok(Duration::from_millis(300)));
    }

    #[test]
    fn every_parsed_duration_is_written_back_exactly() {
        let texts = [
            "0.0000015",
            "1.5ms",
            "1500us",
            "1.0000005s",
            "0.1",
            "0.3",
            "1.1",
            "2.675",
            "1m0.000001s",
            "59.999999",
            "1d1us",
            "7.25h",
            "0.000999s",
            "36000d",
        ];
        for text in texts {
            let d = parse_duration(text).unwrap();
            let written = format_duration(d);
            assert_eq!(parse_duration(&written), Ok(d), "{text} -> {written}");
        }
        for us in [
            1u64,
            999,
            1001,
            1500,
            999_999,
            1_000_001,
            90_000_500,
            86_400_000_001,
        ] {
            let d = Duration::from_micros(us);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{us}us");
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
    }

    #[test]
    fn spans_show_the_two_largest_units() {
        assert_eq!(format_span(Duration::from_millis(450)), "450ms");
        assert_eq!(format_span(Duration::from_secs(3723)), "1h 2min");
        assert_eq!(format_span(Duration::from_secs(59)), "59s");
        assert_eq!(format_span(Duration::from_secs(7 * 60 + 5)), "7min 5s");
        assert_eq!(format_span(Duration::from_secs(86_400 + 5)), "1d");
        assert_eq!(
            format_span(Duration::from_secs(2 * 86400 + 4 * 3600)),
            "2d 4h"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_738_205_123);
        assert_eq!(rfc3339(t), "2026-11-27T00:10:05.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }
}
