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
        PatchKind::Merge => merge_patch::apply(doc, patch),
        PatchKind::Strategic => match merge_keys::builtin_schema(&info.group, &info.kind) {
            Some(schema) => strategic::apply(doc, patch, &schema),
            None => Err(PatchError::strategic_unsupported()),
        },
    };
    result.map_err(|e| patch_error(&e))
}

fn patch_error(e: &PatchError) -> ApiError {
    let mut err = ApiError::new(e.code(), e.reason(), e.to_string());
    if let Some(d) = e.details() {
        err = err.with_details(d);
    }
    if !e.detail().is_empty() && e.detail() != e.to_string() {
        tracing::debug!(detail = %e.detail(), "patch rejected");
    }
    err
}
