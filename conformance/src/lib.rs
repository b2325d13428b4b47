//! conformance (later issue).
