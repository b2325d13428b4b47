//! The controllers' clock. API times are serialised with one-second precision,
//! so a fresh timestamp is truncated to the second: a condition written now then
//! compares equal to the same condition read back from the server.

use k8s_openapi::jiff::Timestamp;

/// The current time, truncated to whole seconds.
pub(crate) fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}
