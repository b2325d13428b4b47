//! `IntOrString` bounds (`maxUnavailable`, `maxSurge`) resolved against a
//! total as upstream's `GetScaledValueFromIntOrPercent`: an absolute count, or
//! a percentage of the total rounded up or down. (The Deployment and
//! disruption controllers carry their own copies, which could move here.)

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for IntOrString: {0:?}")]
pub(crate) struct Invalid(pub(crate) String);

/// An absolute count, or a percentage of `total` rounded up or down.
pub(crate) fn scaled(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, Invalid> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Invalid(s.clone()))?;
            let product = percent * i64::from(total);
            let value = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(value).map_err(|_| Invalid(s.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling() {
        let s = |v: &str| IntOrString::String(v.to_string());
        assert_eq!(scaled(&IntOrString::Int(3), 10, false), Ok(3));
        assert_eq!(scaled(&s("25%"), 10, false), Ok(2));
        assert_eq!(scaled(&s("25%"), 10, true), Ok(3));
        assert_eq!(scaled(&s("100%"), 7, true), Ok(7));
        assert!(scaled(&s("25"), 10, true).is_err());
    }
}
