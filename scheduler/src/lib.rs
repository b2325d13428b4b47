//! scheduler (later issue).
