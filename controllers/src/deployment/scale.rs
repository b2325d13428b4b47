//! Scaling a Deployment without a rollout: when only `spec.replicas` changed,
//! the single active (or latest) ReplicaSet takes the new size; mid-rollout
//! the change is spread over the active ReplicaSets in proportion to their
//! sizes (upstream's proportional scaling), leftovers to the largest.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::strategy;
use super::util;

/// The only active ReplicaSet, or when none is active the new one, or else
/// the newest old one; `None` when several are active.
pub(crate) fn find_active_or_latest<'a>(
    new: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new.is_none() && old.is_empty() {
        return None;
    }
    let mut old_sorted: Vec<&ReplicaSet> = old.to_vec();
    old_sorted.sort_by(|a, b| util::by_creation(b, a));
    let mut all: Vec<&ReplicaSet> = old_sorted.clone();
    all.extend(new);
    let active = util::active(&all);
    match active.len() {
        0 => new.or_else(|| old_sorted.first().copied()),
        1 => active.first().copied(),
        _ => None,
    }
}

/// The new ReplicaSet runs all replicas, is annotated for them and they are
/// all available.
pub(crate) fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    let desired = strategy::replicas(d);
    util::spec_replicas(rs) == desired
        && util::desired_replicas_annotation(rs) == Some(desired)
        && util::available_replicas(rs) == desired
}

/// How far `rs` should move toward its share of the new size.
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let size = util::spec_replicas(rs);
    let desired = strategy::replicas(d);
    if desired == 0 {
        return -size;
    }
    let deployment_replicas = desired + strategy::max_surge(d);
    let annotated = util::max_replicas_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let share = f64::from(size) * f64::from(deployment_replicas) / f64::from(annotated);
    // Rounded half away from zero, as upstream; the value fits in i32.
    #[allow(clippy::cast_possible_truncation)]
    let rounded = share.round() as i32;
    rounded - size
}

/// The share of `to_add` (positive or negative) that `rs` takes, given that
/// `added` has been handed out already.
pub(crate) fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if util::spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let f = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

/// New sizes for the active ReplicaSets of a rolling Deployment scaled
/// mid-rollout, as `(name, size)` in the order they should be applied.
pub(crate) fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let mut rss: Vec<&ReplicaSet> = active.to_vec();
    let current = util::total_spec(&rss);
    let desired = strategy::replicas(d);
    let allowed = if desired > 0 {
        desired + strategy::max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    if to_add > 0 {
        rss.sort_by(|a, b| util::by_size_newer(a, b));
    } else if to_add < 0 {
        rss.sort_by(|a, b| util::by_size_older(a, b));
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::with_capacity(rss.len());
    for rs in &rss {
        let size = util::spec_replicas(rs);
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            added += p;
            sizes.push((util::name(rs).to_string(), size + p));
        } else {
            sizes.push((util::name(rs).to_string(), size));
        }
    }
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(name: &str, created: i64, replicas: i32, max_annotation: Option<i32>) -> ReplicaSet {
        let mut annotations = serde_json::Map::new();
        if let Some(m) = max_annotation {
            annotations.insert(util::MAX_REPLICAS.into(), json!(m.to_string()));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name, "annotations": annotations,
                         "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
            "spec": {"replicas": replicas, "selector": {}}
        }))
        .unwrap()
    }

    fn deployment(replicas: i32, surge: i32, status_replicas: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}}},
            "status": {"replicas": status_replicas}
        }))
        .unwrap()
    }

    #[test]
    fn proportional_scaling() {
        // (case, deployment, ReplicaSets, expected sizes)
        let cases = vec![
            // 10 -> 20 (surge 3): old 8 of max 13, new 5 of max 13; 23 allowed.
            (
                "scale up mid-rollout",
                deployment(20, 3, 13),
                vec![rs("old", 1, 8, Some(13)), rs("new", 2, 5, Some(13))],
                vec![("old", 14), ("new", 9)],
            ),
            // 20 -> 10 (surge 3): 23 running of max 23, 13 allowed.
            (
                "scale down mid-rollout",
                deployment(10, 3, 23),
                vec![rs("old", 1, 14, Some(23)), rs("new", 2, 9, Some(23))],
                vec![("old", 8), ("new", 5)],
            ),
            // Equal sizes: shares are handed out newest first until used up.
            (
                "shares newest first",
                deployment(5, 0, 3),
                vec![
                    rs("a", 1, 1, Some(3)),
                    rs("b", 2, 1, Some(3)),
                    rs("c", 3, 1, Some(3)),
                ],
                vec![("c", 2), ("b", 2), ("a", 1)],
            ),
            // Rounding leaves one over; it goes to the first (largest) ReplicaSet.
            (
                "leftover to the first",
                deployment(4, 0, 3),
                vec![
                    rs("a", 1, 1, Some(3)),
                    rs("b", 2, 1, Some(3)),
                    rs("c", 3, 1, Some(3)),
                ],
                vec![("c", 2), ("b", 1), ("a", 1)],
            ),
            (
                "scaled to zero",
                deployment(0, 1, 4),
                vec![rs("old", 1, 2, Some(4)), rs("new", 2, 2, Some(4))],
                vec![("old", 0), ("new", 0)],
            ),
            (
                "missing annotation uses status.replicas",
                deployment(4, 0, 2),
                vec![rs("old", 1, 1, None), rs("new", 2, 1, None)],
                vec![("new", 2), ("old", 2)],
            ),
            (
                "nothing to add",
                deployment(4, 1, 5),
                vec![rs("old", 1, 3, Some(5)), rs("new", 2, 2, Some(5))],
                vec![("old", 3), ("new", 2)],
            ),
        ];
        for (what, d, rss, want) in cases {
            let refs: Vec<&ReplicaSet> = rss.iter().collect();
            let got = proportional_sizes(&d, &refs);
            let want: Vec<(String, i32)> =
                want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
            assert_eq!(got, want, "{what}");
            let total: i32 = got.iter().map(|(_, s)| s).sum();
            let d_replicas = strategy::replicas(&d);
            if d_replicas > 0 && util::total_spec(&refs) != d_replicas + strategy::max_surge(&d) {
                assert_eq!(total, d_replicas + strategy::max_surge(&d), "{what}: total");
            }
        }
    }

    #[test]
    fn active_or_latest_and_saturation() {
        let a = rs("a", 1, 0, None);
        let b = rs("b", 2, 0, None);
        let c = rs("c", 3, 2, None);
        assert_eq!(
            find_active_or_latest(None, &[&a, &b]).map(util::name),
            Some("b"),
            "newest old when none active"
        );
        assert_eq!(
            find_active_or_latest(Some(&a), &[&b]).map(util::name),
            Some("a"),
            "the new one when none active"
        );
        assert_eq!(
            find_active_or_latest(Some(&a), &[&b, &c]).map(util::name),
            Some("c"),
            "the only active one"
        );
        let c2 = rs("c2", 4, 1, None);
        assert!(
            find_active_or_latest(Some(&c2), &[&c]).is_none(),
            "several active"
        );

        let d = deployment(2, 1, 2);
        let mut sat = rs("n", 1, 2, None);
        sat.metadata
            .annotations
            .get_or_insert_default()
            .insert(util::DESIRED_REPLICAS.into(), "2".into());
        assert!(!is_saturated(&d, Some(&sat)), "nothing available yet");
        sat.status =
            Some(serde_json::from_value(json!({"replicas": 2, "availableReplicas": 2})).unwrap());
        assert!(is_saturated(&d, Some(&sat)));
        assert!(!is_saturated(&d, None));
    }
}
