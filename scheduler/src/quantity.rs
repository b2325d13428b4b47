//! Parsing of Kubernetes resource quantities ("500m", "1.5Gi", "2e3").
//!
//! The scheduler only needs integers: CPU in millicores and everything else
//! (memory, storage, pods, extended resources) in whole units. As upstream's
//! `Quantity.MilliValue()`/`Value()` do, fractional results are rounded up, so
//! a pod asking for "0.5" of an integer resource needs a whole unit.

use thiserror::Error;

/// Why a quantity string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    #[error("quantity is empty")]
    Empty,
    #[error("quantity {0:?} has no digits")]
    NoDigits(String),
    #[error("quantity {0:?} has an unknown suffix {1:?}")]
    UnknownSuffix(String, String),
}

/// A parsed quantity: `digits * 10^exp10 * 2^exp2`, with `digits` signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    digits: i128,
    exp10: i32,
    exp2: u32,
}

fn parse(input: &str) -> Result<Parsed, QuantityError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(QuantityError::Empty);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if bytes[0] == b'+' || bytes[0] == b'-' {
        negative = bytes[0] == b'-';
        i = 1;
    }
    let mut digits: i128 = 0;
    let mut exp10: i32 = 0;
    let mut seen_digit = false;
    let mut seen_dot = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            seen_digit = true;
            // Digits beyond i128's precision only matter for absurd inputs;
            // drop them (scaling the exponent) rather than overflow.
            if digits < i128::MAX / 100 {
                digits = digits * 10 + i128::from(b - b'0');
                if seen_dot {
                    exp10 -= 1;
                }
            } else if !seen_dot {
                exp10 += 1;
            }
        } else if b == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if !seen_digit {
        return Err(QuantityError::NoDigits(input.to_string()));
    }
    if negative {
        digits = -digits;
    }
    let suffix = &s[i..];
    let (extra10, exp2) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => match parse_exponent(other) {
            Some(e) => (e, 0),
            None => {
                return Err(QuantityError::UnknownSuffix(
                    input.to_string(),
                    other.to_string(),
                ));
            }
        },
    };
    Ok(Parsed {
        digits,
        exp10: exp10.saturating_add(extra10),
        exp2,
    })
}

/// `e3`, `E-2`, `e+6`: a decimal exponent suffix.
fn parse_exponent(suffix: &str) -> Option<i32> {
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    let (neg, num) = match rest.as_bytes().first()? {
        b'-' => (true, &rest[1..]),
        b'+' => (false, &rest[1..]),
        _ => (false, rest),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i32 = num.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `ceil(q * 10^scale)` as an i64, saturating at the i64 range.
fn scaled_ceil(p: Parsed, scale: i32) -> i64 {
    let mut value = p.digits;
    // Binary multipliers first: they are exact.
    for _ in 0..p.exp2 {
        value = value.saturating_mul(2);
    }
    let exp = p.exp10.saturating_add(scale);
    if exp >= 0 {
        for _ in 0..exp {
            value = value.saturating_mul(10);
            if value.unsigned_abs() > i64::MAX as u128 {
                break;
            }
        }
    } else {
        let mut divisor: i128 = 1;
        for _ in 0..(-exp) {
            divisor = divisor.saturating_mul(10);
            if divisor > value.abs().saturating_mul(10) && divisor > 10 {
                break;
            }
        }
        let q = value.div_euclid(divisor);
        let r = value.rem_euclid(divisor);
        value = if r > 0 { q + 1 } else { q };
    }
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The quantity in thousandths of a unit, rounded up (CPU millicores).
pub fn parse_milli(s: &str) -> Result<i64, QuantityError> {
    Ok(scaled_ceil(parse(s)?, 3))
}

/// The quantity in whole units, rounded up (bytes, pods, devices).
pub fn parse_value(s: &str) -> Result<i64, QuantityError> {
    Ok(scaled_ceil(parse(s)?, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_values() {
        let cases = [
            ("1", 1000),
            ("100m", 100),
            ("0.5", 500),
            (".5", 500),
            ("1.5", 1500),
            ("2500u", 3),
            ("1n", 1),
            ("0", 0),
            ("250m", 250),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("+2", 2000),
            ("-1", -1000),
            ("0.0001", 1),
            ("3k", 3_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_milli(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn whole_values() {
        let cases = [
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 123 * 1024 * 1024),
            ("1Ki", 1024),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("1Ti", 1 << 40),
            ("1Pi", 1 << 50),
            ("1Ei", 1 << 60),
            ("1k", 1000),
            ("1G", 1_000_000_000),
            ("1T", 1_000_000_000_000),
            ("1P", 1_000_000_000_000_000),
            ("1E", 1_000_000_000_000_000_000),
            ("110", 110),
            ("500m", 1),
            ("1m", 1),
            ("0.1", 1),
            ("1e+2", 100),
            ("16Ei", i64::MAX),
            ("1e40", i64::MAX),
            ("1e-40", 1),
        ];
        for (input, want) in cases {
            assert_eq!(parse_value(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_value(""), Err(QuantityError::Empty));
        assert!(matches!(parse_value("Gi"), Err(QuantityError::NoDigits(_))));
        assert!(matches!(
            parse_value("12Qi"),
            Err(QuantityError::UnknownSuffix(_, _))
        ));
        assert!(matches!(
            parse_value("1e"),
            Err(QuantityError::UnknownSuffix(_, _))
        ));
        assert!(matches!(
            parse_value("1.2.3"),
            Err(QuantityError::UnknownSuffix(_, _))
        ));
    }
}
