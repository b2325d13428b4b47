//! Exact arithmetic on Kubernetes resource quantities for quota usage: parse
//! the quantity grammar into an integer count of nano-units, add, compare, and
//! print back in the canonical form upstream's `resource.Quantity` prints
//! (`500m`, `1`, `1536Mi`, `0`). Sums keep the format of their first non-zero
//! term, as upstream's `Quantity.Add` does.

use std::cmp::Ordering;

/// How a quantity prints: upstream's three formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A quantity as an exact multiple of 10^-9 (sub-nano parts round up, as
/// upstream rounds to its smallest scale).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Qty {
    nanos: i128,
    format: Format,
}

impl PartialEq for Qty {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Qty {}
impl PartialOrd for Qty {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Qty {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid quantity {0:?}")]
pub(crate) struct ParseError(String);

const NANO: i128 = 1_000_000_000;

impl Qty {
    pub(crate) const ZERO: Qty = Qty {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// A whole count (object counts), printed in decimal.
    pub(crate) fn count(n: i64) -> Self {
        Self {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSi,
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub(crate) fn parse(text: &str) -> Result<Self, ParseError> {
        let err = || ParseError(text.to_string());
        let s = text.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(err());
        }
        // The mantissa as digits and a power of ten.
        let digits = format!("{whole}{frac}");
        let digits = digits.trim_start_matches('0');
        let mut exp10: i32 = -i32::try_from(frac.len()).map_err(|_| err())?;
        let (format, scale) = suffix_scale(suffix).ok_or_else(err)?;
        let (pow2, extra10) = scale;
        exp10 += extra10;
        if digits.len() > 30 {
            return Err(err());
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err())?
        };
        let mut value = mantissa.checked_mul(1i128 << pow2).ok_or_else(err)?;
        // Shift to nano units, rounding any remainder up (away from zero).
        let shift = exp10 + 9;
        if shift >= 0 {
            value = value
                .checked_mul(10i128.checked_pow(shift.unsigned_abs()).ok_or_else(err)?)
                .ok_or_else(err)?;
        } else {
            let div = 10i128
                .checked_pow(shift.unsigned_abs())
                .unwrap_or(i128::MAX);
            let rounded_up = value % div != 0;
            value = value / div + i128::from(rounded_up);
        }
        Ok(Self {
            nanos: if negative { -value } else { value },
            format,
        })
    }

    /// The sum; formatted like `self` unless `self` is zero.
    pub(crate) fn add(self, other: Qty) -> Qty {
        Qty {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.is_zero() {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The larger of the two (keeping that one's format).
    pub(crate) fn larger(self, other: Qty) -> Qty {
        if other.nanos > self.nanos {
            other
        } else {
            self
        }
    }
}

/// (format, (power of two, power of ten)) a suffix multiplies by.
fn suffix_scale(suffix: &str) -> Option<(Format, (u32, i32))> {
    let binary = |p: u32| Some((Format::BinarySi, (p, 0)));
    let decimal = |p: i32| Some((Format::DecimalSi, (0, p)));
    match suffix {
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let exp: i32 = rest.parse().ok()?;
            Some((Format::DecimalExponent, (0, exp)))
        }
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        // Binary only prints whole numbers of at least 1024; else decimal.
        if self.format == Format::BinarySi && abs.is_multiple_of(NANO as u128) {
            let whole = abs / NANO as u128;
            if whole >= 1024 {
                let mut n = whole;
                let mut step = 0;
                while n.is_multiple_of(1024) && step < 6 {
                    n /= 1024;
                    step += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][step];
                return write!(f, "{sign}{n}{suffix}");
            }
        }
        // Decimal: strip factors of ten, then settle on an exponent that is a
        // multiple of three (the SI suffixes' steps).
        let mut n = abs;
        let mut exp: i32 = -9;
        while n.is_multiple_of(10) {
            n /= 10;
            exp += 1;
        }
        let rem = exp.rem_euclid(3);
        for _ in 0..rem {
            n *= 10;
        }
        exp -= rem;
        if self.format == Format::DecimalExponent {
            return if exp == 0 {
                write!(f, "{sign}{n}")
            } else {
                write!(f, "{sign}{n}e{exp}")
            };
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => {
                // Beyond exa: print in E with the excess as plain digits.
                for _ in 0..(exp - 18) / 3 {
                    n *= 1000;
                }
                "E"
            }
        };
        write!(f, "{sign}{n}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_and_prints_canonically() {
        for (input, canonical) in [
            ("0", "0"),
            ("0m", "0"),
            ("1", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("2k", "2k"),
            ("1500", "1500"),
            ("1000", "1k"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("0.5Gi", "512Mi"),
            ("100M", "100M"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("100n", "100n"),
            ("-1", "-1"),
            ("+2", "2"),
            ("1.0001m", "1000100n"),
        ] {
            assert_eq!(q(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1x", "1..2", "1Qi", "."] {
            assert!(Qty::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sums_keep_first_nonzero_format() {
        let cases = [
            (&["100m", "200m"][..], "300m"),
            (&["100m", "900m"][..], "1"),
            (&["1Gi", "512Mi"][..], "1536Mi"),
            (&["0", "128Mi"][..], "128Mi"),
            (&["1", "500m"][..], "1500m"),
            (&["1Gi", "1G"][..], "2073741824"),
            (&[][..], "0"),
        ];
        for (terms, want) in cases {
            let sum = terms.iter().fold(Qty::ZERO, |acc, t| acc.add(q(t)));
            assert_eq!(sum.to_string(), want, "{terms:?}");
        }
    }

    #[test]
    fn compares_by_value() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("2") > q("1500m"));
        assert_eq!(q("1").larger(q("2Gi")).to_string(), "2Gi");
        assert_eq!(Qty::count(3).to_string(), "3");
    }
}
