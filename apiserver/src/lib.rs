//! ironkube's API server: the Kubernetes REST and watch API on a revisioned store.
pub mod storage;
