//! The three non-apply PATCH types, as kube-apiserver v1.34 applies them:
//!
//! * `application/json-patch+json` — [`json_patch::apply`] (RFC 6902 as
//!   `gopkg.in/evanphx/json-patch.v4` v4.12.0 implements it, quirks included),
//! * `application/merge-patch+json` — [`merge_patch::apply`] (that library's
//!   `MergePatch`),
//! * `application/strategic-merge-patch+json` — [`strategic::apply`]
//!   (`k8s.io/apimachinery/pkg/util/strategicpatch`), driven by the patch
//!   metadata in [`merge_keys`].
//!
//! Everything here is pure: it takes the current object as upstream encodes it
//! (JSON of the versioned object) and the decoded patch body, and returns the
//! patched document or the error the API server answers with. What upstream
//! does afterwards — decoding the result into the typed object (which drops
//! unknown fields, `null`s and leftover `$` directives) and validating it — is
//! the caller's job.
//!
//! Error texts and status codes follow
//! `k8s.io/apiserver/pkg/endpoints/handlers/patch.go`: see [`PatchError`].

pub mod json_patch;
pub mod merge_keys;
pub mod merge_patch;
pub mod strategic;

mod go_compat;

/// Deepest nesting (objects and arrays) a patch, an input document or a result
/// may have. Upstream's limit is `encoding/json`'s 10000 when the result is
/// decoded; this crate stops at serde_json's default parse limit so every
/// result can be parsed again and nothing here can exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// The `Content-Type`s kube-apiserver accepts on PATCH of built-in resources
/// (`installer.go`; CBOR apply only behind the `CBORServingAndStorage` gate).
pub const BUILTIN_PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The `Content-Type`s the apiextensions server accepts on PATCH of custom
/// resources (`customresource_handler.go`): strategic merge patch is not one.
pub const CUSTOM_RESOURCE_PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// A patch failure, as upstream reports it. `Display` is exactly the
/// `message` of the `metav1.Status` upstream answers with; [`code`](Self::code)
/// and [`reason`](Self::reason) are its `code` and `reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// `errors.NewBadRequest(msg)`: 400 `BadRequest`. A patch body that is not
    /// a JSON patch (`json: cannot unmarshal object into Go value of type
    /// jsonpatch.Patch`), a merge patch that is not an object or array
    /// (`Invalid JSON Patch`), a strategic merge patch that is not an object
    /// (`json: cannot unmarshal array into Go value of type map[string]interface {}`)
    /// or one with malformed directives (`invalid patch format of retainKeys`, …).
    #[error("{0}")]
    BadRequest(String),

    /// `errors.NewRequestEntityTooLargeError`: 413 `RequestEntityTooLarge`,
    /// a JSON patch with more than 10000 operations.
    #[error(
        "Request entity too large: The allowed maximum operations in a JSON patch is {max}, got {got}"
    )]
    TooManyOperations { max: usize, got: usize },

    /// `errors.NewGenericServerResponse(422, …, err.Error(), …)`: 422 `Invalid`.
    /// A JSON patch that does not apply (failed `test`, missing path, bad
    /// index…) and the strategic errors `lists of lists are not supported` /
    /// `patch content doesn't match retainKeys list`. Upstream's response
    /// carries only the generic message and an empty `details` object;
    /// `detail` keeps the underlying error text for logs and tests.
    #[error("the server rejected our request due to an error in our request")]
    Unprocessable { detail: String },

    /// A plain Go error reaching `ErrorToAPIStatus`: 500 with an empty
    /// (`Unknown`) reason and the error text as message. Most strategic merge
    /// errors take this path (`map: map[…] does not contain declared merge key:
    /// name`, `unknown patch type: … in map: …`, `The order in patch list: …`).
    #[error("{0}")]
    Internal(String),

    /// Input that makes upstream's Go code panic (e.g. comparing two maps used
    /// as merge-key values). The API server then answers 500 with this text as
    /// a `text/plain` body — not a `Status` object. `detail` is the Go runtime
    /// error the panic carries.
    #[error("This request caused apiserver to panic. Look in the logs for details.")]
    Panic { detail: String },

    /// `negotiation.NewUnsupportedMediaTypeError`: 415 `UnsupportedMediaType`,
    /// e.g. a strategic merge patch sent to a custom resource (see
    /// [`PatchError::strategic_unsupported`]).
    #[error("the body of the request was in an unknown format - accepted media types include: {}", accepted.join(", "))]
    UnsupportedMediaType { accepted: Vec<String> },
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::UnsupportedMediaType { .. } => 415,
            PatchError::Unprocessable { .. } => 422,
            PatchError::Internal(_) | PatchError::Panic { .. } => 500,
        }
    }

    /// The `metav1.Status` reason (`""` is `StatusReasonUnknown`, omitted on
    /// the wire).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::TooManyOperations { .. } => "RequestEntityTooLarge",
            PatchError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            PatchError::Unprocessable { .. } => "Invalid",
            PatchError::Internal(_) | PatchError::Panic { .. } => "",
        }
    }

    /// The `metav1.Status.details` upstream sends, if any: the 422 responses
    /// carry an all-empty `StatusDetails`, which serialises as `{}`.
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            PatchError::Unprocessable { .. } => {
                Some(serde_json::Value::Object(serde_json::Map::new()))
            }
            _ => None,
        }
    }

    /// Whether upstream answers with a plain-text body instead of a `Status`.
    pub fn is_plain_text(&self) -> bool {
        matches!(self, PatchError::Panic { .. })
    }

    /// The underlying error text: the hidden cause for
    /// [`Unprocessable`](Self::Unprocessable) and [`Panic`](Self::Panic),
    /// otherwise the message itself.
    pub fn detail(&self) -> String {
        match self {
            PatchError::Unprocessable { detail } | PatchError::Panic { detail } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// The 415 a strategic merge patch on a custom resource gets.
    pub fn strategic_unsupported() -> Self {
        PatchError::UnsupportedMediaType {
            accepted: CUSTOM_RESOURCE_PATCH_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    pub(crate) fn unprocessable(detail: impl Into<String>) -> Self {
        PatchError::Unprocessable {
            detail: detail.into(),
        }
    }
}

impl From<go_compat::GoPanic> for PatchError {
    fn from(p: go_compat::GoPanic) -> Self {
        PatchError::Panic { detail: p.0 }
    }
}

/// The error for input nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep() -> PatchError {
    PatchError::unprocessable(format!("json: exceeded max depth of {MAX_DEPTH}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Deterministic generator of small, directive-heavy JSON values.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn key(&mut self) -> String {
            const KEYS: [&str; 14] = [
                "name",
                "containers",
                "spec",
                "metadata",
                "finalizers",
                "$patch",
                "$retainKeys",
                "$setElementOrder/containers",
                "$deleteFromPrimitiveList/finalizers",
                "ports",
                "containerPort",
                "a",
                "-",
                "0",
            ];
            KEYS[self.next(KEYS.len() as u64) as usize].to_string()
        }

        fn value(&mut self, depth: u32) -> Value {
            match if depth == 0 {
                self.next(5)
            } else {
                self.next(8)
            } {
                0 => Value::Null,
                1 => json!(self.next(3)),
                2 => json!(["a", "b", "delete", "replace", "merge"][self.next(5) as usize]),
                3 => json!(self.next(2) == 0),
                4 => json!(1.5),
                5 | 6 => {
                    let n = self.next(4);
                    Value::Object(
                        (0..n)
                            .map(|_| (self.key(), self.value(depth - 1)))
                            .collect(),
                    )
                }
                _ => {
                    let n = self.next(4);
                    Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
                }
            }
        }

        fn pointer(&mut self) -> String {
            let n = self.next(4);
            (0..n).map(|_| format!("/{}", self.key())).collect()
        }

        fn json_patch(&mut self) -> Value {
            let n = self.next(5);
            Value::Array(
                (0..n)
                    .map(|_| {
                        let op = ["add", "remove", "replace", "move", "copy", "test"]
                            [self.next(6) as usize];
                        json!({"op": op, "path": self.pointer(), "from": self.pointer(), "value": self.value(2)})
                    })
                    .collect(),
            )
        }
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let schema = merge_keys::builtin_schema("", "Pod").expect("Pod");
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let doc = match g.value(4) {
                Value::Object(m) => Value::Object(m),
                other => json!({"spec": other, "metadata": {"finalizers": ["a", "b"]}}),
            };
            let patch = g.value(4);
            let _ = strategic::apply(&doc, &patch, &schema);
            let _ = merge_patch::apply(&doc, &patch);
            let _ = json_patch::apply(&doc, &g.json_patch());
        }
    }

    #[test]
    fn codes_reasons_and_messages() {
        let cases: Vec<(PatchError, u16, &str, &str)> = vec![
            (
                PatchError::BadRequest("Invalid JSON Patch".into()),
                400,
                "BadRequest",
                "Invalid JSON Patch",
            ),
            (
                PatchError::TooManyOperations {
                    max: 10000,
                    got: 10001,
                },
                413,
                "RequestEntityTooLarge",
                "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001",
            ),
            (
                PatchError::unprocessable("testing value /a failed: test failed"),
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            ),
            (PatchError::Internal("boom".into()), 500, "", "boom"),
            (
                PatchError::Panic { detail: "x".into() },
                500,
                "",
                "This request caused apiserver to panic. Look in the logs for details.",
            ),
            (
                PatchError::strategic_unsupported(),
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ),
        ];
        for (err, code, reason, message) in cases {
            assert_eq!(err.code(), code, "{err:?}");
            assert_eq!(err.reason(), reason, "{err:?}");
            assert_eq!(err.to_string(), message, "{err:?}");
        }
        let e = PatchError::unprocessable("testing value /a failed: test failed");
        assert_eq!(e.detail(), "testing value /a failed: test failed");
        assert_eq!(e.details(), Some(serde_json::json!({})));
    }
}
