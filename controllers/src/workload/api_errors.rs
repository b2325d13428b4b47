//! Reading API errors the way the workload controllers need: the server's
//! message (as upstream puts `err.Error()` into events and conditions), the
//! status code, and the "namespace is terminating" refusal that is not a
//! failure worth reporting.

/// The API server's message for an error, or the error itself.
pub(crate) fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The HTTP status code of an API error.
pub(crate) fn code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Creating in a namespace being deleted is refused.
pub(crate) fn namespace_terminating(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")),
        _ => false,
    }
}
