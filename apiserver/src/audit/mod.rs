//! Auditing (`--audit-policy-file`, `--audit-log-path`): every request the
//! policy selects is recorded as `audit.k8s.io/v1` `Event`s, one JSON line per
//! stage (`RequestReceived`, then `ResponseComplete`, unless omitted), with
//! who asked, what for, the object, the response code, and at the `Request`
//! and `RequestResponse` levels the request and response bodies.
//!
//! Both stages are written once the response is ready (their timestamps are
//! the true ones): the filter chain decides the level only after it has
//! authenticated the request.

pub mod log;
pub mod policy;

use std::path::Path;

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::auth::rbac::Action;
pub use log::LogConfig;
pub use policy::{Decision, Level};

/// The policy and the log it writes to.
pub struct Auditor {
    policy: policy::Policy,
    log: log::LogWriter,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

/// Why auditing cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("reading the audit policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the audit policy {path}: {why}")]
    Policy { path: String, why: String },
    #[error("opening the audit log: {0}")]
    Log(std::io::Error),
}

/// What one request was, for its events.
pub struct Record<'a> {
    pub audit_id: &'a str,
    pub user: &'a UserInfo,
    /// The authenticated user, when the request acted as someone else.
    pub impersonator: Option<&'a UserInfo>,
    pub action: &'a Action,
    pub api_version: &'a str,
    pub request_uri: &'a str,
    pub source_ip: Option<String>,
    pub user_agent: Option<&'a str>,
    pub code: u16,
    pub received: chrono::DateTime<chrono::Utc>,
    pub request_object: Option<Value>,
    pub response_object: Option<Value>,
}

impl Auditor {
    pub fn start(policy_file: &Path, log: LogConfig) -> Result<Auditor, AuditError> {
        let path = policy_file.display().to_string();
        let text = std::fs::read_to_string(policy_file).map_err(|source| AuditError::Read {
            path: path.clone(),
            source,
        })?;
        let policy =
            policy::Policy::parse(&text).map_err(|why| AuditError::Policy { path, why })?;
        Ok(Auditor {
            policy,
            log: log::LogWriter::start(log).map_err(AuditError::Log)?,
        })
    }

    pub fn decide(&self, user: &UserInfo, action: &Action) -> Decision {
        self.policy.decide(user, action)
    }

    /// Writes the events of one finished request at `decision`'s level.
    pub fn record(&self, decision: &Decision, r: &Record<'_>) {
        if decision.level == Level::None {
            return;
        }
        let now = chrono::Utc::now();
        for (stage, at) in [("RequestReceived", r.received), ("ResponseComplete", now)] {
            if decision.omit_stages.iter().any(|s| s == stage) {
                continue;
            }
            let event = event(decision.level, stage, at, r);
            match serde_json::to_vec(&event) {
                Ok(line) => self.log.write(line),
                Err(e) => tracing::error!(error = %e, "encoding an audit event"),
            }
        }
    }
}

fn user_json(user: &UserInfo) -> Value {
    let mut u = json!({"username": user.name});
    if !user.uid.is_empty() {
        u["uid"] = json!(user.uid);
    }
    if !user.groups.is_empty() {
        u["groups"] = json!(user.groups);
    }
    if !user.extra.is_empty() {
        u["extra"] = json!(user.extra);
    }
    u
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn event(level: Level, stage: &str, at: chrono::DateTime<chrono::Utc>, r: &Record<'_>) -> Value {
    let (user, impersonated) = match r.impersonator {
        Some(real) => (user_json(real), Some(user_json(r.user))),
        None => (user_json(r.user), None),
    };
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level.as_str(),
        "auditID": r.audit_id,
        "stage": stage,
        "requestURI": r.request_uri,
        "verb": r.action.verb(),
        "user": user,
        "sourceIPs": r.source_ip.iter().collect::<Vec<_>>(),
        "requestReceivedTimestamp": timestamp(r.received),
        "stageTimestamp": timestamp(at),
    });
    if let Some(imp) = impersonated {
        e["impersonatedUser"] = imp;
    }
    if let Some(agent) = r.user_agent {
        e["userAgent"] = json!(agent);
    }
    if let Action::Resource {
        group,
        resource,
        subresource,
        namespace,
        name,
        ..
    } = r.action
    {
        let mut object = json!({"resource": resource, "apiVersion": r.api_version});
        // A create names its object in the body, not the path.
        let named = r
            .request_object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = if name.is_empty() {
            named
        } else {
            name.as_str()
        };
        let fields = [
            ("namespace", namespace.as_str()),
            ("name", name),
            ("apiGroup", group.as_str()),
            ("subresource", subresource.as_str()),
        ];
        for (field, value) in fields {
            if !value.is_empty() {
                object[field] = json!(value);
            }
        }
        e["objectRef"] = object;
    }
    if stage == "ResponseComplete" {
        let mut status = json!({"metadata": {}, "code": r.code});
        if r.code >= 400 {
            status["status"] = json!("Failure");
            if let Some(reason) = r
                .response_object
                .as_ref()
                .and_then(|o| o.get("reason"))
                .filter(|_| level < Level::RequestResponse)
            {
                status["reason"] = reason.clone();
            }
        }
        e["responseStatus"] = status;
        if level >= Level::RequestResponse
            && let Some(obj) = &r.response_object
        {
            e["responseObject"] = obj.clone();
        }
    }
    if level >= Level::Request
        && let Some(obj) = &r.request_object
    {
        e["requestObject"] = obj.clone();
    }
    e
}
