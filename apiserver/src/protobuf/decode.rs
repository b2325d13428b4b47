//! Protobuf to JSON: the `runtime.Unknown` envelope, messages, and the types
//! whose JSON form is their own.

use super::*;

impl Registry {
    pub(super) fn decode_envelope(&self, body: &[u8], ctx: &mut Ctx) -> Result<Value, ProtoError> {
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

    pub(super) fn message_to_json(
        &self,
        msg: &DynamicMessage,
        ctx: &mut Ctx,
    ) -> Result<Value, ProtoError> {
        let info = self.info(&msg.descriptor())?;
        if let Some(special) = info.special {
            return self.special_to_json(special, msg, ctx);
        }
        let mut obj = Map::new();
        self.write_fields(msg, &mut obj, ctx)?;
        Ok(Value::Object(obj))
    }

    pub(super) fn write_fields(
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

    pub(super) fn field_to_json(
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

    pub(super) fn value_to_json(&self, value: &PValue, ctx: &mut Ctx) -> Result<Value, ProtoError> {
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

    pub(super) fn special_to_json(
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
    pub(super) fn embedded_to_json(&self, raw: &[u8], ctx: &mut Ctx) -> Result<Value, ProtoError> {
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
