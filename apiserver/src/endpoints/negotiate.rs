//! Content negotiation: what the client accepts, and decoding request bodies.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::api_error::{ApiError, ApiResult};

/// The largest request body accepted (upstream's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Media types the server can produce.
pub const SERVED_TYPES: &[&str] = &["application/json", "application/yaml"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table,
    PartialObjectMetadata,
    PartialObjectMetadataList,
    /// `apidiscovery.k8s.io/v2` aggregated discovery.
    Discovery,
}

struct MediaRange<'a> {
    essence: String,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|part| {
            let mut pieces = part.split(';');
            let essence = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let params = pieces
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// Picks the response form from `Accept`; 406 if nothing acceptable is served.
pub fn output(headers: &HeaderMap) -> ApiResult<Output> {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if accept.is_empty() {
        return Ok(Output::Json);
    }
    for range in parse_accept(accept) {
        let param = |k: &str| range.params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let json_like = matches!(
            range.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        );
        if let Some(kind) = param("as") {
            if range.essence != "application/json" {
                continue;
            }
            let out = match (kind, param("g"), param("v")) {
                ("Table", Some("meta.k8s.io"), Some("v1" | "v1beta1")) => Output::Table,
                ("PartialObjectMetadata", Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                    Output::PartialObjectMetadata
                }
                ("PartialObjectMetadataList", Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                    Output::PartialObjectMetadataList
                }
                ("APIGroupDiscoveryList", Some("apidiscovery.k8s.io"), Some("v2")) => {
                    Output::Discovery
                }
                _ => continue,
            };
            return Ok(out);
        }
        if json_like {
            return Ok(Output::Json);
        }
        if matches!(
            range.essence.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml"
        ) {
            return Ok(Output::Yaml);
        }
    }
    Err(ApiError::not_acceptable(SERVED_TYPES))
}

/// Body encodings accepted for create and update.
const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// Decodes a create/update body as JSON or YAML into a JSON value.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "" | "*/*" => decode_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body),
        crate::protobuf::CONTENT_TYPE => crate::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("failed to decode protobuf body: {e}"))),
        _ => Err(ApiError::unsupported_media_type(content_type, BODY_TYPES)),
    }
}

pub fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("yaml: invalid UTF-8: {e}")))?;
    let v: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?;
    serde_json::to_value(v)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn out(accept: &str) -> ApiResult<Output> {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_str(accept).unwrap());
        output(&h)
    }

    #[test]
    fn negotiates_like_upstream() {
        assert_eq!(out("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(), Output::Table);
        assert_eq!(
            out("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Output::Json
        );
        assert_eq!(out("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json").unwrap(), Output::Discovery);
        assert_eq!(out("application/yaml").unwrap(), Output::Yaml);
        assert_eq!(
            out("application/vnd.kubernetes.protobuf").unwrap_err().code,
            406
        );
        assert_eq!(out("text/html").unwrap_err().code, 406);
    }

    #[test]
    fn bodies_decode_and_hostile_ones_fail_cleanly() {
        let h = HeaderMap::new();
        assert!(decode_body(&h, br#"{"a":1}"#).is_ok());
        assert_eq!(decode_body(&h, b"{").unwrap_err().code, 400);
        let deep = "[".repeat(100_000);
        assert_eq!(decode_body(&h, deep.as_bytes()).unwrap_err().code, 400);
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(decode_body(&h, &big).unwrap_err().code, 413);
        let mut y = HeaderMap::new();
        y.insert("content-type", HeaderValue::from_static("application/yaml"));
        assert_eq!(decode_body(&y, b"a: 1\nb: [x, y]\n").unwrap()["b"][1], "y");
        let deep_yaml = "[".repeat(100_000);
        assert_eq!(decode_body(&y, deep_yaml.as_bytes()).unwrap_err().code, 400);
    }
}
