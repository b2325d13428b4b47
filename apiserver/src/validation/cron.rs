//! Whether a CronJob schedule parses, with the messages of the standard cron
//! parser upstream validates with (robfig/cron v3 `ParseStandard`): five
//! fields or a descriptor (`@daily`, `@every 1h30m`...), an optional
//! `TZ=`/`CRON_TZ=` prefix. Validation only: the controllers crate computes
//! the times a schedule names.

/// Checks `spec` as upstream's standard parser does; the error is its text.
pub fn check_schedule(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let location_start = spec.find('=').map_or(0, |eq| eq + 1);
        let location_end = spec.find(' ').unwrap_or(spec.len());
        let location = spec.get(location_start..location_end).unwrap_or("");
        if let Err(e) = load_location(location) {
            return Err(format!("provided bad location {location}: {e}"));
        }
        spec = spec[location_end..].trim();
    }
    if spec.starts_with('@') {
        return check_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "expected exactly {} fields, found {}: [{}]",
            FIELDS.len(),
            fields.len(),
            fields.join(" ")
        ));
    }
    for (text, bounds) in fields.iter().zip(FIELDS) {
        // Empty list items are skipped, as Go's FieldsFunc does.
        for expr in text.split(',').filter(|e| !e.is_empty()) {
            check_range(expr, &bounds)?;
        }
    }
    Ok(())
}

/// The range of values a field takes and the names it accepts.
#[derive(Clone, Copy)]
struct FieldBounds {
    min: u64,
    max: u64,
    /// Names in value order from `min` (months from 1, weekdays from 0).
    names: &'static [&'static str],
}

const FIELDS: [FieldBounds; 5] = [
    FieldBounds {
        min: 0,
        max: 59,
        names: &[],
    },
    FieldBounds {
        min: 0,
        max: 23,
        names: &[],
    },
    FieldBounds {
        min: 1,
        max: 31,
        names: &[],
    },
    FieldBounds {
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    FieldBounds {
        min: 0,
        max: 6,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

/// One list item: `*`, `?`, `N`, `N-M`, each optionally `/step`.
fn check_range(expr: &str, b: &FieldBounds) -> Result<(), String> {
    let mut slash = expr.split('/');
    let span = slash.next().unwrap_or("");
    let step = slash.next();
    if slash.next().is_some() {
        return Err(format!("too many slashes: {expr}"));
    }
    let ends: Vec<&str> = span.split('-').collect();
    let (start, mut end) = if ends[0] == "*" || ends[0] == "?" {
        (b.min, b.max)
    } else {
        let start = int_or_name(ends[0], b)?;
        match ends[..] {
            [_] => (start, start),
            [_, hi] => (start, int_or_name(hi, b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            // "N/step" runs from N to the field's maximum.
            if ends.len() == 1 {
                end = b.max;
            }
            go_uint(s)?
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn int_or_name(text: &str, b: &FieldBounds) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    match b.names.iter().zip(b.min..).find(|(n, _)| **n == lower) {
        Some((_, value)) => Ok(value),
        None => go_uint(text),
    }
}

/// Go's `strconv.Atoi`, refusing negative numbers, with the parser's messages.
fn go_uint(text: &str) -> Result<u64, String> {
    let n: i64 = text.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("failed to parse int from {text}: strconv.Atoi: parsing {text:?}: {why}")
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {text}"))
}

fn check_descriptor(spec: &str) -> Result<(), String> {
    match spec {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        _ => match spec.strip_prefix("@every ") {
            Some(duration) => {
                go_duration(duration).map_err(|e| format!("failed to parse duration {spec}: {e}"))
            }
            None => Err(format!("unrecognized descriptor: {spec}")),
        },
    }
}

/// Whether `text` is a Go duration (`time.ParseDuration`): an optional sign,
/// then numbers (with an optional fraction) each followed by a unit.
fn go_duration(text: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let mut rest = text.strip_prefix(['-', '+']).unwrap_or(text);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mut number_len = int_len;
        let mut has_digits = int_len > 0;
        if rest[int_len..].starts_with('.') {
            let frac = &rest[int_len + 1..];
            let frac_len = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            has_digits |= frac_len > 0;
            number_len = int_len + 1 + frac_len;
        }
        if !has_digits {
            return Err(invalid());
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        if !matches!(
            unit,
            "ns" | "us" | "\u{b5}s" | "\u{3bc}s" | "ms" | "s" | "m" | "h"
        ) {
            return Err(format!("time: unknown unit {unit:?} in duration {text:?}"));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

/// Go's `time.LoadLocation` against the IANA database: names are matched
/// exactly (case included), `UTC` and `Local` always exist.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.contains("..") || name.starts_with(['/', '\\']) {
        return Err("time: invalid location name".into());
    }
    let known = jiff::tz::db()
        .get(name)
        .ok()
        .is_some_and(|tz| tz.iana_name() == Some(name) && name != "Etc/Unknown");
    if known {
        Ok(())
    } else {
        Err(format!("unknown time zone {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedules_parse() {
        for ok in [
            "* * * * *",
            "*/15 0-6,22-23 1 jan-MAR ?",
            "5 4 * * sun",
            "0 0 1/2 * 1-5/2",
            "0,,5 * * * *",
            "@hourly",
            "@annually",
            "@every 1h30m",
            "@every 1.5s",
            "TZ=Europe/Paris 0 9 * * 1",
            "CRON_TZ=UTC 0 9 * * 1",
        ] {
            assert_eq!(check_schedule(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn bad_schedules_say_what_upstream_says() {
        for (bad, message) in [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            (
                "* * * * * *",
                "expected exactly 5 fields, found 6: [* * * * * *]",
            ),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "* 5-2 * * *",
                "beginning of range (5) beyond end of range (2): 5-2",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("1/2/3 * * * *", "too many slashes: 1/2/3"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "* * * * mon-fry",
                "failed to parse int from fry: strconv.Atoi: parsing \"fry\": invalid syntax",
            ),
            ("@Daily", "unrecognized descriptor: @Daily"),
            (
                "@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
            ),
            (
                "@every 5d",
                "failed to parse duration @every 5d: time: unknown unit \"d\" in duration \"5d\"",
            ),
            (
                "TZ=Mars/Base 0 * * * *",
                "provided bad location Mars/Base: unknown time zone Mars/Base",
            ),
        ] {
            assert_eq!(check_schedule(bad), Err(message.to_string()), "{bad}");
        }
    }

    #[test]
    fn locations_are_matched_exactly() {
        assert_eq!(load_location("America/New_York"), Ok(()));
        assert_eq!(load_location("Etc/GMT+5"), Ok(()));
        assert_eq!(
            load_location("america/new_york"),
            Err("unknown time zone america/new_york".into())
        );
        assert_eq!(
            load_location("../etc/passwd"),
            Err("time: invalid location name".into())
        );
    }
}
