//! Label and field selectors with kube-apiserver v1.34 wire semantics.
//!
//! Pure logic: parsing (`labelSelector` / `fieldSelector` query parameters),
//! matching, and the per-kind field-label support of the built-in resources.
//! Every [`SelectorError`] maps to a `400 BadRequest` Status whose `message`
//! is the error's `Display` text, exactly as upstream renders it.
//!
//! Order of checks in upstream's list/watch handler: the label selector is
//! parsed, then the field selector is parsed (both while decoding the query,
//! so a label error wins), then each field requirement is run through the
//! kind's field-label conversion in sorted term order; the first failure is
//! returned. See [`FieldSelector::validate_for`].

use std::fmt;

use serde_json::{Map, Value};

use crate::validation::names::{go_quote, is_qualified_name, is_valid_label_value};

/// A selector error; `Display` is the exact upstream Status message (HTTP 400,
/// reason `BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The `labelSelector` string (or a metav1.LabelSelector) is invalid.
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// The `fieldSelector` string is syntactically invalid.
    #[error("{0}")]
    InvalidFieldSelector(String),
    /// The resource does not support selecting on `field`; `message` is the
    /// kind-specific upstream text (e.g. `field label not supported: spec.foo`,
    /// or `"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"`).
    #[error("{message}")]
    UnsupportedField {
        /// The field label as the client sent it.
        field: String,
        /// Upstream's message.
        message: String,
    },
}

impl SelectorError {
    /// HTTP status code upstream returns for this error.
    pub fn code(&self) -> u16 {
        400
    }

    /// Status `reason` upstream returns for this error.
    pub fn reason(&self) -> &'static str {
        "BadRequest"
    }
}

// ===========================================================================
// Label selectors
// ===========================================================================

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
    fn has_value(&self, v: &str) -> bool {
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
    requirements: Vec<LabelRequirement>,
    nothing: bool,
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
fn new_requirement(
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
fn invalid(path: &str, rendered_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {rendered_value}: {detail}")
}

/// `utilerrors.NewAggregate(errs).Error()`: one error as is, several
/// de-duplicated and bracketed.
fn aggregate(errs: Vec<String>) -> Option<String> {
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

// ---------------------------------------------------------------------------
// Label selector lexer/parser (behaviourally equivalent to labels.Parse).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    Eos,
    ClosedPar,
    Comma,
    Bang,
    DoubleEquals,
    Equals,
    Gt,
    Ident,
    In,
    Lt,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::Bang,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::Gt,
        b"in" => Tok::In,
        b"<" => Tok::Lt,
        b"!=" => Tok::NotEquals,
        b"notin" => Tok::NotIn,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Next byte, or 0 at the end (a NUL byte in the input reads as 0 too,
    /// exactly like upstream's lexer).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut ch = self.read();
        while is_ws(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Tok::Eos, String::new());
        }
        self.unread();
        if is_special(ch) {
            self.scan_special()
        } else {
            self.scan_ident()
        }
    }

    fn scan_ident(&mut self) -> (Tok, String) {
        let mut buf = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_ws(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
        }
        let lit = String::from_utf8_lossy(&buf).into_owned();
        match literal_token(&buf) {
            Some(t) => (t, lit),
            None => (Tok::Ident, lit),
        }
    }

    fn scan_special(&mut self) -> (Tok, String) {
        let mut buf = Vec::new();
        let mut last: Option<(Tok, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            buf.push(ch);
            if let Some(t) = literal_token(&buf) {
                last = Some((t, String::from_utf8_lossy(&buf).into_owned()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        last.unwrap_or_else(|| {
            (
                Tok::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buf)
                ),
            )
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        let mut lx = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lx.lex();
            let end = item.0 == Tok::Eos;
            items.push(item);
            if end {
                break;
            }
        }
        Parser { items, pos: 0 }
    }

    fn adjust(tok: Tok, ctx: Ctx) -> Tok {
        if ctx == Ctx::Values && matches!(tok, Tok::In | Tok::NotIn) {
            Tok::Ident
        } else {
            tok
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        match self.items.get(self.pos) {
            Some((t, l)) => (Self::adjust(*t, ctx), l.clone()),
            None => (Tok::Eos, String::new()),
        }
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.lookahead(ctx);
        self.pos += 1;
        r
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Ident | Tok::Bang => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::Eos => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Ident && t2 != Tok::Bang {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::Eos => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (LabelOp::Exists | LabelOp::DoesNotExist)) = op {
            return new_requirement(&key, op, Vec::new()).map_err(|e| e.to_string());
        }
        let op = self.parse_operator()?;
        let mut values = match op {
            LabelOp::In | LabelOp::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // Upstream hands NewRequirement the sorted set (error indexes follow it).
        values.sort();
        values.dedup();
        new_requirement(&key, op, values).map_err(|e| e.to_string())
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOp>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::Bang {
            op = Some(LabelOp::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = is_qualified_name(&lit);
        if !errs.is_empty() {
            // Upstream validates with a nil field path, which prints as "<nil>".
            return Err(invalid("<nil>", &go_quote(&lit), &errs.join("; ")));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::Eos || next == Tok::Comma) && op.is_none() {
            op = Some(LabelOp::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<LabelOp, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => LabelOp::In,
            Tok::Equals => LabelOp::Equals,
            Tok::DoubleEquals => LabelOp::DoubleEquals,
            Tok::Gt => LabelOp::GreaterThan,
            Tok::Lt => LabelOp::LessThan,
            Tok::NotIn => LabelOp::NotIn,
            Tok::NotEquals => LabelOp::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Ident | Tok::Comma => {
                let set = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        let insert = |set: &mut Vec<String>, v: String| {
            if !set.contains(&v) {
                set.push(v);
            }
        };
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Ident => {
                    insert(&mut set, lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        insert(&mut set, String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        insert(&mut set, String::new());
                        return Ok(set);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        insert(&mut set, String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::Eos || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ===========================================================================
// Field selectors
// ===========================================================================

/// Field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `f=v` or `f==v`
    Equals,
    /// `f!=v`
    NotEquals,
}

/// One term of a [`FieldSelector`]; `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Field label as sent by the client (not trimmed, not unescaped).
    pub field: String,
    /// Operator.
    pub op: FieldOp,
    /// Unescaped value.
    pub value: String,
}

impl FieldRequirement {
    /// Upstream term matching: a missing field reads as "".
    pub fn matches_value(&self, actual: Option<&str>) -> bool {
        let actual = actual.unwrap_or("");
        match self.op {
            FieldOp::Equals => actual == self.value,
            FieldOp::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FieldOp::Equals => "=",
            FieldOp::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector (`fields.ParseSelector`). Terms are kept in
/// upstream's order (sorted by their raw text).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax: comma separated `f=v`, `f==v`,
    /// `f!=v`; `\,` `\=` `\\` escapes in values; no whitespace trimming.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::InvalidFieldSelector(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_field_value(rhs).map_err(SelectorError::InvalidFieldSelector)?;
            // Upstream's (identity) transform turns a term with an empty field
            // and an empty value into "everything", i.e. drops it.
            if lhs.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                op,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches using a field lookup (`None` reads as "").
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(lookup(&r.field).as_deref()))
    }

    /// Upstream `RequiresExactMatch`: the value of the first `=`/`==` term on `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }

    /// Runs every term through the kind's field-label conversion (in term
    /// order) like upstream's list/watch handler; the first unsupported field
    /// is the error (400). `version` matters only for the ResourceSlice message.
    pub fn validate_for(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Result<(), SelectorError> {
        for r in &self.requirements {
            convert_field_label(group, version, resource, &r.field)?;
        }
        Ok(())
    }

    /// Matches a built-in object (JSON) using [`field_value`].
    pub fn matches_object(
        &self,
        group: &str,
        resource: &str,
        obj: &Value,
    ) -> Result<bool, SelectorError> {
        for r in &self.requirements {
            let v = field_value(group, resource, obj, &r.field)?;
            if !r.matches_value(v.as_deref()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl fmt::Display for FieldSelector {
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

/// Splits on commas not preceded by an (unescaped) backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Finds the first operator position; at each position `!=`, then `==`, then `=`.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (tok, op) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if rest.starts_with(tok) {
                return Some((&term[..i], op, &term[i + tok.len()..]));
            }
        }
    }
    None
}

/// `fields.EscapeValue`.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.UnescapeValue`; errors carry upstream's messages.
fn unescape_field_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream formats the rune with %v, i.e. as its decimal code point.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                ));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

// ===========================================================================
// Per-kind field labels
// ===========================================================================

/// How a kind's conversion function words a rejection.
#[derive(Clone, Copy)]
enum RejectStyle {
    /// `field label not supported: <label>`
    NotSupported,
    /// `field label "<label>" not supported for Job`
    Job,
    /// `field label not supported for resource.k8s.io/<version>, Kind=ResourceSlice: <label>`
    ResourceSlice,
}

/// (accepted label, internal field it maps to)
type LabelMap = &'static [(&'static str, &'static str)];

const POD_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.podIPs", "status.podIPs"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
    // Backwards compatibility with old v1 clients.
    ("spec.host", "spec.nodeName"),
];
const NODE_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.unschedulable", "spec.unschedulable"),
];
const RC_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.replicas", "status.replicas"),
];
const CORE_EVENT_FIELDS: LabelMap = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
const EVENTS_V1_FIELDS: LabelMap = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
const NAMESPACE_FIELDS: LabelMap = &[
    ("status.phase", "status.phase"),
    ("metadata.name", "metadata.name"),
];
const SECRET_FIELDS: LabelMap = &[
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];
const SERVICE_FIELDS: LabelMap = &[
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
    ("spec.clusterIP", "spec.clusterIP"),
    ("spec.type", "spec.type"),
];
const JOB_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.successful", "status.successful"),
];
const SIGNER_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
];
const PCR_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
    ("spec.podName", "spec.podName"),
    ("spec.nodeName", "spec.nodeName"),
];
const RESOURCE_SLICE_FIELDS: LabelMap = &[
    ("metadata.name", "metadata.name"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.driver", "spec.driver"),
];

/// The kinds that register a field-label conversion function in v1.34.
/// Everything else uses `runtime.DefaultMetaV1FieldSelectorConversion`.
/// (Notably apps/v1 ReplicaSet registers none, so only metadata.* work there.)
fn kind_fields(group: &str, resource: &str) -> Option<(LabelMap, RejectStyle)> {
    use RejectStyle::*;
    Some(match (group, resource) {
        ("", "pods") => (POD_FIELDS, NotSupported),
        ("", "nodes") => (NODE_FIELDS, NotSupported),
        ("", "replicationcontrollers") => (RC_FIELDS, NotSupported),
        ("", "events") => (CORE_EVENT_FIELDS, NotSupported),
        ("", "namespaces") => (NAMESPACE_FIELDS, NotSupported),
        ("", "secrets") => (SECRET_FIELDS, NotSupported),
        ("", "services") => (SERVICE_FIELDS, NotSupported),
        ("events.k8s.io", "events") => (EVENTS_V1_FIELDS, NotSupported),
        ("batch", "jobs") => (JOB_FIELDS, Job),
        ("certificates.k8s.io", "certificatesigningrequests" | "clustertrustbundles") => {
            (SIGNER_FIELDS, NotSupported)
        }
        ("certificates.k8s.io", "podcertificaterequests") => (PCR_FIELDS, NotSupported),
        ("resource.k8s.io", "resourceslices") => (RESOURCE_SLICE_FIELDS, ResourceSlice),
        _ => return None,
    })
}

/// Upstream field-label conversion for a built-in resource: returns the
/// internal field name the label maps to (e.g. `spec.host` → `spec.nodeName`,
/// events.k8s.io `regarding.kind` → `involvedObject.kind`), or the exact
/// upstream rejection. `version` is only used in the ResourceSlice message.
pub fn convert_field_label(
    group: &str,
    version: &str,
    resource: &str,
    field: &str,
) -> Result<&'static str, SelectorError> {
    let unsupported = |message: String| SelectorError::UnsupportedField {
        field: field.to_string(),
        message,
    };
    match kind_fields(group, resource) {
        None => match field {
            "metadata.name" => Ok("metadata.name"),
            "metadata.namespace" => Ok("metadata.namespace"),
            _ => Err(unsupported(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(field)
            ))),
        },
        Some((map, style)) => match map.iter().find(|(label, _)| *label == field) {
            Some((_, internal)) => Ok(internal),
            None => Err(unsupported(match style {
                RejectStyle::NotSupported => format!("field label not supported: {field}"),
                RejectStyle::Job => {
                    format!("field label {} not supported for Job", go_quote(field))
                }
                RejectStyle::ResourceSlice => format!(
                    "field label not supported for resource.k8s.io/{version}, Kind=ResourceSlice: {field}"
                ),
            })),
        },
    }
}

/// The value of field label `field` of a built-in object, as upstream's
/// selectable-field set renders it (bools `true`/`false`, integers in decimal,
/// missing strings ""). `Ok(None)` means the label is accepted but upstream
/// exposes no value for it (e.g. pods `status.podIPs`), which matches as "".
/// Unsupported labels give the exact upstream error. The version used for
/// the ResourceSlice message is taken from the object's `apiVersion`.
pub fn field_value(
    group: &str,
    resource: &str,
    obj: &Value,
    field: &str,
) -> Result<Option<String>, SelectorError> {
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|av| av.rsplit('/').next().unwrap_or(av))
        .filter(|v| !v.is_empty())
        .unwrap_or("v1");
    let internal = convert_field_label(group, version, resource, field)?;
    Ok(internal_field_value(group, resource, obj, internal))
}

fn internal_field_value(
    group: &str,
    resource: &str,
    obj: &Value,
    internal: &str,
) -> Option<String> {
    match internal {
        "metadata.name" => return Some(str_at(obj, &["metadata", "name"])),
        "metadata.namespace" => return Some(str_at(obj, &["metadata", "namespace"])),
        _ => {}
    }
    let v = match (group, resource) {
        ("", "pods") => match internal {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.restartPolicy" => str_at(obj, &["spec", "restartPolicy"]),
            "spec.schedulerName" => str_at(obj, &["spec", "schedulerName"]),
            "spec.serviceAccountName" => {
                // The deprecated `serviceAccount` alias applies when the new field is empty.
                let sa = str_at(obj, &["spec", "serviceAccountName"]);
                if sa.is_empty() {
                    str_at(obj, &["spec", "serviceAccount"])
                } else {
                    sa
                }
            }
            "spec.hostNetwork" => bool_at(obj, &["spec", "hostNetwork"]),
            "status.phase" => str_at(obj, &["status", "phase"]),
            "status.podIP" => {
                // v1 status.podIP is authoritative; else the first podIPs entry.
                let ip = str_at(obj, &["status", "podIP"]);
                if ip.is_empty() {
                    path(obj, &["status", "podIPs"])
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .map(|first| str_at(first, &["ip"]))
                        .unwrap_or_default()
                } else {
                    ip
                }
            }
            "status.nominatedNodeName" => str_at(obj, &["status", "nominatedNodeName"]),
            // Accepted by the conversion but absent from the selectable set.
            _ => return None,
        },
        ("", "nodes") => match internal {
            "spec.unschedulable" => bool_at(obj, &["spec", "unschedulable"]),
            _ => return None,
        },
        ("", "replicationcontrollers") => match internal {
            "status.replicas" => int_at(obj, &["status", "replicas"]),
            _ => return None,
        },
        ("", "events") | ("events.k8s.io", "events") => event_field(obj, internal)?,
        ("", "namespaces") => match internal {
            "status.phase" => str_at(obj, &["status", "phase"]),
            _ => return None,
        },
        ("", "secrets") => match internal {
            "type" => str_at(obj, &["type"]),
            _ => return None,
        },
        ("", "services") => match internal {
            "spec.clusterIP" => str_at(obj, &["spec", "clusterIP"]),
            "spec.type" => str_at(obj, &["spec", "type"]),
            _ => return None,
        },
        ("batch", "jobs") => match internal {
            "status.successful" => int_at(obj, &["status", "succeeded"]),
            _ => return None,
        },
        ("certificates.k8s.io", _) => match internal {
            "spec.signerName" => str_at(obj, &["spec", "signerName"]),
            "spec.podName" => str_at(obj, &["spec", "podName"]),
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            _ => return None,
        },
        ("resource.k8s.io", "resourceslices") => match internal {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.driver" => str_at(obj, &["spec", "driver"]),
            _ => return None,
        },
        _ => return None,
    };
    Some(v)
}

/// Event selectable fields; accepts both the core/v1 shape (`involvedObject`,
/// `reportingComponent`, `source.component`) and the events.k8s.io/v1 shape
/// (`regarding`, `reportingController`, `deprecatedSource.component`).
fn event_field(obj: &Value, internal: &str) -> Option<String> {
    let first_non_empty = |paths: &[&[&str]]| {
        paths
            .iter()
            .map(|p| str_at(obj, p))
            .find(|s| !s.is_empty())
            .unwrap_or_default()
    };
    if let Some(sub) = internal.strip_prefix("involvedObject.") {
        return Some(first_non_empty(&[
            &["involvedObject", sub],
            &["regarding", sub],
        ]));
    }
    Some(match internal {
        "reason" => str_at(obj, &["reason"]),
        "type" => str_at(obj, &["type"]),
        "reportingComponent" => {
            first_non_empty(&[&["reportingComponent"], &["reportingController"]])
        }
        "source" => first_non_empty(&[
            &["source", "component"],
            &["deprecatedSource", "component"],
            &["reportingComponent"],
            &["reportingController"],
        ]),
        _ => return None,
    })
}

/// Field-label conversion for custom resources (apiextensions `crConverter`):
/// `metadata.name`, `metadata.namespace` (namespaced only) and the CRD
/// version's `selectableFields` (JSON paths without the leading dot).
pub fn convert_custom_resource_field_label(
    cluster_scoped: bool,
    selectable_fields: &[&str],
    field: &str,
) -> Result<(), SelectorError> {
    if field == "metadata.name"
        || (!cluster_scoped && field == "metadata.namespace")
        || selectable_fields.contains(&field)
    {
        return Ok(());
    }
    Err(SelectorError::UnsupportedField {
        field: field.to_string(),
        message: format!("field label not supported: {field}"),
    })
}

/// Value of a custom resource selectable field (`fmt.Sprint` of the value at
/// the dotted path; missing or null → "").
pub fn custom_resource_field_value(obj: &Value, field: &str) -> String {
    let segs: Vec<&str> = field.split('.').collect();
    match path(obj, &segs) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn path<'a>(obj: &'a Value, segs: &[&str]) -> Option<&'a Value> {
    segs.iter().try_fold(obj, |v, s| v.get(*s))
}

fn str_at(obj: &Value, segs: &[&str]) -> String {
    path(obj, segs)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn bool_at(obj: &Value, segs: &[&str]) -> String {
    path(obj, segs)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn int_at(obj: &Value, segs: &[&str]) -> String {
    match path(obj, segs) {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{}", f.trunc() as i64),
            _ => "0".to_string(),
        },
        _ => "0".to_string(),
    }
}

// ===========================================================================
// Go formatting helpers
// ===========================================================================

/// Go `encoding/json` rendering of a `[]string` (nil/empty renders `null`,
/// matching the `append([]string(nil), ...)` upstream passes as the bad value).
fn go_json_strings(values: &[String]) -> String {
    if values.is_empty() {
        return "null".to_string();
    }
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0C}' => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const QNAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn lerr(s: &str) -> String {
        match LabelSelector::parse(s) {
            Err(e) => e.to_string(),
            Ok(sel) => panic!("expected error for {s:?}, got {sel:?}"),
        }
    }

    fn ferr(s: &str) -> String {
        match FieldSelector::parse(s) {
            Err(e) => e.to_string(),
            Ok(sel) => panic!("expected error for {s:?}, got {sel:?}"),
        }
    }

    #[test]
    fn label_parse_valid_forms() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            (" x = a , y ", "x=a,y"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("!x", "!x"),
            ("x", "x"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x=", "x="),
            ("x>1,y<2", "x>1,y<2"),
            ("example.com/a-b_c.d=Foo", "example.com/a-b_c.d=Foo"),
            ("in in (in)", "in in (in)"),
            ("z=1,a=2", "a=2,z=1"),
            ("\tx\n=\ra", "x=a"),
        ];
        for (input, rendered) in cases {
            match LabelSelector::parse(input) {
                Ok(sel) => assert_eq!(sel.to_string(), rendered, "{input:?}"),
                Err(e) => panic!("{input:?}: {e}"),
            }
        }
        assert!(
            LabelSelector::parse("  ")
                .map(|s| s.is_empty())
                .unwrap_or(false)
        );
    }

    #[test]
    fn label_parse_errors() {
        assert_eq!(lerr("x=a,"), "found '', expected: identifier after ','");
        assert_eq!(
            lerr(",x"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(lerr("x=a y"), "found 'y', expected: ',' or 'end of string'");
        assert_eq!(
            lerr("x y"),
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            lerr("x in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            lerr("x in (a"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            lerr("x in (=)"),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(
            lerr("x in (a,="),
            "unable to parse requirement: found '=', expected: ',', or identifier"
        );
        assert_eq!(
            lerr("x=(a)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            lerr("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(lerr("!x=a"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            lerr("x===a"),
            "unable to parse requirement: found '=', expected: identifier"
        );
        assert_eq!(lerr("x=a b"), "found 'b', expected: ',' or 'end of string'");
        assert_eq!(
            lerr("a/b/c=d"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(
            lerr("-x"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {QNAME_MSG}")
        );
        assert_eq!(
            lerr("x=a@b"),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"a@b\": {LABEL_VALUE_MSG}"
            )
        );
        assert_eq!(
            lerr("x in (-a,-b)"),
            format!(
                "unable to parse requirement: [values[0][x]: Invalid value: \"-a\": {LABEL_VALUE_MSG}, values[1][x]: Invalid value: \"-b\": {LABEL_VALUE_MSG}]"
            )
        );
        assert_eq!(
            lerr("x>a"),
            format!(
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
            )
        );
        assert_eq!(
            lerr(&format!("x={}", "a".repeat(64))),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"{}\": must be no more than 63 characters",
                "a".repeat(64)
            )
        );
        // Negative numbers are not valid label values.
        assert_eq!(
            lerr("y<-2"),
            format!(
                "unable to parse requirement: values[0][y]: Invalid value: \"-2\": {LABEL_VALUE_MSG}"
            )
        );
        // A NUL byte at the start of a token ends the input, as upstream's lexer does.
        assert_eq!(lerr("a=b,\0"), "found '', expected: identifier after ','");
        assert_eq!(
            LabelSelector::parse("\0a=b").map(|s| s.is_empty()),
            Ok(true)
        );
        let e = LabelSelector::parse("x=(").err();
        assert_eq!(e.as_ref().map(SelectorError::code), Some(400));
    }

    #[test]
    fn label_matching() {
        let ls = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let m = |s: &str| {
            LabelSelector::parse(s)
                .map(|sel| sel.matches(Some(&ls)))
                .unwrap_or(false)
        };
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("missing!=x"));
        assert!(m("missing notin (a)"));
        assert!(!m("missing in (a)"));
        assert!(m("app in (db,web)"));
        assert!(!m("app notin (db,web)"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>4"));
        assert!(!m("n>5"));
        assert!(m("n<6"));
        assert!(!m("app>1"));
        assert!(!m("missing"));
        let sel = LabelSelector::parse("missing!=x,!other").ok();
        assert_eq!(sel.map(|s| s.matches(None)), Some(true));
        let sel = LabelSelector::parse("a=").ok();
        assert_eq!(sel.as_ref().map(|s| s.matches(None)), Some(false));
        assert_eq!(
            sel.map(|s| s.matches(Some(&labels(json!({"a": ""}))))),
            Some(true)
        );
    }

    #[test]
    fn label_selector_json() {
        let ls = labels(json!({"app": "web", "env": "prod"}));
        let conv = |v: Value| from_label_selector_json(&v);
        let sel = conv(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "gone", "operator": "DoesNotExist"}
            ]
        }));
        assert_eq!(sel.as_ref().map(|s| s.matches(Some(&ls))), Ok(true));
        assert_eq!(
            sel.map(|s| s.to_string()),
            Ok("app=web,env in (prod,staging),!gone".to_string())
        );
        assert_eq!(conv(Value::Null).map(|s| s.matches(Some(&ls))), Ok(false));
        assert_eq!(conv(json!({})).map(|s| s.is_empty()), Ok(true));
        assert_eq!(
            conv(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}))
                .err()
                .map(|e| e.to_string()),
            Some("\"Foo\" is not a valid label selector operator".to_string())
        );
        assert_eq!(
            conv(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})).err().map(|e| e.to_string()),
            Some("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".to_string())
        );
        assert_eq!(
            conv(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]}))
                .err()
                .map(|e| e.to_string()),
            Some("values: Invalid value: [\"x\",\"y\"]: values set must be empty for exists and does not exist".to_string())
        );
        assert_eq!(
            go_json_strings(&["<a&\"".to_string()]),
            "[\"\\u003ca\\u0026\\\"\"]"
        );
        assert_eq!(
            conv(json!({"matchLabels": {"-bad": "ok"}}))
                .err()
                .map(|e| e.to_string()),
            Some(format!("key: Invalid value: \"-bad\": {QNAME_MSG}"))
        );
    }

    #[test]
    fn field_parse() {
        let fs = FieldSelector::parse("status.phase!=Running,spec.nodeName=n1").ok();
        let reqs: Vec<String> = fs
            .as_ref()
            .map(|f| f.requirements().iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        // Terms are sorted by raw text.
        assert_eq!(reqs, vec!["spec.nodeName=n1", "status.phase!=Running"]);
        let fs = FieldSelector::parse(r"a==x\,y\=z\\w").ok();
        let r = fs.as_ref().and_then(|f| f.requirements().first().cloned());
        assert_eq!(
            r,
            Some(FieldRequirement {
                field: "a".into(),
                op: FieldOp::Equals,
                value: r"x,y=z\w".into()
            })
        );
        assert_eq!(fs.map(|f| f.to_string()), Some(r"a=x\,y\=z\\w".to_string()));
        assert_eq!(FieldSelector::parse("").map(|f| f.is_empty()), Ok(true));
        assert_eq!(FieldSelector::parse(",,").map(|f| f.is_empty()), Ok(true));
        let sp = FieldSelector::parse("metadata.name = x").ok();
        assert_eq!(
            sp.and_then(|f| f
                .requirements()
                .first()
                .map(|r| (r.field.clone(), r.value.clone()))),
            Some(("metadata.name ".to_string(), " x".to_string()))
        );
        assert_eq!(
            FieldSelector::parse("a=")
                .ok()
                .and_then(|f| f.requirements().first().map(|r| r.value.clone())),
            Some(String::new())
        );
    }

    #[test]
    fn field_parse_errors() {
        assert_eq!(
            ferr("foo"),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            ferr("b=1,foo"),
            "invalid selector: 'b=1,foo'; can't understand 'foo'"
        );
        assert_eq!(
            ferr("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            ferr(r"a=b\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            ferr(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
    }

    #[test]
    fn field_matching() {
        let fs = FieldSelector::parse("a=1,b!=2,c=").ok();
        let lookup = |f: &str| match f {
            "a" => Some("1".to_string()),
            "b" => Some("3".to_string()),
            _ => None,
        };
        assert_eq!(fs.as_ref().map(|f| f.matches(lookup)), Some(true));
        assert_eq!(fs.as_ref().map(|f| f.matches(|_| None)), Some(false));
        assert_eq!(
            FieldSelector::parse("metadata.name=x,metadata.name!=y")
                .ok()
                .and_then(|f| f.requires_exact_match("metadata.name").map(str::to_string)),
            Some("x".to_string())
        );
    }

    fn fv(group: &str, resource: &str, obj: &Value, field: &str) -> Result<Option<String>, String> {
        field_value(group, resource, obj, field).map_err(|e| e.to_string())
    }

    #[test]
    fn pod_fields() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "serviceAccount": "legacy", "hostNetwork": true, "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
        });
        assert_eq!(fv("", "pods", &pod, "spec.nodeName"), Ok(Some("n1".into())));
        assert_eq!(fv("", "pods", &pod, "spec.host"), Ok(Some("n1".into())));
        assert_eq!(
            fv("", "pods", &pod, "spec.hostNetwork"),
            Ok(Some("true".into()))
        );
        assert_eq!(
            fv("", "pods", &pod, "spec.serviceAccountName"),
            Ok(Some("legacy".into()))
        );
        assert_eq!(
            fv("", "pods", &pod, "spec.schedulerName"),
            Ok(Some(String::new()))
        );
        assert_eq!(
            fv("", "pods", &pod, "status.podIP"),
            Ok(Some("10.0.0.1".into()))
        );
        assert_eq!(fv("", "pods", &pod, "status.podIPs"), Ok(None));
        assert_eq!(
            fv("", "pods", &pod, "metadata.namespace"),
            Ok(Some("ns".into()))
        );
        assert_eq!(
            fv("", "pods", &pod, "spec.foo"),
            Err("field label not supported: spec.foo".into())
        );
        let empty = json!({});
        assert_eq!(
            fv("", "pods", &empty, "spec.hostNetwork"),
            Ok(Some("false".into()))
        );
        let sel = FieldSelector::parse("spec.host=n1,status.phase!=Failed").ok();
        assert_eq!(
            sel.map(|s| s.matches_object("", "pods", &pod)),
            Some(Ok(true))
        );
    }

    #[test]
    fn other_core_fields() {
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert_eq!(
            fv("", "nodes", &node, "spec.unschedulable"),
            Ok(Some("true".into()))
        );
        assert_eq!(
            fv("", "nodes", &node, "metadata.namespace"),
            Err("field label not supported: metadata.namespace".into())
        );
        let ns = json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}});
        assert_eq!(
            fv("", "namespaces", &ns, "status.phase"),
            Ok(Some("Active".into()))
        );
        let rc = json!({"status": {"replicas": 3}});
        assert_eq!(
            fv("", "replicationcontrollers", &rc, "status.replicas"),
            Ok(Some("3".into()))
        );
        assert_eq!(
            fv("", "replicationcontrollers", &json!({}), "status.replicas"),
            Ok(Some("0".into()))
        );
        let secret = json!({"type": "Opaque"});
        assert_eq!(
            fv("", "secrets", &secret, "type"),
            Ok(Some("Opaque".into()))
        );
        let svc = json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}});
        assert_eq!(
            fv("", "services", &svc, "spec.clusterIP"),
            Ok(Some("None".into()))
        );
        assert_eq!(
            fv("", "services", &svc, "spec.type"),
            Ok(Some("ClusterIP".into()))
        );
        assert_eq!(
            fv("", "configmaps", &svc, "data.foo"),
            Err("\"data.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
        );
        assert_eq!(
            fv(
                "",
                "configmaps",
                &json!({"metadata": {"name": "c"}}),
                "metadata.name"
            ),
            Ok(Some("c".into()))
        );
    }

    #[test]
    fn event_fields() {
        let core = json!({
            "apiVersion": "v1",
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Started", "type": "Normal", "reportingComponent": "kubelet",
            "source": {"component": ""}
        });
        assert_eq!(
            fv("", "events", &core, "involvedObject.kind"),
            Ok(Some("Pod".into()))
        );
        assert_eq!(
            fv("", "events", &core, "source"),
            Ok(Some("kubelet".into()))
        );
        assert_eq!(
            fv("", "events", &core, "reportingComponent"),
            Ok(Some("kubelet".into()))
        );
        assert_eq!(
            fv("", "events", &core, "regarding.kind"),
            Err("field label not supported: regarding.kind".into())
        );
        let ev1 = json!({
            "apiVersion": "events.k8s.io/v1",
            "regarding": {"kind": "Node", "name": "n"},
            "reportingController": "ctl", "deprecatedSource": {"component": "src"}
        });
        assert_eq!(
            fv("events.k8s.io", "events", &ev1, "regarding.kind"),
            Ok(Some("Node".into()))
        );
        assert_eq!(
            fv("events.k8s.io", "events", &ev1, "reportingController"),
            Ok(Some("ctl".into()))
        );
        assert_eq!(
            fv("events.k8s.io", "events", &ev1, "source"),
            Err("field label not supported: source".into())
        );
        assert_eq!(
            fv("events.k8s.io", "events", &ev1, "involvedObject.kind"),
            Err("field label not supported: involvedObject.kind".into())
        );
    }

    #[test]
    fn group_fields() {
        let job = json!({"status": {"succeeded": 2}});
        assert_eq!(
            fv("batch", "jobs", &job, "status.successful"),
            Ok(Some("2".into()))
        );
        assert_eq!(
            fv("batch", "jobs", &job, "status.succeeded"),
            Err("field label \"status.succeeded\" not supported for Job".into())
        );
        assert_eq!(
            fv("apps", "replicasets", &job, "status.replicas"),
            Err("\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
        );
        let csr = json!({"spec": {"signerName": "kubernetes.io/kubelet-serving"}});
        assert_eq!(
            fv(
                "certificates.k8s.io",
                "certificatesigningrequests",
                &csr,
                "spec.signerName"
            ),
            Ok(Some("kubernetes.io/kubelet-serving".into()))
        );
        assert_eq!(
            fv(
                "certificates.k8s.io",
                "certificatesigningrequests",
                &csr,
                "metadata.namespace"
            ),
            Err("field label not supported: metadata.namespace".into())
        );
        let slice = json!({"apiVersion": "resource.k8s.io/v1beta2", "spec": {"driver": "d", "nodeName": null}});
        assert_eq!(
            fv("resource.k8s.io", "resourceslices", &slice, "spec.nodeName"),
            Ok(Some(String::new()))
        );
        assert_eq!(
            fv("resource.k8s.io", "resourceslices", &slice, "spec.pool.name"),
            Err("field label not supported for resource.k8s.io/v1beta2, Kind=ResourceSlice: spec.pool.name".into())
        );
        let fs = FieldSelector::parse("spec.foo=1,status.bar=2").ok();
        assert_eq!(
            fs.map(|f| f.validate_for("", "v1", "pods").map_err(|e| e.to_string())),
            Some(Err("field label not supported: spec.foo".to_string()))
        );
    }

    #[test]
    fn custom_resources() {
        assert!(convert_custom_resource_field_label(false, &["spec.color"], "spec.color").is_ok());
        assert!(convert_custom_resource_field_label(false, &[], "metadata.namespace").is_ok());
        assert_eq!(
            convert_custom_resource_field_label(true, &[], "metadata.namespace")
                .map_err(|e| e.to_string()),
            Err("field label not supported: metadata.namespace".to_string())
        );
        let obj = json!({"spec": {"color": "red", "size": 3, "on": false}});
        assert_eq!(custom_resource_field_value(&obj, "spec.color"), "red");
        assert_eq!(custom_resource_field_value(&obj, "spec.size"), "3");
        assert_eq!(custom_resource_field_value(&obj, "spec.on"), "false");
        assert_eq!(custom_resource_field_value(&obj, "spec.none"), "");
    }
}
