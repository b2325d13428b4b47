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

const PROTOSET: &[u8] = include_bytes!("../../vendor-openapi/kubernetes-v1.34.protoset");
const JSON_FIELDS: &str = include_str!("../../vendor-openapi/kubernetes-v1.34.jsonfields");

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

// --- decoding ---------------------------------------------------------------

impl Registry {
    fn decode_envelope(&self, body: &[u8], ctx: &mut Ctx) -> Result<Value, ProtoError> {
        let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::BadMagic)?;
        let unknown_desc = self
            .pool
            .get_message_by_name(UNKNOWN)
            .ok_or_else(|| ProtoError::Descriptors(format!("{UNKNOWN} missing")))?;
        let envelope = DynamicMessage::decode(unknown_desc, rest)
            .map_err(|e| ProtoError::Envelope(e.to_string()))?;
        let text = |name: &str| -> String {
            envelope
                .get_field_by_name(name)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let encoding = text("contentEncoding");
        if !encoding.is_empty() {
            return Err(ProtoError::UnsupportedEncoding(encoding));
        }
        let content_type = text("contentType");
        if !content_type.is_empty() && content_type != CONTENT_TYPE {
            return Err(ProtoError::UnsupportedContentType(content_type));
        }
        let (api_version, kind) = match envelope.get_field_by_name("typeMeta").as_deref() {
            Some(PValue::Message(tm)) => {
                let get = |n: &str| {
                    tm.get_field_by_name(n)
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                };
                (get("apiVersion"), get("kind"))
            }
            _ => (String::new(), String::new()),
        };
        if api_version.is_empty() || kind.is_empty() {
            return Err(ProtoError::MissingTypeMeta);
        }
        let raw = match envelope.get_field_by_name("raw").as_deref() {
            Some(PValue::Bytes(b)) => b.clone(),
            _ => Default::default(),
        };
        let desc = self.resolve(&api_version, &kind)?;
        let msg = DynamicMessage::decode(desc, raw).map_err(|e| ProtoError::Malformed {
            kind: kind.clone(),
            message: e.to_string(),
        })?;
        let mut obj = Map::new();
        obj.insert("kind".into(), Value::String(kind));
        obj.insert("apiVersion".into(), Value::String(api_version));
        self.write_fields(&msg, &mut obj, ctx)?;
        Ok(Value::Object(obj))
    }

    fn message_to_json(&self, msg: &DynamicMessage, ctx: &mut Ctx) -> Result<Value, ProtoError> {
        let info = self.info(&msg.descriptor())?;
        if let Some(special) = info.special {
            return self.special_to_json(special, msg, ctx);
        }
        let mut obj = Map::new();
        self.write_fields(msg, &mut obj, ctx)?;
        Ok(Value::Object(obj))
    }

    fn write_fields(
        &self,
        msg: &DynamicMessage,
        obj: &mut Map<String, Value>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        let info = self.info(&msg.descriptor())?;
        for field in &info.fields {
            if !msg.has_field(&field.desc) {
                continue;
            }
            let value = msg.get_field(&field.desc);
            if field.inline {
                if let PValue::Message(inner) = value.as_ref() {
                    self.write_fields(inner, obj, ctx)?;
                }
                continue;
            }
            if !field.emit_zero && is_zero_scalar(&value) {
                continue;
            }
            ctx.path.push(Seg::Key(field.json_name.clone()));
            let json = self.field_to_json(&field.desc, &value, ctx)?;
            ctx.path.pop();
            if field.omit_zero && json.is_null() {
                continue;
            }
            obj.insert(field.json_name.clone(), json);
        }
        Ok(())
    }

    fn field_to_json(
        &self,
        fd: &FieldDescriptor,
        value: &PValue,
        ctx: &mut Ctx,
    ) -> Result<Value, ProtoError> {
        match value {
            PValue::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    ctx.path.push(Seg::Index(i));
                    out.push(self.value_to_json(item, ctx)?);
                    ctx.path.pop();
                }
                Ok(Value::Array(out))
            }
            PValue::Map(entries) if fd.is_map() => {
                let mut keyed: Vec<(String, &PValue)> = entries
                    .iter()
                    .map(|(k, v)| (map_key_string(k), v))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Map::new();
                for (key, v) in keyed {
                    ctx.path.push(Seg::Key(key.clone()));
                    let json = self.value_to_json(v, ctx)?;
                    ctx.path.pop();
                    out.insert(key, json);
                }
                Ok(Value::Object(out))
            }
            other => self.value_to_json(other, ctx),
        }
    }

    fn value_to_json(&self, value: &PValue, ctx: &mut Ctx) -> Result<Value, ProtoError> {
        Ok(match value {
            PValue::Bool(b) => Value::Bool(*b),
            PValue::I32(n) => Value::from(*n),
            PValue::I64(n) => Value::from(*n),
            PValue::U32(n) => Value::from(*n),
            PValue::U64(n) => Value::from(*n),
            PValue::EnumNumber(n) => Value::from(*n),
            PValue::F32(f) => {
                // Go prints a float32 with its shortest float32 form.
                let f = f.to_string().parse::<f64>().unwrap_or(f64::from(*f));
                float_to_json(f).ok_or_else(|| ctx.invalid("number is not finite"))?
            }
            PValue::F64(f) => {
                float_to_json(*f).ok_or_else(|| ctx.invalid("number is not finite"))?
            }
            PValue::String(s) => Value::String(s.clone()),
            PValue::Bytes(b) => Value::String(BASE64.encode(b)),
            PValue::Message(m) => self.message_to_json(m, ctx)?,
            PValue::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.value_to_json(item, ctx)?);
                }
                Value::Array(out)
            }
            PValue::Map(entries) => {
                let mut keyed: Vec<(String, &PValue)> = entries
                    .iter()
                    .map(|(k, v)| (map_key_string(k), v))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Map::new();
                for (key, v) in keyed {
                    let json = self.value_to_json(v, ctx)?;
                    out.insert(key, json);
                }
                Value::Object(out)
            }
        })
    }

    fn special_to_json(
        &self,
        special: Special,
        msg: &DynamicMessage,
        ctx: &mut Ctx,
    ) -> Result<Value, ProtoError> {
        let field = |n: u32| -> Option<PValue> {
            let fd = msg.descriptor().get_field(n)?;
            msg.has_field(&fd).then(|| msg.get_field(&fd).into_owned())
        };
        let int = |n: u32| -> i64 {
            match field(n) {
                Some(PValue::I64(v)) => v,
                Some(PValue::I32(v)) => i64::from(v),
                _ => 0,
            }
        };
        let bytes = |n: u32| -> Option<prost::bytes::Bytes> {
            match field(n) {
                Some(PValue::Bytes(b)) if !b.is_empty() => Some(b),
                _ => None,
            }
        };
        match special {
            Special::Quantity => match field(1) {
                Some(PValue::String(s)) if s.is_empty() => {
                    Err(ctx.invalid("quantity must not be empty"))
                }
                Some(PValue::String(s)) => Ok(Value::String(s)),
                _ => Ok(Value::String("0".into())),
            },
            Special::IntOrString => match int(1) {
                0 => Ok(Value::from(int(2))),
                1 => match field(3) {
                    Some(PValue::String(s)) => Ok(Value::String(s)),
                    _ => Ok(Value::String(String::new())),
                },
                t => Err(ctx.invalid(format!("IntOrString has impossible type {t}"))),
            },
            Special::Time | Special::MicroTime => {
                if msg.fields().next().is_none() {
                    // An empty message is Go's zero time.
                    return Ok(Value::Null);
                }
                let micro = special == Special::MicroTime;
                // Go ignores a Time's nanos and truncates a MicroTime's.
                let nanos = if micro { int(2) / 1000 * 1000 } else { 0 };
                if int(1) == GO_ZERO_TIME && nanos == 0 {
                    return Ok(Value::Null);
                }
                format_time(int(1), nanos, micro)
                    .map(Value::String)
                    .ok_or_else(|| ctx.invalid("time out of range"))
            }
            Special::Duration => Ok(Value::String(go_duration(int(1)))),
            Special::RawExtension => match bytes(1) {
                None => Ok(Value::Null),
                Some(raw) => self.embedded_to_json(&raw, ctx),
            },
            Special::FieldsV1 | Special::Json => match bytes(1) {
                None => Ok(Value::Null),
                Some(raw) => serde_json::from_slice(&raw)
                    .map_err(|e| ctx.invalid(format!("embedded JSON is invalid: {e}"))),
            },
            Special::OrArray => {
                if let Some(PValue::List(items)) = field(2)
                    && !items.is_empty()
                {
                    return self.value_to_json(&PValue::List(items), ctx);
                }
                match field(1) {
                    Some(v) => self.value_to_json(&v, ctx),
                    None => Ok(Value::Null),
                }
            }
            Special::OrBool => match field(2) {
                Some(v) => self.value_to_json(&v, ctx),
                None => Ok(Value::Bool(matches!(field(1), Some(PValue::Bool(true))))),
            },
            Special::OrStringArray => {
                if let Some(PValue::List(items)) = field(2)
                    && !items.is_empty()
                {
                    return self.value_to_json(&PValue::List(items), ctx);
                }
                match field(1) {
                    Some(v) => self.value_to_json(&v, ctx),
                    None => Ok(Value::Null),
                }
            }
            Special::StringList => match field(1) {
                Some(v) => self.value_to_json(&v, ctx),
                None => Ok(Value::Null), // Go's nil slice
            },
        }
    }

    /// A RawExtension's bytes: JSON, or a nested protobuf object.
    fn embedded_to_json(&self, raw: &[u8], ctx: &mut Ctx) -> Result<Value, ProtoError> {
        if raw.starts_with(MAGIC) {
            if ctx.embedded >= MAX_EMBEDDED {
                return Err(ProtoError::TooDeep(MAX_EMBEDDED));
            }
            ctx.embedded += 1;
            let saved = std::mem::take(&mut ctx.path);
            let result = self.decode_envelope(raw, ctx);
            ctx.path = saved;
            ctx.embedded -= 1;
            return result;
        }
        serde_json::from_slice(raw)
            .map_err(|e| ctx.invalid(format!("embedded object is not JSON: {e}")))
    }
}

fn is_zero_scalar(value: &PValue) -> bool {
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

fn map_key_string(key: &MapKey) -> String {
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
fn float_to_json(f: f64) -> Option<Value> {
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
fn format_time(seconds: i64, nanos: i64, micro: bool) -> Option<String> {
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
fn go_duration(d: i64) -> String {
    fn frac(v: u64, digits: u32) -> String {
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
fn parse_go_duration(s: &str) -> Option<i64> {
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

// --- encoding ---------------------------------------------------------------

fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(v, buf);
}

impl Registry {
    /// Writes the fields of `desc` taken from the JSON object `map`.
    fn encode_object(
        &self,
        desc: &MessageDescriptor,
        map: &Map<String, Value>,
        buf: &mut Vec<u8>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        let info = self.info(desc)?;
        // Values per field index; keys of inlined messages are gathered into
        // an object for the inline field.
        let mut own: Vec<Option<&Value>> = vec![None; info.fields.len()];
        let mut inlined: Vec<Option<Map<String, Value>>> = vec![None; info.fields.len()];
        for (key, value) in map {
            let Some(&i) = info.by_json.get(key) else {
                continue; // unknown fields are dropped, as Go does
            };
            if info.fields[i].inline {
                inlined[i]
                    .get_or_insert_with(Map::new)
                    .insert(key.clone(), value.clone());
            } else {
                own[i] = Some(value);
            }
        }
        for (i, field) in info.fields.iter().enumerate() {
            if let Some(sub) = &inlined[i] {
                if let Kind::Message(m) = field.desc.kind() {
                    let mut inner = Vec::new();
                    ctx.enter()?;
                    self.encode_object(&m, sub, &mut inner, ctx)?;
                    ctx.depth -= 1;
                    put_bytes(buf, field.desc.number(), &inner);
                }
                continue;
            }
            let Some(value) = own[i] else { continue };
            if value.is_null() {
                self.encode_null(field, buf)?;
                continue;
            }
            ctx.path.push(Seg::Key(field.json_name.clone()));
            self.encode_field(&field.desc, value, buf, ctx)?;
            ctx.path.pop();
        }
        Ok(())
    }

    /// A null time is Go's zero time, which Go writes as an empty message
    /// (and reads back, and prints, as null). Other nulls are left out.
    #[inline(never)]
    fn encode_null(&self, field: &FieldInfo, buf: &mut Vec<u8>) -> Result<(), ProtoError> {
        if let Kind::Message(m) = field.desc.kind() {
            let special = self.info(&m)?.special;
            if matches!(special, Some(Special::Time | Special::MicroTime))
                && !field.desc.is_list()
                && !field.omit_zero
            {
                put_bytes(buf, field.desc.number(), b"");
            }
        }
        Ok(())
    }

    fn encode_field(
        &self,
        fd: &FieldDescriptor,
        value: &Value,
        buf: &mut Vec<u8>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        if fd.is_map() {
            return self.encode_map(fd, value, buf, ctx);
        }
        if fd.is_list() {
            let items = value
                .as_array()
                .ok_or_else(|| ctx.invalid("expected an array"))?;
            let kind = fd.kind();
            if fd.is_packed() && is_packable(&kind) {
                let mut body = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    ctx.path.push(Seg::Index(i));
                    encode_scalar_raw(&kind, item, &mut body, ctx)?;
                    ctx.path.pop();
                }
                put_bytes(buf, fd.number(), &body);
            } else {
                for (i, item) in items.iter().enumerate() {
                    ctx.path.push(Seg::Index(i));
                    self.encode_single(fd, item, buf, ctx)?;
                    ctx.path.pop();
                }
            }
            return Ok(());
        }
        self.encode_single(fd, value, buf, ctx)
    }

    fn encode_map(
        &self,
        fd: &FieldDescriptor,
        value: &Value,
        buf: &mut Vec<u8>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        let Kind::Message(entry) = fd.kind() else {
            return Err(ctx.invalid("map field without entry type"));
        };
        let obj = value
            .as_object()
            .ok_or_else(|| ctx.invalid("expected an object"))?;
        let key_fd = entry.map_entry_key_field();
        let value_fd = entry.map_entry_value_field();
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort();
        for key in keys {
            let Some(v) = obj.get(key.as_str()) else {
                continue;
            };
            ctx.path.push(Seg::Key(key.clone()));
            ctx.enter()?;
            let mut body = Vec::new();
            encode_map_key(&key_fd, key, &mut body, ctx)?;
            self.encode_single(&value_fd, v, &mut body, ctx)?;
            ctx.depth -= 1;
            ctx.path.pop();
            put_bytes(buf, fd.number(), &body);
        }
        Ok(())
    }

    /// One value of `fd` (an element, for lists), tag included.
    fn encode_single(
        &self,
        fd: &FieldDescriptor,
        value: &Value,
        buf: &mut Vec<u8>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        match fd.kind() {
            Kind::Message(m) => {
                let mut body = Vec::new();
                ctx.enter()?;
                self.encode_message_value(&m, value, &mut body, ctx)?;
                ctx.depth -= 1;
                put_bytes(buf, fd.number(), &body);
                Ok(())
            }
            kind => encode_scalar(&kind, fd.number(), value, buf, ctx),
        }
    }

    /// The body of a message-typed value (no tag, no length).
    fn encode_message_value(
        &self,
        desc: &MessageDescriptor,
        value: &Value,
        buf: &mut Vec<u8>,
        ctx: &mut Ctx,
    ) -> Result<(), ProtoError> {
        let field = |n: u32| -> Result<FieldDescriptor, ProtoError> {
            desc.get_field(n).ok_or_else(|| {
                ProtoError::Descriptors(format!("{} lacks field {n}", desc.full_name()))
            })
        };
        let invalid = |ctx: &Ctx, what: &str| Err(ctx.invalid(format!("expected {what}")));
        match (self.info(desc)?.special, value) {
            (_, Value::Null) => Ok(()),
            (None, Value::Object(map)) => self.encode_object(desc, map, buf, ctx),
            (None, _) => invalid(ctx, "an object"),
            (Some(Special::OrArray), Value::Array(_)) => {
                self.encode_field(&field(2)?, value, buf, ctx)
            }
            (Some(Special::OrArray | Special::OrStringArray), Value::Object(_)) => {
                self.encode_single(&field(1)?, value, buf, ctx)
            }
            (Some(Special::OrArray), _) => invalid(ctx, "a schema object or an array of them"),
            (Some(Special::OrBool), Value::Bool(b)) => {
                put_varint(buf, 1, u64::from(*b));
                Ok(())
            }
            (Some(Special::OrBool), Value::Object(_)) => {
                put_varint(buf, 1, 1);
                self.encode_single(&field(2)?, value, buf, ctx)
            }
            (Some(Special::OrBool), _) => invalid(ctx, "a boolean or a schema object"),
            (Some(Special::OrStringArray), Value::Array(_)) => {
                self.encode_field(&field(2)?, value, buf, ctx)
            }
            (Some(Special::OrStringArray), _) => {
                invalid(ctx, "a schema object or an array of strings")
            }
            (Some(Special::StringList), Value::Array(_)) => {
                self.encode_field(&field(1)?, value, buf, ctx)
            }
            (Some(Special::StringList), _) => invalid(ctx, "an array of strings"),
            (Some(leaf), _) => encode_leaf_special(leaf, value, buf, ctx),
        }
    }
}

/// The special types that hold no messages, value not null.
#[inline(never)]
fn encode_leaf_special(
    special: Special,
    value: &Value,
    buf: &mut Vec<u8>,
    ctx: &mut Ctx,
) -> Result<(), ProtoError> {
    match special {
        Special::Quantity => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(ctx.invalid("expected a quantity string")),
            };
            if s.is_empty() {
                return Err(ctx.invalid("quantity must not be empty"));
            }
            put_bytes(buf, 1, s.as_bytes());
        }
        Special::IntOrString => match value {
            Value::Number(_) => {
                // Go writes all three fields.
                put_varint(buf, 1, 0);
                encode_scalar(&Kind::Int32, 2, value, buf, ctx)?;
                put_bytes(buf, 3, b"");
            }
            Value::String(s) => {
                put_varint(buf, 1, 1);
                put_varint(buf, 2, 0);
                put_bytes(buf, 3, s.as_bytes());
            }
            _ => return Err(ctx.invalid("expected an integer or a string")),
        },
        Special::Time | Special::MicroTime => {
            let s = value
                .as_str()
                .ok_or_else(|| ctx.invalid("expected an RFC 3339 time string"))?;
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| ctx.invalid(format!("invalid RFC 3339 time: {e}")))?;
            let nanos = if special == Special::MicroTime {
                t.timestamp_subsec_micros() * 1000
            } else {
                0
            };
            // Go writes its zero time as an empty message.
            if t.timestamp() != GO_ZERO_TIME || nanos != 0 {
                put_varint(buf, 1, t.timestamp() as u64);
                put_varint(buf, 2, u64::from(nanos));
            }
        }
        Special::Duration => {
            let s = value
                .as_str()
                .ok_or_else(|| ctx.invalid("expected a duration string"))?;
            let d = parse_go_duration(s)
                .ok_or_else(|| ctx.invalid(format!("invalid duration {s:?}")))?;
            put_varint(buf, 1, d as u64);
        }
        Special::RawExtension | Special::FieldsV1 | Special::Json => {
            let raw = serde_json::to_vec(value)
                .map_err(|e| ctx.invalid(format!("cannot serialize JSON: {e}")))?;
            put_bytes(buf, 1, &raw);
        }
        Special::OrArray | Special::OrBool | Special::OrStringArray | Special::StringList => {
            return Err(ctx.invalid("unexpected value"));
        }
    }
    Ok(())
}

#[inline(never)]
fn encode_map_key(
    fd: &FieldDescriptor,
    key: &str,
    buf: &mut Vec<u8>,
    ctx: &mut Ctx,
) -> Result<(), ProtoError> {
    let value = match fd.kind() {
        Kind::String => Value::String(key.to_owned()),
        Kind::Bool => Value::Bool(key == "true"),
        _ => Value::Number(
            key.parse::<Number>()
                .map_err(|_| ctx.invalid("map key is not a number"))?,
        ),
    };
    encode_scalar(&fd.kind(), fd.number(), &value, buf, ctx)
}

/// A non-message value with its tag.
#[inline(never)]
fn encode_scalar(
    kind: &Kind,
    tag: u32,
    value: &Value,
    buf: &mut Vec<u8>,
    ctx: &mut Ctx,
) -> Result<(), ProtoError> {
    match kind {
        Kind::String => {
            let s = match value {
                Value::String(s) => s.as_str(),
                Value::Null => "",
                _ => return Err(ctx.invalid("expected a string")),
            };
            put_bytes(buf, tag, s.as_bytes());
        }
        Kind::Bytes => {
            let raw = match value {
                Value::String(s) => BASE64
                    .decode(s)
                    .map_err(|e| ctx.invalid(format!("invalid base64: {e}")))?,
                Value::Null => Vec::new(),
                _ => return Err(ctx.invalid("expected a base64 string")),
            };
            put_bytes(buf, tag, &raw);
        }
        Kind::Message(_) => return Err(ctx.invalid("unexpected message")),
        _ => {
            let wire = match kind {
                Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WireType::SixtyFourBit,
                Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WireType::ThirtyTwoBit,
                _ => WireType::Varint,
            };
            encode_key(tag, wire, buf);
            encode_scalar_raw(kind, value, buf, ctx)?;
        }
    }
    Ok(())
}

/// A numeric or bool value without its tag.
#[inline(never)]
fn encode_scalar_raw(
    kind: &Kind,
    value: &Value,
    buf: &mut Vec<u8>,
    ctx: &mut Ctx,
) -> Result<(), ProtoError> {
    if let Kind::Bool = kind {
        let b = match value {
            Value::Bool(b) => *b,
            Value::Null => false,
            _ => return Err(ctx.invalid("expected a boolean")),
        };
        encode_varint(u64::from(b), buf);
        return Ok(());
    }
    let zero = Number::from(0);
    let n = match value {
        Value::Number(n) => n,
        Value::Null => &zero,
        _ => return Err(ctx.invalid("expected a number")),
    };
    let int = || -> Result<i64, ProtoError> {
        if let Some(v) = n.as_i64() {
            return Ok(v);
        }
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
            _ => Err(ctx.invalid("expected an integer")),
        }
    };
    let uint = || -> Result<u64, ProtoError> {
        if let Some(v) = n.as_u64() {
            return Ok(v);
        }
        u64::try_from(int()?).map_err(|_| ctx.invalid("expected a non-negative integer"))
    };
    let range = |_| ctx.invalid("integer out of range");
    match kind {
        Kind::Int32 | Kind::Enum(_) => {
            let v = i32::try_from(int()?).map_err(range)?;
            encode_varint(i64::from(v) as u64, buf);
        }
        Kind::Int64 => encode_varint(int()? as u64, buf),
        Kind::Uint32 => encode_varint(u64::from(u32::try_from(uint()?).map_err(range)?), buf),
        Kind::Uint64 => encode_varint(uint()?, buf),
        Kind::Sint32 => {
            let v = i32::try_from(int()?).map_err(range)?;
            encode_varint(u64::from(((v << 1) ^ (v >> 31)) as u32), buf);
        }
        Kind::Sint64 => {
            let v = int()?;
            encode_varint(((v << 1) ^ (v >> 63)) as u64, buf);
        }
        Kind::Fixed32 => {
            let v = u32::try_from(uint()?).map_err(range)?;
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Kind::Sfixed32 => {
            let v = i32::try_from(int()?).map_err(range)?;
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Kind::Fixed64 => buf.extend_from_slice(&uint()?.to_le_bytes()),
        Kind::Sfixed64 => buf.extend_from_slice(&int()?.to_le_bytes()),
        Kind::Double => {
            let f = n.as_f64().ok_or_else(|| ctx.invalid("expected a number"))?;
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Kind::Float => {
            let f = n.as_f64().ok_or_else(|| ctx.invalid("expected a number"))?;
            buf.extend_from_slice(&(f as f32).to_le_bytes());
        }
        _ => return Err(ctx.invalid("unsupported scalar kind")),
    }
    Ok(())
}

fn is_packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Reference vectors produced by Go (k8s.io/api etc. v0.34.13): the protobuf
    /// serializer's bytes and `encoding/json`'s output for the same object.
    const GO_VECTORS: &[(&str, &str, &str)] = &[
        (
            "apiservice",
            concat!(
                "6b3873000a270a19617069726567697374726174696f6e2e6b38732e696f2f7631120a4150495365",
                "7276696365124f0a1e0a0e76312e6578616d706c652e636f6d12001a0022002a0032003800420012",
                "2b0a0c0a026e73120373766318bb03120b6578616d706c652e636f6d1a02763120012a0301020338",
                "e807400f1a001a002200",
            ),
            r##"{"kind":"APIService","apiVersion":"apiregistration.k8s.io/v1","metadata":{"name":"v1.example.com"},"spec":{"service":{"namespace":"ns","name":"svc","port":443},"group":"example.com","version":"v1","insecureSkipTLSVerify":true,"caBundle":"AQID","groupPriorityMinimum":1000,"versionPriority":15},"status":{}}"##,
        ),
        (
            "clusterrole",
            concat!(
                "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c",
                "7573746572526f6c6512280a110a017212001a0022002a0032003800420012130a036765740a046c",
                "69737412001a04706f64731a002200",
            ),
            r##"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r"},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]}]}"##,
        ),
        (
            "configmap",
            concat!(
                "6b3873000a0f0a0276311209436f6e6669674d6170129b010a790a03636d3112001a076465666175",
                "6c7422002a003200380042005a080a036170701201788a01520a0e6b75626563746c2d6372656174",
                "6512065570646174651a027631220808d983e2b106100032084669656c647356313a1e0a1c7b2266",
                "3a64617461223a7b222e223a7b7d2c22663a61223a7b7d7d7d420012060a016112013112090a0565",
                "6d70747912001a0b0a0362696e1204000102ff1a002200",
            ),
            r##"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm1","namespace":"default","labels":{"app":"x"},"managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":"2024-05-06T07:08:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:a":{}}}}]},"data":{"a":"1","empty":""},"binaryData":{"bin":"AAEC/w=="}}"##,
        ),
        (
            "configmaplist",
            concat!(
                "6b3873000a130a027631120d436f6e6669674d61704c697374123c0a080a00120234321a00121b0a",
                "110a016112001a0022002a0032003800420012060a016b12017612130a110a016212001a0022002a",
                "003200380042001a002200",
            ),
            r##"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42"},"items":[{"metadata":{"name":"a"},"data":{"k":"v"}},{"metadata":{"name":"b"}}]}"##,
        ),
        (
            "controllerrevision",
            concat!(
                "6b3873000a1d0a07617070732f76311212436f6e74726f6c6c65725265766973696f6e12330a130a",
                "0372657612001a0022002a00320038004200121a0a187b2273706563223a7b2278223a5b312c322c",
                "2279225d7d7d18021a002200",
            ),
            r##"{"kind":"ControllerRevision","apiVersion":"apps/v1","metadata":{"name":"rev"},"data":{"spec":{"x":[1,2,"y"]}},"revision":2}"##,
        ),
        (
            "crd",
            concat!(
                "6b3873000a330a17617069657874656e73696f6e732e6b38732e696f2f76311218437573746f6d52",
                "65736f75726365446566696e6974696f6e12d1070a230a13776964676574732e6578616d706c652e",
                "636f6d12001a0022002a00320038004200129d070a0b6578616d706c652e636f6d1a250a07776964",
                "67657473120677696467657422065769646765742a0a5769646765744c697374220a4e616d657370",
                "616365643ad8060a0276311001180122c7060ac4060a00120022002a066f626a65637432003a0050",
                "0060007a00900100ea019c060a04737065631293060a00120022002a066f626a65637432003a0050",
                "0060007a00900100ba010473697a65ea01280a03616e7912210a00120022002a0032003a00500060",
                "007a00900100a80200b00201b80200c00201ea01330a06636c6f73656412290a00120022002a066f",
                "626a65637432003a00500060007a00900100f201020800a80200b80200c00200ea01420a05636f6c",
                "6f7212390a00120022002a06737472696e6732003a00500060007a00900100a201070a0522726564",
                "22a201080a0622626c756522a80200b80200c00200ea01670a0364657012600a00120022002a066f",
                "626a65637432003a00500060007a0090010082020b0a0161120612016212016382022b0a01641226",
                "0a240a00120022002a066f626a65637432003a00500060007a00900100a80200b80200c00200a802",
                "00b80200c00200ea01590a066c6162656c73124f0a00120022002a066f626a65637432003a005000",
                "60007a00900100f20128080112240a00120022002a06737472696e6732003a00500060007a009001",
                "00a80200b80200c00200a80200b80200c00200ea01360a03726566122f0a0012001a0f232f646566",
                "696e6974696f6e732f7822002a0032003a00500060007a00900100a80200b80200c00200ea01440a",
                "0473697a65123c0a00120022002a07696e746567657232003a0042030a013349000000000000f83f",
                "500059000000000000f03f60007a00900100a80200b80200c00200ea015a0a047461677312520a00",
                "120022002a05617272617932003a00500060007a00900100c201260a240a00120022002a06737472",
                "696e6732003a00500060007a00900100a80200b80200c00200a80200b80200c00200d20203736574",
                "ea017c0a057475706c6512730a00120022002a05617272617932003a00500060007a00900100c201",
                "4d12240a00120022002a06737472696e6732003a00500060007a00900100a80200b80200c0020012",
                "250a00120022002a07696e746567657232003a00500060007a00900100a80200b80200c00200a802",
                "00b80200c00200a80200b80200c00200e2021d0a0d73656c662e73697a65203e20301208706f7369",
                "746976651a002a00a80200b80200c002002a020a00380050001a0a12080a00120022002a001a0022",
                "00",
            ),
            r##"{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{"name":"widgets.example.com"},"spec":{"group":"example.com","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},"scope":"Namespaced","versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","required":["size"],"properties":{"any":{"x-kubernetes-preserve-unknown-fields":true,"x-kubernetes-int-or-string":true},"closed":{"type":"object","additionalProperties":false},"color":{"type":"string","enum":["red","blue"]},"dep":{"type":"object","dependencies":{"a":["b","c"],"d":{"type":"object"}}},"labels":{"type":"object","additionalProperties":{"type":"string"}},"ref":{"$ref":"#/definitions/x"},"size":{"type":"integer","default":3,"maximum":1.5,"minimum":1},"tags":{"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set"},"tuple":{"type":"array","items":[{"type":"string"},{"type":"integer"}]}},"x-kubernetes-validations":[{"rule":"self.size \u003e 0","message":"positive"}]}}}},"subresources":{"status":{}}}]},"status":{"conditions":null,"acceptedNames":{"plural":"","kind":""},"storedVersions":null}}"##,
        ),
        (
            "deleteoptions",
            concat!(
                "6b3873000a130a027631120d44656c6574654f7074696f6e7312130800220a466f726567726f756e",
                "642a03416c6c1a002200",
            ),
            r##"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"propagationPolicy":"Foreground","dryRun":["All"]}"##,
        ),
        (
            "deployment",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ae030a270a0377656212001a",
                "0022002a0032003800420808d983e2b10610005a0a0a03617070120377656212b9020800120c0a0a",
                "0a0361707012037765621afa010a1c0a0012001a0022002a003200380042005a0a0a036170701203",
                "77656212d9010a160a03636667120f9a010c0a050a03636d3118a4032000129c010a056e67696e78",
                "12056e67696e782a00320d0a001000185022035443502a0042310a0d0a0363707512060a04353030",
                "6d0a110a066d656d6f727912070a053132384d69120d0a0363707512060a043130306d4a150a0363",
                "666710001a082f6574632f6366672200320052210a1512130a012f120a080110001a04687474701a",
                "00220010001800200a280030036a007200800100880100900100a201001a00201e320042004a0052",
                "00580060006800720210008201008a01009a0100c2010022240a0d526f6c6c696e67557064617465",
                "12130a06080010011a001209080110001a033235252800300a38001a470800100018002000280032",
                "390a09417661696c61626c6512045472756522184d696e696d756d5265706c69636173417661696c",
                "61626c652a00320808d983e2b10610003a0038001a002200",
            ),
            r##"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":"2024-05-06T07:08:09Z","labels":{"app":"web"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"volumes":[{"name":"cfg","configMap":{"name":"cm1","defaultMode":420,"optional":false}}],"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"100m"}},"volumeMounts":[{"name":"cfg","mountPath":"/etc/cfg"}],"livenessProbe":{"httpGet":{"path":"/","port":"http"},"periodSeconds":10,"failureThreshold":3}}],"terminationGracePeriodSeconds":30,"securityContext":{"runAsUser":0}}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":"25%"}},"revisionHistoryLimit":10},"status":{"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2024-05-06T07:08:09Z","lastTransitionTime":null,"reason":"MinimumReplicasAvailable"}]}}"##,
        ),
        (
            "event",
            concat!(
                "6b3873000a190a106576656e74732e6b38732e696f2f763112054576656e74127b0a1a0a03657631",
                "12001a0764656661756c7422002a00320038004200120b08d983e2b106108094ef3a220363746c2a",
                "0563746c2d313202446f3a074265636175736542190a03506f64120764656661756c741a01702200",
                "2a0032003a0052005a064e6f726d616c62040a0012006a00720808d983e2b106100078001a002200",
            ),
            r##"{"kind":"Event","apiVersion":"events.k8s.io/v1","metadata":{"name":"ev1","namespace":"default"},"eventTime":"2024-05-06T07:08:09.123456Z","reportingController":"ctl","reportingInstance":"ctl-1","action":"Do","reason":"Because","regarding":{"kind":"Pod","namespace":"default","name":"p"},"type":"Normal","deprecatedSource":{},"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":"2024-05-06T07:08:09Z"}"##,
        ),
        (
            "ingressclass",
            concat!(
                "6b3873000a240a146e6574776f726b696e672e6b38732e696f2f7631120c496e6772657373436c61",
                "737312340a120a02696312001a0022002a00320038004200121e0a03782f7912170a0f6b38732e65",
                "78616d706c652e636f6d1201501a016e1a002200",
            ),
            r##"{"kind":"IngressClass","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ic"},"spec":{"controller":"x/y","parameters":{"apiGroup":"k8s.example.com","kind":"P","name":"n","scope":null}}}"##,
        ),
        (
            "pod",
            concat!(
                "6b3873000a090a0276311203506f641284020a440a01701202702d1a0022002a0431323334320137",
                "380342004a0808d983e2b1061000501e6a1e0a0a5265706c6963615365741a0272732201752a0761",
                "7070732f763130011275122d0a01631201692a003a110a014512001a0a22080a030a017312016b42",
                "006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a",
                "0100c201009202270a220a03646267120762757379626f782a0042006a0072008001018801009001",
                "00a201001201631a450a0752756e6e696e67121f0a0552656164791204547275651a00220808d983",
                "e2b10610002a00320038001a0022002a0032003a0808d983e2b10610004a005a0072008801001a00",
                "2200",
            ),
            r##"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","generateName":"p-","uid":"1234","resourceVersion":"7","generation":3,"deletionTimestamp":"2024-05-06T07:08:09Z","deletionGracePeriodSeconds":30,"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"E","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}],"resources":{}}],"ephemeralContainers":[{"name":"dbg","image":"busybox","resources":{},"stdin":true,"targetContainerName":"c"}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-06T07:08:09Z"}],"startTime":"2024-05-06T07:08:09Z"}}"##,
        ),
        (
            "secret",
            concat!(
                "6b3873000a0c0a0276311206536563726574123a0a120a02733112001a0022002a00320038004200",
                "12070a016b1202dead12130a0870617373776f7264120768756e746572321a064f70617175651a00",
                "2200",
            ),
            r##"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1"},"data":{"k":"3q0=","password":"aHVudGVyMg=="},"type":"Opaque"}"##,
        ),
        (
            "tokenreview",
            concat!(
                "6b3873000a270a1861757468656e7469636174696f6e2e6b38732e696f2f7631120b546f6b656e52",
                "657669657712380a100a0012001a0022002a0032003800420012050a036162631a1d080112170a01",
                "75120022100a0673636f70657312060a01610a01621a001a002200",
            ),
            r##"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{},"spec":{"token":"abc"},"status":{"authenticated":true,"user":{"username":"u","extra":{"scopes":["a","b"]}}}}"##,
        ),
    ];

    /// Go prints `null` for nil slices, maps and pointers without
    /// `omitempty`; they are not on the wire, so `decode` leaves them out.
    fn drop_unwired_nulls(go: &mut Value, ours: &Value) {
        match (go, ours) {
            (Value::Object(g), Value::Object(o)) => {
                g.retain(|k, v| !v.is_null() || o.contains_key(k));
                for (k, v) in g.iter_mut() {
                    if let Some(ov) = o.get(k) {
                        drop_unwired_nulls(v, ov);
                    }
                }
            }
            (Value::Array(g), Value::Array(o)) => {
                for (gv, ov) in g.iter_mut().zip(o) {
                    drop_unwired_nulls(gv, ov);
                }
            }
            _ => {}
        }
    }

    fn roundtrip(obj: &Value) -> Value {
        let bytes = encode(obj).unwrap_or_else(|e| panic!("encode: {e}"));
        assert!(bytes.starts_with(MAGIC));
        decode(&bytes).unwrap_or_else(|e| panic!("decode: {e}"))
    }

    #[test]
    fn decodes_go_bytes_exactly_as_go_prints_json() {
        for (name, hex, go_json) in GO_VECTORS {
            let ours = decode(&unhex(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut go: Value = serde_json::from_str(go_json).unwrap();
            drop_unwired_nulls(&mut go, &ours);
            // Compare text, so key order counts too.
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&go).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn go_vectors_survive_encode_decode() {
        for (name, hex, _) in GO_VECTORS {
            let first = decode(&unhex(hex)).unwrap();
            assert_eq!(roundtrip(&first), first, "{name}");
        }
    }

    #[test]
    fn encodes_go_json_to_the_same_object() {
        for (name, hex, go_json) in GO_VECTORS {
            let go: Value = serde_json::from_str(go_json).unwrap();
            let from_go_bytes = decode(&unhex(hex)).unwrap();
            assert_eq!(roundtrip(&go), from_go_bytes, "{name}");
        }
    }

    #[test]
    fn configmap_roundtrip() {
        let cm = json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": "game-config",
                "namespace": "default",
                "labels": {"b": "2", "a": "1"},
                "annotations": {"note": ""},
                "resourceVersion": "12",
                "creationTimestamp": "2024-01-02T03:04:05Z"
            },
            "immutable": false,
            "data": {"game.properties": "enemies=aliens\nlives=3\n", "empty": ""}
        });
        let back = roundtrip(&cm);
        assert_eq!(back, cm);
        // Maps come back in Go's sorted order.
        let labels: Vec<&String> = back["metadata"]["labels"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(labels, ["a", "b"]);
    }

    #[test]
    fn secret_bytes_are_base64() {
        let secret = json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s"},
            "data": {"bin": "AP8Q", "password": "aHVudGVyMg=="},
            "type": "Opaque"
        });
        assert_eq!(roundtrip(&secret), secret);
        let bad = json!({"kind": "Secret", "apiVersion": "v1", "data": {"x": "!!"}});
        let err = encode(&bad).unwrap_err();
        assert!(err.to_string().contains("data.x"), "{err}");
    }

    #[test]
    fn deployment_special_types_roundtrip() {
        let dep = json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": "2024-05-06T07:08:09Z", "generation": 2},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}],
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                            "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 10},
                            "readinessProbe": {"tcpSocket": {"port": "http"}}
                        }],
                        "securityContext": {"runAsUser": 0}
                    }
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
            },
            "status": {
                "conditions": [{
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": "2024-05-06T07:08:09Z",
                    "lastTransitionTime": "2024-05-06T07:08:10Z"
                }]
            }
        });
        let back = roundtrip(&dep);
        assert_eq!(back, dep);
        let c = &back["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], json!(8080));
        assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], json!("http"));
        // The Volume's inlined VolumeSource stays inline.
        assert_eq!(
            back["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
            "cm"
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(
            format_time(0, 0, false).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            format_time(1_714_979_289, 123_456_789, true).as_deref(),
            Some("2024-05-06T07:08:09.123456Z")
        );
        assert_eq!(
            format_time(1_714_979_289, 0, true).as_deref(),
            Some("2024-05-06T07:08:09.000000Z")
        );
        assert_eq!(format_time(i64::MAX, 0, false), None);
        for (ns, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_430_100_000_000, "1h30m30.1s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(ns), text);
            assert_eq!(parse_go_duration(text), Some(ns), "{text}");
        }
        assert_eq!(parse_go_duration("1h1h"), Some(7_200_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        for bad in ["", "1", "s", "1x", "-", "3000000h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
        // MicroTime keeps microseconds; Time keeps seconds only.
        let ev = json!({
            "kind": "Event",
            "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2024-05-06T07:08:09.123456Z",
            "series": {"count": 2, "lastObservedTime": "2024-05-06T07:08:10.000001Z"},
            "reportingController": "c",
            "regarding": {"kind": "Pod", "name": "p"},
            "deprecatedFirstTimestamp": "2024-05-06T07:08:09Z"
        });
        assert_eq!(roundtrip(&ev), ev);
        let mut fractional = ev.clone();
        fractional["deprecatedFirstTimestamp"] = json!("2024-05-06T07:08:09.9+02:00");
        assert_eq!(
            roundtrip(&fractional)["deprecatedFirstTimestamp"],
            "2024-05-06T05:08:09Z"
        );
        // A null or zero time is Go's zero time: null, or dropped where
        // the field is omitzero (creationTimestamp).
        let pod = json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": "p", "creationTimestamp": null},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "0001-01-01T00:00:00Z"}]}
        });
        let back = roundtrip(&pod);
        assert_eq!(back["metadata"], json!({"name": "p"}));
        assert_eq!(
            back["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True", "lastTransitionTime": null})
        );
    }

    #[test]
    fn duration_field_roundtrip() {
        let reg = registry().unwrap();
        let desc = reg
            .pool
            .get_message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.Duration")
            .unwrap();
        let mut ctx = Ctx::default();
        let mut buf = Vec::new();
        reg.encode_message_value(&desc, &json!("1h0m0s"), &mut buf, &mut ctx)
            .unwrap();
        let msg = DynamicMessage::decode(desc, buf.as_slice()).unwrap();
        assert_eq!(
            reg.message_to_json(&msg, &mut ctx).unwrap(),
            json!("1h0m0s")
        );
    }

    #[test]
    fn crd_schema_roundtrip() {
        let crd = json!({
            "kind": "CustomResourceDefinition",
            "apiVersion": "apiextensions.k8s.io/v1",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 0, "maximum": 10.5, "default": 3},
                                    "mode": {"type": "string", "enum": ["a", "b", null], "nullable": true},
                                    "obj": {"type": "object", "default": {"k": [1, "x", {"y": null}]}},
                                    "list": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                    "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                    "open": {"type": "object", "additionalProperties": true},
                                    "closed": {"type": "object", "additionalProperties": false},
                                    "typed": {"type": "object", "additionalProperties": {"type": "integer"}},
                                    "dep": {"dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
                                    "ios": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    "ref": {"$ref": "#/x", "$schema": "http://json-schema.org/draft-04/schema#"}
                                },
                                "x-kubernetes-validations": [{"rule": "self.size >= 0", "message": "neg"}]
                            }
                        }
                    }},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
                }],
                "conversion": {"strategy": "None"}
            }
        });
        assert_eq!(roundtrip(&crd), crd);
    }

    #[test]
    fn lists_and_meta_kinds() {
        let list = json!({
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": "tok"},
            "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}, {"metadata": {"name": "b"}}]
        });
        assert_eq!(roundtrip(&list), list);
        for api_version in ["v1", "apps/v1", "meta.k8s.io/v1", "batch/v1"] {
            let opts = json!({
                "kind": "DeleteOptions",
                "apiVersion": api_version,
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Background",
                "preconditions": {"uid": "u"}
            });
            assert_eq!(roundtrip(&opts), opts);
        }
        let status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "nope",
            "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"},
            "code": 404
        });
        assert_eq!(roundtrip(&status), status);
        let rbac = json!({
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "b"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}
        });
        assert_eq!(roundtrip(&rbac), rbac);
        let svc = json!({
            "kind": "APIService",
            "apiVersion": "apiregistration.k8s.io/v1",
            "metadata": {"name": "v1.x"},
            "spec": {"group": "x", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1}
        });
        assert_eq!(roundtrip(&svc), svc);
        let sar = json!({
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {"user": "u", "extra": {"scopes": ["a", "b"]}, "resourceAttributes": {"verb": "get"}},
            "status": {"allowed": true}
        });
        assert_eq!(roundtrip(&sar), sar);
        assert!(supports("v1", "Pod"));
        assert!(supports(
            "internal.apiserver.k8s.io/v1alpha1",
            "StorageVersion"
        ));
        assert!(!supports("example.com/v1", "Widget"));
        assert!(!supports("v1", "Pod.Spec"));
    }

    #[test]
    fn raw_extension_roundtrip_and_nested_protobuf() {
        let rev = json!({
            "kind": "ControllerRevision",
            "apiVersion": "apps/v1",
            "metadata": {"name": "r"},
            "data": {"spec": {"template": {"x": [1, 2.5, "s", null, true]}}},
            "revision": 3
        });
        assert_eq!(roundtrip(&rev), rev);
        // A RawExtension may carry a protobuf-encoded object.
        let inner =
            encode(&json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "in"}}))
                .unwrap();
        // v1.List{items: [RawExtension{raw: <protobuf ConfigMap>}]}
        let mut list = Vec::new();
        let mut ext = Vec::new();
        put_bytes(&mut ext, 1, &inner);
        put_bytes(&mut list, 2, &ext);
        let mut tm = Vec::new();
        put_bytes(&mut tm, 1, b"v1");
        put_bytes(&mut tm, 2, b"List");
        let mut body = MAGIC.to_vec();
        put_bytes(&mut body, 1, &tm);
        put_bytes(&mut body, 2, &list);
        let v = decode(&body).unwrap();
        assert_eq!(
            v["items"][0],
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "in"}})
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(matches!(decode(b""), Err(ProtoError::BadMagic)));
        assert!(matches!(decode(b"{\"kind\":1}"), Err(ProtoError::BadMagic)));
        assert!(matches!(decode(b"k8s\0"), Err(ProtoError::MissingTypeMeta)));
        assert!(matches!(
            decode(b"k8s\0\x0a\xff"),
            Err(ProtoError::Envelope(_))
        ));
        // Unknown kind.
        let mut tm = Vec::new();
        put_bytes(&mut tm, 1, b"example.com/v1");
        put_bytes(&mut tm, 2, b"Widget");
        let mut body = MAGIC.to_vec();
        put_bytes(&mut body, 1, &tm);
        let err = decode(&body).unwrap_err();
        assert!(matches!(err, ProtoError::UnknownKind { .. }), "{err}");
        assert!(err.to_string().contains("example.com/v1"));
        // gzip content encoding is not supported.
        let mut gz = body.clone();
        put_bytes(&mut gz, 3, b"gzip");
        assert!(matches!(
            decode(&gz),
            Err(ProtoError::UnsupportedEncoding(_))
        ));
        // Every truncation and many corruptions of real bodies fail cleanly.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for (_, hex, _) in GO_VECTORS {
            let bytes = unhex(hex);
            for len in 0..bytes.len() {
                let _ = decode(&bytes[..len]);
            }
            for _ in 0..300 {
                let mut b = bytes.clone();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = 4 + (seed as usize) % (b.len() - 4);
                    b[i] = (seed >> 32) as u8;
                }
                // Whatever decodes must encode without panicking.
                if let Ok(v) = decode(&b) {
                    let _ = encode(&v);
                }
            }
        }
        // Encoding rejects what cannot be a Kubernetes object.
        assert!(matches!(encode(&json!([])), Err(ProtoError::NotAnObject)));
        assert!(matches!(
            encode(&json!({"kind": "Pod"})),
            Err(ProtoError::NotAnObject)
        ));
        let err = encode(
            &json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": 5}]}}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value at spec.containers[0].name: expected a string"
        );
        let err = encode(
            &json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 1e12}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("spec.replicas"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        // JSONSchemaProps nested far past prost's recursion limit.
        let reg = registry().unwrap();
        let desc = reg
            .pool
            .get_message_by_name(
                "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            )
            .unwrap();
        let not = desc.get_field_by_name("not").unwrap().number();
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..5_000 {
            let mut next = Vec::new();
            put_bytes(&mut next, not, &inner);
            inner = next;
        }
        assert!(DynamicMessage::decode(desc, inner.as_slice()).is_err());
        // Unknown fields nest too: groups and unknown submessages.
        let mut tm = Vec::new();
        put_bytes(&mut tm, 1, b"v1");
        put_bytes(&mut tm, 2, b"ConfigMap");
        let mut body = MAGIC.to_vec();
        put_bytes(&mut body, 1, &tm);
        let mut groups = Vec::new();
        for _ in 0..100_000 {
            encode_key(99, WireType::StartGroup, &mut groups);
        }
        put_bytes(&mut body, 2, &groups);
        assert!(decode(&body).is_err());

        let mut deep = json!({});
        for _ in 0..1_000 {
            deep = json!({"not": deep});
        }
        let crd = json!({
            "kind": "CustomResourceDefinition",
            "apiVersion": "apiextensions.k8s.io/v1",
            "spec": {"versions": [{"schema": {"openAPIV3Schema": deep}}]}
        });
        assert!(matches!(encode(&crd), Err(ProtoError::TooDeep(_))));
        // Whatever encodes within the limit decodes again.
        let mut deep = json!({});
        for _ in 0..96 {
            deep = json!({"not": deep});
        }
        let crd = json!({
            "kind": "CustomResourceDefinition",
            "apiVersion": "apiextensions.k8s.io/v1",
            "spec": {"versions": [{"schema": {"openAPIV3Schema": deep}}]}
        });
        let back = roundtrip(&crd);
        assert_eq!(back["spec"], crd["spec"]);
    }

    #[test]
    fn field_facts_match_the_descriptors() {
        let reg = registry().unwrap();
        let facts = parse_facts(JSON_FIELDS);
        assert!(facts.len() > 500, "facts file looks truncated");
        for (message, f) in &facts {
            let desc = reg
                .pool
                .get_message_by_name(message)
                .unwrap_or_else(|| panic!("{message} not in the protoset"));
            let nums = f
                .inline
                .iter()
                .chain(f.rename.keys())
                .chain(&f.emit_zero)
                .chain(&f.omit_zero)
                .chain(&f.order);
            for n in nums {
                assert!(desc.get_field(*n).is_some(), "{message} has no field {n}");
            }
        }
        // Spot checks of what the facts must say.
        let info = |name: &str| reg.messages.get(name).unwrap();
        let vol = info("k8s.io.api.core.v1.Volume");
        assert!(
            vol.fields
                .iter()
                .any(|f| f.inline && f.desc.name() == "volumeSource")
        );
        assert_eq!(
            vol.by_json
                .get("configMap")
                .map(|&i| vol.fields[i].desc.name()),
            Some("volumeSource")
        );
        let props =
            info("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
        assert!(props.by_json.contains_key("$ref"));
        assert!(
            props
                .by_json
                .contains_key("x-kubernetes-preserve-unknown-fields")
        );
        let spec = info("k8s.io.api.apps.v1.DeploymentSpec");
        assert!(
            spec.fields
                .iter()
                .any(|f| f.emit_zero && f.desc.name() == "replicas")
        );
        let specials: Vec<&str> = reg
            .messages
            .iter()
            .filter(|(_, m)| m.special == Some(Special::StringList))
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(specials.contains(&"k8s.io.api.authentication.v1.ExtraValue"));
        assert!(specials.contains(&"k8s.io.apimachinery.pkg.apis.meta.v1.Verbs"));
    }
}
