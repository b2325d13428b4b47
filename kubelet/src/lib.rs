//! The node agent. Today it holds only [`fake`]: a kwok-style fake node for
//! scheduler and controller tests and benchmarks; the real kubelet on
//! containerd comes with its own issue.

pub mod fake;
