//! Content negotiation: which form and encoding a response takes, chosen from
//! `Accept` as upstream's `negotiation` package does, and decoding request
//! bodies.
//!
//! Upstream parses `Accept` with goautoneg (clauses ordered by `q`, then by
//! specificity, insertion-sort stable for equal keys) and, for each clause in
//! turn, tries the server's media types in their fixed order (JSON, YAML,
//! protobuf). A clause is usable when its parameters are: `as`/`g`/`v` ask for
//! a transformed form (`Table` only in JSON or YAML; `PartialObjectMetadata`
//! and `PartialObjectMetadataList` in any encoding), `stream` must be `watch`
//! on an encoding that streams, `sv` must name the meta version. A plain object
//! in protobuf is only possible for kinds that have a protobuf message; for the
//! others (custom resources) the protobuf clause is skipped, exactly as
//! upstream's CRD handler leaves protobuf out of its standard serializers, so
//! [`Output`] carries what the header selects in that case too.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::api_error::{ApiError, ApiResult};

/// The largest request body accepted (upstream's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Media types the server can produce, in upstream's order (also the order
/// its 406 message lists them in).
pub const SERVED_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    crate::protobuf::CONTENT_TYPE,
];

/// The shape of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The object or list itself.
    Object,
    Table,
    PartialObjectMetadata,
    PartialObjectMetadataList,
    /// `apidiscovery.k8s.io/v2` aggregated discovery.
    Discovery,
}

/// How a response is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

impl Encoding {
    /// The order upstream's codec factory lists its serializers in.
    const SERVED: [Encoding; 3] = [Encoding::Json, Encoding::Yaml, Encoding::Protobuf];

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
            Encoding::Protobuf => crate::protobuf::CONTENT_TYPE,
        }
    }

    fn media_type(self) -> (&'static str, &'static str) {
        match self {
            Encoding::Json => ("application", "json"),
            Encoding::Yaml => ("application", "yaml"),
            Encoding::Protobuf => ("application", "vnd.kubernetes.protobuf"),
        }
    }

    /// Whether the encoding has a watch (stream) serializer; YAML has none.
    fn streams(self) -> bool {
        self != Encoding::Yaml
    }
}

/// One negotiated (form, encoding) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub form: Form,
    pub encoding: Encoding,
}

/// The response form and encoding `Accept` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    pub form: Form,
    pub encoding: Encoding,
    /// What the same header selects for a resource whose objects have no
    /// protobuf form; `None` means 406 there. Equal to `form`/`encoding`
    /// unless those are a plain object in protobuf.
    pub without_protobuf: Option<Choice>,
}

/// Names for the outputs the handlers compare against; each is the JSON (or
/// YAML) output a header selecting it negotiates to.
#[allow(non_upper_case_globals)]
impl Output {
    pub const Json: Output = Output::plain(Form::Object, Encoding::Json);
    pub const Yaml: Output = Output::plain(Form::Object, Encoding::Yaml);
    pub const Table: Output = Output::plain(Form::Table, Encoding::Json);
    pub const PartialObjectMetadata: Output =
        Output::plain(Form::PartialObjectMetadata, Encoding::Json);
    pub const PartialObjectMetadataList: Output =
        Output::plain(Form::PartialObjectMetadataList, Encoding::Json);
    pub const Discovery: Output = Output::plain(Form::Discovery, Encoding::Json);
}

impl Output {
    const fn plain(form: Form, encoding: Encoding) -> Output {
        Output {
            form,
            encoding,
            without_protobuf: Some(Choice { form, encoding }),
        }
    }

    /// What to serve for a resource: `protobuf_objects` says whether its
    /// objects have a protobuf form (only asked when it matters). 406 when
    /// nothing acceptable remains.
    pub fn for_resource(self, protobuf_objects: impl FnOnce() -> bool) -> ApiResult<Choice> {
        if self.encoding == Encoding::Protobuf && self.form == Form::Object && !protobuf_objects() {
            return self
                .without_protobuf
                .ok_or_else(|| ApiError::not_acceptable(SERVED_TYPES));
        }
        Ok(Choice {
            form: self.form,
            encoding: self.encoding,
        })
    }
}

/// One clause of `Accept`, as goautoneg parses it.
struct Clause<'a> {
    kind: &'a str,
    sub_kind: &'a str,
    q: f32,
    /// Later duplicates of a key win, as in goautoneg's map.
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> Clause<'a> {
    fn param(&self, key: &str) -> Option<&'a str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

fn trim_spaces(s: &str) -> &str {
    s.trim_matches(' ')
}

/// goautoneg's `ParseAccept`: clauses without a `type/subtype` (other than a
/// bare `*`) are dropped; a `q` that does not parse is 0.
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses: Vec<Clause<'_>> = Vec::new();
    for part in header.split(',') {
        let mut pieces = trim_spaces(part).split(';');
        let range = pieces.next().unwrap_or("");
        let halves: Vec<&str> = range.split('/').collect();
        let kind = trim_spaces(halves[0]);
        let sub_kind = match halves.len() {
            1 if kind == "*" => "*",
            2 => trim_spaces(halves[1]),
            _ => continue,
        };
        let mut clause = Clause {
            kind,
            sub_kind,
            q: 1.0,
            params: Vec::new(),
        };
        for param in pieces {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let key = trim_spaces(key);
            if key == "q" {
                // Go parses the value untrimmed; failures count as 0.
                clause.q = value.parse::<f32>().unwrap_or(0.0);
            } else {
                clause.params.push((key, trim_spaces(value)));
            }
        }
        clauses.push(clause);
    }
    // goautoneg sorts with this (not strictly ordered) comparison; Go's sort
    // is an insertion sort at the sizes Accept headers have, reproduced here.
    let before = |a: &Clause<'_>, b: &Clause<'_>| {
        a.q > b.q || (a.kind != "*" && b.kind == "*") || (a.sub_kind != "*" && b.sub_kind == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && before(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

/// A transformation asked for with `as`, `g` and `v` (missing ones empty).
struct Convert<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
}

/// Which endpoint is negotiating: resource endpoints allow transformations,
/// error responses (upstream's `DefaultEndpointRestrictions`) do not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Resource { protobuf_objects: bool },
    Error,
}

/// Upstream's `AllowsMediaTypeTransform`: the form a usable clause selects.
fn allowed_form(
    endpoint: Endpoint,
    encoding: Encoding,
    convert: Option<&Convert<'_>>,
) -> Option<Form> {
    let Some(convert) = convert else {
        return match endpoint {
            Endpoint::Resource {
                protobuf_objects: false,
            } if encoding == Encoding::Protobuf => None,
            _ => Some(Form::Object),
        };
    };
    if endpoint == Endpoint::Error {
        return None;
    }
    match (convert.group, convert.version, convert.kind) {
        ("meta.k8s.io", "v1" | "v1beta1", "Table") => {
            matches!(encoding, Encoding::Json | Encoding::Yaml).then_some(Form::Table)
        }
        ("meta.k8s.io", "v1" | "v1beta1", "PartialObjectMetadata") => {
            Some(Form::PartialObjectMetadata)
        }
        ("meta.k8s.io", "v1" | "v1beta1", "PartialObjectMetadataList") => {
            Some(Form::PartialObjectMetadataList)
        }
        // Served by the discovery handler, in JSON.
        ("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList") => {
            (encoding == Encoding::Json).then_some(Form::Discovery)
        }
        _ => None,
    }
}

/// Upstream's `acceptMediaTypeOptions` for one clause and one served type.
fn accept_clause(clause: &Clause<'_>, encoding: Encoding, endpoint: Endpoint) -> Option<Form> {
    let mut convert: Option<Convert<'_>> = None;
    for (key, value) in &clause.params {
        match *key {
            "as" | "g" | "v" => {
                let c = convert.get_or_insert(Convert {
                    group: "",
                    version: "",
                    kind: "",
                });
                let value = clause.param(key).unwrap_or(value);
                match *key {
                    "as" => c.kind = value,
                    "g" => c.group = value,
                    _ => c.version = value,
                }
            }
            "stream" if !value.is_empty() && (!encoding.streams() || *value != "watch") => {
                return None;
            }
            // Only the meta version may be asked for, and error responses
            // allow none.
            "sv" if !value.is_empty() && (endpoint == Endpoint::Error || *value != "v1") => {
                return None;
            }
            _ => {}
        }
    }
    allowed_form(endpoint, encoding, convert.as_ref())
}

fn select(accept: &str, endpoint: Endpoint) -> Option<Choice> {
    if accept.is_empty() {
        return Some(Choice {
            form: Form::Object,
            encoding: Encoding::Json,
        });
    }
    for clause in parse_accept(accept) {
        for encoding in Encoding::SERVED {
            let (kind, sub_kind) = encoding.media_type();
            let matches = (clause.kind == kind
                && (clause.sub_kind == sub_kind || clause.sub_kind == "*"))
                || (clause.kind == "*" && clause.sub_kind == "*");
            if !matches {
                continue;
            }
            if let Some(form) = accept_clause(&clause, encoding, endpoint) {
                return Some(Choice { form, encoding });
            }
        }
    }
    None
}

fn accept_header(headers: &HeaderMap) -> &str {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Picks the response form and encoding from `Accept`; 406 if nothing
/// acceptable is served.
pub fn output(headers: &HeaderMap) -> ApiResult<Output> {
    output_for(accept_header(headers))
}

fn output_for(accept: &str) -> ApiResult<Output> {
    let Some(chosen) = select(
        accept,
        Endpoint::Resource {
            protobuf_objects: true,
        },
    ) else {
        return Err(ApiError::not_acceptable(SERVED_TYPES));
    };
    let without_protobuf = if chosen.form == Form::Object && chosen.encoding == Encoding::Protobuf {
        select(
            accept,
            Endpoint::Resource {
                protobuf_objects: false,
            },
        )
    } else {
        Some(chosen)
    };
    Ok(Output {
        form: chosen.form,
        encoding: chosen.encoding,
        without_protobuf,
    })
}

/// The encoding of an error `Status` (upstream's `ErrorNegotiated`): no
/// transformations, any served encoding; `None` when nothing in `Accept`
/// fits, where upstream writes the Status as indented JSON.
pub fn error_encoding(accept: &str) -> Option<Encoding> {
    select(accept, Endpoint::Error).map(|c| c.encoding)
}

/// Body encodings accepted for create and update.
const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// Decodes a create/update body as JSON or YAML into a JSON value.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "" | "*/*" => decode_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body),
        crate::protobuf::CONTENT_TYPE => crate::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("failed to decode protobuf body: {e}"))),
        _ => Err(ApiError::unsupported_media_type(content_type, BODY_TYPES)),
    }
}

pub fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("yaml: invalid UTF-8: {e}")))?;
    let v: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?;
    serde_json::to_value(v)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn out(accept: &str) -> ApiResult<Output> {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_str(accept).unwrap());
        output(&h)
    }

    fn choice(form: Form, encoding: Encoding) -> Option<Choice> {
        Some(Choice { form, encoding })
    }

    const PB: &str = "application/vnd.kubernetes.protobuf";

    #[test]
    fn negotiates_like_upstream() {
        use Encoding::*;
        use Form::*;
        // (Accept, for a built-in kind, for a custom resource); None = 406.
        let cases: &[(&str, Option<Choice>, Option<Choice>)] = &[
            ("", choice(Object, Json), choice(Object, Json)),
            ("*/*", choice(Object, Json), choice(Object, Json)),
            ("application/*", choice(Object, Json), choice(Object, Json)),
            (
                "application/json",
                choice(Object, Json),
                choice(Object, Json),
            ),
            (
                "application/yaml",
                choice(Object, Yaml),
                choice(Object, Yaml),
            ),
            (PB, choice(Object, Protobuf), None),
            // client-go's default for built-in types.
            (
                "application/vnd.kubernetes.protobuf, */*",
                choice(Object, Protobuf),
                choice(Object, Json),
            ),
            (
                "application/vnd.kubernetes.protobuf,application/json",
                choice(Object, Protobuf),
                choice(Object, Json),
            ),
            (
                "application/json, application/vnd.kubernetes.protobuf",
                choice(Object, Json),
                choice(Object, Json),
            ),
            // q-values reorder; a bad q is 0; equal q keeps header order.
            (
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                choice(Object, Protobuf),
                choice(Object, Json),
            ),
            (
                "application/json;q=x, application/yaml;q=0.1",
                choice(Object, Yaml),
                choice(Object, Yaml),
            ),
            // specific types before wildcards at equal q.
            (
                "*/*, application/yaml",
                choice(Object, Yaml),
                choice(Object, Yaml),
            ),
            (
                "application/*, application/vnd.kubernetes.protobuf",
                choice(Object, Protobuf),
                choice(Object, Json),
            ),
            // kubectl's Table request; Table is never protobuf.
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                choice(Table, Json),
                choice(Table, Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
                None,
                None,
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
                choice(Object, Json),
                choice(Object, Json),
            ),
            (
                "application/yaml;as=Table;v=v1;g=meta.k8s.io",
                choice(Table, Yaml),
                choice(Table, Yaml),
            ),
            (
                "*/*;as=Table;v=v1;g=meta.k8s.io",
                choice(Table, Json),
                choice(Table, Json),
            ),
            ("application/json;as=Table;v=v2;g=meta.k8s.io", None, None),
            ("application/json;as=Table;v=v1", None, None),
            // The metadata client (garbage collector, namespace controller).
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                choice(PartialObjectMetadataList, Protobuf),
                choice(PartialObjectMetadataList, Protobuf),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                choice(PartialObjectMetadata, Protobuf),
                choice(PartialObjectMetadata, Protobuf),
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
                choice(PartialObjectMetadata, Json),
                choice(PartialObjectMetadata, Json),
            ),
            (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
                choice(Discovery, Json),
                choice(Discovery, Json),
            ),
            // stream=watch needs a streaming encoding; sv must be the meta version.
            (
                "application/vnd.kubernetes.protobuf;stream=watch",
                choice(Object, Protobuf),
                None,
            ),
            (
                "application/yaml;stream=watch, application/json",
                choice(Object, Json),
                choice(Object, Json),
            ),
            ("application/json;stream=other", None, None),
            (
                "application/json;sv=v1",
                choice(Object, Json),
                choice(Object, Json),
            ),
            ("application/json;sv=v2", None, None),
            (
                "application/json;pretty=1;unknown=x",
                choice(Object, Json),
                choice(Object, Json),
            ),
            // Types compare case-sensitively, as Go's do.
            ("Application/JSON", None, None),
            ("text/html", None, None),
            ("json", None, None),
        ];
        for (accept, builtin, custom) in cases {
            let got = out(accept);
            let for_builtin = got.as_ref().ok().and_then(|o| o.for_resource(|| true).ok());
            let for_custom = got
                .as_ref()
                .ok()
                .and_then(|o| o.for_resource(|| false).ok());
            assert_eq!(for_builtin, *builtin, "built-in kind, Accept {accept:?}");
            assert_eq!(for_custom, *custom, "custom resource, Accept {accept:?}");
        }
        assert_eq!(
            out(PB).unwrap().for_resource(|| false).unwrap_err().code,
            406
        );
        assert_eq!(out("text/html").unwrap_err().code, 406);
        assert!(
            out("text/html").unwrap_err().message.ends_with(
                "application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        );
    }

    #[test]
    fn named_outputs_are_what_headers_negotiate_to() {
        assert_eq!(out("application/json").unwrap(), Output::Json);
        assert_eq!(out("application/yaml").unwrap(), Output::Yaml);
        assert_eq!(
            out("application/json;as=Table;v=v1;g=meta.k8s.io").unwrap(),
            Output::Table
        );
        assert_eq!(
            out("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io").unwrap(),
            Output::PartialObjectMetadataList
        );
        assert_eq!(
            out("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").unwrap(),
            Output::Discovery
        );
    }

    #[test]
    fn errors_negotiate_without_transformations() {
        use Encoding::*;
        let cases: &[(&str, Option<Encoding>)] = &[
            ("", Some(Json)),
            ("application/vnd.kubernetes.protobuf, */*", Some(Protobuf)),
            ("application/yaml", Some(Yaml)),
            // A Table-only request has no acceptable error encoding.
            ("application/json;as=Table;v=v1;g=meta.k8s.io", None),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                Some(Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                Some(Json),
            ),
            ("application/json;sv=v1", None),
            ("text/html", None),
        ];
        for (accept, want) in cases {
            assert_eq!(error_encoding(accept), *want, "Accept {accept:?}");
        }
    }

    #[test]
    fn bodies_decode_and_hostile_ones_fail_cleanly() {
        let h = HeaderMap::new();
        assert!(decode_body(&h, br#"{"a":1}"#).is_ok());
        assert_eq!(decode_body(&h, b"{").unwrap_err().code, 400);
        let deep = "[".repeat(100_000);
        assert_eq!(decode_body(&h, deep.as_bytes()).unwrap_err().code, 400);
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(decode_body(&h, &big).unwrap_err().code, 413);
        let mut y = HeaderMap::new();
        y.insert("content-type", HeaderValue::from_static("application/yaml"));
        assert_eq!(decode_body(&y, b"a: 1\nb: [x, y]\n").unwrap()["b"][1], "y");
        let deep_yaml = "[".repeat(100_000);
        assert_eq!(decode_body(&y, deep_yaml.as_bytes()).unwrap_err().code, 400);
    }
}
