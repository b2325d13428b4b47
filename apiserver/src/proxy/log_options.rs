//! `PodLogOptions` from a `pods/log` query, validated as upstream validates
//! them, and re-encoded for the kubelet.

use std::collections::HashMap;

use crate::api_error::{ApiError, ApiResult, FieldError, FieldErrorKind};
use crate::endpoints::query::flag;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    pub fn parse(query: &HashMap<String, String>, pod: &str) -> ApiResult<Self> {
        let q = |k: &str| query.get(k).map(String::as_str);
        let int = |k: &str| -> ApiResult<Option<i64>> {
            q(k).filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!("unable to parse {k} {v:?} as an integer"))
                    })
                })
                .transpose()
        };
        let since_time = match q("sinceTime").filter(|v| !v.is_empty()) {
            Some(t) => {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse sinceTime {t:?}: {e}"))
                })?;
                Some(t.to_string())
            }
            None => None,
        };
        let opts = LogOptions {
            container: q("container").filter(|c| !c.is_empty()).map(str::to_string),
            follow: flag(q("follow")),
            previous: flag(q("previous")),
            timestamps: flag(q("timestamps")),
            since_seconds: int("sinceSeconds")?,
            since_time,
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
        };
        let errors = opts.validate();
        if errors.is_empty() {
            Ok(opts)
        } else {
            Err(ApiError::invalid_kind("PodLogOptions", "", pod, &errors))
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let invalid = |field: &str, value: i64, detail: &str| {
            FieldError::new(
                FieldErrorKind::Invalid,
                field,
                Some(value.to_string()),
                detail,
            )
        };
        let mut errors = Vec::new();
        if let Some(n) = self.tail_lines.filter(|n| *n < 0) {
            errors.push(invalid(
                "tailLines",
                n,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(n) = self.limit_bytes.filter(|n| *n < 1) {
            errors.push(invalid("limitBytes", n, "must be greater than 0"));
        }
        if self.since_seconds.is_some() && self.since_time.is_some() {
            errors.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        if let Some(n) = self.since_seconds.filter(|n| *n < 1) {
            errors.push(invalid("sinceSeconds", n, "must be greater than 0"));
        }
        errors
    }

    /// The query the kubelet's `/containerLogs` reads.
    pub fn kubelet_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, on) in [
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ] {
            if on {
                out.append_pair(key, "true");
            }
        }
        for (key, value) in [
            ("sinceSeconds", self.since_seconds),
            ("tailLines", self.tail_lines),
            ("limitBytes", self.limit_bytes),
        ] {
            if let Some(v) = value {
                out.append_pair(key, &v.to_string());
            }
        }
        if let Some(t) = &self.since_time {
            out.append_pair("sinceTime", t);
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_reencodes_for_the_kubelet() {
        let o = LogOptions::parse(
            &query(&[
                ("container", "c"),
                ("follow", "True"),
                ("tailLines", "3"),
                ("timestamps", "false"),
            ]),
            "p",
        )
        .expect("valid");
        assert_eq!(o.container.as_deref(), Some("c"));
        assert_eq!(o.kubelet_query(), "follow=true&tailLines=3");
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        let e = LogOptions::parse(&query(&[("tailLines", "-1")]), "p").expect_err("negative");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let both = query(&[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")]);
        assert_eq!(LogOptions::parse(&both, "p").expect_err("both").code, 422);
        let e = LogOptions::parse(&query(&[("limitBytes", "x")]), "p").expect_err("nan");
        assert_eq!(e.code, 400);
        let e = LogOptions::parse(&query(&[("sinceTime", "yesterday")]), "p").expect_err("time");
        assert_eq!(e.code, 400);
    }
}
