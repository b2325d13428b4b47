//! Authentication and authorization end to end, against a real `ironkube
//! server` over TLS, with stock kubectl 1.32 and 1.34:
//! - x509 client certificates (the admin kubeconfig), static bearer tokens,
//!   service-account tokens, and anonymous requests;
//! - RBAC with upstream's default roles (`view` filled by the aggregation
//!   controller), its 403 messages, `kubectl auth can-i` (and `--list`),
//!   `kubectl auth whoami`, and impersonation gated by `impersonate`;
//! - bad credentials of every kind get 401 or 403 and no detail.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use common::{As, KUBECTL_132, Kubectl, Server, kubectl_134, poll, raw_request_as};

const JANE_TOKEN: &str = "jane-token-0123456789";
const ROOT_TOKEN: &str = "root-token-0123456789";

/// A server whose static tokens are jane (no groups) and root (system:masters).
fn server_with_tokens(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("tempdir");
    let tokens = files.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{JANE_TOKEN},jane,uid-jane\n{ROOT_TOKEN},root,uid-root,\"system:masters\"\n"),
    )
    .expect("tokens");
    let mut args = vec!["--token-auth-file", tokens.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    (Server::start_with(&args), files)
}

fn kubectls(kubeconfig: &Path) -> Vec<Kubectl> {
    [PathBuf::from(KUBECTL_132), kubectl_134()]
        .into_iter()
        .map(|bin| Kubectl {
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
        })
        .collect()
}

fn get_as(server: &Server, who: &As, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("Accept", "application/json")];
    all.extend_from_slice(headers);
    let r = raw_request_as(&server.addr(), who, "GET", path, &all, b"");
    let body = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

/// Waits until the aggregation controller has filled `role` with rules
/// mentioning `resource`.
fn wait_for_aggregation(admin: &Kubectl, role: &str, resource: &str) {
    poll(
        &format!("{role} to aggregate its rules"),
        Duration::from_secs(30),
        || {
            let rules = admin.run(&["get", "clusterrole", role, "-o", "jsonpath={.rules}"]);
            (rules.status == 0 && rules.stdout.contains(resource)).then_some(())
        },
    );
}

/// Binds jane to the default `view` role in `dev` and waits until the
/// aggregation controller has given `view` its rules.
fn bind_jane_to_view(admin: &Kubectl) {
    admin.ok(&["create", "namespace", "dev"]);
    admin.ok(&["create", "namespace", "prod"]);
    admin.ok(&[
        "create",
        "rolebinding",
        "jane-views",
        "--clusterrole=view",
        "--user=jane",
        "-n",
        "dev",
    ]);
    wait_for_aggregation(admin, "view", "pods");
}

#[test]
fn rbac_refusals_can_i_whoami_and_impersonation_with_kubectl() {
    let (server, files) = server_with_tokens(&[]);
    let admin = server.kubectl(&kubectl_134());
    bind_jane_to_view(&admin);
    admin.ok(&["create", "configmap", "settings", "-n", "dev"]);
    let jane_config = server.token_kubeconfig(files.path(), JANE_TOKEN);
    for jane in kubectls(&jane_config) {
        let listed = jane.ok(&["get", "configmaps", "-n", "dev", "-o", "name"]);
        assert!(listed.contains("configmap/settings"), "{listed}");
        let refused = jane.run(&["create", "configmap", "x", "-n", "dev"]);
        assert_ne!(refused.status, 0);
        assert!(
            refused.stderr.contains(
                r#"configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "dev""#
            ),
            "{}",
            refused.stderr
        );
        let elsewhere = jane.run(&["get", "pods", "-n", "prod"]);
        assert!(
            elsewhere.stderr.contains(
                r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "prod""#
            ),
            "{}",
            elsewhere.stderr
        );
        let nodes = jane.run(&["get", "nodes"]);
        assert!(
            nodes.stderr.contains(
                r#"nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#
            ),
            "{}",
            nodes.stderr
        );
        // The can-i matrix: `view` reads most things but not secrets, and writes nothing.
        for (args, answer) in [
            (vec!["get", "pods", "-n", "dev"], "yes"),
            (vec!["list", "deployments.apps", "-n", "dev"], "yes"),
            (vec!["watch", "configmaps", "-n", "dev"], "yes"),
            (vec!["create", "pods", "-n", "dev"], "no"),
            (vec!["get", "secrets", "-n", "dev"], "no"),
            (vec!["get", "pods", "-n", "prod"], "no"),
            (vec!["delete", "namespaces"], "no"),
        ] {
            let mut full = vec!["auth", "can-i"];
            full.extend(args.iter().copied());
            let r = jane.run(&full);
            assert_eq!(r.stdout.trim(), answer, "can-i {args:?}: {}", r.stderr);
        }
        let list = jane.ok(&["auth", "can-i", "--list", "-n", "dev"]);
        let pods_row = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some("pods"))
            .unwrap_or_else(|| panic!("no pods row in\n{list}"));
        assert!(pods_row.contains("[get list watch]"), "{pods_row}");
        assert!(
            !list.lines().any(|l| l.starts_with("secrets ")),
            "view does not read secrets:\n{list}"
        );
        let whoami = jane.ok(&["auth", "whoami", "-o", "json"]);
        let whoami: Value = serde_json::from_str(&whoami).expect("json");
        assert_eq!(whoami["status"]["userInfo"]["username"], "jane");
        assert_eq!(whoami["status"]["userInfo"]["uid"], "uid-jane");
        assert_eq!(
            whoami["status"]["userInfo"]["groups"],
            json!(["system:authenticated"])
        );
        // jane may not impersonate.
        let r = jane.run(&["get", "pods", "-n", "dev", "--as=root"]);
        assert!(
            r.stderr.contains(
                r#"users "root" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope"#
            ),
            "{}",
            r.stderr
        );
    }
    for admin in kubectls(&server.kubeconfig) {
        let whoami: Value =
            serde_json::from_str(&admin.ok(&["auth", "whoami", "-o", "json"])).expect("json");
        assert_eq!(whoami["status"]["userInfo"]["username"], "kubernetes-admin");
        assert_eq!(
            whoami["status"]["userInfo"]["groups"],
            json!(["system:masters", "system:authenticated"])
        );
        // The admin acts as jane, and as jane in an extra group.
        let r = admin.run(&["create", "configmap", "y", "-n", "dev", "--as=jane"]);
        assert!(
            r.stderr
                .contains(r#"User "jane" cannot create resource "configmaps""#),
            "{}",
            r.stderr
        );
        let as_jane: Value = serde_json::from_str(&admin.ok(&[
            "auth",
            "whoami",
            "-o",
            "json",
            "--as=jane",
            "--as-group=testers",
        ]))
        .expect("json");
        assert_eq!(
            as_jane["status"]["userInfo"],
            json!({"username": "jane", "groups": ["testers", "system:authenticated"]})
        );
        assert_eq!(
            admin
                .ok(&["auth", "can-i", "get", "pods", "-n", "dev", "--as=jane"])
                .trim(),
            "yes"
        );
        assert_eq!(
            admin
                .run(&["auth", "can-i", "get", "pods", "-n", "prod", "--as=jane"])
                .stdout
                .trim(),
            "no"
        );
    }
}

#[test]
fn a_service_account_token_authenticates_until_its_pod_is_gone() {
    let (server, files) = server_with_tokens(&["--fake-nodes", "1"]);
    let admin = server.kubectl(&kubectl_134());
    admin.ok(&["create", "serviceaccount", "robot"]);
    admin.ok(&[
        "create",
        "rolebinding",
        "robot-views",
        "--clusterrole=view",
        "--serviceaccount=default:robot",
    ]);
    admin.ok(&[
        "run",
        "holder",
        "--image=busybox",
        "--restart=Never",
        r#"--overrides={"apiVersion":"v1","spec":{"serviceAccountName":"robot"}}"#,
    ]);
    let token = admin.ok(&[
        "create",
        "token",
        "robot",
        "--bound-object-kind=Pod",
        "--bound-object-name=holder",
    ]);
    let token = token.trim();
    let config = server.token_kubeconfig(files.path(), token);
    for robot in kubectls(&config) {
        let whoami: Value =
            serde_json::from_str(&robot.ok(&["auth", "whoami", "-o", "json"])).expect("json");
        assert_eq!(
            whoami["status"]["userInfo"]["username"],
            "system:serviceaccount:default:robot"
        );
        let groups = whoami["status"]["userInfo"]["groups"].to_string();
        assert!(
            groups.contains("system:serviceaccounts:default"),
            "{groups}"
        );
        robot.ok(&["get", "pods"]);
    }
    admin.ok(&[
        "delete",
        "pod",
        "holder",
        "--wait=false",
        "--grace-period=0",
        "--force",
    ]);
    let robot = &kubectls(&config)[1];
    poll(
        "the token to stop working once its pod is gone",
        Duration::from_secs(30),
        || {
            let r = robot.run(&["get", "pods"]);
            r.stderr.contains("Unauthorized").then_some(())
        },
    );
}

#[test]
fn bad_credentials_get_401_or_403_and_no_detail() {
    let (server, _files) = server_with_tokens(&[]);
    let admin = server.kubectl(&kubectl_134());
    admin.ok(&["create", "serviceaccount", "robot"]);
    let unauthorized = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    });
    // An unknown bearer token.
    let (code, body) = get_as(
        &server,
        &As::Nobody,
        "/api/v1/namespaces",
        &[("Authorization", "Bearer not-a-known-token")],
    );
    assert_eq!((code, &body), (401, &unauthorized));
    // Service-account tokens that are forged, expired, not yet valid or for
    // another audience.
    let key = {
        let pem = std::fs::read_to_string(server.data_dir().join("pki/sa.key")).expect("sa.key");
        let pair = rcgen::KeyPair::from_pem(&pem).expect("pem key");
        apiserver::auth::jwt::SigningKey::from_pkcs8(pair.serialized_der()).expect("key")
    };
    let uid = admin.ok(&["get", "sa", "robot", "-o", "jsonpath={.metadata.uid}"]);
    let now = chrono_now();
    let claims = |iat: i64, nbf: i64, exp: i64, aud: &str| {
        json!({
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": "system:serviceaccount:default:robot",
            "aud": [aud], "iat": iat, "nbf": nbf, "exp": exp,
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "robot", "uid": uid}},
        })
    };
    let good_audience = "https://kubernetes.default.svc.cluster.local";
    let valid = key
        .sign(&claims(now, now, now + 600, good_audience))
        .expect("sign");
    let (code, body) = get_as(
        &server,
        &As::Nobody,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &[("Authorization", &format!("Bearer {valid}"))],
    );
    assert_ne!(code, 401, "a valid token authenticates: {body}");
    let other_key = apiserver::auth::jwt::SigningKey::generate().expect("key");
    for (what, token) in [
        (
            "forged",
            other_key
                .sign(&claims(now, now, now + 600, good_audience))
                .expect("sign"),
        ),
        (
            "expired",
            key.sign(&claims(now - 7200, now - 7200, now - 3600, good_audience))
                .expect("sign"),
        ),
        (
            "not yet valid",
            key.sign(&claims(now + 3600, now + 3600, now + 7200, good_audience))
                .expect("sign"),
        ),
        (
            "for another audience",
            key.sign(&claims(now, now, now + 600, "https://elsewhere.example"))
                .expect("sign"),
        ),
    ] {
        let (code, body) = get_as(
            &server,
            &As::Nobody,
            "/api/v1/namespaces",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!((code, &body), (401, &unauthorized), "{what} token");
    }
    // A client certificate of another CA, even naming system:masters.
    let foreign = apiserver::auth::ca::ClusterCa::generate().expect("CA");
    let cert = foreign
        .issue(apiserver::auth::tls::Leaf::Client {
            user: "kubernetes-admin",
            group: Some("system:masters"),
        })
        .expect("issue");
    let (code, body) = get_as(
        &server,
        &As::Cert {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        },
        "/api/v1/namespaces",
        &[],
    );
    assert_eq!((code, &body), (401, &unauthorized), "foreign certificate");
    // Header injection: X-Remote-User is not trusted without a front proxy.
    let (code, body) = get_as(
        &server,
        &As::Nobody,
        "/api/v1/namespaces",
        &[
            ("X-Remote-User", "kubernetes-admin"),
            ("X-Remote-Group", "system:masters"),
        ],
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope"#
    );
    // Anonymous requests reach only what system:public-info-viewer grants.
    let (code, _) = get_as(&server, &As::Nobody, "/readyz", &[]);
    assert_eq!(code, 200);
    let (code, body) = get_as(&server, &As::Nobody, "/api", &[]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/api""#
    );
    // Impersonation without the right.
    let jane = format!("Bearer {JANE_TOKEN}");
    let (code, body) = get_as(
        &server,
        &As::Nobody,
        "/api/v1/namespaces",
        &[("Authorization", &jane), ("Impersonate-User", "root")],
    );
    assert_eq!(code, 403, "{body}");
    // A token of a deleted service account.
    admin.ok(&["delete", "serviceaccount", "robot"]);
    poll(
        "the deleted account's token to be refused",
        Duration::from_secs(30),
        || {
            let (code, _) = get_as(
                &server,
                &As::Nobody,
                "/api/v1/namespaces",
                &[("Authorization", &format!("Bearer {valid}"))],
            );
            (code == 401).then_some(())
        },
    );
}

#[test]
fn without_anonymous_auth_requests_without_credentials_get_401() {
    let (server, _files) = server_with_tokens(&["--anonymous-auth=false"]);
    let (code, body) = get_as(&server, &As::Nobody, "/api", &[]);
    assert_eq!(code, 401, "{body}");
    let (code, _) = get_as(&server, &As::Admin, "/api", &[]);
    assert_eq!(code, 200);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[test]
fn roles_and_bindings_grant_only_what_the_writer_holds() {
    let (server, files) = server_with_tokens(&[]);
    let admin = server.kubectl(&kubectl_134());
    admin.ok(&["create", "namespace", "dev"]);
    admin.ok(&[
        "create",
        "rolebinding",
        "jane-admin",
        "--clusterrole=admin",
        "--user=jane",
        "-n",
        "dev",
    ]);
    wait_for_aggregation(&admin, "admin", "rolebindings");
    let config = server.token_kubeconfig(files.path(), JANE_TOKEN);
    let jane = &kubectls(&config)[1];
    jane.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
        "-n",
        "dev",
    ]);
    let refused = jane.run(&[
        "create",
        "role",
        "node-reader",
        "--verb=list",
        "--resource=nodes",
        "-n",
        "dev",
    ]);
    assert!(
        refused.stderr.contains(
            r#"roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#
        ) && refused
            .stderr
            .contains(r#"{APIGroups:[""], Resources:["nodes"], Verbs:["list"]}"#),
        "{}",
        refused.stderr
    );
    // A patch that would add a right jane lacks is refused, and nothing is written.
    let patched = jane.run(&[
        "patch",
        "role",
        "pod-reader",
        "-n",
        "dev",
        "--type=json",
        r#"-p=[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["nodes"],"verbs":["get"]}}]"#,
    ]);
    assert!(
        patched
            .stderr
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        patched.stderr
    );
    let rules = admin.ok(&[
        "get",
        "role",
        "pod-reader",
        "-n",
        "dev",
        "-o",
        "jsonpath={.rules}",
    ]);
    assert!(!rules.contains("nodes"), "{rules}");
    // Binding: a role whose rules jane holds, yes; cluster-admin, no.
    jane.ok(&[
        "create",
        "rolebinding",
        "bob-views",
        "--clusterrole=view",
        "--user=bob",
        "-n",
        "dev",
    ]);
    let bind_jane_to_root = [
        "create",
        "rolebinding",
        "jane-root",
        "--clusterrole=cluster-admin",
        "--user=jane",
        "-n",
        "dev",
    ];
    let root = jane.run(&bind_jane_to_root);
    assert!(
        root.stderr.contains(
            r#"rolebindings.rbac.authorization.k8s.io "jane-root" is forbidden: user "jane""#
        ) && root
            .stderr
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        root.stderr
    );
    // With `bind` on cluster-admin, the same binding is allowed.
    admin.ok(&[
        "create",
        "clusterrole",
        "bind-cluster-admin",
        "--verb=bind",
        "--resource=clusterroles",
        "--resource-name=cluster-admin",
    ]);
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "jane-binds",
        "--clusterrole=bind-cluster-admin",
        "--user=jane",
    ]);
    poll("the bind right to apply", Duration::from_secs(10), || {
        (jane.run(&bind_jane_to_root).status == 0).then_some(())
    });
}

/// Browsers cannot set headers on a WebSocket: the bearer token travels as the
/// `base64url.bearer.authorization.k8s.io.<token>` subprotocol, as upstream reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watches_authenticate_with_the_bearer_subprotocol() {
    use base64::Engine;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (server, _files) = server_with_tokens(&["--anonymous-auth=false"]);
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/namespaces/default/configmaps?watch=true",
        server.port
    );
    let connect = |token: &str| {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        let mut req = url.clone().into_client_request().expect("request");
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            format!("base64.binary.k8s.io, base64url.bearer.authorization.k8s.io.{encoded}")
                .parse()
                .expect("header"),
        );
        let addr = server.addr();
        async move {
            let tls = common::tls_connect_async_as(&addr, &As::Nobody)
                .await
                .expect("TLS");
            tokio_tungstenite::client_async(req, tls).await
        }
    };
    let refused = connect("not-a-known-token").await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        other => panic!("an unknown token must get 401, got {other:?}"),
    }
    // root (system:masters) watches; the ConfigMap it creates arrives.
    let (mut ws, _) = connect(ROOT_TOKEN).await.expect("root's watch");
    server.send_json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "over-websocket"}}),
    );
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(msg)) = ws.next().await {
            // base64.binary.k8s.io: each frame is a base64 text of the event.
            let event = msg
                .to_text()
                .ok()
                .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                .unwrap_or_default();
            if String::from_utf8_lossy(&event).contains("over-websocket") {
                return true;
            }
        }
        false
    })
    .await
    .expect("an event in time");
    assert!(seen);
}
