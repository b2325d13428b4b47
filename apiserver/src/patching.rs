//! PATCH dispatch: picks the patch algorithm for the request's content type and
//! maps patch failures to upstream's API errors.

use serde_json::Value;

use crate::api_error::{ApiError, ApiResult};
use crate::patch::{PatchError, json_patch, merge_keys, merge_patch, strategic};
use crate::resources::ResourceInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
}

pub fn apply(kind: PatchKind, info: &ResourceInfo, doc: &Value, patch: &Value) -> ApiResult<Value> {
    let result = match kind {
        PatchKind::Json => json_patch::apply(doc, patch),
        PatchKind::Merge => {
            if !patch.is_object() && !patch.is_null() {
                Ok(patch.clone())
            } else {
                Ok(merge_patch::apply(doc, patch))
            }
        }
        PatchKind::Strategic => {
            let schema = merge_keys::builtin_schema(&info.group, &info.kind);
            strategic::apply(doc, patch, schema.as_ref())
        }
    };
    result.map_err(|e| patch_error(&e))
}

fn patch_error(e: &PatchError) -> ApiError {
    match e.code() {
        400 => ApiError::bad_request(e.to_string()),
        409 => ApiError::new(409, "Conflict", e.to_string()),
        422 => ApiError::new(422, "Invalid", e.to_string()),
        500 => ApiError::internal(e),
        code => ApiError::new(code, "BadRequest", e.to_string()),
    }
}
