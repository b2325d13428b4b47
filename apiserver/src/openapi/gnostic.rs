//! The Swagger 2.0 document in gnostic's protobuf encoding
//! (`openapi.v2.Document`, media type
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which is
//! what client-go's `OpenAPISchema()` asks `/openapi/v2` for.
//!
//! Only the parts of the schema our documents use are encoded; field numbers
//! are gnostic's `openapiv2/OpenAPIv2.proto`. Values gnostic keeps as `Any`
//! (vendor extensions, `default`, `example`, `enum`) carry their YAML text,
//! written as JSON (which YAML reads).

use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::{Map, Value};

/// One message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn len_delimited(&mut self, tag: u32, bytes: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, &mut self.0);
        encode_varint(bytes.len() as u64, &mut self.0);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, tag: u32, s: &str) {
        if !s.is_empty() {
            self.len_delimited(tag, s.as_bytes());
        }
    }

    fn message(&mut self, tag: u32, m: Msg) {
        self.len_delimited(tag, &m.0);
    }

    fn boolean(&mut self, tag: u32, b: bool) {
        if b {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(1, &mut self.0);
        }
    }

    fn int64(&mut self, tag: u32, i: i64) {
        if i != 0 {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(i as u64, &mut self.0);
        }
    }

    fn double(&mut self, tag: u32, f: f64) {
        if f != 0.0 {
            encode_key(tag, WireType::SixtyFourBit, &mut self.0);
            self.0.extend_from_slice(&f.to_le_bytes());
        }
    }

    fn strings(&mut self, tag: u32, v: &Value) {
        for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
            self.len_delimited(tag, s.as_bytes());
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// `openapi.v2.Any` holding `v` as YAML (JSON text).
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &serde_json::to_string(v).unwrap_or_default());
    m
}

/// `NamedAny` entries for the `x-` keys of `m`.
fn vendor_extensions(out: &mut Msg, tag: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.message(2, any(v));
        out.message(tag, named);
    }
}

fn schema(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Value::Object(m) = v else { return out };
    out.string(1, str_of(m, "$ref"));
    out.string(2, str_of(m, "format"));
    out.string(3, str_of(m, "title"));
    out.string(4, str_of(m, "description"));
    if let Some(d) = m.get("default") {
        out.message(5, any(d));
    }
    let f = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or_default();
    let i = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or_default();
    let b = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or_default();
    out.double(6, f("multipleOf"));
    out.double(7, f("maximum"));
    out.boolean(8, b("exclusiveMaximum"));
    out.double(9, f("minimum"));
    out.boolean(10, b("exclusiveMinimum"));
    out.int64(11, i("maxLength"));
    out.int64(12, i("minLength"));
    out.string(13, str_of(m, "pattern"));
    out.int64(14, i("maxItems"));
    out.int64(15, i("minItems"));
    out.boolean(16, b("uniqueItems"));
    out.int64(17, i("maxProperties"));
    out.int64(18, i("minProperties"));
    if let Some(r) = m.get("required") {
        out.strings(19, r);
    }
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(flag)) => {
            let mut item = Msg::default();
            encode_key(2, WireType::Varint, &mut item.0);
            encode_varint(u64::from(*flag), &mut item.0);
            out.message(21, item);
        }
        Some(ap @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(ap));
            out.message(21, item);
        }
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut ty = Msg::default();
            ty.string(1, t);
            out.message(22, ty);
        }
        Some(t @ Value::Array(_)) => {
            let mut ty = Msg::default();
            ty.strings(1, t);
            out.message(22, ty);
        }
        _ => {}
    }
    match m.get("items") {
        Some(Value::Array(items)) => {
            let mut it = Msg::default();
            items.iter().for_each(|s| it.message(1, schema(s)));
            out.message(23, it);
        }
        Some(item @ Value::Object(_)) => {
            let mut it = Msg::default();
            it.message(1, schema(item));
            out.message(23, it);
        }
        _ => {}
    }
    for s in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(24, schema(s));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        let mut p = Msg::default();
        for (name, s) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(s));
            p.message(1, named);
        }
        out.message(25, p);
    }
    out.string(26, str_of(m, "discriminator"));
    out.boolean(27, b("readOnly"));
    if let Some(e) = m.get("example") {
        out.message(30, any(e));
    }
    vendor_extensions(&mut out, 31, m);
    out
}

/// `ParametersItem` for one parameter object.
fn parameter(v: &Value) -> Msg {
    let mut item = Msg::default();
    let Value::Object(m) = v else { return item };
    let location = str_of(m, "in");
    let mut param = Msg::default();
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, str_of(m, "description"));
        body.string(2, str_of(m, "name"));
        body.string(3, location);
        body.boolean(
            4,
            m.get("required")
                .and_then(Value::as_bool)
                .unwrap_or_default(),
        );
        if let Some(s) = m.get("schema") {
            body.message(5, schema(s));
        }
        vendor_extensions(&mut body, 6, m);
        param.message(1, body);
    } else {
        // Query and path sub-schemas share their first fields; they differ
        // from `type` on (path has no allowEmptyValue).
        let (variant, type_tag, unique_tag, ext_tag) = match location {
            "path" => (4, 5, 19, 22),
            "header" => (1, 5, 19, 22),
            _ => (3, 6, 20, 23),
        };
        let mut sub = Msg::default();
        sub.boolean(
            1,
            m.get("required")
                .and_then(Value::as_bool)
                .unwrap_or_default(),
        );
        sub.string(2, location);
        sub.string(3, str_of(m, "description"));
        sub.string(4, str_of(m, "name"));
        sub.string(type_tag, str_of(m, "type"));
        sub.boolean(
            unique_tag,
            m.get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or_default(),
        );
        vendor_extensions(&mut sub, ext_tag, m);
        let mut non_body = Msg::default();
        non_body.message(variant, sub);
        param.message(2, non_body);
    }
    item.message(1, param);
    item
}

fn operation(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Value::Object(m) = v else { return out };
    if let Some(t) = m.get("tags") {
        out.strings(1, t);
    }
    out.string(2, str_of(m, "summary"));
    out.string(3, str_of(m, "description"));
    out.string(5, str_of(m, "operationId"));
    if let Some(p) = m.get("produces") {
        out.strings(6, p);
    }
    if let Some(c) = m.get("consumes") {
        out.strings(7, c);
    }
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(8, parameter(p));
    }
    if let Some(Value::Object(responses)) = m.get("responses") {
        let mut rs = Msg::default();
        for (code, r) in responses {
            let mut resp = Msg::default();
            if let Value::Object(rm) = r {
                resp.string(1, str_of(rm, "description"));
                if let Some(s) = rm.get("schema") {
                    let mut item = Msg::default();
                    item.message(1, schema(s));
                    resp.message(2, item);
                }
            }
            let mut value = Msg::default();
            value.message(1, resp);
            let mut named = Msg::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        out.message(9, rs);
    }
    if let Some(s) = m.get("schemes") {
        out.strings(10, s);
    }
    out.boolean(
        11,
        m.get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or_default(),
    );
    vendor_extensions(&mut out, 13, m);
    out
}

fn path_item(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Value::Object(m) = v else { return out };
    for (tag, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = m.get(method) {
            out.message(tag, operation(op));
        }
    }
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(9, parameter(p));
    }
    vendor_extensions(&mut out, 10, m);
    out
}

fn security_requirements(out: &mut Msg, v: &Value) {
    for req in v.as_array().into_iter().flatten() {
        let mut r = Msg::default();
        for (name, scopes) in req.as_object().into_iter().flatten() {
            let mut arr = Msg::default();
            arr.strings(1, scopes);
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, arr);
            r.message(1, named);
        }
        out.message(12, r);
    }
}

fn security_definitions(v: &Value) -> Msg {
    let mut defs = Msg::default();
    for (name, d) in v.as_object().into_iter().flatten() {
        let Value::Object(dm) = d else { continue };
        let mut key = Msg::default();
        key.string(1, str_of(dm, "type"));
        key.string(2, str_of(dm, "name"));
        key.string(3, str_of(dm, "in"));
        key.string(4, str_of(dm, "description"));
        let mut item = Msg::default();
        item.message(2, key);
        let mut named = Msg::default();
        named.string(1, name);
        named.message(2, item);
        defs.message(1, named);
    }
    defs
}

/// Encodes a Swagger 2.0 document (as JSON) as gnostic's `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut out = Msg::default();
    let Value::Object(m) = doc else { return out.0 };
    out.string(1, str_of(m, "swagger"));
    if let Some(Value::Object(info)) = m.get("info") {
        let mut i = Msg::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        i.string(3, str_of(info, "description"));
        out.message(2, i);
    }
    if let Some(Value::Object(paths)) = m.get("paths") {
        let mut p = Msg::default();
        for (path, item) in paths {
            let mut named = Msg::default();
            named.string(1, path);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        out.message(8, p);
    }
    if let Some(Value::Object(defs)) = m.get("definitions") {
        let mut d = Msg::default();
        for (name, s) in defs {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(s));
            d.message(1, named);
        }
        out.message(9, d);
    }
    if let Some(sec) = m.get("security") {
        security_requirements(&mut out, sec);
    }
    if let Some(sd) = m.get("securityDefinitions") {
        out.message(13, security_definitions(sd));
    }
    vendor_extensions(&mut out, 16, m);
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_known_bytes() {
        // swagger = "2.0"; definitions {"A": {type: ["object"]}}
        let doc = json!({"swagger": "2.0", "definitions": {"A": {"type": "object"}}});
        let bytes = encode_document(&doc);
        let expected: Vec<u8> = [
            vec![0x0a, 3],
            b"2.0".to_vec(),
            vec![
                0x4a, 18, 0x0a, 16, 0x0a, 1, b'A', 0x12, 11, 0xb2, 0x01, 8, 0x0a, 6,
            ],
            b"object".to_vec(),
        ]
        .concat();
        assert_eq!(bytes, expected);
    }
}
