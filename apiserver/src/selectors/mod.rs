//! Label and field selectors with kube-apiserver v1.34 wire semantics.
//!
//! Pure logic: parsing (`labelSelector` / `fieldSelector` query parameters),
//! matching, and the per-kind field-label support of the built-in resources.
//! Every [`SelectorError`] maps to a `400 BadRequest` Status whose `message`
//! is the error's `Display` text, exactly as upstream renders it.
//!
//! Order of checks in upstream's list/watch handler: the label selector is
//! parsed, then the field selector is parsed (both while decoding the query,
//! so a label error wins), then each field requirement is run through the
//! kind's field-label conversion in sorted term order; the first failure is
//! returned. See [`FieldSelector::validate_for`].

use std::fmt;

use serde_json::{Map, Value};

use crate::validation::names::{go_quote, is_qualified_name, is_valid_label_value};

/// A selector error; `Display` is the exact upstream Status message (HTTP 400,
/// reason `BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The `labelSelector` string (or a metav1.LabelSelector) is invalid.
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// The `fieldSelector` string is syntactically invalid.
    #[error("{0}")]
    InvalidFieldSelector(String),
    /// The resource does not support selecting on `field`; `message` is the
    /// kind-specific upstream text (e.g. `field label not supported: spec.foo`,
    /// or `"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"`).
    #[error("{message}")]
    UnsupportedField {
        /// The field label as the client sent it.
        field: String,
        /// Upstream's message.
        message: String,
    },
}

impl SelectorError {
    /// HTTP status code upstream returns for this error.
    pub fn code(&self) -> u16 {
        400
    }

    /// Status `reason` upstream returns for this error.
    pub fn reason(&self) -> &'static str {
        "BadRequest"
    }
}

// ===========================================================================
// Label selectors
// ===========================================================================

mod field_labels;
mod fields;
mod label_parser;
mod labels;
#[cfg(test)]
mod tests;

pub use field_labels::*;
pub use fields::*;
use label_parser::*;
pub use labels::*;
