//! Rolling-update bounds: `maxSurge` and `maxUnavailable` resolved against the
//! desired replica count as upstream does (percentages: surge rounds up,
//! unavailable rounds down; both zero means one may be unavailable).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Default of both bounds when the strategy leaves them out.
const DEFAULT_BOUND: &str = "25%";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for IntOrString: {0}")]
pub(crate) struct BoundError(String);

/// An absolute count, or a percentage of `total` rounded up or down.
pub(crate) fn scaled_value(
    value: &IntOrString,
    total: i32,
    round_up: bool,
) -> Result<i32, BoundError> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(BoundError(format!(
                    "invalid type: string is not a percentage: {s:?}"
                )));
            };
            let percent: i64 = number
                .parse()
                .map_err(|_| BoundError(format!("invalid value for percentage: {s:?}")))?;
            let scaled = percent * i64::from(total);
            let value = if round_up {
                scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(value).map_err(|_| BoundError(format!("out of range: {s:?}")))
        }
    }
}

/// `(surge, unavailable)` for `desired` replicas; never both zero.
pub(crate) fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), BoundError> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// `spec.replicas`, defaulting to one.
pub(crate) fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default).
pub(crate) fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn bounds(d: &Deployment) -> (IntOrString, IntOrString) {
    let default = || IntOrString::String(DEFAULT_BOUND.to_string());
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    (
        ru.and_then(|r| r.max_surge.clone()).unwrap_or_else(default),
        ru.and_then(|r| r.max_unavailable.clone())
            .unwrap_or_else(default),
    )
}

/// Pods allowed above `spec.replicas` during a rolling update (0 otherwise).
pub(crate) fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    let (surge, unavailable) = bounds(d);
    resolve_fenceposts(Some(&surge), Some(&unavailable), replicas(d)).map_or(0, |(s, _)| s)
}

/// Pods allowed below `spec.replicas` during a rolling update, at most
/// `spec.replicas` (0 otherwise).
pub(crate) fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    let (surge, unavailable) = bounds(d);
    resolve_fenceposts(Some(&surge), Some(&unavailable), desired).map_or(0, |(_, u)| u.min(desired))
}

/// The surge bound applied directly (no fencepost), as when sizing a new
/// ReplicaSet.
pub(crate) fn surge_value(d: &Deployment) -> i32 {
    let (surge, _) = bounds(d);
    scaled_value(&surge, replicas(d), true).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_string())
    }

    #[test]
    fn scaled_values() {
        let cases = [
            (IntOrString::Int(3), 10, true, Ok(3)),
            (s("25%"), 10, true, Ok(3)),
            (s("25%"), 10, false, Ok(2)),
            (s("50%"), 3, true, Ok(2)),
            (s("50%"), 3, false, Ok(1)),
            (s("100%"), 7, false, Ok(7)),
            (s("0%"), 7, true, Ok(0)),
            (s("1%"), 1, true, Ok(1)),
            (s("1%"), 1, false, Ok(0)),
        ];
        for (value, total, up, want) in cases {
            assert_eq!(
                scaled_value(&value, total, up),
                want,
                "{value:?} of {total} up={up}"
            );
        }
        assert!(scaled_value(&s("5"), 10, true).is_err());
        assert!(scaled_value(&s("x%"), 10, true).is_err());
    }

    #[test]
    fn fenceposts() {
        let cases = [
            (Some(s("25%")), Some(s("25%")), 4, (1, 1)),
            (Some(s("25%")), Some(s("25%")), 10, (3, 2)),
            (
                Some(IntOrString::Int(0)),
                Some(IntOrString::Int(0)),
                5,
                (0, 1),
            ),
            (None, None, 5, (0, 1)),
            (Some(s("0%")), Some(s("10%")), 5, (0, 1)),
            (
                Some(IntOrString::Int(2)),
                Some(IntOrString::Int(0)),
                3,
                (2, 0),
            ),
            (Some(s("25%")), Some(s("25%")), 1, (1, 0)),
        ];
        for (surge, unavailable, desired, want) in cases {
            assert_eq!(
                resolve_fenceposts(surge.as_ref(), unavailable.as_ref(), desired),
                Ok(want),
                "{surge:?}/{unavailable:?} of {desired}"
            );
        }
    }

    #[test]
    fn deployment_bounds() {
        let d = |replicas: i32, strategy: serde_json::Value| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "d"},
                "spec": {"replicas": replicas, "selector": {}, "template": {}, "strategy": strategy}
            }))
            .unwrap()
        };
        let cases = [
            (d(10, serde_json::json!({"type": "RollingUpdate"})), 3, 2),
            (
                d(
                    3,
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"}}),
                ),
                0,
                3,
            ),
            (
                d(
                    3,
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 5}}),
                ),
                0,
                3,
            ),
            (
                d(
                    0,
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
                ),
                1,
                0,
            ),
            (d(3, serde_json::json!({"type": "Recreate"})), 0, 0),
        ];
        for (i, (dep, surge, unavailable)) in cases.iter().enumerate() {
            assert_eq!(
                (max_surge(dep), max_unavailable(dep)),
                (*surge, *unavailable),
                "case {i}"
            );
        }
    }
}
