//! JSON to protobuf: messages, maps, scalars and the special types.

use super::*;

pub(super) fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

pub(super) fn put_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(v, buf);
}

impl Registry {
    /// Writes the fields of `desc` taken from the JSON object `map`.
    pub(super) fn encode_object(
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
    pub(super) fn encode_null(
        &self,
        field: &FieldInfo,
        buf: &mut Vec<u8>,
    ) -> Result<(), ProtoError> {
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

    pub(super) fn encode_field(
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

    pub(super) fn encode_map(
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
    pub(super) fn encode_single(
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
    pub(super) fn encode_message_value(
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
pub(super) fn encode_leaf_special(
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
pub(super) fn encode_map_key(
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
pub(super) fn encode_scalar(
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
pub(super) fn encode_scalar_raw(
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

pub(super) fn is_packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}
