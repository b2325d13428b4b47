//! Placeholder until the patch module lands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);
impl PatchError {
    pub fn code(&self) -> u16 {
        422
    }
}
pub mod json_patch {
    pub fn apply(
        _d: &serde_json::Value,
        _p: &serde_json::Value,
    ) -> Result<serde_json::Value, super::PatchError> {
        Err(super::PatchError("json patch not implemented".into()))
    }
}
pub mod merge_patch {
    use serde_json::Value;
    pub fn apply(doc: &Value, patch: &Value) -> Value {
        match (doc, patch) {
            (Value::Object(d), Value::Object(p)) => {
                let mut out = d.clone();
                for (k, v) in p {
                    if v.is_null() {
                        out.remove(k);
                    } else {
                        let cur = out.get(k).cloned().unwrap_or(Value::Null);
                        out.insert(k.clone(), apply(&cur, v));
                    }
                }
                Value::Object(out)
            }
            (_, Value::Object(_)) => apply(&Value::Object(Default::default()), patch),
            _ => patch.clone(),
        }
    }
}
pub mod merge_keys {
    pub trait PatchSchema {}
    struct S;
    impl PatchSchema for S {}
    pub fn builtin_schema(_g: &str, _k: &str) -> Box<dyn PatchSchema> {
        Box::new(S)
    }
}
pub mod strategic {
    pub fn apply(
        d: &serde_json::Value,
        p: &serde_json::Value,
        _s: &dyn super::merge_keys::PatchSchema,
    ) -> Result<serde_json::Value, super::PatchError> {
        Ok(super::merge_patch::apply(d, p))
    }
}
