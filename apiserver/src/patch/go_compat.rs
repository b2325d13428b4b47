//! The few Go runtime behaviours upstream's patch code depends on, written out
//! so the Rust implementation reproduces them: interface `==` (and its panics),
//! `fmt` rendering of decoded JSON (`%v`, `%s`, `%q`), `strconv.Atoi`,
//! `reflect` type names, `sort.SliceStable`'s exact comparison sequence and
//! `encoding/json`'s output length.

use serde_json::{Map, Value};

/// The dynamic Go type a decoded JSON value has upstream (`map[string]interface{}`
/// decoding with int preservation: integers that fit `int64` are `int64`,
/// every other number is `float64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Map,
    Slice,
}

pub(crate) fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.as_i64().is_some() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::String(_) => GoKind::String,
        Value::Object(_) => GoKind::Map,
        Value::Array(_) => GoKind::Slice,
    }
}

fn as_float(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A Go runtime panic reproduced as a value; the caller turns it into
/// upstream's plain-text 500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GoPanic(pub(crate) String);

impl GoPanic {
    pub(crate) fn uncomparable(kind: GoKind) -> Self {
        GoPanic(format!(
            "runtime error: comparing uncomparable type {}",
            type_name(kind)
        ))
    }
    pub(crate) fn unhashable(kind: GoKind) -> Self {
        GoPanic(format!(
            "runtime error: hash of unhashable type {}",
            type_name(kind)
        ))
    }
    pub(crate) fn nil_deref() -> Self {
        GoPanic("runtime error: invalid memory address or nil pointer dereference".to_string())
    }
}

fn type_name(kind: GoKind) -> &'static str {
    match kind {
        GoKind::Nil => "<nil>",
        GoKind::Bool => "bool",
        GoKind::Int => "int64",
        GoKind::Float => "float64",
        GoKind::String => "string",
        GoKind::Map => "map[string]interface {}",
        GoKind::Slice => "[]interface {}",
    }
}

/// `reflect.TypeOf(v)` rendered with `%s`, as in `mergepatch.ErrBadArgType`.
pub(crate) fn reflect_type_s(v: Option<&Value>) -> &'static str {
    match v.map(go_kind) {
        None | Some(GoKind::Nil) => "%!s(<nil>)",
        Some(k) => type_name(k),
    }
}

/// Go's `==` on two `interface{}` values: different dynamic types are unequal,
/// equal types compare by value, and maps or slices panic.
pub(crate) fn go_eq(a: &Value, b: &Value) -> Result<bool, GoPanic> {
    let (ka, kb) = (go_kind(a), go_kind(b));
    if ka != kb {
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => {
            if ka == GoKind::Int {
                x.as_i64() == y.as_i64()
            } else {
                #[allow(clippy::float_cmp)]
                let eq = as_float(a) == as_float(b);
                eq
            }
        }
        _ => return Err(GoPanic::uncomparable(ka)),
    })
}

/// `==` where an absent map entry reads as Go's `nil`.
pub(crate) fn go_eq_opt(a: Option<&Value>, b: Option<&Value>) -> Result<bool, GoPanic> {
    const NIL: Value = Value::Null;
    go_eq(a.unwrap_or(&NIL), b.unwrap_or(&NIL))
}

/// Whether the value can be a Go map key (`map[interface{}]...`).
pub(crate) fn check_hashable(v: &Value) -> Result<(), GoPanic> {
    match go_kind(v) {
        k @ (GoKind::Map | GoKind::Slice) => Err(GoPanic::unhashable(k)),
        _ => Ok(()),
    }
}

/// The name `encoding/json` gives a JSON value in an `UnmarshalTypeError`.
pub(crate) fn json_kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `fmt.Sprintf("%v", v)` for a decoded JSON value.
#[cfg(test)]
pub(crate) fn fmt_v(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 'v');
    out
}

/// `fmt.Sprintf("%v", m)` for a `map[string]interface{}`.
pub(crate) fn fmt_v_map(m: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(&mut out, m, 'v');
    out
}

/// `fmt.Sprintf("%v", l)` for a `[]interface{}`.
pub(crate) fn fmt_v_list(l: &[Value]) -> String {
    let mut out = String::new();
    write_list(&mut out, l, 'v');
    out
}

/// `fmt.Sprintf("%s", v)` for a decoded JSON value.
pub(crate) fn fmt_s(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 's');
    out
}

fn write_value(out: &mut String, v: &Value, verb: char) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Object(m) => write_map(out, m, verb),
        Value::Array(l) => write_list(out, l, verb),
        scalar => {
            let (ty, text) = match scalar {
                Value::Null => {
                    out.push_str(if verb == 'v' { "<nil>" } else { "%!s(<nil>)" });
                    return;
                }
                Value::Bool(b) => ("bool", b.to_string()),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => ("int64", i.to_string()),
                    None => ("float64", go_float_v(as_float(scalar))),
                },
                _ => ("", String::new()),
            };
            if verb == 'v' {
                out.push_str(&text);
            } else {
                out.push_str("%!s(");
                out.push_str(ty);
                out.push('=');
                out.push_str(&text);
                out.push(')');
            }
        }
    }
}

fn write_map(out: &mut String, m: &Map<String, Value>, verb: char) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    out.push_str("map[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push(':');
        if let Some(v) = m.get(k.as_str()) {
            write_value(out, v, verb);
        }
    }
    out.push(']');
}

fn write_list(out: &mut String, l: &[Value], verb: char) {
    out.push('[');
    for (i, v) in l.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(out, v, verb);
    }
    out.push(']');
}

/// A float64 as `%v` prints it: `strconv.FormatFloat(f, 'g', -1, 64)`, which
/// switches to an exponent below 1e-4 and from 1e6 up.
pub(crate) fn go_float_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp >= 0 {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

/// `strconv.Quote` (as used by `%q`).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c == ' ' || !(c.is_control() || c.is_whitespace()) => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// `strconv.Atoi` on a 64-bit platform; the error is the Go error text.
pub(crate) fn go_atoi(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(s));
    let range = || format!("strconv.Atoi: parsing {}: value out of range", go_quote(s));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    // Magnitude as ParseUint computes it: the first bad byte or overflow wins.
    let mut n: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(n) => n,
            None => return Err(range()),
        };
    }
    let limit = 1u64 << 63;
    if neg {
        if n > limit {
            return Err(range());
        }
        Ok((n as i64).wrapping_neg())
    } else {
        if n >= limit {
            return Err(range());
        }
        Ok(n as i64)
    }
}

/// Nesting depth of a value (scalars 0, `{}` and `[]` 1), computed without
/// recursion so hostile input cannot exhaust the stack.
pub(crate) fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(m) => {
                max = max.max(d + 1);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            Value::Array(l) => {
                max = max.max(d + 1);
                stack.extend(l.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// Length in bytes of `encoding/json.Marshal(v)` (compact, HTML-escaped).
/// Recursive: callers bound the depth first.
pub(crate) fn go_json_len(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string().len(),
            None => go_json_float_len(as_float(v)),
        },
        Value::String(s) => go_json_str_len(s),
        Value::Array(l) => 2 + l.iter().map(go_json_len).sum::<usize>() + l.len().saturating_sub(1),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, v)| go_json_str_len(k) + 1 + go_json_len(v))
                .sum::<usize>()
                + m.len().saturating_sub(1)
        }
    }
}

fn go_json_str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

fn go_json_float_len(f: f64) -> usize {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let sci = format!("{f:e}");
        let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let exp_digits = exp.unsigned_abs().to_string().len();
        let exp_digits = if exp > 0 {
            exp_digits.max(2)
        } else {
            exp_digits
        };
        mant.len() + 2 + exp_digits
    } else {
        format!("{f}").len()
    }
}

/// `sort.SliceStable` with Go's exact algorithm (insertion-sorted blocks of 20
/// merged with SymMerge), so inconsistent comparators upstream relies on give
/// the same order here. `less` may fail (a reproduced panic); the first
/// failure aborts the sort.
pub(crate) fn slice_stable<T, E>(
    data: &mut [T],
    less: &mut dyn FnMut(&T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b, less)?;
        a = b;
        b += block;
    }
    insertion_sort(data, a, n, less)?;
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b, less)?;
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, less)?;
        }
        block *= 2;
    }
    Ok(())
}

fn insertion_sort<T, E>(
    data: &mut [T],
    a: usize,
    b: usize,
    less: &mut dyn FnMut(&T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1])? {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
    Ok(())
}

fn sym_merge<T, E>(
    data: &mut [T],
    a: usize,
    m: usize,
    b: usize,
    less: &mut dyn FnMut(&T, &T) -> Result<bool, E>,
) -> Result<(), E> {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a])? {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i.saturating_sub(1) {
            data.swap(k, k + 1);
        }
        return Ok(());
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h])? {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return Ok(());
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c])? {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less)?;
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less)?;
    }
    Ok(())
}

fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fmt_matches_go() {
        let cases: &[(Value, &str, &str)] = &[
            (json!(null), "<nil>", "%!s(<nil>)"),
            (json!(true), "true", "%!s(bool=true)"),
            (json!(5), "5", "%!s(int64=5)"),
            (json!(-7), "-7", "%!s(int64=-7)"),
            (json!(1.5), "1.5", "%!s(float64=1.5)"),
            (json!("x"), "x", "x"),
            (
                json!({"b": 1, "a": "x"}),
                "map[a:x b:1]",
                "map[a:x b:%!s(int64=1)]",
            ),
            (
                json!([1, "a", {"k": []}]),
                "[1 a map[k:[]]]",
                "[%!s(int64=1) a map[k:[]]]",
            ),
        ];
        for (v, want_v, want_s) in cases {
            assert_eq!(fmt_v(v), *want_v, "%v of {v}");
            assert_eq!(fmt_s(v), *want_s, "%s of {v}");
        }
    }

    #[test]
    fn floats_match_go_g() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e21, "1e+21"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float_v(*f), *want, "{f}");
        }
    }

    #[test]
    fn atoi_matches_go() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("0", Ok(0)),
            ("12", Ok(12)),
            ("+3", Ok(3)),
            ("-1", Ok(-1)),
            ("007", Ok(7)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("", Err(r#"strconv.Atoi: parsing "": invalid syntax"#)),
            ("-", Err(r#"strconv.Atoi: parsing "-": invalid syntax"#)),
            ("a", Err(r#"strconv.Atoi: parsing "a": invalid syntax"#)),
            ("1.0", Err(r#"strconv.Atoi: parsing "1.0": invalid syntax"#)),
            (
                "9223372036854775808",
                Err(r#"strconv.Atoi: parsing "9223372036854775808": value out of range"#),
            ),
            (
                "99999999999999999999x",
                Err(r#"strconv.Atoi: parsing "99999999999999999999x": value out of range"#),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(go_atoi(s), want.map_err(str::to_string), "{s}");
        }
    }

    #[test]
    fn quote_matches_go() {
        let cases = [
            ("a", r#""a""#),
            ("a\"b", r#""a\"b""#),
            ("\n\u{1}", r#""\n\x01""#),
            ("é", "\"é\""),
        ];
        for (s, want) in cases {
            assert_eq!(go_quote(s), want);
        }
    }

    #[test]
    fn go_equality_and_panics() {
        assert_eq!(go_eq(&json!(1), &json!(1)), Ok(true));
        assert_eq!(go_eq(&json!(1), &json!(1.0)), Ok(false));
        assert_eq!(go_eq(&json!("1"), &json!(1)), Ok(false));
        assert_eq!(go_eq(&json!({}), &json!("x")), Ok(false));
        assert!(go_eq(&json!({}), &json!({})).is_err());
        assert!(go_eq(&json!([]), &json!([])).is_err());
        assert_eq!(go_eq_opt(None, Some(&json!(null))), Ok(true));
    }

    #[test]
    fn json_len_matches_go_encoding() {
        let cases: &[(Value, usize)] = &[
            (
                json!({"a": [1, true, null]}),
                r#"{"a":[1,true,null]}"#.len(),
            ),
            (json!("<&>"), r#""\u003c\u0026\u003e""#.len()),
            (json!("a\nb"), r#""a\nb""#.len()),
            (json!(1.5), 3),
            (json!(1e21), "1e+21".len()),
            (json!(1e-7), "1e-7".len()),
        ];
        for (v, want) in cases {
            assert_eq!(go_json_len(v), *want, "{v}");
        }
    }

    #[test]
    fn stable_sort_is_stable_and_total() {
        let mut v: Vec<(u32, usize)> = (0..100).map(|i| ((i * 7919) % 13, i as usize)).collect();
        let mut want = v.clone();
        want.sort_by_key(|x| x.0);
        slice_stable::<_, ()>(&mut v, &mut |a, b| Ok(a.0 < b.0)).unwrap();
        assert_eq!(v, want);
    }

    #[test]
    fn depth_is_iterative() {
        let mut v = json!(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(depth(&v), 10_000);
        // Take it apart without recursion so the test itself cannot overflow.
        let mut stack = vec![v];
        while let Some(Value::Array(mut l)) = stack.pop() {
            stack.append(&mut l);
        }
    }
}
