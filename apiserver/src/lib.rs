//! ironkube's API server: the Kubernetes REST and watch API for every built-in
//! resource, on a revisioned store.
//!
//! Layers, each with one job (see `docs/architecture.md`):
//! * [`endpoints`]: HTTP — routing, content negotiation, decoding, encoding;
//! * [`registry`]: the generic store and per-kind strategies (metadata rules);
//! * [`storage`]: the revisioned key-value interface and its backends;
//! * [`resources`]: the table of served resources.

pub mod api_error;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod crd;
pub mod endpoints;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod patching;
pub mod printers;
pub mod protobuf;
pub mod proxy;
pub mod registry;
pub mod resources;
pub mod selectors;
pub mod server;
pub mod serving;
pub mod storage;
pub mod testing;
pub mod validation;
