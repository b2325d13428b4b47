//! CertificateSigningRequests (`certificates.k8s.io/v1`): their strategy and
//! the rules of their `approval` and `status` subresources, as upstream's
//! `pkg/registry/certificates/certificates` strategies and
//! `pkg/apis/certificates/validation`.
//!
//! A CSR's spec never changes after create. Its status is written in two
//! parts by two parties:
//!
//! ```text
//!   approver ── PUT /approval ──> status.conditions (Approved | Denied, and others)
//!   signer   ── PUT /status   ──> status.certificate (once), Failed and other conditions
//! ```
//!
//! Approved, Denied and Failed conditions are never removed; Approved and
//! Denied exclude each other; `/status` may not touch Approved or Denied.

use base64::Engine;
use serde_json::{Value, json};
use x509_parser::prelude::FromDer;

use super::WriteOptions;
use super::meta;
use super::store::{Store, UpdateTarget};
use super::strategy;
use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::auth::ca::ClusterCa;
use crate::resources::ResourceInfo;
use crate::validation::names;

const APPROVED: &str = "Approved";
const DENIED: &str = "Denied";
const FAILED: &str = "Failed";
const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// The Secret (in `kube-system`) through which the API server hands the
/// cluster CA to the CSR signing controller, which reaches it only through
/// the API. `tls.crt` holds the CA certificate and `tls.key` its key.
pub const SIGNING_CA_SECRET: &str = "ironkube-cluster-signing-ca";

/// Upstream's key usages, sorted as its `sets.String.List()` prints them.
const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Whether `info` is the CSR resource (whose subresources this module rules).
pub fn serves(info: &ResourceInfo) -> bool {
    info.group == "certificates.k8s.io" && info.plural == "certificatesigningrequests"
}

/// The main resource's strategy: status and spec are set on create only;
/// an update of the object itself keeps both.
pub struct Strategy;

impl strategy::Strategy for Strategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        // Users cannot create pre-approved (or pre-signed) requests; the
        // requesting user's identity is the server's to fill in.
        obj["status"] = json!({});
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            for k in ["username", "uid", "groups", "extra"] {
                spec.remove(k);
            }
        }
    }
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        for k in ["spec", "status"] {
            match old.get(k) {
                Some(v) => obj[k] = v.clone(),
                None => {
                    if let Some(o) = obj.as_object_mut() {
                        o.remove(k);
                    }
                }
            }
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate(obj, None)
    }
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        removed_conditions(obj, old)
    }
}

/// Prepares and validates a write to a CSR's `approval` or `status`
/// subresource (`new` is what the client sent or patched, `old` the stored
/// object); anything else passes through unchanged.
pub fn prepare_subresource_update(
    info: &ResourceInfo,
    subresource: Option<&str>,
    mut new: Value,
    old: &Value,
) -> ApiResult<Value> {
    if !serves(info) {
        return Ok(new);
    }
    let approval = match subresource {
        Some("approval") => true,
        Some("status") => false,
        _ => return Ok(new),
    };
    new["spec"] = old.get("spec").cloned().unwrap_or(Value::Null);
    if !new.get("status").is_some_and(Value::is_object) {
        new["status"] = json!({});
    }
    if approval {
        // Only the conditions change.
        let conditions = new["status"].get("conditions").cloned();
        new["status"] = old.get("status").cloned().unwrap_or_else(|| json!({}));
        match conditions {
            Some(c) => new["status"]["conditions"] = c,
            None => {
                if let Some(s) = new["status"].as_object_mut() {
                    s.remove("conditions");
                }
            }
        }
    } else {
        preserve_instances(&mut new, old, APPROVED);
        preserve_instances(&mut new, old, DENIED);
    }
    populate_timestamps(&mut new, old);
    let mut errs = validate(&new, Some(old));
    errs.extend(removed_conditions(&new, old));
    if !approval {
        for t in [APPROVED, DENIED] {
            let (was, now) = (of_type(old, t), of_type(&new, t));
            if now.len() > was.len() {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not add a condition of type {t:?}"),
                ));
            } else if now.len() == was.len() && now != was {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not modify a condition of type {t:?}"),
                ));
            }
        }
    }
    let cert = |o: &Value| o.pointer("/status/certificate").cloned();
    if cert(&new) != cert(old) {
        if approval {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if cert(old).is_some_and(|c| c.as_str().is_some_and(|s| !s.is_empty())) {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    if errs.is_empty() {
        Ok(new)
    } else {
        Err(ApiError::invalid(info, meta::name(&new), &errs))
    }
}

fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn cond_type(c: &Value) -> &str {
    c.get("type").and_then(Value::as_str).unwrap_or("")
}

fn of_type<'a>(obj: &'a Value, t: &str) -> Vec<&'a Value> {
    conditions(obj)
        .iter()
        .filter(|c| cond_type(c) == t)
        .collect()
}

/// Approved, Denied and Failed conditions are never removed.
fn removed_conditions(new: &Value, old: &Value) -> Vec<FieldError> {
    [APPROVED, DENIED, FAILED]
        .iter()
        .filter(|t| of_type(new, t).len() < of_type(old, t).len())
        .map(|t| {
            FieldError::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type {t:?}"),
            )
        })
        .collect()
}

/// Keeps the old instances of condition type `t` when the write has as many
/// (a `/status` write cannot change approval).
fn preserve_instances(new: &mut Value, old: &Value, t: &str) {
    let olds: Vec<Value> = of_type(old, t).into_iter().cloned().collect();
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let positions: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, c)| cond_type(c) == t)
        .map(|(i, _)| i)
        .collect();
    if positions.len() != olds.len() {
        return;
    }
    for (i, o) in positions.into_iter().zip(olds) {
        list[i] = o;
    }
}

/// Sets a missing `lastUpdateTime` to now, and a missing `lastTransitionTime`
/// to the old one of the same type and status, else to now.
fn populate_timestamps(new: &mut Value, old: &Value) {
    let now = meta::now_rfc3339();
    let olds = conditions(old).to_vec();
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in list.iter_mut().filter(|c| c.is_object()) {
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c["lastUpdateTime"] = json!(now);
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let kept = olds
                .iter()
                .find(|o| {
                    cond_type(o) == cond_type(c)
                        && o.get("status") == c.get("status")
                        && o.get("lastTransitionTime").is_some_and(|t| !t.is_null())
                })
                .and_then(|o| o.get("lastTransitionTime").cloned());
            c["lastTransitionTime"] = kept.unwrap_or_else(|| json!(now));
        }
    }
}

/// Upstream's `validateCertificateSigningRequest`, with the allowances its
/// options give objects that were stored before a rule existed (`old`).
fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let request = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or("");
    let request_bytes = base64::engine::general_purpose::STANDARD
        .decode(request)
        .unwrap_or_default();
    if let Err(why) = check_csr(&request_bytes) {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            "spec.request",
            Some(go_bytes(&request_bytes)),
            why,
        ));
    }
    let usages: Vec<&str> = obj
        .pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|u| u.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    if usages.is_empty() {
        errs.push(FieldError::required("spec.usages", ""));
    }
    let old_usages: Vec<&str> = old
        .and_then(|o| o.pointer("/spec/usages"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|u| u.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    if !old_usages.iter().any(|u| !VALID_USAGES.contains(u)) {
        let supported = VALID_USAGES
            .iter()
            .map(|u| format!("{u:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        for (i, u) in usages.iter().enumerate() {
            if !VALID_USAGES.contains(u) {
                errs.push(FieldError::new(
                    FieldErrorKind::NotSupported,
                    format!("spec.usages[{i}]"),
                    Some(format!("{u:?}")),
                    format!("supported values: {supported}"),
                ));
            }
        }
    }
    let has_dup = |us: &[&str]| us.iter().enumerate().any(|(i, u)| us[..i].contains(u));
    if !has_dup(&old_usages) {
        for (i, u) in usages.iter().enumerate() {
            if usages[..i].contains(u) {
                errs.push(FieldError::new(
                    FieldErrorKind::Duplicate,
                    format!("spec.usages[{i}]"),
                    Some(format!("{u:?}")),
                    "",
                ));
            }
        }
    }
    let signer = obj
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let old_signer = old.and_then(|o| meta::str_at(o, "/spec/signerName"));
    if signer == LEGACY_UNKNOWN_SIGNER && old_signer != Some(LEGACY_UNKNOWN_SIGNER) {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(signer_name_errors(signer));
    }
    if let Some(secs) = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .filter(|s| *s < 600)
    {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            "spec.expirationSeconds",
            Some(secs.to_string()),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(condition_errors(obj, old));
    let cert = obj
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .unwrap_or("");
    let old_cert = old.and_then(|o| meta::str_at(o, "/status/certificate"));
    let tolerated = old.is_some()
        && (old_cert.unwrap_or("") == cert
            || check_certificate(&decode_b64(old_cert.unwrap_or(""))).is_err());
    if !tolerated && let Err(why) = check_certificate(&decode_b64(cert)) {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            "status.certificate",
            Some("\"<certificate data>\"".into()),
            why,
        ));
    }
    errs
}

fn decode_b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|_| s.as_bytes().to_vec())
}

/// Go's `%#v` of a byte slice, the form upstream's error shows a request in.
fn go_bytes(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("0x{x:x}")).collect();
    format!("[]byte{{{}}}", hex.join(", "))
}

/// Upstream's `ParseCSR` and `CheckSignature` of a PEM request.
fn check_csr(pem: &[u8]) -> Result<(), String> {
    let block = match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) if block.label == "CERTIFICATE REQUEST" => block,
        _ => return Err("PEM block type must be CERTIFICATE REQUEST".into()),
    };
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    csr.verify_signature()
        .map_err(|_| "x509: signature verification failure".to_string())
}

/// Upstream's `validateCertificate` of `status.certificate` (PEM bytes).
fn check_certificate(mut pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let mut blocks = 0;
    while let Ok((rest, block)) = x509_parser::pem::parse_x509_pem(pem) {
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        blocks += 1;
        x509_parser::parse_x509_certificate(&block.contents)
            .map_err(|e| format!("x509: malformed certificate: {e}"))?;
        if rest.len() == pem.len() {
            break;
        }
        pem = rest;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// Upstream's `ValidateSignerName`: `domain/path`.
fn signer_name_errors(signer: &str) -> Vec<FieldError> {
    let field = "spec.signerName";
    if signer.is_empty() {
        return vec![FieldError::required(field, "")];
    }
    let Some((domain, path)) = signer.split_once('/').filter(|(_, p)| !p.contains('/')) else {
        return vec![FieldError::invalid(
            field,
            signer,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errs = Vec::new();
    if domain.len() > names::DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(FieldError::new(
            FieldErrorKind::TooLong,
            field,
            None,
            format!(
                "must have at most {} bytes",
                names::DNS1123_SUBDOMAIN_MAX_LENGTH
            ),
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some((label, msgs)) = labels
        .iter()
        .map(|l| (l, names::is_dns1123_label(l)))
        .find(|(_, m)| !m.is_empty())
    {
        for m in msgs {
            errs.push(FieldError::invalid(
                field,
                domain,
                format!("validating label {label:?}: {m}"),
            ));
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            field,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    let max_path = names::DNS1123_SUBDOMAIN_MAX_LENGTH + names::DNS1123_LABEL_MAX_LENGTH + 1;
    if path.len() > max_path {
        errs.push(FieldError::new(
            FieldErrorKind::TooLong,
            field,
            None,
            format!("must have at most {max_path} bytes"),
        ));
    }
    for m in names::is_dns1123_subdomain(path) {
        errs.push(FieldError::invalid(field, path, m));
    }
    errs
}

/// Upstream's `validateConditions`.
fn condition_errors(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let old_conds = old.map(conditions).unwrap_or_default();
    let old_types: Vec<&str> = old_conds.iter().map(cond_type).collect();
    let allow_both = old_types.contains(&APPROVED) && old_types.contains(&DENIED);
    let allow_dup = old_types
        .iter()
        .enumerate()
        .any(|(i, t)| old_types[..i].contains(t));
    let allow_empty = old_types.contains(&"");
    let mut errs = Vec::new();
    let (mut approved, mut denied) = (false, false);
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in conditions(obj).iter().enumerate() {
        let path = format!("status.conditions[{i}]");
        let t = cond_type(c);
        if t.is_empty() && !allow_empty {
            errs.push(FieldError::required(format!("{path}.type"), ""));
        }
        let status = c.get("status").and_then(Value::as_str).unwrap_or("");
        let true_only = matches!(t, APPROVED | DENIED | FAILED);
        let allowed: &[&str] = if true_only {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(FieldError::required(format!("{path}.status"), ""));
        } else if !allowed.contains(&status) {
            let supported = allowed
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            errs.push(FieldError::new(
                FieldErrorKind::NotSupported,
                format!("{path}.status"),
                Some(format!("{status:?}")),
                format!("supported values: {supported}"),
            ));
        }
        if !allow_both {
            let exclusive = match t {
                APPROVED => {
                    approved = true;
                    denied
                }
                DENIED => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if exclusive {
                errs.push(FieldError::invalid(
                    "status.conditions",
                    t,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !allow_dup {
            if seen.contains(&t) {
                errs.push(FieldError::new(
                    FieldErrorKind::Duplicate,
                    format!("{path}.type"),
                    Some(format!("{t:?}")),
                    "",
                ));
            }
            seen.push(t);
        }
    }
    errs
}

/// Publishes the cluster CA for the signing controller (see
/// [`SIGNING_CA_SECRET`]), replacing a Secret that holds another CA.
pub async fn publish_signing_ca(store: &Store, ca: &ClusterCa) -> ApiResult<()> {
    let Some(secrets) = store.table.get("", "v1", "secrets") else {
        return Ok(());
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let data = json!({"tls.crt": b64(ca.cert_pem()), "tls.key": b64(ca.key_pem())});
    let ns = Some("kube-system");
    match store.get(&secrets, ns, SIGNING_CA_SECRET).await {
        Ok(current) if current.get("data") == Some(&data) => Ok(()),
        Ok(_) => {
            store
                .update(
                    &secrets,
                    ns,
                    SIGNING_CA_SECRET,
                    UpdateTarget::Main,
                    &WriteOptions::default(),
                    |old| {
                        let mut new = old.cloned().unwrap_or(Value::Null);
                        new["data"] = data.clone();
                        meta::meta_mut(&mut new).remove("resourceVersion");
                        Ok(new)
                    },
                )
                .await?;
            Ok(())
        }
        Err(e) if e.code == 404 => {
            let secret = json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": SIGNING_CA_SECRET, "namespace": "kube-system"},
                "type": "kubernetes.io/tls",
                "data": data,
            });
            match store
                .create(&secrets, ns, secret, &WriteOptions::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(conditions: Value) -> Value {
        json!({
            "metadata": {"name": "c"},
            "spec": {"signerName": "example.com/s", "usages": ["client auth"], "request": ""},
            "status": {"conditions": conditions},
        })
    }

    #[test]
    fn approved_and_denied_exclude_each_other() {
        let obj = csr(json!([
            {"type": "Approved", "status": "True"},
            {"type": "Denied", "status": "True"},
        ]));
        let errs = condition_errors(&obj, None);
        assert_eq!(
            errs[0].to_string(),
            r#"status.conditions: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive"#
        );
    }

    #[test]
    fn approval_may_not_be_removed() {
        let old = csr(json!([{"type": "Approved", "status": "True"}]));
        let new = csr(json!([]));
        assert_eq!(
            removed_conditions(&new, &old)[0].to_string(),
            r#"status.conditions: Forbidden: updates may not remove a condition of type "Approved""#
        );
    }

    #[test]
    fn status_writes_keep_approval_conditions() {
        let old = csr(json!([{"type": "Approved", "status": "True", "reason": "A"}]));
        let mut new = csr(
            json!([{"type": "Approved", "status": "True", "reason": "B"}, {"type": "Failed", "status": "True"}]),
        );
        preserve_instances(&mut new, &old, APPROVED);
        populate_timestamps(&mut new, &old);
        let conds = conditions(&new);
        assert_eq!(conds[0]["reason"], "A");
        assert!(conds[1]["lastUpdateTime"].is_string());
        assert!(conds[1]["lastTransitionTime"].is_string());
    }

    #[test]
    fn signer_names_are_domain_and_path() {
        assert!(signer_name_errors("kubernetes.io/kube-apiserver-client").is_empty());
        assert_eq!(
            signer_name_errors("nodomain")[0].detail,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'"
        );
        assert_eq!(
            signer_name_errors("single/x")[0].detail,
            "should be a domain with at least two segments separated by dots"
        );
    }

    #[test]
    fn certificates_must_be_pem_certificates() {
        assert!(check_certificate(b"").is_ok());
        assert_eq!(
            check_certificate(b"junk").unwrap_err(),
            "must contain at least one CERTIFICATE PEM block"
        );
        let ca = ClusterCa::generate().expect("ca");
        assert!(check_certificate(ca.cert_pem().as_bytes()).is_ok());
        assert_eq!(
            check_certificate(ca.key_pem().as_bytes()).unwrap_err(),
            r#"only CERTIFICATE PEM blocks are allowed, found "PRIVATE KEY""#
        );
    }
}
