//! Rolling-update arithmetic: how far the new ReplicaSet may grow (bounded by
//! `maxSurge`) and how far the old ones may shrink (bounded by
//! `maxUnavailable`, unhealthy replicas first). Pure functions over
//! ReplicaSet snapshots; the sync applies their answers.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::strategy;
use super::util;

/// The size the new ReplicaSet should have now.
pub(crate) fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_size: i32) -> i32 {
    let desired = strategy::replicas(d);
    if !strategy::is_rolling(d) {
        return desired;
    }
    let current = util::total_spec(all);
    let max_total = desired + strategy::surge_value(d);
    if current >= max_total {
        return new_size;
    }
    let scale_up = (max_total - current).min(desired - new_size);
    new_size + scale_up
}

/// The new ReplicaSet's target, or `None` if it is already right.
pub(crate) fn new_rs_target(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> Option<i32> {
    let size = util::spec_replicas(new);
    let desired = strategy::replicas(d);
    let target = if size == desired {
        return None;
    } else if size > desired {
        desired
    } else {
        new_rs_new_replicas(d, all, size)
    };
    (target != size).then_some(target)
}

/// New sizes for old ReplicaSets, as `(name, size)`: first unhealthy replicas
/// (oldest ReplicaSet first) within what may be scaled down, then healthy
/// ones while more than `replicas - maxUnavailable` are available.
pub(crate) fn old_rs_targets(
    d: &Deployment,
    all: &[&ReplicaSet],
    old_active: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Vec<(String, i32)> {
    let old_count = util::total_spec(old_active);
    if old_count == 0 {
        return Vec::new();
    }
    let all_count = util::total_spec(all);
    let min_available = strategy::replicas(d) - strategy::max_unavailable(d);
    let new_unavailable = util::spec_replicas(new) - util::available_replicas(new);
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }

    // Sizes as they evolve, oldest first.
    let mut olds: Vec<(&ReplicaSet, i32)> = old_active
        .iter()
        .map(|rs| (*rs, util::spec_replicas(rs)))
        .collect();
    olds.sort_by(|a, b| util::by_creation(a.0, b.0));

    let mut cleaned = 0;
    for (rs, size) in &mut olds {
        if cleaned >= max_scaled_down {
            break;
        }
        let available = util::available_replicas(rs);
        if *size == 0 || *size == available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*size - available);
        *size -= down;
        cleaned += down;
    }

    // Availability counts every ReplicaSet's status, unchanged by the above.
    let available = util::total_available(all);
    if available > min_available {
        let to_scale = available - min_available;
        let mut scaled = 0;
        for (_, size) in &mut olds {
            if scaled >= to_scale {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(to_scale - scaled);
            *size -= down;
            scaled += down;
        }
    }

    olds.into_iter()
        .filter(|(rs, size)| util::spec_replicas(rs) != *size)
        .map(|(rs, size)| (util::name(rs).to_string(), size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name,
                         "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "availableReplicas": available}
        }))
        .unwrap()
    }

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}
        }))
        .unwrap()
    }

    #[test]
    fn new_replica_set_scale_up() {
        // (case, deployment, old sizes, new size, expected target)
        let cases = [
            (
                "surge 1 from a full old",
                deployment(3, json!(1), json!(0)),
                vec![3],
                0,
                Some(1),
            ),
            (
                "25% of 4 rounds up to 1",
                deployment(4, json!("25%"), json!("25%")),
                vec![4],
                0,
                Some(1),
            ),
            (
                "at max total: no growth",
                deployment(3, json!(1), json!(0)),
                vec![3],
                1,
                None,
            ),
            (
                "room after old shrank",
                deployment(3, json!(1), json!(1)),
                vec![1],
                1,
                Some(3),
            ),
            (
                "capped by desired",
                deployment(3, json!(10), json!(0)),
                vec![0],
                1,
                Some(3),
            ),
            (
                "bigger than desired shrinks",
                deployment(3, json!(1), json!(0)),
                vec![0],
                5,
                Some(3),
            ),
            (
                "already right",
                deployment(3, json!(1), json!(0)),
                vec![0],
                3,
                None,
            ),
        ];
        for (what, d, olds, new_size, want) in cases {
            let old_rss: Vec<ReplicaSet> = olds
                .iter()
                .enumerate()
                .map(|(i, s)| rs(&format!("old{i}"), 1, *s, *s))
                .collect();
            let new = rs("new", 2, new_size, 0);
            let mut all: Vec<&ReplicaSet> = old_rss.iter().collect();
            all.push(&new);
            assert_eq!(new_rs_target(&d, &all, &new), want, "{what}");
        }
        let recreate: Deployment = serde_json::from_value(json!({"metadata": {}, "spec": {"replicas": 4, "selector": {}, "template": {}, "strategy": {"type": "Recreate"}}})).unwrap();
        assert_eq!(new_rs_new_replicas(&recreate, &[], 0), 4);
    }

    #[test]
    fn old_replica_sets_scale_down() {
        // (case, deployment, olds (size, available), new (size, available), expected)
        let cases = vec![
            (
                "nothing ready anywhere: hold at replicas - maxUnavailable",
                deployment(3, json!(1), json!(1)),
                vec![(3, 0)],
                (1, 0),
                vec![("old0", 2)],
            ),
            (
                "all old available, new unavailable",
                deployment(3, json!(1), json!(1)),
                vec![(3, 3)],
                (1, 0),
                vec![("old0", 2)],
            ),
            (
                "maxUnavailable 0: wait for new pods",
                deployment(3, json!(1), json!(0)),
                vec![(3, 3)],
                (1, 0),
                vec![],
            ),
            (
                "new available lets old go",
                deployment(3, json!(1), json!(0)),
                vec![(3, 3)],
                (1, 1),
                vec![("old0", 2)],
            ),
            (
                "unhealthy old first",
                deployment(4, json!(1), json!(1)),
                vec![(2, 0), (2, 2)],
                (1, 1),
                vec![("old0", 0)],
            ),
            (
                "fully rolled",
                deployment(3, json!(1), json!(1)),
                vec![(1, 1)],
                (3, 3),
                vec![("old0", 0)],
            ),
        ];
        for (what, d, olds, (ns, na), want) in cases {
            let old_rss: Vec<ReplicaSet> = olds
                .iter()
                .enumerate()
                .map(|(i, (s, a))| rs(&format!("old{i}"), i64::try_from(i).unwrap(), *s, *a))
                .collect();
            let new = rs("new", 100, ns, na);
            let olds: Vec<&ReplicaSet> = old_rss.iter().collect();
            let mut all = olds.clone();
            all.push(&new);
            let want: Vec<(String, i32)> =
                want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
            assert_eq!(old_rs_targets(&d, &all, &olds, &new), want, "{what}");
        }
    }
}
