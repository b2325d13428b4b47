//! configMap volumes: every key of `data` and `binaryData`, or the chosen
//! `items`, as files (upstream's `configmap.MakePayload`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, KeyToPath};

use super::{DEFAULT_MODE, Error, File, Payload, Result, mode_bits};
use crate::env;

/// The volume's files; a missing optional ConfigMap gives none.
pub(super) fn payload(src: &ConfigMapVolumeSource, cm: Option<&ConfigMap>) -> Result<Payload> {
    let optional = src.optional == Some(true);
    let Some(cm) = cm else {
        return missing(&src.name, optional);
    };
    key_payload(
        &data(cm),
        src.items.as_deref(),
        src.default_mode.unwrap_or(DEFAULT_MODE),
        optional,
        Error::ConfigMapKey,
    )
}

/// The ConfigMap's keys and bytes, `data` and `binaryData` together.
pub(super) fn data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// No files for an absent optional object; the object's error otherwise.
pub(super) fn missing(name: &str, optional: bool) -> Result<Payload> {
    if optional {
        Ok(Payload::new())
    } else {
        Err(env::Error::NotFound {
            kind: "configmap",
            name: name.into(),
        }
        .into())
    }
}

/// Files from keyed data: all keys under their own names, or each item's
/// key under its path. A missing item key is skipped when `optional`, an
/// error (`missing_key`) otherwise.
pub(super) fn key_payload(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing_key: fn(String) -> Error,
) -> Result<Payload> {
    let mut payload = Payload::new();
    match items {
        None | Some([]) => {
            for (k, v) in data {
                payload.insert(
                    k.clone(),
                    File {
                        data: v.clone(),
                        mode: mode_bits(default_mode),
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let Some(v) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(missing_key(item.key.clone()));
                };
                payload.insert(
                    item.path.clone(),
                    File {
                        data: v.clone(),
                        mode: mode_bits(item.mode.unwrap_or(default_mode)),
                    },
                );
            }
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn cm() -> ConfigMap {
        ConfigMap {
            data: Some(BTreeMap::from([("a".to_string(), "1".to_string())])),
            binary_data: Some(BTreeMap::from([(
                "bin".to_string(),
                ByteString(vec![0, 1]),
            )])),
            ..Default::default()
        }
    }

    fn source(items: Option<Vec<KeyToPath>>, optional: Option<bool>) -> ConfigMapVolumeSource {
        ConfigMapVolumeSource {
            name: "cm".into(),
            items,
            optional,
            default_mode: Some(0o600),
        }
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn all_keys_or_items() {
        let p = payload(&source(None, None), Some(&cm())).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["a"].data, b"1");
        assert_eq!(p["a"].mode, 0o600);
        assert_eq!(p["bin"].data, vec![0, 1]);

        let items = vec![item("a", "dir/a.txt", Some(0o400))];
        let p = payload(&source(Some(items), None), Some(&cm())).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["dir/a.txt"]);
        assert_eq!(p["dir/a.txt"].mode, 0o400);
    }

    #[test]
    fn missing_keys_and_objects() {
        let items = vec![item("nope", "x", None)];
        let e = payload(&source(Some(items.clone()), None), Some(&cm())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configmap references non-existent config key: nope"
        );
        assert!(
            payload(&source(Some(items), Some(true)), Some(&cm()))
                .unwrap()
                .is_empty()
        );
        let e = payload(&source(None, None), None).unwrap_err();
        assert_eq!(e.to_string(), "configmap \"cm\" not found");
        assert!(payload(&source(None, Some(true)), None).unwrap().is_empty());
    }
}
