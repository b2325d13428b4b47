//! End-to-end tests of what a container gets from its pod on a real
//! containerd: environment variables (`valueFrom`, `envFrom`, `$(VAR)`,
//! service variables), configMap/secret/downwardAPI/projected volumes and
//! their updates, emptyDir, `/etc/hosts` and `/etc/resolv.conf`. Each pod
//! prints what it sees; the test reads its log through the kubelet.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMapEnvSource;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, ConfigMapProjection, ConfigMapVolumeSource, Container,
    DownwardAPIProjection, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HostAlias, KeyToPath, ObjectFieldSelector, Pod,
    PodDNSConfig, PodDNSConfigOption, ProjectedVolumeSource, ResourceFieldSelector,
    ResourceRequirements, Secret, SecretKeySelector, SecretProjection, SecretVolumeSource, Service,
    ServiceAccount, ServiceAccountTokenProjection, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use support::{BUSYBOX, Env, TestResult, busybox_pod, main_status, phase};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

async fn config_map(env: &Env, name: &str, data: &[(&str, &str)]) -> TestResult {
    let cm = ConfigMap {
        metadata: meta(name),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    api.create(&PostParams::default(), &cm).await?;
    Ok(())
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn field(path: &str) -> Option<EnvVarSource> {
    Some(EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.into(),
            api_version: None,
        }),
        ..Default::default()
    })
}

fn env_var(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: value.map(Into::into),
        value_from: from,
    }
}

fn cm_key(name: &str, key: &str, optional: Option<bool>) -> Option<EnvVarSource> {
    Some(EnvVarSource {
        config_map_key_ref: Some(ConfigMapKeySelector {
            name: name.into(),
            key: key.into(),
            optional,
        }),
        ..Default::default()
    })
}

fn items(pairs: &[(&str, &str)]) -> Option<Vec<KeyToPath>> {
    Some(
        pairs
            .iter()
            .map(|(k, p)| KeyToPath {
                key: k.to_string(),
                path: p.to_string(),
                mode: None,
            })
            .collect(),
    )
}

fn downward(pairs: &[(&str, &str)]) -> Option<Vec<DownwardAPIVolumeFile>> {
    Some(
        pairs
            .iter()
            .map(|(path, field)| DownwardAPIVolumeFile {
                path: path.to_string(),
                field_ref: Some(ObjectFieldSelector {
                    field_path: field.to_string(),
                    api_version: None,
                }),
                ..Default::default()
            })
            .collect(),
    )
}

async fn succeeded(env: &Env, name: &str) -> TestResult<String> {
    env.wait_pod(name, &format!("{name} Succeeded"), |p| {
        phase(p) == "Succeeded"
    })
    .await?;
    env.log(name, "main").await
}

#[tokio::test(flavor = "multi_thread")]
async fn env_and_api_volumes_reach_the_container() -> TestResult {
    let env = Env::start("kubelet-test-volumes").await?;
    config_map(
        &env,
        "cfg",
        &[("greeting", "hello"), ("a", "1"), ("data-1", "dashed")],
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "default");
    let secret = Secret {
        metadata: meta("creds"),
        data: Some(BTreeMap::from([(
            "password".to_string(),
            ByteString(b"hunter2".to_vec()),
        )])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta("reader"),
            ..Default::default()
        },
    )
    .await?;
    let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &Service {
                metadata: meta("web-front"),
                spec: Some(ServiceSpec {
                    ports: Some(vec![ServicePort {
                        port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                status: None,
            },
        )
        .await?;

    let script = r#"
echo "env=$FROM_CM $FROM_SECRET $POD_NAME $APP $MEM $COMPOSED $ESCAPED $CM_a ${OPT-unset}"
echo "ip=$POD_IP"
echo "svc=$WEB_FRONT_SERVICE_PORT ${KUBERNETES_SERVICE_HOST:+k8s}"
echo "cm=$(cat /etc/cm/dir/greeting.txt) $(stat -c %a /etc/cm/dir/greeting.txt)"
echo "sec=$(cat /etc/sec/password)"
echo "labels=$(cat /etc/info/labels)"
echo "name=$(cat /etc/info/name)"
echo "proj=$(cat /etc/proj/a) $(cat /etc/proj/password) $(cat /etc/proj/ns)"
echo "token=$(head -c 3 /etc/proj/token)"
touch /etc/cm/x 2>/dev/null && echo cm=rw || echo cm=ro
tr '\0' '\n' < /proc/1/environ | grep '^CM_data-1='
"#;
    let mut pod: Pod = busybox_pod("demo", &env.node, "Never", script);
    pod.metadata.labels = Some(BTreeMap::from([("app".to_string(), "demo".to_string())]));
    let spec = pod.spec.as_mut().ok_or("no spec")?;
    spec.service_account_name = Some("reader".into());
    let c: &mut Container = spec.containers.first_mut().ok_or("no container")?;
    c.resources = Some(ResourceRequirements {
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("64Mi".into()),
        )])),
        ..Default::default()
    });
    c.env = Some(vec![
        env_var("FROM_CM", None, cm_key("cfg", "greeting", None)),
        env_var(
            "FROM_SECRET",
            None,
            Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "creds".into(),
                    key: "password".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
        ),
        env_var("POD_NAME", None, field("metadata.name")),
        env_var("POD_IP", None, field("status.podIP")),
        env_var("APP", None, field("metadata.labels['app']")),
        env_var(
            "MEM",
            None,
            Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    resource: "limits.memory".into(),
                    divisor: Some(Quantity("1Mi".into())),
                    container_name: None,
                }),
                ..Default::default()
            }),
        ),
        env_var("COMPOSED", Some("$(POD_NAME)-$(FROM_CM)"), None),
        env_var("ESCAPED", Some("$$(POD_NAME)"), None),
        env_var("OPT", None, cm_key("cfg", "absent", Some(true))),
    ]);
    c.env_from = Some(vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: "cfg".into(),
            optional: None,
        }),
        prefix: Some("CM_".into()),
        secret_ref: None,
    }]);
    c.volume_mounts = Some(vec![
        mount("cm", "/etc/cm"),
        mount("sec", "/etc/sec"),
        mount("info", "/etc/info"),
        mount("proj", "/etc/proj"),
    ]);
    spec.volumes = Some(vec![
        Volume {
            name: "cm".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                items: Some(vec![KeyToPath {
                    key: "greeting".into(),
                    path: "dir/greeting.txt".into(),
                    mode: Some(0o400),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "sec".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("creds".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "info".into(),
            downward_api: Some(DownwardAPIVolumeSource {
                items: downward(&[("labels", "metadata.labels"), ("name", "metadata.name")]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "proj".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: None,
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: "cfg".into(),
                            items: items(&[("a", "a")]),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: "creds".into(),
                            items: None,
                            optional: None,
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        downward_api: Some(DownwardAPIProjection {
                            items: downward(&[("ns", "metadata.namespace")]),
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            path: "token".into(),
                            audience: Some("demo".into()),
                            expiration_seconds: Some(3600),
                        }),
                        ..Default::default()
                    },
                ]),
            }),
            ..Default::default()
        },
    ]);
    env.create(pod).await?;
    let log = succeeded(&env, "demo").await?;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("env=hello hunter2 demo demo 64 demo-hello $(POD_NAME) 1 unset"),
        "{log}"
    );
    assert!(lines[1].starts_with("ip=10.244.0."), "{log}");
    assert_eq!(
        &lines[2..],
        [
            "svc=8080 k8s",
            "cm=hello 400",
            "sec=hunter2",
            "labels=app=\"demo\"",
            "name=demo",
            "proj=1 hunter2 default",
            "token=eyJ",
            "cm=ro",
            // A key that is no shell identifier still reaches the process
            // (busybox's sh would drop it before `env` printed it).
            "CM_data-1=dashed",
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn config_map_update_reaches_a_running_pod() -> TestResult {
    let env = Env::start_with("kubelet-test-cm-update", |c| {
        c.volume_resync_interval = Duration::from_secs(1);
    })
    .await?;
    config_map(&env, "live", &[("v", "one")]).await?;
    let script = "cat /etc/live/v; echo; until grep -q two /etc/live/v; do sleep 0.2; done; \
                  cat /etc/live/v; echo";
    let mut pod = busybox_pod("watcher", &env.node, "Never", script);
    let spec = pod.spec.as_mut().ok_or("no spec")?;
    spec.containers[0].volume_mounts = Some(vec![mount("live", "/etc/live")]);
    spec.volumes = Some(vec![Volume {
        name: "live".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: "live".into(),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    let created = env.create(pod).await?;
    env.wait_pod("watcher", "watcher Running", |p| phase(p) == "Running")
        .await?;
    // Upstream's layout on the host: `..data` links the current version.
    let uid = created.metadata.uid.unwrap_or_default();
    let dir = env
        .root
        .join("pods")
        .join(&uid)
        .join("volumes/kubernetes.io~configmap/live");
    let data = std::fs::read_link(dir.join("..data"))?;
    assert!(data.to_string_lossy().starts_with("..20"), "{data:?}");

    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let patch = serde_json::json!({"data": {"v": "two"}});
    api.patch("live", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let log = succeeded(&env, "watcher").await?;
    assert_eq!(log, "one\ntwo\n");
    assert_ne!(std::fs::read_link(dir.join("..data"))?, data);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_key_is_a_create_container_config_error() -> TestResult {
    let env = Env::start("kubelet-test-env-missing").await?;
    config_map(&env, "cfg", &[("a", "1")]).await?;
    let mut pod = busybox_pod("broken", &env.node, "Never", "true");
    pod.spec.as_mut().ok_or("no spec")?.containers[0].env =
        Some(vec![env_var("X", None, cm_key("cfg", "nope", None))]);
    env.create(pod).await?;
    let pod = env
        .wait_pod("broken", "CreateContainerConfigError", |p| {
            main_status(p)
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CreateContainerConfigError")
        })
        .await?;
    let waiting = main_status(&pod)
        .and_then(|s| s.state.clone())
        .and_then(|s| s.waiting)
        .ok_or("not waiting")?;
    assert_eq!(
        waiting.message.as_deref(),
        Some("couldn't find key nope in ConfigMap default/cfg")
    );
    assert_eq!(phase(&pod), "Pending");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn etc_hosts_and_resolv_conf() -> TestResult {
    let env = Env::start("kubelet-test-etc").await?;
    let script = "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname";
    let mut pod = busybox_pod("dns", &env.node, "Never", script);
    let spec = pod.spec.as_mut().ok_or("no spec")?;
    spec.hostname = Some("web".into());
    spec.subdomain = Some("sub".into());
    spec.host_aliases = Some(vec![HostAlias {
        ip: "10.1.2.3".into(),
        hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
    }]);
    spec.dns_config = Some(PodDNSConfig {
        options: Some(vec![PodDNSConfigOption {
            name: Some("edns0".into()),
            value: None,
        }]),
        ..Default::default()
    });
    env.create(pod).await?;
    let log = succeeded(&env, "dns").await?;
    let parts: Vec<&str> = log.split("---\n").collect();
    let [hosts, resolv, hostname] = parts.as_slice() else {
        return Err(format!("unexpected output: {log}").into());
    };
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );
    let ip = env
        .pods()
        .get("dns")
        .await?
        .status
        .and_then(|s| s.pod_ip)
        .ok_or("no pod IP")?;
    assert!(
        hosts.contains(&format!("{ip}\tweb.sub.default.svc.cluster.local\tweb\n")),
        "{hosts}"
    );
    assert!(
        hosts.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"),
        "{hosts}"
    );
    let lines: Vec<&str> = resolv.lines().collect();
    assert!(lines.contains(&"nameserver 10.96.0.10"), "{resolv}");
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("search default.svc.cluster.local svc.cluster.local cluster.local")),
        "{resolv}"
    );
    assert!(lines.contains(&"options ndots:5 edns0"), "{resolv}");
    assert_eq!(hostname.trim(), "web");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_dir_is_shared_between_containers() -> TestResult {
    let env = Env::start("kubelet-test-emptydir").await?;
    let mut pod = busybox_pod(
        "share",
        &env.node,
        "Never",
        "until [ -f /cache/x ]; do sleep 0.1; done; cat /cache/x; grep ' /mem ' /proc/mounts",
    );
    let spec = pod.spec.as_mut().ok_or("no spec")?;
    spec.containers[0].volume_mounts = Some(vec![mount("cache", "/cache"), mount("mem", "/mem")]);
    spec.containers.push(Container {
        name: "writer".into(),
        image: Some(BUSYBOX.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo shared > /data/x.tmp && mv /data/x.tmp /data/x".into(),
        ]),
        volume_mounts: Some(vec![mount("cache", "/data")]),
        ..Default::default()
    });
    spec.volumes = Some(vec![
        Volume {
            name: "cache".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "mem".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("16Mi".into())),
            }),
            ..Default::default()
        },
    ]);
    let created = env.create(pod).await?;
    let log = succeeded(&env, "share").await?;
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("shared"));
    let mem = lines.next().ok_or("no /mem mount")?;
    assert!(mem.starts_with("tmpfs /mem tmpfs "), "{mem}");
    assert!(mem.contains("size=16384k"), "{mem}");

    // Deleting the pod removes its directory, tmpfs included.
    env.pods()
        .delete("share", &kube::api::DeleteParams::default())
        .await?;
    let dir = env
        .root
        .join("pods")
        .join(created.metadata.uid.unwrap_or_default());
    support::eventually("the pod directory removed", || async {
        (!dir.exists()).then_some(())
    })
    .await?;
    Ok(())
}
