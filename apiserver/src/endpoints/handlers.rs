//! Resource handlers: negotiate, decode, call the store, encode. They never build
//! storage keys. Every resource in the table is served by these same functions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use super::App;
use super::decode::{FieldValidation, decode_object};
use super::filters;
use super::negotiate::{self, Output};
use super::render::{self, IncludeObject};
use super::request_info::RequestInfo;
use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::patching as patch;
use crate::registry::eviction::{self, Evicted};
use crate::registry::list::ListRequest;
use crate::registry::pod_binding::{self, Binding};
use crate::registry::watch::{WatchEvent, WatchRequest};
use crate::registry::{DeleteOptions, DeleteOutcome, UpdateTarget, WriteOptions};
use crate::registry::{csr, meta, reviews, service_account_token};
use crate::resources::{CreateAction, ResourceInfo};
use crate::selectors::{FieldSelector, LabelSelector};

pub type Query = HashMap<String, String>;

pub struct Call<'a> {
    pub app: &'a App,
    pub req: &'a RequestInfo,
    pub info: Arc<ResourceInfo>,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    /// Who is asking (authenticated and authorized before the handler runs).
    pub user: &'a filters::UserInfo,
    pub body: Bytes,
}

impl Call<'_> {
    fn ns(&self) -> Option<&str> {
        self.req.namespace.as_deref()
    }
    fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    fn output(&self) -> ApiResult<Output> {
        negotiate::output(self.headers)
    }
    fn include(&self) -> IncludeObject {
        IncludeObject::parse(self.q("includeObject"))
    }
    fn write_options(&self) -> ApiResult<WriteOptions> {
        let dry_run = match self.q("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(self.invalid_options(FieldError::new(
                    FieldErrorKind::NotSupported,
                    "dryRun",
                    Some(format!("[{other:?}]")),
                    r#"supported values: "All""#,
                )));
            }
        };
        let user_agent = self
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(WriteOptions {
            dry_run,
            field_manager: self.q("fieldManager").map(str::to_string),
            user_agent,
            apply: false,
            warnings: Default::default(),
            grant_check: crate::registry::rbac_escalation::guard(
                &self.app.policy,
                self.user,
                &self.info.group,
                &self.info.plural,
            ),
        })
    }
    /// A bad query parameter, reported as upstream validates the verb's
    /// options object (`CreateOptions.meta.k8s.io "" is invalid: ...`).
    fn invalid_options(&self, error: FieldError) -> ApiError {
        let kind = match self.req.verb {
            "create" => "CreateOptions",
            "update" => "UpdateOptions",
            "patch" => "PatchOptions",
            _ => "DeleteOptions",
        };
        ApiError::invalid_options(kind, &error)
    }
    fn field_validation(&self) -> ApiResult<FieldValidation> {
        FieldValidation::parse(self.q("fieldValidation")).map_err(|e| self.invalid_options(e))
    }
    fn decode(&self) -> ApiResult<super::decode::Decoded> {
        self.decode_as(&self.info)
    }
    /// Decodes the body as an object of `info` (a subresource's own kind).
    fn decode_as(&self, info: &ResourceInfo) -> ApiResult<super::decode::Decoded> {
        let validation = self.field_validation()?;
        let raw = negotiate::decode_body(self.headers, &self.body)?;
        let is_json = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|c| c.starts_with("application/json"));
        decode_object(info, raw, is_json.then_some(&self.body[..]), validation)
    }

    fn list_request(&self) -> ApiResult<ListRequest> {
        let label_selector = match self.q("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let field_selector = match self.q("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let limit = match self.q("limit").filter(|s| !s.is_empty()) {
            Some(l) => Some(
                l.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                    .max(0) as usize,
            ),
            None => None,
        };
        Ok(ListRequest {
            label_selector,
            field_selector,
            limit,
            continue_token: self.q("continue").map(str::to_string),
            resource_version: self.q("resourceVersion").map(str::to_string),
            resource_version_match: self.q("resourceVersionMatch").map(str::to_string),
            keep_stored: false,
        })
    }
}

/// Admission and authorization will hook in here (one place in the request path).
pub async fn dispatch(call: Call<'_>) -> ApiResult<Response> {
    let sub = call.req.subresource.as_deref();
    if let Some(sub) = sub {
        let Some(s) = call.info.subresource(sub) else {
            return Err(ApiError::no_route());
        };
        if !s.verbs.contains(&call.req.verb) {
            return Err(ApiError::method_not_allowed());
        }
        return match sub {
            "status" => main_or_status(call, UpdateTarget::Status).await,
            "finalize" => main_or_status(call, UpdateTarget::Finalize).await,
            "scale" => scale(call).await,
            "binding" => bind_pod(call).await,
            "eviction" => evict_pod(call).await,
            "approval" => main_or_status(call, UpdateTarget::Status).await,
            "ephemeralcontainers" => main_or_status(call, UpdateTarget::EphemeralContainers).await,
            "token" => service_account_token(call).await,
            _ => Err(ApiError::new(
                501,
                "NotImplemented",
                format!("subresource {sub} is not served yet"),
            )),
        };
    }
    if !call.info.has_verb(call.req.verb) {
        return Err(ApiError::method_not_allowed());
    }
    // Upstream installs create on collections only, update and patch on items
    // only: any other pairing of method and path has no route.
    let on_item = call.req.name.is_some();
    if (call.req.verb == "create" && on_item)
        || (matches!(call.req.verb, "update" | "patch") && !on_item)
    {
        return Err(ApiError::method_not_allowed());
    }
    if call.info.namespaced && call.ns().is_none() && !matches!(call.req.verb, "list" | "watch") {
        return Err(ApiError::no_route());
    }
    main_or_status(call, UpdateTarget::Main).await
}

async fn main_or_status(call: Call<'_>, target: UpdateTarget) -> ApiResult<Response> {
    match call.req.verb {
        "get" => get(call).await,
        "list" => list(call).await,
        "watch" => watch(call).await,
        "create" => create(call).await,
        "update" => update(call, target).await,
        "patch" => patch(call, target).await,
        "delete" => delete(call).await,
        "deletecollection" => delete_collection(call).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

async fn get(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let obj = call
        .app
        .store
        .get(&call.info, call.ns(), call.name())
        .await?;
    render::object(
        &call.info,
        output,
        call.include(),
        StatusCode::OK,
        &obj,
        &[],
    )
}

async fn list(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let mut req = call.list_request()?;
    req.keep_stored = render::lists_stored(&call.info, &output, &req);
    let out = call.app.store.list(&call.info, call.ns(), &req).await?;
    render::list(&call.info, output, call.include(), out)
}

async fn create(call: Call<'_>) -> ApiResult<Response> {
    match call.info.create {
        CreateAction::Store => {}
        CreateAction::Review => return review(call).await,
        CreateAction::BindPod => return bind_pod(call).await,
    }
    let output = call.output()?;
    let opts = call.write_options()?;
    let decoded = call.decode()?;
    let mut obj = decoded.object;
    check_namespace_of_body(&call, &mut obj)?;
    let created = call
        .app
        .store
        .create(&call.info, call.ns(), obj, &opts)
        .await?;
    let mut warnings = decoded.warnings;
    warnings.extend(opts.warnings.take());
    render::object(
        &call.info,
        output,
        call.include(),
        StatusCode::CREATED,
        &created,
        &warnings,
    )
}

/// A review is answered, not stored; it has no Table or metadata-only form
/// (upstream gives those resources no table convertor).
async fn review(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    if output.form != negotiate::Form::Object {
        return Err(ApiError::not_acceptable(negotiate::SERVED_TYPES));
    }
    let decoded = call.decode()?;
    let mut obj = decoded.object;
    check_namespace_of_body(&call, &mut obj)?;
    let cx = reviews::Context {
        store: &call.app.store,
        tokens: &call.app.keys.service_account,
        user: call.user,
        policy: &call.app.policy,
    };
    reviews::answer(&call.info, &mut obj, &cx).await?;
    render::object(
        &call.info,
        output,
        call.include(),
        StatusCode::CREATED,
        &obj,
        &decoded.warnings,
    )
}

/// The body's namespace must match the URL's; an empty one takes the URL's.
fn check_namespace_of_body(call: &Call<'_>, obj: &mut Value) -> ApiResult<()> {
    let m = meta::meta_mut(obj);
    if !call.info.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    let url_ns = call.ns().unwrap_or("");
    match m.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != url_ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            m.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
    }
}

async fn update(call: Call<'_>, target: UpdateTarget) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = call.write_options()?;
    let decoded = call.decode()?;
    let mut body = decoded.object;
    check_namespace_of_body(&call, &mut body)?;
    let name = call.name().to_string();
    if meta::name(&body) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&body)
        )));
    }
    let allow_create = call.info.strategy.allow_create_on_update() && target == UpdateTarget::Main;
    let sub = call.req.subresource.as_deref();
    let info = call.info.clone();
    let (obj, created) = call
        .app
        .store
        .update(
            &call.info,
            call.ns(),
            &name,
            target,
            &opts,
            |current| match current {
                Some(old) => csr::prepare_subresource_update(&info, sub, body.clone(), old),
                None if allow_create => {
                    let mut b = body.clone();
                    meta::meta_mut(&mut b).remove("resourceVersion");
                    Ok(b)
                }
                None => Err(ApiError::not_found(&info, &name)),
            },
        )
        .await?;
    written(&call, output, &obj, created, &decoded.warnings)
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

async fn patch(call: Call<'_>, target: UpdateTarget) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = call.write_options()?;
    let validation = call.field_validation()?;
    if call.body.len() > negotiate::MAX_BODY {
        return Err(ApiError::too_large(negotiate::MAX_BODY));
    }
    let content_type = call
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let force = match call.q("force") {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid force value: {other}"
            )));
        }
    };
    if essence == "application/apply-patch+yaml" {
        return server_side_apply(call, target, opts, validation, force).await;
    }
    if force {
        return Err(ApiError::invalid_options(
            "PatchOptions",
            &FieldError::forbidden("force", "may not be specified for non-apply patch"),
        ));
    }
    let patch_type = match essence.as_str() {
        "application/json-patch+json" => patch::PatchKind::Json,
        "application/merge-patch+json" => patch::PatchKind::Merge,
        "application/strategic-merge-patch+json" if call.info.codec.is_some() => {
            patch::PatchKind::Strategic
        }
        // Custom resources have no patch strategies (upstream answers 415).
        "application/strategic-merge-patch+json" => {
            return Err(ApiError::unsupported_media_type(
                content_type,
                &crate::patch::CUSTOM_RESOURCE_PATCH_TYPES,
            ));
        }
        _ => return Err(ApiError::unsupported_media_type(content_type, PATCH_TYPES)),
    };
    let patch_doc = negotiate::decode_json(&call.body)?;
    let name = call.name().to_string();
    let info = call.info.clone();
    let sub = call.req.subresource.as_deref();
    let mut warnings = Vec::new();
    let (obj, _) = call
        .app
        .store
        .update(&call.info, call.ns(), &name, target, &opts, |current| {
            let Some(current) = current else {
                return Err(ApiError::not_found(&info, &name));
            };
            let mut doc = current.clone();
            // The patched object keeps the current resourceVersion unless the patch sets one.
            let patched = patch::apply(patch_type, &info, &doc, &patch_doc)?;
            doc = patched;
            if meta::name(&doc) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&doc)
                )));
            }
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let decoded = decode_object(&info, doc, Some(&bytes), validation)?;
            warnings = decoded.warnings;
            let mut out = decoded.object;
            if meta::resource_version(&out) == meta::resource_version(current)
                && patch_type != patch::PatchKind::Json
            {
                // Only an explicit resourceVersion in the patch pins the write.
                if patch_doc.pointer("/metadata/resourceVersion").is_none() {
                    meta::meta_mut(&mut out).remove("resourceVersion");
                }
            }
            csr::prepare_subresource_update(&info, sub, out, current)
        })
        .await?;
    render::object(
        &call.info,
        output,
        call.include(),
        StatusCode::OK,
        &obj,
        &warnings,
    )
}

/// The response to a write that may have created the object (201) or changed it (200).
fn written(
    call: &Call<'_>,
    output: Output,
    obj: &Value,
    created: bool,
    warnings: &[String],
) -> ApiResult<Response> {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    render::object(&call.info, output, call.include(), status, obj, warnings)
}

/// `application/apply-patch+yaml`: server-side apply of the body as a configuration.
async fn server_side_apply(
    call: Call<'_>,
    target: UpdateTarget,
    mut opts: WriteOptions,
    validation: FieldValidation,
    force: bool,
) -> ApiResult<Response> {
    let output = call.output()?;
    let manager = match opts.field_manager.as_deref() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            return Err(ApiError::invalid_options(
                "PatchOptions",
                &FieldError::required("fieldManager", "is required for apply patch"),
            ));
        }
    };
    opts.apply = true;
    let raw = negotiate::decode_yaml(&call.body)?;
    if !raw.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    if validation == FieldValidation::Strict
        && let Some(msg) = crate::crd::undeclared_in_apply(&call.info, &raw)
    {
        return Err(ApiError::bad_request(msg));
    }
    let bytes = serde_json::to_vec(&raw).unwrap_or_default();
    let decoded = decode_object(&call.info, raw.clone(), Some(&bytes), validation)?;
    let config = keep_known(&raw, &decoded.object);
    let name = call.name().to_string();
    if meta::name(&config) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&config)
        )));
    }
    let mut config = config;
    check_namespace_of_body(&call, &mut config)?;
    let info = call.info.clone();
    let scope = crate::managed::Scope::of(&info, target == UpdateTarget::Status);
    let (obj, created) = call
        .app
        .store
        .update(&call.info, call.ns(), &name, target, &opts, |current| {
            let merged = crate::managed::apply(&info, scope, &manager, force, current, &config)?;
            let mut normalised =
                decode_object(&info, merged, None, FieldValidation::Ignore)?.object;
            // The write is pinned only by a resourceVersion in the configuration.
            if current.is_some() && meta::resource_version(&config).is_empty() {
                meta::meta_mut(&mut normalised).remove("resourceVersion");
            }
            Ok(normalised)
        })
        .await?;
    written(&call, output, &obj, created, &decoded.warnings)
}

/// `raw` without the fields that decoding into the typed object dropped (unknown fields).
fn keep_known(raw: &Value, known: &Value) -> Value {
    match (raw, known) {
        (Value::Object(r), Value::Object(k)) => Value::Object(
            r.iter()
                .filter_map(|(key, v)| k.get(key).map(|kv| (key.clone(), keep_known(v, kv))))
                .collect(),
        ),
        (Value::Array(r), Value::Array(k)) if r.len() == k.len() => {
            Value::Array(r.iter().zip(k).map(|(a, b)| keep_known(a, b)).collect())
        }
        _ => raw.clone(),
    }
}

fn delete_options(call: &Call<'_>) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions {
        dry_run: call.write_options()?.dry_run,
        ..Default::default()
    };
    if let Some(g) = call.q("gracePeriodSeconds").filter(|s| !s.is_empty()) {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    opts.propagation_policy = call.q("propagationPolicy").map(str::to_string);
    if !call.body.is_empty() {
        let body = negotiate::decode_body(call.headers, &call.body)?;
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        fold_delete_options(&body, &mut opts);
    }
    if let Some(p) = &opts.propagation_policy
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid_delete_options(p));
    }
    Ok(opts)
}

/// Folds a `DeleteOptions` body (or an eviction's `deleteOptions`) into `opts`.
fn fold_delete_options(body: &Value, opts: &mut DeleteOptions) {
    if let Some(g) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
        opts.propagation_policy = Some(p.to_string());
    }
    if body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
        && opts.propagation_policy.is_none()
    {
        opts.propagation_policy = Some("Orphan".into());
    }
    if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
        opts.dry_run |= d.iter().any(|v| v == "All");
    }
    opts.precondition_uid = body
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    opts.precondition_resource_version = body
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
}

/// The `Status` a subresource create answers with when it stores nothing.
fn created_status(output: Output, warnings: &[String]) -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    render::body(StatusCode::CREATED, output, &status, warnings)
}

/// `pods/binding`, and `bindings` (which names the pod in the body).
async fn bind_pod(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = call.write_options()?;
    let table = &call.app.table;
    let (Some(bindings), Some(pods)) =
        (table.get("", "v1", "bindings"), table.get("", "v1", "pods"))
    else {
        return Err(ApiError::internal("pods and bindings must both be served"));
    };
    let decoded = call.decode_as(&bindings)?;
    let mut obj = decoded.object;
    check_namespace_of_body(&call, &mut obj)?;
    let binding = Binding::from_object(&obj)?;
    let url_name = call.req.name.clone().unwrap_or_else(|| binding.pod.clone());
    pod_binding::bind(
        &call.app.store,
        &pods,
        call.ns(),
        &url_name,
        &binding,
        &opts,
    )
    .await?;
    Ok(created_status(output, &decoded.warnings))
}

/// `serviceaccounts/token`: a TokenRequest, answered with a signed token.
async fn service_account_token(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let mut body = negotiate::decode_body(call.headers, &call.body)?;
    // The status is the answer; clients send it empty (`expirationTimestamp: null`).
    if let Some(o) = body.as_object_mut() {
        o.remove("status");
    }
    let kind = meta::str_at(&body, "/kind").unwrap_or("TokenRequest");
    let api_version = meta::str_at(&body, "/apiVersion").unwrap_or("authentication.k8s.io/v1");
    if kind != "TokenRequest" || api_version != "authentication.k8s.io/v1" {
        return Err(ApiError::bad_request(format!(
            "not a TokenRequest object: {api_version}, Kind={kind}"
        )));
    }
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = serde_json::to_value(request).map_err(ApiError::internal)?;
    let ns = call.ns().unwrap_or("");
    let answer = service_account_token::issue(
        &call.app.store,
        &call.app.keys.service_account,
        ns,
        call.name(),
        request,
    )
    .await?;
    Ok(render::body(StatusCode::CREATED, output, &answer, &[]))
}

/// `pods/eviction`: a delete that honours the pod's disruption budget.
async fn evict_pod(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let mut opts = DeleteOptions {
        dry_run: call.write_options()?.dry_run,
        ..Default::default()
    };
    let body = negotiate::decode_body(call.headers, &call.body)?;
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Eviction");
    let api_version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("policy/v1");
    if kind != "Eviction" || !matches!(api_version, "policy/v1" | "policy/v1beta1") {
        return Err(ApiError::bad_request(format!(
            "not a Eviction object: {api_version}, Kind={kind}"
        )));
    }
    if body
        .get("deleteOptions")
        .is_some_and(|d| !d.is_null() && !d.is_object())
    {
        return Err(ApiError::bad_request("deleteOptions must be an object"));
    }
    if meta::name(&body) != call.name() {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    if let Some(d) = body.get("deleteOptions").filter(|d| d.is_object()) {
        fold_delete_options(d, &mut opts);
    }
    if let Some(p) = &opts.propagation_policy
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid_delete_options(p));
    }
    let ns = call.ns().unwrap_or("");
    match eviction::evict(&call.app.store, &call.info, ns, call.name(), &opts).await? {
        Evicted::Deleted => Ok(created_status(output, &[])),
        Evicted::Refused(message) => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "code": 500});
            Ok(render::body(
                StatusCode::INTERNAL_SERVER_ERROR,
                output,
                &status,
                &[],
            ))
        }
    }
}

async fn delete(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = delete_options(&call)?;
    let outcome = call
        .app
        .store
        .delete(&call.info, call.ns(), call.name(), &opts)
        .await?;
    let obj = match outcome {
        DeleteOutcome::Pending(o) => o,
        DeleteOutcome::Deleted(o)
            if crate::registry::strategy::returns_deleted_object(
                &call.info.group,
                &call.info.plural,
            ) =>
        {
            o
        }
        DeleteOutcome::Deleted(o) => {
            let mut details = json!({"name": call.name()});
            if !call.info.group.is_empty() {
                details["group"] = json!(call.info.group);
            }
            details["kind"] = json!(call.info.plural);
            details["uid"] = json!(meta::str_at(&o, "/metadata/uid").unwrap_or(""));
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
            return Ok(render::body(StatusCode::OK, output, &status, &[]));
        }
    };
    render::object(
        &call.info,
        output,
        call.include(),
        StatusCode::OK,
        &obj,
        &[],
    )
}

async fn delete_collection(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = delete_options(&call)?;
    let req = call.list_request()?;
    let listed = call.app.store.list(&call.info, call.ns(), &req).await?;
    let mut deleted = Vec::new();
    for obj in &listed.items {
        let ns = Some(meta::namespace(obj)).filter(|n| !n.is_empty());
        match call
            .app
            .store
            .delete(&call.info, ns, meta::name(obj), &opts)
            .await
        {
            Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => deleted.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let out = crate::registry::list::ListOutput {
        items: deleted,
        stored: Vec::new(),
        revision: listed.revision,
        continue_token: None,
        remaining: None,
    };
    render::list(&call.info, output, IncludeObject::Metadata, out)
}

async fn watch(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let mut list = call.list_request()?;
    if let Some(name) = call.req.name.as_deref() {
        list.field_selector = Some(named_watch_selector(list.field_selector.take(), name)?);
    }
    let send_initial_events = super::query::optional_flag(call.q("sendInitialEvents"));
    let allow_bookmarks = super::query::flag(call.q("allowWatchBookmarks"));
    let timeout = watch_timeout(call.q("timeoutSeconds"));
    let req = WatchRequest {
        list,
        send_initial_events,
        allow_bookmarks,
    };
    let events = call.app.store.watch(&call.info, call.ns(), req).await?;
    let frames = watch_frames(
        call.info.clone(),
        output,
        call.include(),
        allow_bookmarks,
        events,
    );
    let deadline = tokio::time::sleep(timeout);
    let body = frames
        .take_until(deadline)
        .map(Ok::<_, std::convert::Infallible>);
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(render::watch_content_type(&call.info, output)),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// How long a watch runs: `timeoutSeconds`, else upstream's default of 30 min.
pub(super) fn watch_timeout(param: Option<&str>) -> Duration {
    Duration::from_secs(param.and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800))
}

/// A watch on one object (a legacy `/watch/.../NAME` path, or `?watch` on an
/// item) selects that object by `metadata.name`; a field selector may only
/// repeat that name (upstream's list handler rule).
pub(super) fn named_watch_selector(
    given: Option<FieldSelector>,
    name: &str,
) -> ApiResult<FieldSelector> {
    match given.filter(|s| !s.is_empty()) {
        Some(sel) if sel.requires_exact_match("metadata.name") == Some(name) => Ok(sel),
        Some(_) => Err(ApiError::bad_request(
            "fieldSelector metadata.name doesn't match requested name",
        )),
        None => FieldSelector::parse(&format!(
            "metadata.name={}",
            crate::selectors::escape_field_value(name)
        ))
        .map_err(|e| ApiError::bad_request(e.to_string())),
    }
}

/// Encodes watch events as newline-delimited `{type, object}` JSON frames,
/// or, when protobuf is negotiated, as length-delimited protobuf
/// `WatchEvent`s (see `render::protobuf_watch_frame`).
pub fn watch_frames(
    info: Arc<ResourceInfo>,
    output: Output,
    include: IncludeObject,
    allow_bookmarks: bool,
    events: crate::registry::watch::WatchEvents,
) -> futures::stream::BoxStream<'static, Bytes> {
    let interval = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(30),
        Duration::from_secs(30),
    );
    let ticks = tokio_stream::wrappers::IntervalStream::new(interval).map(|_| None);
    let merged = futures::stream::select(events.map(Some), ticks);
    let protobuf_form = render::protobuf_watch_form(&info, output);
    let mut last_rv = 0i64;
    merged
        .filter_map(move |ev| {
            let event = match ev {
                Some(ev) => {
                    if let Some(rv) = ev.revision() {
                        last_rv = last_rv.max(rv);
                    }
                    if matches!(ev, WatchEvent::Bookmark(..)) && !allow_bookmarks {
                        None
                    } else {
                        Some(ev)
                    }
                }
                None if allow_bookmarks && last_rv > 0 => {
                    Some(WatchEvent::Bookmark(last_rv, false))
                }
                None => None,
            };
            // `Some(None)`: an event protobuf cannot carry, which ends the watch.
            let frame = event.map(|ev| match protobuf_form {
                Some(form) => render::protobuf_watch_frame(&info, form, &ev),
                None => Some(encode_event(&info, output, include, &ev)),
            });
            futures::future::ready(frame)
        })
        .take_while(|frame| futures::future::ready(frame.is_some()))
        .filter_map(futures::future::ready)
        .boxed()
}

fn encode_event(
    info: &ResourceInfo,
    output: Output,
    include: IncludeObject,
    ev: &WatchEvent,
) -> Bytes {
    let object = match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => match output {
            Output::Table => render::table(
                info,
                std::slice::from_ref(o),
                include,
                json!({"resourceVersion": meta::resource_version(o)}),
                true,
            ),
            Output::PartialObjectMetadata | Output::PartialObjectMetadataList => json!({
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => o.clone(),
        },
        WatchEvent::Bookmark(rv, initial_end) => {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if *initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            match output {
                Output::Table => {
                    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": null, "rows": null})
                }
                Output::PartialObjectMetadata | Output::PartialObjectMetadataList => {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
                }
                _ => json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
            }
        }
        WatchEvent::Error(status) => status.clone(),
    };
    let mut line =
        serde_json::to_vec(&json!({"type": ev.type_name(), "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// `autoscaling/v1` Scale of a workload.
async fn scale(call: Call<'_>) -> ApiResult<Response> {
    let output = call.output()?;
    let opts = call.write_options()?;
    let paths = call.info.strategy.scale_paths();
    let custom = call.info.codec.is_none();
    let to_scale = |obj: &Value| -> Value {
        let selector = paths
            .label_selector
            .as_deref()
            .and_then(|p| obj.pointer(p))
            .map(|s| match s {
                Value::String(s) => s.clone(),
                other => selector_string(other),
            })
            .unwrap_or_default();
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta::name(obj),
                "namespace": meta::namespace(obj),
                "uid": meta::str_at(obj, "/metadata/uid").unwrap_or(""),
                "resourceVersion": meta::resource_version(obj),
                "creationTimestamp": obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
            },
            "spec": {"replicas": obj.pointer(&paths.spec_replicas).and_then(Value::as_i64).unwrap_or(0)},
            "status": {
                "replicas": obj.pointer(&paths.status_replicas).and_then(Value::as_i64).unwrap_or(0),
                "selector": selector,
            },
        });
        // A custom resource's Scale omits an empty selector (`omitempty`).
        if custom && selector.is_empty() {
            scale["status"]
                .as_object_mut()
                .map(|s| s.remove("selector"));
        }
        scale
    };
    let name = call.name().to_string();
    let obj = match call.req.verb {
        "get" => call.app.store.get(&call.info, call.ns(), &name).await?,
        "update" | "patch" => {
            let body = if call.req.verb == "patch" {
                None
            } else {
                Some(negotiate::decode_body(call.headers, &call.body)?)
            };
            let patch_doc = if call.req.verb == "patch" {
                Some(negotiate::decode_json(&call.body)?)
            } else {
                None
            };
            let content_type = call
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let info = call.info.clone();
            let (obj, _) = call
                .app
                .store
                .update(
                    &call.info,
                    call.ns(),
                    &name,
                    UpdateTarget::Main,
                    &opts,
                    |current| {
                        let Some(current) = current else {
                            return Err(ApiError::not_found(&info, &name));
                        };
                        let scale_now = to_scale(current);
                        let new_scale = match (&body, &patch_doc) {
                            (Some(b), _) => b.clone(),
                            (None, Some(p)) => {
                                let kind = match content_type.split(';').next().unwrap_or("").trim()
                                {
                                    "application/json-patch+json" => patch::PatchKind::Json,
                                    "application/merge-patch+json" => patch::PatchKind::Merge,
                                    "application/strategic-merge-patch+json" => {
                                        patch::PatchKind::Merge
                                    }
                                    other => {
                                        return Err(ApiError::unsupported_media_type(
                                            other,
                                            PATCH_TYPES,
                                        ));
                                    }
                                };
                                patch::apply(kind, &info, &scale_now, p)?
                            }
                            _ => scale_now.clone(),
                        };
                        let rv = meta::resource_version(&new_scale);
                        if !rv.is_empty() && rv != meta::resource_version(current) {
                            return Err(ApiError::stale(&info, &name));
                        }
                        let replicas = new_scale
                            .pointer("/spec/replicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        if replicas < 0 {
                            return Err(ApiError::invalid_scale(&name, replicas));
                        }
                        let mut next = current.clone();
                        set_at_pointer(&mut next, &paths.spec_replicas, json!(replicas));
                        meta::meta_mut(&mut next).remove("resourceVersion");
                        Ok(next)
                    },
                )
                .await?;
            obj
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    render::body(StatusCode::OK, output, &to_scale(&obj), &[]).pipe(Ok)
}

/// Sets the value at a JSON pointer, creating the objects on the way.
fn set_at_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut at = obj;
    let segments: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        if i + 1 == segments.len() {
            map.insert((*seg).to_string(), value);
            return;
        }
        at = map.entry((*seg).to_string()).or_insert_with(|| json!({}));
    }
}

/// A label selector (`matchLabels` only, as Scale's `status.selector`) in string form.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    if sel.get("matchLabels").is_none()
        && sel.get("matchExpressions").is_none()
        && let Some(m) = sel.as_object()
    {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    parts.sort();
    parts.join(",")
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

impl ApiError {
    fn invalid_delete_options(policy: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
        )
        .with_details(json!({"group": "meta.k8s.io", "kind": "DeleteOptions"}))
    }

    fn invalid_scale(name: &str, replicas: i64) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("Scale.autoscaling {name:?} is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
        )
        .with_details(json!({"name": name, "group": "autoscaling", "kind": "Scale"}))
    }
}
