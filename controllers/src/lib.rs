//! controllers (later issue).
