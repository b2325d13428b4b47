//! Label selector matching (`metav1.LabelSelector`) as the disruption
//! controller needs it: a missing selector matches nothing, an empty one
//! matches everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("operator {0} needs values for key {1:?}")]
    NoValues(String, String),
}

/// Whether `labels` satisfy `selector`.
pub(crate) fn matches(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, SelectorError> {
    let Some(selector) = selector else {
        return Ok(false);
    };
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    for (k, v) in selector.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return Ok(false);
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.as_deref().unwrap_or(&[]);
        let value = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(SelectorError::NoValues(
                    expr.operator.clone(),
                    expr.key.clone(),
                ));
            }
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => return Err(SelectorError::Operator(other.to_string())),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn selector_semantics() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let sel = |ml: &[(&str, &str)], me: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: Some(labels(ml)),
            match_expressions: Some(me),
        };
        let cases = [
            (sel(&[], vec![]), Ok(true)),
            (sel(&[("app", "web")], vec![]), Ok(true)),
            (sel(&[("app", "db")], vec![]), Ok(false)),
            (
                sel(&[], vec![expr("tier", "In", &["front", "back"])]),
                Ok(true),
            ),
            (sel(&[], vec![expr("tier", "NotIn", &["front"])]), Ok(false)),
            (sel(&[], vec![expr("zone", "NotIn", &["a"])]), Ok(true)),
            (sel(&[], vec![expr("app", "Exists", &[])]), Ok(true)),
            (sel(&[], vec![expr("app", "DoesNotExist", &[])]), Ok(false)),
            (
                sel(&[], vec![expr("app", "Near", &[])]),
                Err(SelectorError::Operator("Near".into())),
            ),
        ];
        for (selector, want) in cases {
            assert_eq!(matches(Some(&selector), Some(&pod)), want, "{selector:?}");
        }
        assert_eq!(
            matches(None, Some(&pod)),
            Ok(false),
            "no selector selects nothing"
        );
    }
}
