//! Service-account tokens end to end: `kubectl create token` (1.32 and 1.34)
//! mints a JWT through `serviceaccounts/token`, a TokenReview accepts it, and
//! rejects forged, expired, wrong-audience and revoked ones (service account
//! or bound pod deleted) with upstream's words. The signing key lives in the
//! data dir and survives a restart; the OIDC discovery documents publish it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use common::{Server, kubectl_134, poll};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn kubectl_132() -> PathBuf {
    let dir = std::env::var("IRONKUBE_TOOLS_DIR").unwrap_or_else(|_| "/opt/ironkube-tools".into());
    PathBuf::from(dir).join("bin/kubectl-1.32")
}

/// Waits for the service account controller to create `default` in `default`.
fn wait_for_default_sa(server: &Server) {
    let k = server.kubectl(&kubectl_134());
    poll(
        "the default service account",
        Duration::from_secs(30),
        || (k.run(&["get", "sa", "default"]).status == 0).then_some(()),
    );
}

fn review(server: &Server, token: &str, audiences: &[&str]) -> Value {
    let mut body = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token},
    });
    if !audiences.is_empty() {
        body["spec"]["audiences"] = json!(audiences);
    }
    let resp = server.send_json("POST", "/apis/authentication.k8s.io/v1/tokenreviews", &body);
    assert_eq!(resp.status, 201, "{}", resp.body);
    resp.json()["status"].clone()
}

fn get_json(server: &Server, path: &str) -> Value {
    let resp = common::raw_request_with(&server.addr(), "GET", path, &[("Accept", "*/*")], b"");
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("json")
}

fn header(token: &str) -> Value {
    let h = token.split('.').next().expect("header");
    serde_json::from_slice(&B64.decode(h).expect("base64")).expect("json")
}

/// The server's own signing key, read from its data dir.
fn server_key(data_dir: &Path) -> apiserver::auth::jwt::SigningKey {
    let pem = std::fs::read_to_string(data_dir.join("pki/sa.key")).expect("sa.key");
    let pair = rcgen::KeyPair::from_pem(&pem).expect("pem key");
    apiserver::auth::jwt::SigningKey::from_pkcs8(pair.serialized_der()).expect("key")
}

#[test]
fn kubectl_create_token_is_accepted_by_a_token_review() {
    let server = Server::start();
    wait_for_default_sa(&server);
    for kubectl in [kubectl_132(), kubectl_134()] {
        let k = server.kubectl(&kubectl);
        let token = k.ok(&["create", "token", "default"]).trim().to_string();
        assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
        let h = header(&token);
        assert_eq!(h["alg"], "ES256");
        let c = claims(&token);
        assert_eq!(c["iss"], ISSUER);
        assert_eq!(c["sub"], "system:serviceaccount:default:default");
        assert_eq!(c["aud"], json!([ISSUER]));
        let (iat, exp) = (
            c["iat"].as_i64().expect("iat"),
            c["exp"].as_i64().expect("exp"),
        );
        assert_eq!(exp - iat, 3600, "default expiration");
        assert_eq!(c["nbf"], c["iat"]);
        assert!(c["jti"].is_string());
        assert_eq!(c["kubernetes.io"]["namespace"], "default");
        assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "default");
        let sa_uid = k.ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]);
        assert_eq!(c["kubernetes.io"]["serviceaccount"]["uid"], sa_uid.as_str());

        let status = review(&server, &token, &[]);
        assert_eq!(status["authenticated"], true, "{status}");
        assert_eq!(
            status["user"]["username"],
            "system:serviceaccount:default:default"
        );
        assert_eq!(status["user"]["uid"], sa_uid.as_str());
        assert_eq!(
            status["user"]["groups"],
            json!([
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ])
        );
        assert_eq!(
            status["user"]["extra"]["authentication.kubernetes.io/credential-id"],
            json!([format!("JTI={}", c["jti"].as_str().unwrap_or(""))])
        );
        assert_eq!(status["audiences"], json!([ISSUER]));
        assert!(status.get("error").is_none());
    }
    // The discovery documents publish the key that signed it.
    let token = server
        .kubectl(&kubectl_134())
        .ok(&["create", "token", "default"]);
    let config = get_json(&server, "/.well-known/openid-configuration");
    assert_eq!(config["issuer"], ISSUER);
    assert_eq!(config["jwks_uri"], format!("{ISSUER}/openid/v1/jwks"));
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = get_json(&server, "/openid/v1/jwks");
    assert_eq!(jwks["keys"][0]["kid"], header(token.trim())["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
}

#[test]
fn forged_expired_and_wrong_audience_tokens_are_rejected() {
    let server = Server::start();
    wait_for_default_sa(&server);
    let k = server.kubectl(&kubectl_134());
    let token = k.ok(&["create", "token", "default"]).trim().to_string();
    let good = claims(&token);

    // Same claims, signed with another key.
    let other = apiserver::auth::jwt::SigningKey::generate().expect("key");
    let forged = other.sign(&good).expect("sign");
    let status = review(&server, &forged, &[]);
    assert_eq!(status["authenticated"], Value::Null);
    assert_eq!(
        status["error"],
        "go-jose/go-jose: error in cryptographic primitive"
    );
    assert_eq!(status["user"], json!({}));

    // Signed with the server's key, but expired an hour ago.
    let key = server_key(server.data_dir());
    let mut expired = good.clone();
    let now = good["iat"].as_i64().expect("iat");
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let status = review(&server, &key.sign(&expired).expect("sign"), &[]);
    assert_eq!(
        status["error"], "service account token has expired",
        "{status}"
    );
    // The same key with fresh claims is accepted: only the expiry was wrong.
    assert_eq!(
        review(&server, &key.sign(&good).expect("sign"), &[])["authenticated"],
        true
    );

    // A token for another audience.
    let foo = k
        .ok(&["create", "token", "default", "--audience", "foo"])
        .trim()
        .to_string();
    let status = review(&server, &foo, &[]);
    assert_eq!(
        status["error"],
        format!(r#"token audiences ["foo"] is invalid for the target audiences ["{ISSUER}"]"#)
    );
    let status = review(&server, &foo, &["foo", "bar"]);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["audiences"], json!(["foo"]));
    let status = review(&server, &token, &["bar"]);
    assert_eq!(
        status["error"],
        format!(r#"token audiences ["{ISSUER}"] is invalid for the target audiences ["bar"]"#)
    );

    // Not a token of this issuer at all: unauthenticated, no error.
    let status = review(&server, "not-a-jwt", &[]);
    assert_eq!(status["authenticated"], Value::Null);
    assert!(status.get("error").is_none(), "{status}");
}

#[test]
fn deleting_the_service_account_or_bound_pod_revokes_tokens() {
    let server = Server::start();
    wait_for_default_sa(&server);
    let k = server.kubectl(&kubectl_134());
    k.ok(&["create", "sa", "robot"]);
    let token = k.ok(&["create", "token", "robot"]).trim().to_string();
    assert_eq!(review(&server, &token, &[])["authenticated"], true);
    k.ok(&["delete", "sa", "robot"]);
    let status = review(&server, &token, &[]);
    assert_eq!(
        status["error"], r#"serviceaccounts "robot" not found"#,
        "{status}"
    );
    // A new account of the same name has another uid: the old token stays dead.
    k.ok(&["create", "sa", "robot"]);
    let status = review(&server, &token, &[]);
    let err = status["error"].as_str().unwrap_or("");
    assert!(err.starts_with("service account UID ("), "{status}");

    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"serviceAccountName": "default", "containers": [{"name": "c", "image": "busybox"}]}}"#,
    );
    let pod_uid = k.ok(&["get", "pod", "p", "-o", "jsonpath={.metadata.uid}"]);
    let bound = k
        .ok(&[
            "create",
            "token",
            "default",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p",
        ])
        .trim()
        .to_string();
    let c = claims(&bound);
    assert_eq!(
        c["kubernetes.io"]["pod"],
        json!({"name": "p", "uid": pod_uid})
    );
    let status = review(&server, &bound, &[]);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p"])
    );
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod_uid])
    );
    k.ok(&["delete", "pod", "p", "--wait=true"]);
    let status = review(&server, &bound, &[]);
    assert_eq!(status["error"], r#"pods "p" not found"#, "{status}");
}

#[test]
fn token_requests_are_validated_as_upstream() {
    let server = Server::start();
    wait_for_default_sa(&server);
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let req = |spec: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    let resp = server.send_json("POST", path, &req(json!({"expirationSeconds": 300})));
    assert_eq!(resp.status, 422, "{}", resp.body);
    let body = resp.json();
    assert_eq!(
        body["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
    );
    assert_eq!(body["details"]["kind"], "TokenRequest");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.expirationSeconds"
    );

    let resp = server.send_json("POST", path, &req(json!({"expirationSeconds": 600})));
    assert_eq!(resp.status, 201, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["kind"], "TokenRequest");
    assert_eq!(body["spec"]["expirationSeconds"], 600);
    assert_eq!(body["spec"]["audiences"], json!([ISSUER]));
    let token = body["status"]["token"].as_str().expect("token");
    let c = claims(token);
    assert_eq!(
        c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0),
        600
    );
    let stamp = body["status"]["expirationTimestamp"]
        .as_str()
        .expect("timestamp");
    assert!(stamp.ends_with('Z'), "{stamp}");

    // Unknown service account, unsupported and mismatched bound objects.
    let resp = server.send_json(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        &req(json!({})),
    );
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.json()["message"],
        r#"serviceaccounts "nobody" not found"#
    );
    let bound = |kind: &str, name: &str, uid: &str| {
        req(json!({"boundObjectRef": {"apiVersion": "v1", "kind": kind, "name": name, "uid": uid}}))
    };
    let resp = server.send_json("POST", path, &bound("ConfigMap", "x", ""));
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["message"],
        "cannot bind token to object of type /v1, Kind=ConfigMap"
    );
    let resp = server.send_json("POST", path, &bound("Secret", "missing", ""));
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["message"], r#"secrets "missing" not found"#);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    assert_eq!(
        server
            .send_json("POST", "/api/v1/namespaces/default/secrets", &secret)
            .status,
        201
    );
    let resp = server.send_json("POST", path, &bound("Secret", "s", "wrong"));
    assert_eq!(resp.status, 409);
    assert_eq!(
        resp.json()["message"],
        r#"Operation cannot be fulfilled on Secret "s": the UID in the bound object reference (wrong) does not match the UID in record. The object might have been deleted and then recreated"#
    );
    let resp = server.send_json("POST", path, &bound("Secret", "s", ""));
    assert_eq!(resp.status, 201, "{}", resp.body);
    let token = resp.json()["status"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(review(&server, &token, &[])["authenticated"], true);
    let kubectl = server.kubectl(&kubectl_134());
    kubectl.ok(&["delete", "secret", "s"]);
    assert_eq!(
        review(&server, &token, &[])["error"],
        r#"secrets "s" not found"#
    );
}

#[test]
fn the_signing_key_survives_a_restart() {
    let mut server = Server::start();
    wait_for_default_sa(&server);
    let token = server
        .kubectl(&kubectl_134())
        .ok(&["create", "token", "default"])
        .trim()
        .to_string();
    let jwks_before = get_json(&server, "/openid/v1/jwks");
    server.kill9();
    server.spawn();
    let status = review(&server, &token, &[]);
    assert_eq!(status["authenticated"], true, "{status}");
    let jwks_after = get_json(&server, "/openid/v1/jwks");
    assert_eq!(jwks_before["keys"][0]["kid"], jwks_after["keys"][0]["kid"]);
}
