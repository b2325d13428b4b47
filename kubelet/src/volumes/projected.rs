//! projected volumes: configMap, secret, downwardAPI and serviceAccountToken
//! sources merged into one directory, on tmpfs. clusterTrustBundle and
//! podCertificate sources are not supported: such a volume never becomes
//! ready.
//!
//! Tokens come from the TokenRequest API (`serviceaccounts/<sa>/token`),
//! bound to the pod, and are kept per volume and path until 80% of their
//! lifetime has passed (or 24 hours), as upstream's token manager keeps them;
//! the next resync then writes a fresh one.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    Pod, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

use super::config_map::{self, key_payload};
use super::{DEFAULT_MODE, Error, File, Payload, Result, downward_api, mode_bits, secret};
use crate::env;

/// Upstream's default `expirationSeconds`.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// A token is renewed after this age whatever its lifetime.
const MAX_AGE: SignedDuration = SignedDuration::from_hours(24);

/// The volume's files, sources in order.
#[allow(clippy::too_many_arguments)]
pub(super) async fn payload(
    pod: &Pod,
    volume: &str,
    src: &ProjectedVolumeSource,
    objects: &mut env::Objects<'_>,
    tokens: &mut Tokens,
    client: &kube::Client,
    node_name: &str,
    allocatable: &mut Option<BTreeMap<String, Quantity>>,
) -> Result<Payload> {
    let default_mode = src.default_mode.unwrap_or(DEFAULT_MODE);
    let mut payload = Payload::new();
    for s in src.sources.iter().flatten() {
        if let Some(cm) = &s.config_map {
            let optional = cm.optional == Some(true);
            let part = match objects.config_map(&cm.name).await? {
                Some(obj) => key_payload(
                    &config_map::data(obj),
                    cm.items.as_deref(),
                    default_mode,
                    optional,
                    Error::ConfigMapKey,
                )?,
                None => config_map::missing(&cm.name, optional)?,
            };
            payload.extend(part);
        } else if let Some(sec) = &s.secret {
            let optional = sec.optional == Some(true);
            let part = match objects.secret(&sec.name).await? {
                Some(obj) => key_payload(
                    &secret::data(obj),
                    sec.items.as_deref(),
                    default_mode,
                    optional,
                    Error::SecretKey,
                )?,
                None => secret::missing(&sec.name, optional)?,
            };
            payload.extend(part);
        } else if let Some(d) = &s.downward_api {
            let items = d.items.as_deref().unwrap_or(&[]);
            let part =
                downward_api::payload(pod, items, default_mode, client, node_name, allocatable)
                    .await?;
            payload.extend(part);
        } else if let Some(t) = &s.service_account_token {
            let token = tokens.get(client, pod, volume, t).await?;
            payload.insert(
                t.path.clone(),
                File {
                    data: token.into_bytes(),
                    mode: mode_bits(default_mode),
                },
            );
        } else {
            return Err(Error::Unsupported(volume.into()));
        }
    }
    Ok(payload)
}

struct Token {
    token: String,
    expires: Timestamp,
    lifetime: SignedDuration,
}

impl Token {
    fn needs_refresh(&self, now: Timestamp) -> bool {
        let issued = self.expires - self.lifetime;
        now >= self.expires - self.lifetime / 5 || now >= issued + MAX_AGE
    }
}

/// The pod's service-account tokens, per volume and path.
#[derive(Default)]
pub(super) struct Tokens {
    cached: HashMap<(String, String), Token>,
}

impl Tokens {
    async fn get(
        &mut self,
        client: &kube::Client,
        pod: &Pod,
        volume: &str,
        t: &ServiceAccountTokenProjection,
    ) -> Result<String> {
        let key = (volume.to_string(), t.path.clone());
        let now = Timestamp::now();
        if let Some(cached) = self.cached.get(&key)
            && !cached.needs_refresh(now)
        {
            return Ok(cached.token.clone());
        }
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        let seconds = t.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: t
                    .audience
                    .iter()
                    .filter(|a| !a.is_empty())
                    .cloned()
                    .collect(),
                expiration_seconds: Some(seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), env::namespace(pod));
        let granted = api
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .map_err(Error::Token)?;
        let lifetime =
            SignedDuration::from_secs(granted.spec.expiration_seconds.unwrap_or(seconds));
        let (token, expires) = match granted.status {
            Some(s) => (s.token, s.expiration_timestamp.0),
            None => (String::new(), now + lifetime),
        };
        self.cached.insert(
            key,
            Token {
                token: token.clone(),
                expires,
                lifetime,
            },
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_renew_at_eighty_percent_of_their_lifetime() {
        let issued = Timestamp::from_second(1_000_000).unwrap();
        let lifetime = SignedDuration::from_secs(3600);
        let t = Token {
            token: "t".into(),
            expires: issued + lifetime,
            lifetime,
        };
        assert!(!t.needs_refresh(issued));
        assert!(!t.needs_refresh(issued + SignedDuration::from_secs(2879)));
        assert!(t.needs_refresh(issued + SignedDuration::from_secs(2880)));
        let long = Token {
            lifetime: SignedDuration::from_hours(48),
            expires: issued + SignedDuration::from_hours(48),
            ..t
        };
        assert!(long.needs_refresh(issued + SignedDuration::from_hours(24)));
        assert!(!long.needs_refresh(issued + SignedDuration::from_hours(23)));
    }
}
