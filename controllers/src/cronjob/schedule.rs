//! Cron schedules as CronJobs write them: five fields (minute, hour, day of
//! month, month, day of week) with `*`, `?`, ranges, steps, lists and month
//! and weekday names, or one of the `@yearly`… `@hourly` shorthands; the
//! times they name are computed in a time zone.
//!
//! The semantics follow the standard cron parser upstream uses: when either
//! the day-of-month or the day-of-week field starts with `*` (or `?`) a day
//! must match both, otherwise it matches if either field matches; a field
//! written `*/n` with n > 1 counts as restricted.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("failed to parse {field} field {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// One field's bounds and names.
struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    /// Either day field was a star: days must match both fields.
    day_star: bool,
}

/// Searching further than this finds nothing (e.g. "0 0 30 2 *").
const SEARCH_YEARS: i16 = 5;

impl Schedule {
    pub fn parse(spec: &str) -> Result<Self, ParseError> {
        let spec = spec.trim();
        if let Some(descriptor) = spec.strip_prefix('@') {
            let expanded = match descriptor.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(ParseError::Descriptor(spec.to_string())),
            };
            return Self::parse(expanded);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(ParseError::FieldCount(fields.len(), spec.to_string()));
        };
        let (minutes, _) = field(minute, &MINUTE)?;
        let (hours, _) = field(hour, &HOUR)?;
        let (dom, dom_star) = field(dom, &DOM)?;
        let (months, _) = field(month, &MONTH)?;
        let (dow, dow_star) = field(dow, &DOW)?;
        Ok(Self {
            minutes,
            hours,
            dom,
            months,
            dow,
            day_star: dom_star || dow_star,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        if !bit(self.months, date.month()) {
            return false;
        }
        let dom = bit(self.dom, date.day());
        let dow = bit(self.dow, date.weekday().to_sunday_zero_offset());
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after`, in `tz`; `None` if
    /// the schedule names no time in the next five years.
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        // The first whole minute after `after`, in local time.
        let start = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let mut date = start.date();
        let last = date.checked_add((SEARCH_YEARS as i32 * 366).days()).ok()?;
        while date <= last {
            if self.day_matches(date) {
                for hour in bits(self.hours) {
                    for minute in bits(self.minutes) {
                        let Ok(at) = DateTime::new(
                            date.year(),
                            date.month(),
                            date.day(),
                            i8::try_from(hour).ok()?,
                            i8::try_from(minute).ok()?,
                            0,
                            0,
                        ) else {
                            continue;
                        };
                        if at < start {
                            continue;
                        }
                        // A time skipped by a DST jump resolves to the
                        // instant just after the gap, as "compatible" does.
                        let Ok(zoned) = tz.to_ambiguous_zoned(at).compatible() else {
                            continue;
                        };
                        if zoned.timestamp() > after {
                            return Some(zoned.timestamp());
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

fn bit(set: u64, value: impl Into<i64>) -> bool {
    let v = value.into();
    (0..64).contains(&v) && set & (1u64 << v) != 0
}

fn bits(set: u64) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |i| set & (1u64 << i) != 0)
}

/// Parses one field into a bit set and whether it was a star.
fn field(text: &str, b: &Bounds) -> Result<(u64, bool), ParseError> {
    let mut set = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (bits, part_star) = range(part, b).map_err(|reason| ParseError::Field {
            field: b.name,
            value: text.to_string(),
            reason,
        })?;
        set |= bits;
        star |= part_star;
    }
    Ok((set, star))
}

fn range(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    let mut star = false;
    let (start, mut end, single) = if range == "*" || range == "?" {
        star = true;
        (b.min, b.max, false)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => (value(lo, b)?, value(hi, b)?, false),
            None => {
                let v = value(range, b)?;
                (v, v, true)
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let n: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            if single {
                // "N/step" means "N-max/step".
                end = b.max;
            }
            if n > 1 {
                star = false;
            }
            n
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({})",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({})", b.max));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end})"
        ));
    }
    if step == 0 {
        return Err("step of range should be a positive number".to_string());
    }
    let mut set = 0u64;
    let mut v = start;
    while v <= end {
        set |= 1u64 << v;
        v += step;
    }
    Ok((set, star))
}

fn value(text: &str, b: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        let i = u32::try_from(i).map_err(|e| e.to_string())?;
        return Ok(if b.min == 1 { i + 1 } else { i });
    }
    text.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {text}"))
}

/// The time zone a CronJob's schedule runs in: its `timeZone` from the tz
/// database, or the controller's local zone.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, jiff::Error> {
    match name {
        Some(name) => TimeZone::get(name),
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn nexts(spec: &str, from: &str, tz: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(spec).unwrap();
        let tz = TimeZone::get(tz).unwrap();
        let mut at = ts(from);
        (0..n)
            .map(|_| {
                at = s.next(at, &tz).unwrap();
                at.to_string()
            })
            .collect()
    }

    #[test]
    fn rejects_malformed_schedules() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-2 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "@every 5m",
            "@sometimes",
            "TZ=UTC * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should not parse");
        }
        for good in [
            "* * * * *",
            "*/15 0-6,22 * jan-mar,DEC MON-fri",
            "0 0 ? * ?",
            "5/10 * * * *",
            "@hourly",
            "@ANNUALLY",
        ] {
            assert!(Schedule::parse(good).is_ok(), "{good:?} should parse");
        }
    }

    #[test]
    fn next_times() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "*/1 * * * *",
                "2024-01-01T00:00:30Z",
                &["2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"],
            ),
            (
                "*/20 1 * * *",
                "2024-01-01T00:59:00Z",
                &[
                    "2024-01-01T01:00:00Z",
                    "2024-01-01T01:20:00Z",
                    "2024-01-01T01:40:00Z",
                    "2024-01-02T01:00:00Z",
                ],
            ),
            (
                "5/20 * * * *",
                "2024-01-01T00:00:00Z",
                &[
                    "2024-01-01T00:05:00Z",
                    "2024-01-01T00:25:00Z",
                    "2024-01-01T00:45:00Z",
                ],
            ),
            (
                "@hourly",
                "2024-01-01T00:00:00Z",
                &["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"],
            ),
            (
                "@weekly",
                "2024-01-01T00:00:00Z", // a Monday
                &["2024-01-07T00:00:00Z", "2024-01-14T00:00:00Z"],
            ),
            ("@yearly", "2024-06-01T00:00:00Z", &["2025-01-01T00:00:00Z"]),
            (
                // Leap days only.
                "0 12 29 feb *",
                "2024-03-01T00:00:00Z",
                &["2028-02-29T12:00:00Z"],
            ),
            (
                // Both day fields restricted: either matches (the 13th, or Fridays).
                "0 0 13 * fri",
                "2024-09-01T00:00:00Z",
                &[
                    "2024-09-06T00:00:00Z",
                    "2024-09-13T00:00:00Z",
                    "2024-09-20T00:00:00Z",
                ],
            ),
            (
                // A star day-of-week: the 13th only.
                "0 0 13 * *",
                "2024-09-01T00:00:00Z",
                &["2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z"],
            ),
        ];
        for (spec, from, want) in cases {
            assert_eq!(
                nexts(spec, from, "UTC", want.len()),
                *want,
                "{spec} from {from}"
            );
        }
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(
            nexts("0 9 * * *", "2024-03-09T00:00:00Z", "America/New_York", 2),
            ["2024-03-09T14:00:00Z", "2024-03-10T13:00:00Z"]
        );
        // 02:30 does not exist on 2024-03-10 in New York: it runs at 03:30 EDT.
        assert_eq!(
            nexts("30 2 * * *", "2024-03-09T12:00:00Z", "America/New_York", 2),
            ["2024-03-10T07:30:00Z", "2024-03-11T06:30:00Z"]
        );
        assert!(time_zone(Some("Mars/Olympus_Mons")).is_err());
        assert!(time_zone(Some("Europe/Berlin")).is_ok());
    }

    #[test]
    fn impossible_schedule_has_no_next() {
        let s = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC), None);
    }
}
