//! Kubernetes' protobuf wire format (`application/vnd.kubernetes.protobuf`)
//! to and from the JSON shape the rest of the server works on.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! message: `{typeMeta{apiVersion, kind}, raw, contentEncoding,
//! contentType}`, where `raw` is the object's own `generated.proto` message.
//!
//! Everything is driven by two files that `hack/gen-proto-descriptors`
//! generates from the Kubernetes v1.34 Go modules:
//!
//! * `vendor-openapi/kubernetes-v1.34.protoset`, a `FileDescriptorSet` of all
//!   `generated.proto` files, decoded with `prost-reflect`;
//! * `vendor-openapi/kubernetes-v1.34.jsonfields`, the facts about the JSON
//!   form that descriptors lack (read from the Go struct tags): fields
//!   embedded inline (`Volume.volumeSource`), JSON names that differ from
//!   proto names (`$ref`, `x-kubernetes-*`, ...), scalar fields JSON carries
//!   even when zero (pointers and fields without `omitempty`), `omitzero`
//!   fields, and Go's field order where it is not the field numbers'.
//!
//! Decoding yields what Go's `encoding/json` prints for the decoded object:
//! only fields present on the wire appear, except that a scalar Go writes
//! unconditionally (every non-pointer field) is dropped when zero unless Go's
//! JSON keeps it; non-pointer structs come out as `{}`; keys follow Go's
//! struct order, map keys are sorted; the types with custom JSON (Quantity,
//! IntOrString, Time, MicroTime, Duration, RawExtension, FieldsV1, the
//! apiextensions JSON and JSONSchemaPropsOr* types, `ExtraValue`-style
//! string-list wrappers) take their JSON shapes. One difference: Go prints
//! `null` for a nil slice, map or pointer without `omitempty`; such a field
//! is not on the wire, so it is left out here.
//!
//! Encoding is the reverse; map entries are written in key order, so output
//! is deterministic, and Go decodes it to the same object.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as PValue,
};
use serde_json::{Map, Number, Value};

/// Content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// Every Kubernetes protobuf body starts with these four bytes.
pub const MAGIC: &[u8; 4] = b"k8s\0";

const PROTOSET: &[u8] = include_bytes!("../../../vendor-openapi/kubernetes-v1.34.protoset");
const JSON_FIELDS: &str = include_str!("../../../vendor-openapi/kubernetes-v1.34.jsonfields");

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z).
const GO_ZERO_TIME: i64 = -62_135_596_800;
/// Nesting allowed for objects embedded (as protobuf) in a RawExtension.
const MAX_EMBEDDED: usize = 8;
/// Message nesting `encode` allows: prost's decode recursion limit, so that
/// whatever is encoded can be decoded again.
const MAX_DEPTH: usize = 100;

/// Why a body could not be converted. The `Display` text is meant for a
/// 400 BadRequest `Status` message.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("protobuf body must start with the Kubernetes magic prefix \"k8s\\x00\"")]
    BadMagic,
    #[error("malformed protobuf envelope: {0}")]
    Envelope(String),
    #[error("protobuf envelope has no apiVersion and kind")]
    MissingTypeMeta,
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("unsupported content type {0:?} inside protobuf envelope")]
    UnsupportedContentType(String),
    #[error("no protobuf message is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("malformed protobuf for {kind}: {message}")]
    Malformed { kind: String, message: String },
    #[error("invalid value at {path}: {message}")]
    InvalidValue { path: String, message: String },
    #[error("object to encode must be a JSON object with string apiVersion and kind")]
    NotAnObject,
    #[error("object nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("embedded protobuf descriptors are unusable: {0}")]
    Descriptors(String),
}

/// Decodes a protobuf request body into the object's JSON form, with
/// `kind` and `apiVersion` taken from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let reg = registry()?;
    let mut ctx = Ctx::default();
    reg.decode_envelope(body, &mut ctx)
}

/// Encodes a JSON object (with `apiVersion` and `kind`, lists included) as
/// a protobuf body: the magic followed by a `runtime.Unknown` envelope.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let reg = registry()?;
    let map = obj.as_object().ok_or(ProtoError::NotAnObject)?;
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ProtoError::NotAnObject)?;
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ProtoError::NotAnObject)?;
    let desc = reg.resolve(api_version, kind)?;
    let mut ctx = Ctx::default();
    let mut raw = Vec::new();
    reg.encode_object(&desc, map, &mut raw, &mut ctx)?;

    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    // Go always writes these two (empty) strings; so do we.
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Content type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// One event of a protobuf watch: a `meta.k8s.io/v1` `WatchEvent` message
/// written bare (upstream's raw serializer: no magic, no envelope), whose
/// `object` RawExtension holds the object as a full protobuf body (magic and
/// `runtime.Unknown` envelope).
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtoError> {
    let body = encode(object)?;
    let mut raw_extension = Vec::with_capacity(body.len() + 8);
    put_bytes(&mut raw_extension, 1, &body);
    let mut out = Vec::with_capacity(raw_extension.len() + event_type.len() + 16);
    put_bytes(&mut out, 1, event_type.as_bytes());
    put_bytes(&mut out, 2, &raw_extension);
    Ok(out)
}

/// The length-delimited frame of one watch event: its size as a 4-byte
/// big-endian integer, then the message (upstream's `LengthDelimitedFramer`).
pub fn watch_frame(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtoError> {
    let message = encode_watch_event(event_type, object)?;
    let len = u32::try_from(message.len())
        .map_err(|_| ProtoError::Envelope("watch event larger than 4 GiB".into()))?;
    let mut frame = Vec::with_capacity(message.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&message);
    Ok(frame)
}

/// Decodes a bare `WatchEvent` message into its type and object (JSON form).
pub fn decode_watch_event(message: &[u8]) -> Result<(String, Value), ProtoError> {
    let reg = registry()?;
    let name = format!("{META_V1}.WatchEvent");
    let desc = reg
        .pool
        .get_message_by_name(&name)
        .ok_or_else(|| ProtoError::Descriptors(format!("{name} missing")))?;
    let msg = DynamicMessage::decode(desc, message).map_err(|e| ProtoError::Malformed {
        kind: "WatchEvent".into(),
        message: e.to_string(),
    })?;
    let mut ctx = Ctx::default();
    let mut event = reg.message_to_json(&msg, &mut ctx)?;
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let object = event
        .get_mut("object")
        .map(Value::take)
        .unwrap_or(Value::Null);
    Ok((event_type, object))
}

/// Whether `apiVersion`/`kind` has a protobuf form (built-in types do;
/// custom resources do not).
pub fn supports(api_version: &str, kind: &str) -> bool {
    registry()
        .map(|reg| reg.resolve(api_version, kind).is_ok())
        .unwrap_or(false)
}

// --- descriptor registry ----------------------------------------------------

/// Apimachinery types whose JSON form is not their message's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    Quantity,
    IntOrString,
    Time,
    MicroTime,
    Duration,
    RawExtension,
    FieldsV1,
    /// apiextensions `JSON`: `{raw}` holding any JSON value.
    Json,
    OrArray,
    OrBool,
    OrStringArray,
    /// A message whose only field is `repeated string items` (`ExtraValue`,
    /// `Verbs`, ...): a Go `[]string` type.
    StringList,
}

struct FieldInfo {
    desc: FieldDescriptor,
    json_name: String,
    inline: bool,
    emit_zero: bool,
    omit_zero: bool,
}

struct MessageInfo {
    special: Option<Special>,
    fields: Vec<FieldInfo>,
    /// JSON key -> index in `fields`; keys of inlined messages map to the
    /// inline field that holds them.
    by_json: HashMap<String, usize>,
}

struct Registry {
    pool: DescriptorPool,
    messages: HashMap<String, MessageInfo>,
}

#[derive(Default)]
struct Facts {
    inline: HashSet<u32>,
    rename: HashMap<u32, String>,
    emit_zero: HashSet<u32>,
    omit_zero: HashSet<u32>,
    /// Go's field order, where it differs from the field numbers'.
    order: Vec<u32>,
}

fn registry() -> Result<&'static Registry, ProtoError> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(Registry::load)
        .as_ref()
        .map_err(|e| ProtoError::Descriptors(e.clone()))
}

fn parse_facts(text: &str) -> HashMap<&str, Facts> {
    let mut facts: HashMap<&str, Facts> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let (Some(what), Some(message)) = (words.next(), words.next()) else {
            continue;
        };
        let entry = facts.entry(message).or_default();
        let mut number = || words.next().and_then(|w| w.parse::<u32>().ok());
        match what {
            "inline" => entry.inline.extend(number()),
            "omitzero" => entry.omit_zero.extend(number()),
            "rename" => {
                if let (Some(n), Some(name)) = (number(), words.next()) {
                    entry.rename.insert(n, name.to_owned());
                }
            }
            "emitzero" => {
                entry
                    .emit_zero
                    .extend(words.filter_map(|w| w.parse::<u32>().ok()));
            }
            "order" => entry.order = words.filter_map(|w| w.parse::<u32>().ok()).collect(),
            _ => {}
        }
    }
    facts
}

fn special_of(desc: &MessageDescriptor) -> Option<Special> {
    let name = desc.full_name();
    let special = match name {
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => Special::FieldsV1,
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => Special::RawExtension,
        _ => {
            if let Some(rest) =
                name.strip_prefix("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.")
            {
                match rest.split_once('.').map(|(_, n)| n) {
                    Some("JSON") => return Some(Special::Json),
                    Some("JSONSchemaPropsOrArray") => return Some(Special::OrArray),
                    Some("JSONSchemaPropsOrBool") => return Some(Special::OrBool),
                    Some("JSONSchemaPropsOrStringArray") => return Some(Special::OrStringArray),
                    _ => {}
                }
            }
            let mut fields = desc.fields();
            return match (fields.next(), fields.next()) {
                (Some(f), None)
                    if f.name() == "items"
                        && f.is_list()
                        && matches!(f.kind(), Kind::String)
                        && !desc.name().ends_with("List") =>
                {
                    Some(Special::StringList)
                }
                _ => None,
            };
        }
    };
    Some(special)
}

impl Registry {
    fn load() -> Result<Self, String> {
        let pool = DescriptorPool::decode(PROTOSET).map_err(|e| e.to_string())?;
        if pool.get_message_by_name(UNKNOWN).is_none() {
            return Err(format!("{UNKNOWN} missing"));
        }
        let facts = parse_facts(JSON_FIELDS);
        let none = Facts::default();
        let mut messages = HashMap::new();
        for desc in pool.all_messages() {
            let f = facts.get(desc.full_name()).unwrap_or(&none);
            let mut fields: Vec<FieldInfo> = desc
                .fields()
                .map(|fd| {
                    let n = fd.number();
                    FieldInfo {
                        json_name: f
                            .rename
                            .get(&n)
                            .cloned()
                            .unwrap_or_else(|| fd.name().to_owned()),
                        inline: f.inline.contains(&n)
                            && matches!(fd.kind(), Kind::Message(_))
                            && !fd.is_list(),
                        emit_zero: f.emit_zero.contains(&n),
                        omit_zero: f.omit_zero.contains(&n),
                        desc: fd,
                    }
                })
                .collect();
            // Go's order; fields it does not list keep theirs, at the end.
            fields.sort_by_key(|field| {
                let n = field.desc.number();
                (
                    f.order.iter().position(|&o| o == n).unwrap_or(usize::MAX),
                    n,
                )
            });
            messages.insert(
                desc.full_name().to_owned(),
                MessageInfo {
                    special: special_of(&desc),
                    fields,
                    by_json: HashMap::new(),
                },
            );
        }
        // JSON key index, with inlined messages' keys (transitively) routed to
        // the inline field.
        let names: Vec<String> = messages.keys().cloned().collect();
        for name in names {
            let mut by_json = HashMap::new();
            if let Some(info) = messages.get(&name) {
                for (i, field) in info.fields.iter().enumerate() {
                    if field.inline {
                        let mut keys = Vec::new();
                        if let Kind::Message(m) = field.desc.kind() {
                            inline_keys(&messages, &m, &mut keys, 0);
                        }
                        for key in keys {
                            by_json.entry(key).or_insert(i);
                        }
                    }
                }
                // Own fields win over inlined ones.
                for (i, field) in info.fields.iter().enumerate() {
                    if !field.inline {
                        by_json.insert(field.json_name.clone(), i);
                    }
                }
            }
            if let Some(info) = messages.get_mut(&name) {
                info.by_json = by_json;
            }
        }
        Ok(Registry { pool, messages })
    }

    fn info(&self, desc: &MessageDescriptor) -> Result<&MessageInfo, ProtoError> {
        self.messages
            .get(desc.full_name())
            .ok_or_else(|| ProtoError::Descriptors(format!("{} not indexed", desc.full_name())))
    }

    /// Maps apiVersion + kind to the message describing it.
    fn resolve(&self, api_version: &str, kind: &str) -> Result<MessageDescriptor, ProtoError> {
        let unknown = || ProtoError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        let group_ok = group
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !word(version) || !word(kind) || !group_ok {
            return Err(unknown());
        }
        let package = match group {
            "" => "k8s.io.api.core".to_owned(),
            "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta".to_owned(),
            "apiextensions.k8s.io" => {
                "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".to_owned()
            }
            "apiregistration.k8s.io" => {
                "k8s.io.kube_aggregator.pkg.apis.apiregistration".to_owned()
            }
            "internal.apiserver.k8s.io" => "k8s.io.api.apiserverinternal".to_owned(),
            g => {
                let label = g.split('.').next().unwrap_or(g);
                format!("k8s.io.api.{}", label.replace('-', "_"))
            }
        };
        if let Some(desc) = self
            .pool
            .get_message_by_name(&format!("{package}.{version}.{kind}"))
        {
            return Ok(desc);
        }
        // Option and status kinds from meta.k8s.io/v1 are registered in
        // every group version.
        const META_KINDS: &[&str] = &[
            "CreateOptions",
            "DeleteOptions",
            "GetOptions",
            "ListOptions",
            "PatchOptions",
            "UpdateOptions",
            "Status",
            "WatchEvent",
        ];
        if META_KINDS.contains(&kind)
            && let Some(desc) = self.pool.get_message_by_name(&format!("{META_V1}.{kind}"))
        {
            return Ok(desc);
        }
        Err(unknown())
    }
}

fn inline_keys(
    messages: &HashMap<String, MessageInfo>,
    desc: &MessageDescriptor,
    keys: &mut Vec<String>,
    depth: usize,
) {
    let Some(info) = messages.get(desc.full_name()) else {
        return;
    };
    if depth > 8 {
        return;
    }
    for field in &info.fields {
        if field.inline {
            if let Kind::Message(m) = field.desc.kind() {
                inline_keys(messages, &m, keys, depth + 1);
            }
        } else {
            keys.push(field.json_name.clone());
        }
    }
}

// --- error paths ------------------------------------------------------------

#[derive(Default)]
struct Ctx {
    path: Vec<Seg>,
    embedded: usize,
    depth: usize,
}

enum Seg {
    Key(String),
    Index(usize),
}

impl Ctx {
    fn invalid(&self, message: impl Into<String>) -> ProtoError {
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Seg::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        if path.is_empty() {
            path.push_str("<root>");
        }
        ProtoError::InvalidValue {
            path,
            message: message.into(),
        }
    }

    /// Enters one more level of message nesting (the caller leaves it).
    fn enter(&mut self) -> Result<(), ProtoError> {
        if self.depth >= MAX_DEPTH {
            return Err(ProtoError::TooDeep(MAX_DEPTH));
        }
        self.depth += 1;
        Ok(())
    }
}

mod decode;
mod encode;
mod gotypes;
#[cfg(test)]
mod tests;

use encode::put_bytes;
use gotypes::*;
