//! NodeName filter: a pod that names a node (`spec.nodeName`) only fits that
//! node.

use crate::framework::{Code, FilterPlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};

pub(crate) const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.spec().and_then(|s| s.node_name.as_deref()) {
            Some(wanted) if !wanted.is_empty() && wanted != node.name() => {
                Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON)
            }
            _ => Status::success(),
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
        let cases = [
            ("no node name", json!({}), true),
            ("matching", json!({"nodeName": "n"}), true),
            ("other node", json!({"nodeName": "m"}), false),
        ];
        let n = node(json!({"name": "n"}), json!({}), json!({}));
        for (name, spec, fits) in cases {
            let s = NodeName.filter(&pod(spec), &n);
            assert_eq!(s.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(s.reasons, vec![ERR_REASON], "{name}");
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
            }
        }
    }
}
