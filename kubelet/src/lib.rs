//! kubelet (later issue).
