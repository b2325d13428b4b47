//! Canonical rendering of `resource.Quantity` values, as upstream's
//! `Quantity.String()` prints them (e.g. `"1024Mi"` → `"1Gi"`,
//! `"0.5"` → `"500m"`, `"1.5Gi"` → `"1536Mi"`).
//!
//! Values are held as an `i128` mantissa and a power-of-ten exponent; a value
//! too large for that (far beyond anything Kubernetes accepts) is returned
//! unchanged rather than canonicalized.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalExponent,
    BinarySI,
    DecimalSI,
}

/// A parsed quantity: `(-1)^neg * mantissa * 10^exp10`.
#[derive(Debug)]
struct Parsed {
    neg: bool,
    mantissa: i128,
    exp10: i32,
    format: Format,
}

/// Splits a quantity string like Go's `parseQuantityString`: returns
/// `(positive, numerator, denominator, suffix)`.
fn scan(s: &str) -> Option<(bool, &str, &str, &str)> {
    let bytes = s.as_bytes();
    let end = bytes.len();
    let mut pos = 0;
    let mut positive = true;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && bytes[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some((positive, "0", "", ""));
    }
    let num_start = pos;
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if pos < end && bytes[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < end && (bytes[pos] == b'-' || bytes[pos] == b'+') {
        pos += 1;
    }
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    Some((positive, num, denom, &s[suffix_start..]))
}

/// Go's suffix interpretation: `(base, exponent, format)`.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            let exp: i64 = rest.parse().ok()?;
            Some((10, i32::try_from(exp).ok()?, Format::DecimalExponent))
        }
    }
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

fn parse(input: &str) -> Option<Parsed> {
    let s = input.trim();
    if s.is_empty() {
        return None;
    }
    let (positive, num, denom, suffix) = scan(s)?;
    let (base, exponent, mut format) = interpret(suffix)?;
    let digits = format!("{num}{denom}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut exp10 = -i32::try_from(denom.len()).ok()?;
    if base == 10 {
        exp10 = exp10.checked_add(exponent)?;
    } else {
        let factor = 1i128.checked_shl(u32::try_from(exponent).ok()?)?;
        mantissa = mantissa.checked_mul(factor)?;
    }
    // Non-zero values are rounded up (away from zero) to a whole nano.
    if exp10 < -9 && mantissa != 0 {
        let shift = u32::try_from(-9 - i64::from(exp10)).ok()?;
        mantissa = match pow10(shift) {
            Some(div) => {
                let q = mantissa / div;
                if mantissa % div == 0 { q } else { q + 1 }
            }
            None => 1,
        };
        exp10 = -9;
    }
    if format == Format::BinarySI {
        let max = i128::from(i64::MAX);
        if exp10 >= 0 && value_exceeds(mantissa, exp10, max) {
            mantissa = max;
            exp10 = 0;
        }
        // 0 < |x| < 1 is shown as DecimalSI.
        if mantissa != 0 && !value_at_least(mantissa, exp10, 1) {
            format = Format::DecimalSI;
        }
    }
    Some(Parsed {
        neg: !positive,
        mantissa,
        exp10,
        format,
    })
}

/// Whether `m * 10^e > limit` (for `e >= 0`).
fn value_exceeds(m: i128, e: i32, limit: i128) -> bool {
    match u32::try_from(e)
        .ok()
        .and_then(pow10)
        .and_then(|p| m.checked_mul(p))
    {
        Some(v) => v > limit,
        None => true,
    }
}

/// Whether `m * 10^e >= limit` (`m >= 0`).
fn value_at_least(m: i128, e: i32, limit: i128) -> bool {
    if e >= 0 {
        return value_exceeds(m, e, limit - 1);
    }
    match u32::try_from(-i64::from(e)).ok().and_then(pow10) {
        Some(p) => m / p >= limit,
        None => false,
    }
}

/// The integer value `m * 10^e` if it is exact.
fn exact_integer(m: i128, e: i32) -> Option<i128> {
    if e >= 0 {
        m.checked_mul(pow10(u32::try_from(e).ok()?)?)
    } else {
        let p = pow10(u32::try_from(-i64::from(e)).ok()?)?;
        if m % p == 0 { Some(m / p) } else { None }
    }
}

fn canonical_parsed(p: &Parsed) -> Option<String> {
    if p.mantissa == 0 {
        return Some("0".to_string());
    }
    let sign = if p.neg { "-" } else { "" };
    let mut format = p.format;
    let mut binary_value = None;
    if format == Format::BinarySI {
        if !value_at_least(p.mantissa, p.exp10, 1024) {
            format = Format::DecimalSI;
        } else {
            match exact_integer(p.mantissa, p.exp10) {
                Some(v) => binary_value = Some(v),
                None => format = Format::DecimalSI,
            }
        }
    }
    if let Some(mut v) = binary_value {
        let mut times = 0;
        while v >= 1024 && v % 1024 == 0 {
            v /= 1024;
            times += 1;
        }
        let suffix = match times {
            1 => "Ki",
            2 => "Mi",
            3 => "Gi",
            4 => "Ti",
            5 => "Pi",
            6 => "Ei",
            _ => "",
        };
        return Some(format!("{sign}{v}{suffix}"));
    }
    let mut m = p.mantissa;
    let mut e = i64::from(p.exp10);
    while m >= 10 && m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    match e % 3 {
        1 | -2 => {
            m = m.checked_mul(10)?;
            e -= 1;
        }
        2 | -1 => {
            m = m.checked_mul(100)?;
            e -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalExponent if e == 0 => String::new(),
        Format::DecimalExponent => format!("e{e}"),
        _ => match e {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            // Upstream has no suffix for other exponents and prints none.
            _ => "",
        }
        .to_string(),
    };
    Some(format!("{sign}{m}{suffix}"))
}

/// Canonical form of a quantity string; the input itself if it cannot be parsed.
/// Compares two quantities by value (`None` if either does not parse or is
/// too large to compare exactly).
pub(crate) fn compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    let signed = |p: &Parsed| if p.neg { -p.mantissa } else { p.mantissa };
    let e = a.exp10.min(b.exp10);
    let scale = |p: &Parsed| -> Option<i128> {
        signed(p).checked_mul(pow10(u32::try_from(p.exp10 - e).ok()?)?)
    };
    Some(scale(&a)?.cmp(&scale(&b)?))
}

/// `a + b` in canonical form, in `a`'s format (Go's `Quantity.Add` keeps the
/// receiver's format; a zero receiver takes the other's). `None` if either
/// does not parse or the sum is too large to hold exactly.
pub(crate) fn add(a: &str, b: &str) -> Option<String> {
    let (pa, pb) = (parse(a)?, parse(b)?);
    let signed = |p: &Parsed| if p.neg { -p.mantissa } else { p.mantissa };
    let e = pa.exp10.min(pb.exp10);
    let scale = |p: &Parsed| -> Option<i128> {
        signed(p).checked_mul(pow10(u32::try_from(p.exp10 - e).ok()?)?)
    };
    let total = scale(&pa)?.checked_add(scale(&pb)?)?;
    let format = if pa.mantissa == 0 {
        pb.format
    } else {
        pa.format
    };
    canonical_parsed(&Parsed {
        neg: total < 0,
        mantissa: total.abs(),
        exp10: e,
        format,
    })
}

/// `a / b` as a float (for limit-to-request ratios).
pub(crate) fn ratio(a: &str, b: &str) -> Option<f64> {
    let (a, b) = (parse(a)?, parse(b)?);
    let value = |p: &Parsed| {
        let m = if p.neg { -p.mantissa } else { p.mantissa };
        m as f64 * 10f64.powi(p.exp10)
    };
    let d = value(&b);
    (d != 0.0).then(|| value(&a) / d)
}

pub(super) fn canonical(input: &str) -> String {
    parse(input)
        .and_then(|p| canonical_parsed(&p))
        .unwrap_or_else(|| input.to_string())
}

/// A quantity field (`*resource.Quantity`): `"<nil>"` when absent.
pub(super) fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        None => "<nil>".to_string(),
        Some(v) => quantity_value(Some(v)),
    }
}

/// A quantity field held by value (or a map entry): `"0"` when absent.
pub(super) fn quantity_value(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => canonical(s),
        Some(Value::Number(n)) => canonical(&n.to_string()),
        _ => "0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sums() {
        assert_eq!(add("0", "1").as_deref(), Some("1"));
        assert_eq!(add("500m", "500m").as_deref(), Some("1"));
        assert_eq!(add("100m", "1").as_deref(), Some("1100m"));
        assert_eq!(add("1Gi", "512Mi").as_deref(), Some("1536Mi"));
        assert_eq!(add("2", "-3").as_deref(), Some("-1"));
        assert_eq!(add("x", "1"), None);
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0", "0"),
            ("000", "0"),
            ("0Gi", "0"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1Ki", "1Ki"),
            ("1023", "1023"),
            ("512Ki", "512Ki"),
            ("100Mi", "100Mi"),
            ("0.1Ki", "102400m"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2000m", "2"),
            ("100m", "100m"),
            ("0.5", "500m"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            ("250m", "250m"),
            ("1k", "1k"),
            ("1M", "1M"),
            ("1000M", "1G"),
            ("10G", "10G"),
            ("1e3", "1e3"),
            ("12e2", "1200"),
            ("1E6", "1e6"),
            ("1.0000000001", "1000000001n"),
            ("1e-12", "1e-9"),
            ("0.000000000001", "1n"),
            ("-1", "-1"),
            ("-1500m", "-1500m"),
            ("+2", "2"),
            ("1073741824", "1073741824"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("129000k", "129M"),
            ("123Mi", "123Mi"),
            ("1000E", "1"),
            ("lots", "lots"),
            ("1.2.3", "1.2.3"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn quantity_fields() {
        assert_eq!(quantity_value(None), "0");
        assert_eq!(quantity_ptr(None), "<nil>");
        assert_eq!(quantity_value(Some(&json!(0.25))), "250m");
        assert_eq!(quantity_value(Some(&json!(2048))), "2048");
        assert_eq!(quantity_ptr(Some(&json!("2048Ki"))), "2Mi");
    }
}
