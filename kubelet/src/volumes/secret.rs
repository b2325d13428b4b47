//! secret volumes: every key of the Secret's `data`, or the chosen `items`,
//! as files (upstream's `secret.MakePayload`), on tmpfs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, SecretVolumeSource};

use super::config_map::key_payload;
use super::{DEFAULT_MODE, Error, Payload, Result};
use crate::env;

/// The volume's files; a missing optional Secret gives none.
pub(super) fn payload(src: &SecretVolumeSource, name: &str, s: Option<&Secret>) -> Result<Payload> {
    let optional = src.optional == Some(true);
    let Some(s) = s else {
        return missing(name, optional);
    };
    key_payload(
        &data(s),
        src.items.as_deref(),
        src.default_mode.unwrap_or(DEFAULT_MODE),
        optional,
        Error::SecretKey,
    )
}

pub(super) fn data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

pub(super) fn missing(name: &str, optional: bool) -> Result<Payload> {
    if optional {
        Ok(Payload::new())
    } else {
        Err(env::Error::NotFound {
            kind: "secret",
            name: name.into(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::KeyToPath;

    #[test]
    fn keys_become_files() {
        let s = Secret {
            data: Some(BTreeMap::from([(
                "password".to_string(),
                ByteString(b"hunter2".to_vec()),
            )])),
            ..Default::default()
        };
        let src = SecretVolumeSource {
            secret_name: Some("s".into()),
            ..Default::default()
        };
        let p = payload(&src, "s", Some(&s)).unwrap();
        assert_eq!(p["password"].data, b"hunter2");
        assert_eq!(p["password"].mode, 0o644);
        let src = SecretVolumeSource {
            items: Some(vec![KeyToPath {
                key: "user".into(),
                path: "u".into(),
                mode: None,
            }]),
            ..src
        };
        assert_eq!(
            payload(&src, "s", Some(&s)).unwrap_err().to_string(),
            "references non-existent secret key: user"
        );
        assert_eq!(
            payload(&src, "s", None).unwrap_err().to_string(),
            "secret \"s\" not found"
        );
    }
}
