//! A Job's pods: the label selector that finds them, the pod built from the
//! template (labels, index, tracking finalizer, controller reference), and
//! the API calls that create, delete and release them.

use std::collections::BTreeMap;

use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::Error;
use super::claim::controller_ref;
use super::indexes::COMPLETION_INDEX;
use super::status::TRACKING_FINALIZER;

/// Longest `generateName` (the API server appends 5 random characters).
const MAX_GENERATE_NAME: usize = 58;

/// The environment variable Indexed Job pods read their index from.
const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The pod to create for `job`, for completion `index` in Indexed mode.
pub(crate) fn build(job: &Job, index: Option<i32>) -> Result<Pod, Error> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .ok_or(Error::NoTemplate)?;
    let mut spec = template.spec.ok_or(Error::NoTemplate)?;
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels: BTreeMap<String, String> = tmeta.labels.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = tmeta.annotations.unwrap_or_default();
    let mut generate_name = format!("{name}-");
    if let Some(ix) = index {
        annotations.insert(COMPLETION_INDEX.into(), ix.to_string());
        labels.insert(COMPLETION_INDEX.into(), ix.to_string());
        // Room for the index if the name is long: generated names stay
        // within 63 characters (58 + a 5-character random suffix).
        let suffix = format!("-{ix}-");
        let keep = name
            .len()
            .min(MAX_GENERATE_NAME.saturating_sub(suffix.len()));
        let prefix: String = name.chars().take(keep).collect();
        generate_name = format!("{prefix}{suffix}");
        if spec.hostname.as_deref().unwrap_or("").is_empty() {
            spec.hostname = Some(format!("{name}-{ix}"));
        }
        let env = EnvVar {
            name: INDEX_ENV.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        let init = spec.init_containers.iter_mut().flatten();
        for c in spec.containers.iter_mut().chain(init) {
            let vars = c.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|v| v.name == INDEX_ENV) {
                vars.push(env.clone());
            }
        }
    }
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.into());
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

fn ok_unless_real_error<T>(r: Result<T, kube::Error>) -> Result<bool, Error> {
    match r {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Creates pods in batches of 1, 2, 4, … (upstream's slow start), stopping at
/// the first batch with a failure. Returns how many were created.
pub(crate) async fn create(api: &Api<Pod>, pods: Vec<Pod>) -> (usize, Option<Error>) {
    let pp = PostParams::default();
    let mut created = 0;
    let mut batch = 1;
    let mut rest = pods.as_slice();
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        let results = join_all(now.iter().map(|p| api.create(&pp, p))).await;
        let mut error = None;
        for r in results {
            match r {
                Ok(_) => created += 1,
                Err(e) => error = Some(Error::from(e)),
            }
        }
        if error.is_some() {
            return (created, error);
        }
        rest = later;
        batch *= 2;
    }
    (created, None)
}

/// Removes the tracking finalizer; `Ok(true)` also when the pod is gone.
pub(crate) async fn release(api: &Api<Pod>, pod: &Pod) -> Result<bool, Error> {
    let Some(name) = pod.metadata.name.as_deref() else {
        return Ok(false);
    };
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    ok_unless_real_error(
        api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    )
}

/// Deletes a pod (its finalizers stay: it is counted once it is gone).
pub(crate) async fn delete(api: &Api<Pod>, pod: &Pod) -> Result<bool, Error> {
    let Some(name) = pod.metadata.name.as_deref() else {
        return Ok(false);
    };
    ok_unless_real_error(api.delete(name, &DeleteParams::background()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("job-name".to_string(), "pi".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn builds_a_non_indexed_pod() {
        let pod = build(&job(), None).unwrap();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-"));
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec![TRACKING_FINALIZER.to_string()])
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Job", "u1", Some(true))
        );
        assert_eq!(pod.metadata.labels.unwrap()["job-name"], "pi");
        assert!(pod.spec.unwrap().hostname.is_none());
    }

    #[test]
    fn long_names_keep_their_index() {
        let mut j = job();
        j.metadata.name = Some("x".repeat(70));
        let pod = build(&j, Some(12)).unwrap();
        let name = pod.metadata.generate_name.unwrap();
        assert_eq!(name.len(), MAX_GENERATE_NAME);
        assert!(name.ends_with("-12-"));
    }

    #[test]
    fn builds_an_indexed_pod() {
        let pod = build(&job(), Some(2)).unwrap();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(pod.metadata.annotations.unwrap()[COMPLETION_INDEX], "2");
        assert_eq!(pod.metadata.labels.unwrap()[COMPLETION_INDEX], "2");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert_eq!(env[0].name, INDEX_ENV);
    }
}
