//! Shared helpers: tolerant JSON accessors, timestamps, and the label /
//! selector / container formatting that upstream's printers rely on.
//!
//! Every accessor treats a missing field, a `null`, or a value of the wrong
//! JSON type as the Go zero value, so arbitrary input can never panic.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::human_duration;

/// The value at `path`, or `None` when absent or `null`.
pub(super) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    if cur.is_null() { None } else { Some(cur) }
}

/// The string at `path`; `""` when absent or not a string.
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// The string at `path` when present (a Go `*string`).
pub(super) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            // Truncation towards zero is the intent for a float in an integer field.
            .or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// The integer at `path` when present (a Go `*int32` / `*int64`).
pub(super) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(as_int)
}

/// The integer at `path`; `0` when absent.
pub(super) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path` when present (a Go `*bool`).
pub(super) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The boolean at `path`; `false` when absent.
pub(super) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool(v, path).unwrap_or(false)
}

/// The array at `path`; empty when absent.
pub(super) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path` when present.
pub(super) fn map_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

/// Number of entries of the object or array at `path` (Go `len()` of a map
/// or slice); `0` when absent.
pub(super) fn len_at(v: &Value, path: &[&str]) -> i64 {
    let n = match get(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `metadata.name`.
pub(super) fn name(v: &Value) -> &str {
    str_at(v, &["metadata", "name"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub(super) fn is_deleting(v: &Value) -> bool {
    get(v, &["metadata", "deletionTimestamp"]).is_some()
}

/// A `metav1.Time` / `metav1.MicroTime` at `path`; `None` when absent,
/// unparseable, or Go's zero time (all of which upstream treats as zero).
pub(super) fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let s = opt_str(v, path)?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    if is_go_zero_time(&t) { None } else { Some(t) }
}

/// Seconds from the Unix epoch to Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

fn is_go_zero_time(t: &DateTime<Utc>) -> bool {
    t.timestamp() == GO_ZERO_TIME_UNIX && t.timestamp_subsec_nanos() == 0
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z).
pub(super) fn go_zero_time() -> DateTime<Utc> {
    DateTime::from_timestamp(GO_ZERO_TIME_UNIX, 0).unwrap_or_default()
}

/// Difference `a - b` with Go's saturating `time.Time.Sub` semantics.
pub(super) fn sub(a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    a.signed_duration_since(b)
}

/// Upstream's `translateTimestampSince`: `"<unknown>"` for a zero time,
/// otherwise the human duration since `t`.
pub(super) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "<unknown>".to_string(),
        Some(t) => human_duration(sub(now, t)),
    }
}

/// Age of the object (`metadata.creationTimestamp`).
pub(super) fn age(v: &Value, now: DateTime<Utc>) -> String {
    since(time_at(v, &["metadata", "creationTimestamp"]), now)
}

/// Go's `strings.ToLower` (good enough for Kubernetes kinds).
pub(super) fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Cell helpers.
pub(super) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

pub(super) fn n(v: i64) -> Value {
    Value::from(v)
}

pub(super) fn b(v: bool) -> Value {
    Value::Bool(v)
}

/// `labels.Set(m).String()`: `k=v` pairs sorted as whole strings, joined by `,`.
fn set_string(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return String::new();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `labels.FormatLabels`: like [`set_string`] but `"<none>"` when empty.
pub(super) fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let out = set_string(m);
    if out.is_empty() {
        "<none>".to_string()
    } else {
        out
    }
}

/// Reason a label selector could not be converted.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct InvalidSelector;

/// `metav1.LabelSelectorAsSelector(sel).String()`.
///
/// A nil selector (`None`) selects nothing and an empty one everything; both
/// render as `""`.
pub(super) fn selector_string(sel: Option<&Value>) -> Result<String, InvalidSelector> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let match_labels = map_at(sel, &["matchLabels"]);
    let exprs = arr_at(sel, &["matchExpressions"]);
    if match_labels.map_or(0, Map::len) + exprs.len() == 0 {
        return Ok(String::new());
    }
    // (key, rendered requirement), matchLabels first like upstream.
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = match_labels {
        for (k, v) in ml {
            let v = v.as_str().unwrap_or("");
            validate_requirement(k, &[v])?;
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for expr in exprs {
        let key = str_at(expr, &["key"]);
        let values: Vec<&str> = arr_at(expr, &["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        let rendered = match str_at(expr, &["operator"]) {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(InvalidSelector);
                }
                let op = if str_at(expr, &["operator"]) == "In" {
                    "in"
                } else {
                    "notin"
                };
                let mut sorted = values.clone();
                sorted.sort_unstable();
                format!("{key} {op} ({})", sorted.join(","))
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(InvalidSelector);
                }
                if str_at(expr, &["operator"]) == "Exists" {
                    key.to_string()
                } else {
                    format!("!{key}")
                }
            }
            _ => return Err(InvalidSelector),
        };
        validate_requirement(key, &values)?;
        reqs.push((key.to_string(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `"<error>"` for an invalid selector and
/// `"<none>"` when it renders empty.
pub(super) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Err(_) => "<error>".to_string(),
        Ok(out) if out.is_empty() => "<none>".to_string(),
        Ok(out) => out,
    }
}

fn validate_requirement(key: &str, values: &[&str]) -> Result<(), InvalidSelector> {
    if !is_qualified_name(key) || !values.iter().all(|v| is_valid_label_value(v)) {
        return Err(InvalidSelector);
    }
    Ok(())
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => {
            bytes.len() <= 63
                && is_alnum(f)
                && is_alnum(l)
                && bytes
                    .iter()
                    .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(&f), Some(&l)) => {
                    (f.is_ascii_lowercase() || f.is_ascii_digit())
                        && (l.is_ascii_lowercase() || l.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                }
                _ => false,
            }
        })
}

/// `validation.IsQualifiedName`.
fn is_qualified_name(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        [name] => is_qualified_name_part(name),
        [prefix, name] => is_dns1123_subdomain(prefix) && is_qualified_name_part(name),
        _ => false,
    }
}

/// `validation.IsValidLabelValue`.
fn is_valid_label_value(v: &str) -> bool {
    v.is_empty() || is_qualified_name_part(v)
}

/// `layoutContainerCells`: container names and images, each joined by `,`.
pub(super) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `intstr.IntOrString.String()`.
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => as_int(other).unwrap_or(0).to_string(),
    }
}

/// `net.JoinHostPort`.
pub(super) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `listWithMoreString`.
pub(super) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

/// The first non-empty string.
pub(super) fn first_non_empty<'a>(items: &[&'a str]) -> &'a str {
    items.iter().copied().find(|s| !s.is_empty()).unwrap_or("")
}

/// `sets.NewString(...).List()` joined: sorted, de-duplicated.
pub(super) fn sorted_unique(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

/// Load balancer ingress points (`ip`, else `hostname`), sorted and unique,
/// joined by `,`. The server always prints wide, so there is no truncation.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> String {
    let items = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    sorted_unique(items).join(",")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn labels_sort_as_pairs() {
        let m = json!({"a-b": "2", "a": "1", "z": ""});
        assert_eq!(format_labels(m.as_object()), "a-b=2,a=1,z=");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn selectors() {
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        let sel = json!({
            "matchLabels": {"tier": "fe"},
            "matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                {"key": "app", "operator": "Exists"},
                {"key": "zone", "operator": "In", "values": ["b"]},
            ],
        });
        assert_eq!(
            format_label_selector(Some(&sel)),
            "app,env notin (dev,prod),tier=fe,zone in (b)"
        );
        let bad_key = json!({"matchLabels": {"-bad": "x"}});
        assert_eq!(format_label_selector(Some(&bad_key)), "<error>");
        let bad_value = json!({"matchLabels": {"ok": "not valid!"}});
        assert_eq!(format_label_selector(Some(&bad_value)), "<error>");
        let empty_in = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(selector_string(Some(&empty_in)), Err(InvalidSelector));
        let prefixed = json!({"matchLabels": {"app.kubernetes.io/name": "x"}});
        assert_eq!(
            format_label_selector(Some(&prefixed)),
            "app.kubernetes.io/name=x"
        );
        let bad_prefix = json!({"matchLabels": {"Bad_Prefix/name": "x"}});
        assert_eq!(format_label_selector(Some(&bad_prefix)), "<error>");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(int_or_string(&json!(3)), "3");
        assert_eq!(int_or_string(&json!("25%")), "25%");
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
        assert_eq!(list_with_more(&[], false, 0, 3), "<unset>");
        assert_eq!(
            container_cells(&[json!({"name": "a", "image": "x"}), json!({"name": "b"})]),
            ("a,b".to_string(), "x,".to_string())
        );
        assert!(time_at(&json!({"t": "2024-01-01T00:00:00.123456Z"}), &["t"]).is_some());
        assert!(time_at(&json!({"t": null}), &["t"]).is_none());
        assert_eq!(int_at(&json!({"x": 2.9}), &["x"]), 2);
    }
}
