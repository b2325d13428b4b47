//! NodePorts filter: a pod's host ports must not collide with host ports
//! already bound on the node.

use crate::framework::{Code, FilterPlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};

pub(crate) const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .usage
            .ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::new(Code::Unschedulable, ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node_alloc, pod, with_pod};
    use serde_json::{Value, json};

    fn ports(p: Value) -> Value {
        json!({"containers": [{"name": "c", "ports": p}]})
    }

    #[test]
    fn table() {
        let existing = pod(ports(json!([{"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}])));
        let n = with_pod(node_alloc("n", "1", "1Gi"), "default/old", &existing);
        let cases = [
            ("no ports", json!({}), true),
            (
                "container port only",
                ports(json!([{"containerPort": 8080}])),
                true,
            ),
            (
                "same host port",
                ports(json!([{"containerPort": 1, "hostPort": 8080}])),
                false,
            ),
            (
                "other protocol",
                ports(json!([{"containerPort": 1, "hostPort": 8080, "protocol": "UDP"}])),
                true,
            ),
            (
                "other port",
                ports(json!([{"containerPort": 1, "hostPort": 8081}])),
                true,
            ),
            (
                "udp other ip",
                ports(
                    json!([{"containerPort": 1, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.2"}]),
                ),
                true,
            ),
            (
                "udp wildcard",
                ports(json!([{"containerPort": 1, "hostPort": 53, "protocol": "UDP"}])),
                false,
            ),
        ];
        for (name, spec, fits) in cases {
            let s = NodePorts.filter(&pod(spec), &n);
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s.message(), ERR_REASON);
                assert_eq!(s.code, Code::Unschedulable);
            }
        }
    }
}
