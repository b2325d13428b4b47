//! The in-tree plugins this scheduler runs, one per file, and the default
//! profile wiring them with upstream's default order and score weights.

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod testutil;

use crate::framework::{Profile, WeightedScore};

/// Upstream's default profile restricted to the plugins implemented here:
/// filters in upstream's order, scores with upstream's default weights.
pub fn default_profile(scheduler_name: &str) -> Profile {
    Profile {
        scheduler_name: scheduler_name.to_string(),
        filters: vec![
            Box::new(node_unschedulable::NodeUnschedulable),
            Box::new(node_name::NodeName),
            Box::new(taint_toleration::TaintToleration),
            Box::new(node_affinity::NodeAffinity),
            Box::new(node_ports::NodePorts),
            Box::new(node_resources_fit::NodeResourcesFit),
            Box::new(inter_pod_affinity::InterPodAffinity),
        ],
        scorers: vec![
            WeightedScore {
                plugin: Box::new(taint_toleration::TaintToleration),
                weight: 3,
            },
            WeightedScore {
                plugin: Box::new(node_affinity::NodeAffinity),
                weight: 2,
            },
            WeightedScore {
                plugin: Box::new(pod_topology_spread::PodTopologySpread),
                weight: 2,
            },
            WeightedScore {
                plugin: Box::new(node_resources_fit::NodeResourcesFit),
                weight: 1,
            },
            WeightedScore {
                plugin: Box::new(balanced_allocation::BalancedAllocation),
                weight: 1,
            },
        ],
    }
}
