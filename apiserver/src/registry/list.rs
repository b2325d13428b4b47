//! Lists: selectors, `resourceVersion`/`resourceVersionMatch`, and `limit`/`continue`
//! pagination with upstream's opaque token (base64 of `{"v","rv","start"}`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::meta::decode_stored;
use super::store::Store;
use crate::api_error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::selectors::{
    FieldSelector, LabelSelector, convert_custom_resource_field_label, custom_resource_field_value,
    field_value,
};
use crate::storage::{KeyValue, ListOptions, Revision, StorageError};

/// A parsed list (or watch) request.
#[derive(Default)]
pub struct ListRequest {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    /// Return the stored items undecoded in [`ListOutput::stored`] (only
    /// honoured without selectors, which need decoded objects).
    pub keep_stored: bool,
}

pub struct ListOutput {
    pub items: Vec<Value>,
    /// The items as stored, instead of `items`, when the request asked to
    /// keep them so.
    pub stored: Vec<KeyValue>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

pub fn encode_continue(rv: Revision, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("server does not recognize this encoded version"));
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|rv| *rv > 0)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let start = v.get("start").and_then(Value::as_str).unwrap_or("");
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("continue key is not valid"));
    }
    Ok((rv, start.to_string()))
}

/// Parses a `resourceVersion` query value.
pub fn parse_rv(rv: &str) -> ApiResult<Revision> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!("invalid resource version: {rv}")).with_details(json!({}))
        })
}

impl ListRequest {
    /// Whether `obj` passes the label and field selectors.
    pub fn matches(&self, info: &ResourceInfo, obj: &Value) -> bool {
        if let Some(sel) = &self.label_selector
            && !sel.matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
        {
            return false;
        }
        if let Some(sel) = &self.field_selector {
            let custom = info.strategy.selectable_fields().is_some();
            let lookup = |field: &str| {
                if custom {
                    return Some(custom_resource_field_value(obj, field));
                }
                field_value(&info.group, &info.plural, obj, field)
                    .ok()
                    .flatten()
            };
            if !sel.matches(lookup) {
                return false;
            }
        }
        true
    }

    /// Rejects field selectors on fields the resource does not support (400, as upstream).
    pub fn check_fields(&self, info: &ResourceInfo) -> ApiResult<()> {
        let Some(sel) = &self.field_selector else {
            return Ok(());
        };
        let checked = match info.strategy.selectable_fields() {
            Some(declared) => {
                let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
                sel.requirements().iter().try_for_each(|r| {
                    convert_custom_resource_field_label(!info.namespaced, &declared, &r.field)
                })
            }
            None => sel.validate_for(&info.group, &info.version, &info.plural),
        };
        checked.map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(())
    }
}

impl Store {
    pub async fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        req: &ListRequest,
    ) -> ApiResult<ListOutput> {
        req.check_fields(info)?;
        let prefix = info.list_prefix(ns);
        let mut opts = ListOptions {
            limit: req.limit,
            ..Default::default()
        };
        if let Some(token) = req.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if req
                .resource_version
                .as_deref()
                .is_some_and(|rv| !rv.is_empty())
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, start) = decode_continue(token)?;
            opts.revision = Some(rv);
            opts.start_after = Some(format!("{prefix}{start}"));
        } else if let Some(rv) = req.resource_version.as_deref().filter(|rv| !rv.is_empty()) {
            let rev = parse_rv(rv)?;
            match req.resource_version_match.as_deref() {
                Some("Exact") => opts.revision = Some(rev),
                Some("NotOlderThan") | None | Some("") => {
                    opts.min_revision = Some(rev);
                    let current = self
                        .storage
                        .current_revision()
                        .await
                        .map_err(|e| ApiError::from_storage(e, info, ""))?;
                    if rev > current {
                        return Err(ApiError::from_storage(
                            StorageError::FutureRevision {
                                requested: rev,
                                current,
                            },
                            info,
                            "",
                        ));
                    }
                }
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown resourceVersionMatch value: {other}"
                    )));
                }
            }
        } else if req
            .resource_version_match
            .as_deref()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        let filtered = req.label_selector.is_some() || req.field_selector.is_some();
        let want = req.limit.filter(|l| *l > 0);
        let keep_stored = req.keep_stored && !filtered;
        let mut items = Vec::new();
        let mut stored = Vec::new();
        let mut revision;
        let mut remaining;
        let mut last_key: Option<String>;
        // With selectors, keep reading pages until the limit is met or keys run out.
        loop {
            let page = match self.storage.list(&prefix, opts.clone()).await {
                Ok(p) => p,
                Err(StorageError::Compacted { .. }) if req.continue_token.is_some() => {
                    let current = self.storage.current_revision().await.unwrap_or_default();
                    let fresh = opts
                        .start_after
                        .as_deref()
                        .and_then(|k| k.strip_prefix(&prefix))
                        .map(|s| encode_continue(current, s));
                    let mut err = ApiError::gone(EXPIRED_CONTINUE);
                    if let Some(t) = fresh {
                        err = err.with_details(json!({})).with_continue(t);
                    }
                    return Err(err);
                }
                Err(e) => return Err(ApiError::from_storage(e, info, "")),
            };
            revision = page.revision;
            remaining = page.remaining;
            last_key = page.items.last().map(|kv| kv.key.clone());
            if keep_stored {
                stored.extend(page.items);
            } else {
                for kv in &page.items {
                    let obj = decode_stored(info, kv)?;
                    if !filtered || req.matches(info, &obj) {
                        items.push(obj);
                    }
                }
            }
            let Some(limit) = want else { break };
            let got = items.len() + stored.len();
            if got >= limit || remaining == 0 {
                break;
            }
            opts.revision = Some(revision);
            opts.start_after = last_key.clone();
            opts.limit = Some(limit - got);
        }
        let continue_token = match (want, &last_key) {
            (Some(_), Some(k)) if remaining > 0 => Some(encode_continue(
                revision,
                k.strip_prefix(&prefix).unwrap_or(k),
            )),
            _ => None,
        };
        let remaining = (continue_token.is_some() && !filtered).then_some(remaining as i64);
        Ok(ListOutput {
            items,
            stored,
            revision,
            continue_token,
            remaining,
        })
    }
}

impl ApiError {
    /// Attaches a fresh continue token to a 410 (as upstream's inconsistent-continue hint).
    pub fn with_continue(mut self, token: String) -> Self {
        self.continue_token = Some(token.into_boxed_str());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips_and_rejects_garbage() {
        let t = encode_continue(42, "default/foo");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/foo".to_string())
        );
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        let evil = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#);
        assert_eq!(decode_continue(&evil).unwrap_err().code, 400);
    }
}
