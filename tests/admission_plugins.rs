//! Upstream's default-on admission plugins that shape every new pod
//! (ServiceAccount, DefaultTolerationSeconds), the CronJob schedule and time
//! zone checks, and the kind or resource that error messages name.

mod common;

use serde_json::{Value, json};

use common::{Server, raw_request};

const PODS: &str = "/api/v1/namespaces/default/pods";
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn create(s: &Server, path: &str, body: &Value) -> Value {
    let r = s.send_json("POST", path, body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn service_account(s: &Server, name: &str, extra: Value) {
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    if let (Some(sa), Some(extra)) = (sa.as_object_mut(), extra.as_object()) {
        sa.extend(extra.clone());
    }
    create(s, "/api/v1/namespaces/default/serviceaccounts", &sa);
}

/// The token volume's name, if the pod has one.
fn token_volume(p: &Value) -> Option<String> {
    p["spec"]["volumes"]
        .as_array()?
        .iter()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with("kube-api-access-"))
        .map(str::to_string)
}

/// [sig-auth] ServiceAccounts should mount projected service account token /
/// should allow opting out of API token automount.
#[test]
fn service_account_admission_defaults_the_account_and_mounts_its_token() {
    let s = Server::start_apiserver(&[]);
    let p = create(
        &s,
        PODS,
        &pod(
            "mounted",
            json!({
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [
                    {"name": "a", "image": "busybox"},
                    {"name": "own", "image": "busybox",
                     "volumeMounts": [{"name": "mine", "mountPath": TOKEN_PATH}]},
                ],
                "volumes": [{"name": "mine", "emptyDir": {}}],
            }),
        ),
    );
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["serviceAccount"], "default");
    let name = token_volume(&p).expect("token volume");
    let suffix = name.trim_start_matches("kube-api-access-");
    assert_eq!(suffix.len(), 5, "{name}");
    let volume = p["spec"]["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == name.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]})
    );
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_PATH});
    assert_eq!(
        p["spec"]["initContainers"][0]["volumeMounts"],
        json!([mount])
    );
    assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
    // A container that mounts something of its own there keeps it.
    assert_eq!(
        p["spec"]["containers"][1]["volumeMounts"],
        json!([{"name": "mine", "mountPath": TOKEN_PATH}])
    );

    // Opting out: the pod's word wins over its account's.
    service_account(&s, "quiet", json!({"automountServiceAccountToken": false}));
    let p = create(
        &s,
        PODS,
        &pod("off", json!({"automountServiceAccountToken": false})),
    );
    assert_eq!(token_volume(&p), None, "{p}");
    assert_eq!(p["spec"]["containers"][0].get("volumeMounts"), None);
    let p = create(
        &s,
        PODS,
        &pod("quiet", json!({"serviceAccountName": "quiet"})),
    );
    assert_eq!(token_volume(&p), None, "{p}");
    let p = create(
        &s,
        PODS,
        &pod(
            "loud",
            json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
        ),
    );
    assert!(token_volume(&p).is_some(), "{p}");

    // The deprecated alias names the account too.
    let p = create(&s, PODS, &pod("alias", json!({"serviceAccount": "quiet"})));
    assert_eq!(p["spec"]["serviceAccountName"], "quiet");
}

#[test]
fn pods_of_a_missing_service_account_are_forbidden() {
    let s = Server::start_apiserver(&[]);
    let r = s.send_json(
        "POST",
        PODS,
        &pod("lost", json!({"serviceAccountName": "ghost"})),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"lost\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
    );
}

#[test]
fn service_account_image_pull_secrets_are_copied_to_pods_without_their_own() {
    let s = Server::start_apiserver(&[]);
    service_account(
        &s,
        "puller",
        json!({"imagePullSecrets": [{"name": "registry"}]}),
    );
    let p = create(
        &s,
        PODS,
        &pod("pulls", json!({"serviceAccountName": "puller"})),
    );
    assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "registry"}]));
    let p = create(
        &s,
        PODS,
        &pod(
            "own-pull",
            json!({"serviceAccountName": "puller", "imagePullSecrets": [{"name": "mine"}]}),
        ),
    );
    assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
}

/// [sig-node] Pods: the DefaultTolerationSeconds plugin.
#[test]
fn pods_tolerate_not_ready_and_unreachable_nodes_for_five_minutes() {
    let s = Server::start_apiserver(&[]);
    let toleration = |key: &str, seconds: i64| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds});
    let p = create(&s, PODS, &pod("plain", json!({})));
    assert_eq!(
        p["spec"]["tolerations"],
        json!([
            toleration("node.kubernetes.io/not-ready", 300),
            toleration("node.kubernetes.io/unreachable", 300)
        ])
    );
    let own = toleration("node.kubernetes.io/not-ready", 10);
    let p = create(&s, PODS, &pod("own", json!({"tolerations": [own]})));
    assert_eq!(
        p["spec"]["tolerations"],
        json!([own, toleration("node.kubernetes.io/unreachable", 300)])
    );
    let everything = json!({"operator": "Exists"});
    let p = create(&s, PODS, &pod("all", json!({"tolerations": [everything]})));
    assert_eq!(p["spec"]["tolerations"], json!([everything]));

    // Updates are admitted too: a replaced spec without them gets them back.
    let path = format!("{PODS}/plain");
    let mut plain = raw_request(&s.addr(), "GET", &path, "application/json", b"").json();
    if let Some(spec) = plain["spec"].as_object_mut() {
        spec.remove("tolerations");
    }
    let r = s.send_json("PUT", &path, &plain);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["spec"]["tolerations"].as_array().map(Vec::len),
        Some(2)
    );
}

/// Pods of an account annotated `kubernetes.io/enforce-mountable-secrets`
/// may use only the secrets it lists; mirror pods may name no account.
#[test]
fn service_accounts_can_limit_secrets_and_mirror_pods_name_none() {
    let s = Server::start_apiserver(&[]);
    service_account(
        &s,
        "strict",
        json!({"metadata": {"name": "strict",
            "annotations": {"kubernetes.io/enforce-mountable-secrets": "true"}},
            "secrets": [{"name": "allowed"}]}),
    );
    let with_secret = |name: &str, secret: &str| {
        pod(
            name,
            json!({"serviceAccountName": "strict",
                "volumes": [{"name": "s", "secret": {"secretName": secret}}]}),
        )
    };
    create(&s, PODS, &with_secret("fine", "allowed"));
    let r = s.send_json("POST", PODS, &with_secret("sneaky", "other"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"sneaky\" is forbidden: volume with secret.secretName=\"other\" is not allowed because service account strict does not reference that secret"
    );

    let mut mirror = pod("mirror", json!({"serviceAccountName": "strict"}));
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
    let r = s.send_json("POST", PODS, &mirror);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"mirror\" is forbidden: a mirror pod may not reference service accounts"
    );
    mirror["spec"] = json!({"containers": [{"name": "c", "image": "busybox"}]});
    let p = create(&s, PODS, &mirror);
    assert_eq!(p["spec"].get("serviceAccountName"), None, "{p}");
    assert_eq!(token_volume(&p), None, "{p}");
}

fn cronjob(name: &str, schedule: &str, time_zone: Option<&str>) -> Value {
    let mut cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    if let Some(tz) = time_zone {
        cj["spec"]["timeZone"] = json!(tz);
    }
    cj
}

#[test]
fn cronjob_schedules_and_time_zones_are_validated() {
    let s = Server::start_apiserver(&[]);
    let path = "/apis/batch/v1/namespaces/default/cronjobs";
    create(
        &s,
        path,
        &cronjob("ok", "*/5 1-6 * jan-jun mon", Some("Europe/Paris")),
    );
    create(&s, path, &cronjob("daily", "@daily", None));
    for (name, schedule, tz, message) in [
        (
            "fields",
            "* * * *",
            None,
            "CronJob.batch \"fields\" is invalid: spec.schedule: Invalid value: \"* * * *\": expected exactly 5 fields, found 4: [* * * *]",
        ),
        (
            "range",
            "0 24 * * *",
            None,
            "CronJob.batch \"range\" is invalid: spec.schedule: Invalid value: \"0 24 * * *\": end of range (24) above maximum (23): 24",
        ),
        (
            "tz",
            "TZ=UTC 0 * * * *",
            None,
            "CronJob.batch \"tz\" is invalid: spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
        (
            "zone",
            "@hourly",
            Some("Mars/Olympus_Mons"),
            "CronJob.batch \"zone\" is invalid: spec.timeZone: Invalid value: \"Mars/Olympus_Mons\": unknown time zone Mars/Olympus_Mons",
        ),
    ] {
        let r = s.send_json("POST", path, &cronjob(name, schedule, tz));
        assert_eq!(r.status, 422, "{}", r.body);
        let status = r.json();
        assert_eq!(status["message"], message);
        assert_eq!(status["details"]["kind"], "CronJob");
        assert_eq!(status["details"]["group"], "batch");
    }
}

/// Invalid names the qualified kind (`Kind.group`), NotFound and
/// AlreadyExists the qualified resource (`resource.group`).
#[test]
fn error_messages_qualify_kinds_and_resources_with_their_group() {
    let s = Server::start_apiserver(&[]);
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Bad"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let r = s.send_json(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment,
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.starts_with("Deployment.apps \"Bad\" is invalid: metadata.name"),
        "{message}"
    );

    let r = raw_request(
        &s.addr(),
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/x",
        "application/json",
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["message"], "deployments.apps \"x\" not found");

    let r = s.send_json("POST", PODS, &pod("Bad", json!({})));
    assert_eq!(r.status, 422, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.starts_with("Pod \"Bad\" is invalid: "), "{message}");
}
