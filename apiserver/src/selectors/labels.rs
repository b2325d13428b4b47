//! Label selectors: requirements, matching, rendering, and conversion from
//! the `LabelSelector` JSON of API objects.

use super::*;

/// A label selector operator (`k8s.io/apimachinery/pkg/selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelOp {
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`
    NotIn,
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v`
    NotEquals,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>5` (integer comparison)
    GreaterThan,
    /// `k<5` (integer comparison)
    LessThan,
}

/// One requirement of a [`LabelSelector`]. Values parsed from a selector
/// string are sorted and de-duplicated (upstream parses them into a set);
/// values from a metav1.LabelSelector are kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: LabelOp,
    /// Values (empty for `Exists` / `DoesNotExist`).
    pub values: Vec<String>,
}

impl LabelRequirement {
    pub(super) fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Upstream `Requirement.Matches`. `lookup` returns the label value for a key.
    pub fn matches_with<'a>(&self, lookup: &impl Fn(&str) -> Option<&'a str>) -> bool {
        match self.op {
            LabelOp::In | LabelOp::Equals | LabelOp::DoubleEquals => {
                lookup(&self.key).is_some_and(|v| self.has_value(v))
            }
            LabelOp::NotIn | LabelOp::NotEquals => {
                lookup(&self.key).is_none_or(|v| !self.has_value(v))
            }
            LabelOp::Exists => lookup(&self.key).is_some(),
            LabelOp::DoesNotExist => lookup(&self.key).is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let Some(actual) = lookup(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.op == LabelOp::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == LabelOp::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            LabelOp::Exists | LabelOp::DoesNotExist => return Ok(()),
            LabelOp::Equals => "=",
            LabelOp::DoubleEquals => "==",
            LabelOp::NotEquals => "!=",
            LabelOp::In => " in ",
            LabelOp::NotIn => " notin ",
            LabelOp::GreaterThan => ">",
            LabelOp::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.op, LabelOp::In | LabelOp::NotIn);
        if set {
            f.write_str("(")?;
        }
        // Rendered sorted, without touching the stored order (upstream safeSort).
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector. The default value selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub(super) requirements: Vec<LabelRequirement>,
    pub(super) nothing: bool,
}

impl LabelSelector {
    /// Selector matching every object (`labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Selector matching no object (`labels.Nothing()`, e.g. a null metav1.LabelSelector).
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query syntax (`labels.Parse`).
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Parser::new(s)
            .parse()
            .map_err(SelectorError::InvalidLabelSelector)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    /// True when the selector does not restrict anything (upstream `Empty()`;
    /// false for [`LabelSelector::nothing`]).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Matches against `metadata.labels` (missing = no labels). Non-string
    /// label values are treated as absent.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.matches_with(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    /// Matches using an arbitrary label lookup.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| r.matches_with(&lookup))
    }

    /// Upstream `RequiresExactMatch`: the value a `=`, `==` or single-value
    /// `in` requirement on `key` pins (first requirement on that key decides).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.op, r.values.as_slice()) {
            (LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Converts a metav1.LabelSelector JSON value (`matchLabels` +
/// `matchExpressions`) like upstream `metav1.LabelSelectorAsSelector`:
/// `null` selects nothing, `{}` selects everything. Error messages are
/// upstream's (they are not prefixed; callers embed them in their own errors).
pub fn from_label_selector_json(sel: &Value) -> Result<LabelSelector, SelectorError> {
    let obj = match sel {
        Value::Null => return Ok(LabelSelector::nothing()),
        Value::Object(o) => o,
        other => {
            return Err(SelectorError::InvalidLabelSelector(format!(
                "invalid label selector: expected an object, got {other}"
            )));
        }
    };
    let bad =
        |what: &str| SelectorError::InvalidLabelSelector(format!("invalid label selector: {what}"));
    let match_labels = match obj.get("matchLabels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(bad("matchLabels must be an object")),
    };
    let match_exprs = match obj.get("matchExpressions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(_) => return Err(bad("matchExpressions must be an array")),
    };
    let mut reqs = Vec::new();
    for (k, v) in match_labels.into_iter().flatten() {
        let v = v
            .as_str()
            .ok_or_else(|| bad(&format!("matchLabels[{k}] must be a string")))?;
        reqs.push(new_requirement(k, LabelOp::Equals, vec![v.to_string()])?);
    }
    for expr in match_exprs.into_iter().flatten() {
        let e = expr
            .as_object()
            .ok_or_else(|| bad("matchExpressions items must be objects"))?;
        let key = match e.get("key") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad("matchExpressions[].key must be a string")),
        };
        let op_str = match e.get("operator") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad("matchExpressions[].operator must be a string")),
        };
        let op = match op_str {
            "In" => LabelOp::In,
            "NotIn" => LabelOp::NotIn,
            "Exists" => LabelOp::Exists,
            "DoesNotExist" => LabelOp::DoesNotExist,
            other => {
                return Err(SelectorError::InvalidLabelSelector(format!(
                    "{} is not a valid label selector operator",
                    go_quote(other)
                )));
            }
        };
        let mut values = Vec::new();
        match e.get("values") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for v in a {
                    let s = v
                        .as_str()
                        .ok_or_else(|| bad("matchExpressions[].values items must be strings"))?;
                    values.push(s.to_string());
                }
            }
            Some(_) => return Err(bad("matchExpressions[].values must be an array")),
        }
        reqs.push(new_requirement(key, op, values)?);
    }
    if reqs.is_empty() {
        return Ok(LabelSelector::everything());
    }
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector {
        requirements: reqs,
        nothing: false,
    })
}

/// Upstream `labels.NewRequirement` with no field path (as the parser and
/// `LabelSelectorAsSelector` call it). Values are stored as given.
pub(super) fn new_requirement(
    key: &str,
    op: LabelOp,
    values: Vec<String>,
) -> Result<LabelRequirement, SelectorError> {
    let mut errs = Vec::new();
    let key_errs = is_qualified_name(key);
    if !key_errs.is_empty() {
        errs.push(invalid("key", &go_quote(key), &key_errs.join("; ")));
    }
    match op {
        LabelOp::In | LabelOp::NotIn => {
            if values.is_empty() {
                errs.push(invalid(
                    "values",
                    &go_json_strings(&values),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::NotEquals => {
            if values.len() != 1 {
                errs.push(invalid(
                    "values",
                    &go_json_strings(&values),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        LabelOp::Exists | LabelOp::DoesNotExist => {
            if !values.is_empty() {
                errs.push(invalid(
                    "values",
                    &go_json_strings(&values),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        LabelOp::GreaterThan | LabelOp::LessThan => {
            if values.len() != 1 {
                errs.push(invalid(
                    "values",
                    &go_json_strings(&values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(invalid(
                        &format!("values[{i}]"),
                        &go_quote(v),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let verrs = is_valid_label_value(v);
        if !verrs.is_empty() {
            errs.push(invalid(
                &format!("values[{i}][{key}]"),
                &go_quote(v),
                &verrs.join("; "),
            ));
        }
    }
    if let Some(msg) = aggregate(errs) {
        return Err(SelectorError::InvalidLabelSelector(msg));
    }
    Ok(LabelRequirement {
        key: key.to_string(),
        op,
        values,
    })
}

/// `field.Invalid(path, value, detail).Error()`.
pub(super) fn invalid(path: &str, rendered_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {rendered_value}: {detail}")
}

/// `utilerrors.NewAggregate(errs).Error()`: one error as is, several
/// de-duplicated and bracketed.
pub(super) fn aggregate(errs: Vec<String>) -> Option<String> {
    match errs.len() {
        0 => None,
        1 => errs.into_iter().next(),
        _ => {
            let mut seen: Vec<String> = Vec::new();
            for e in errs {
                if !seen.contains(&e) {
                    seen.push(e);
                }
            }
            if seen.len() == 1 {
                seen.into_iter().next()
            } else {
                Some(format!("[{}]", seen.join(", ")))
            }
        }
    }
}
