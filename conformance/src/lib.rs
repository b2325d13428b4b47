//! Conformance tooling that runs beside ironkube: the reference
//! `kube-apiserver` (built by `hack/conformance build` from the pinned
//! `k8s.io/kubernetes` module) on a throwaway Debian etcd, for the
//! differential tests (`differential`) and the side-by-side benchmark.

pub mod differential;
pub mod reference;
