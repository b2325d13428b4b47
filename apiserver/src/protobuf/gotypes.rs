//! How Go prints and parses the scalar types with custom JSON (times,
//! durations, floats, map keys), and which scalars are zero.

use super::*;

pub(super) fn is_zero_scalar(value: &PValue) -> bool {
    match value {
        PValue::Bool(b) => !b,
        PValue::I32(n) => *n == 0,
        PValue::I64(n) => *n == 0,
        PValue::U32(n) => *n == 0,
        PValue::U64(n) => *n == 0,
        PValue::EnumNumber(n) => *n == 0,
        PValue::F32(f) => *f == 0.0,
        PValue::F64(f) => *f == 0.0,
        PValue::String(s) => s.is_empty(),
        PValue::Bytes(b) => b.is_empty(),
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => false,
    }
}

pub(super) fn map_key_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// A float64 as Go's encoding/json writes it, read back by serde_json:
/// integral values print without a fraction.
pub(super) fn float_to_json(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f.abs() < I64_LIMIT {
            return Some(Value::from(f as i64));
        }
        if f > 0.0 && f < U64_LIMIT {
            return Some(Value::from(f as u64));
        }
    }
    Number::from_f64(f).map(Value::Number)
}

/// RFC 3339 in UTC, as `metav1.Time` (seconds) or `metav1.MicroTime`
/// (microseconds) print it.
pub(super) fn format_time(seconds: i64, nanos: i64, micro: bool) -> Option<String> {
    let seconds = seconds.checked_add(nanos.div_euclid(1_000_000_000))?;
    let nanos = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    let t = chrono::DateTime::from_timestamp(seconds, nanos)?;
    if !(0..=9999).contains(&chrono::Datelike::year(&t)) {
        return None;
    }
    Some(if micro {
        let micros = nanos / 1000;
        format!("{}.{micros:06}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    } else {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// Go's `time.Duration.String()`.
pub(super) fn go_duration(d: i64) -> String {
    pub(super) fn frac(v: u64, digits: u32) -> String {
        let scale = 10u64.pow(digits);
        let (whole, part) = (v / scale, v % scale);
        if part == 0 {
            whole.to_string()
        } else {
            let part = format!("{part:0width$}", width = digits as usize);
            format!("{whole}.{}", part.trim_end_matches('0'))
        }
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let body = if u < 1_000 {
            format!("{u}ns")
        } else if u < 1_000_000 {
            format!("{}µs", frac(u, 3))
        } else {
            format!("{}ms", frac(u, 6))
        };
        return format!("{sign}{body}");
    }
    let total_secs = u / 1_000_000_000;
    let secs = frac(u % 60_000_000_000, 9);
    let minutes = total_secs / 60;
    let mut out = String::from(sign);
    if minutes >= 60 {
        out.push_str(&format!("{}h", minutes / 60));
    }
    if minutes > 0 {
        out.push_str(&format!("{}m", minutes % 60));
    }
    out.push_str(&secs);
    out.push('s');
    out
}

/// Go's `time.ParseDuration`.
pub(super) fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut v = whole.checked_mul(scale)?;
        if !frac_part.is_empty() {
            // At most 19 digits matter; more cannot change a u64 result.
            let digits = &frac_part[..frac_part.len().min(18)];
            let f: u64 = digits.parse().ok()?;
            let denom = 10u64.pow(u32::try_from(digits.len()).ok()?);
            let add = u128::from(f) * u128::from(scale) / u128::from(denom);
            v = v.checked_add(u64::try_from(add).ok()?)?;
        }
        total = total.checked_add(v)?;
        rest = after;
    }
    if neg {
        if total == 1u64 << 63 {
            return Some(i64::MIN);
        }
        i64::try_from(total).ok().map(|v| -v)
    } else {
        i64::try_from(total).ok()
    }
}
