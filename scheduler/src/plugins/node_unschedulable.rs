//! NodeUnschedulable filter: cordoned nodes (`spec.unschedulable`) reject
//! pods unless they tolerate the `node.kubernetes.io/unschedulable:NoSchedule`
//! taint.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{Code, FilterPlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};
use crate::plugins::taint_toleration::tolerations_tolerate;

pub(crate) const ERR_REASON: &str = "node(s) were unschedulable";
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Status::success();
        }
        let taint = Taint {
            key: UNSCHEDULABLE_TAINT.to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        };
        let tolerations = pod
            .spec()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        if tolerations_tolerate(tolerations, &taint) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{node, pod};
    use serde_json::json;

    #[test]
    fn table() {
        let tol = json!({"tolerations": [{"key": UNSCHEDULABLE_TAINT,
            "operator": "Exists", "effect": "NoSchedule"}]});
        let cases = [
            ("schedulable node", json!({}), json!({}), true),
            (
                "explicitly schedulable",
                json!({"unschedulable": false}),
                json!({}),
                true,
            ),
            ("cordoned", json!({"unschedulable": true}), json!({}), false),
            (
                "cordoned but tolerated",
                json!({"unschedulable": true}),
                tol,
                true,
            ),
            (
                "tolerate everything",
                json!({"unschedulable": true}),
                json!({"tolerations": [{"operator": "Exists"}]}),
                true,
            ),
        ];
        for (name, node_spec, pod_spec, fits) in cases {
            let s =
                NodeUnschedulable.filter(&pod(pod_spec), &node(json!({}), node_spec, json!({})));
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s.message(), ERR_REASON);
            }
        }
    }
}
