//! The API server's connect subresources against a real kubelet on
//! containerd, driven by stock kubectl 1.32 and 1.34: `kubectl logs`,
//! `exec` (with and without stdin), `port-forward`, and the pod and node
//! proxies. The API server forwards each to the kubelet (or the pod), which
//! reaches the container through containerd's streaming server.

mod support;

use std::process::Stdio;

use k8s_openapi::api::core::v1::{ContainerPort, Pod};
use support::kubectl::{Kubectl, Output};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// kubectl with `stdin` as its standard input.
async fn run_stdin(k: &Kubectl, args: &[&str], stdin: &str) -> TestResult<Output> {
    let mut child = command(k, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).await?;
    }
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output()).await??;
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn command(k: &Kubectl, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&k.bin);
    c.env("KUBECONFIG", &k.kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

async fn running(env: &Env, name: &str) -> TestResult<Pod> {
    env.wait_pod(name, "running", |p| main_status(p).is_some_and(|s| s.ready))
        .await
}

/// A busybox pod that logs two lines, then serves `/www` on port 8080.
fn web_pod(node: &str) -> Pod {
    let mut pod = busybox_pod(
        "web",
        node,
        "Always",
        "echo first; echo second; mkdir -p /www && echo hello-from-httpd > /www/index.html \
         && exec httpd -f -p 8080 -h /www",
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].ports = Some(vec![ContainerPort {
            container_port: 8080,
            ..Default::default()
        }]);
    }
    pod
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_exec_port_forward_and_proxies_reach_the_pod() -> TestResult {
    let env = Env::start("api-streams").await?;
    let kubectls = Kubectl::both(env.kubeconfig())?;
    env.create(web_pod(&env.node)).await?;
    running(&env, "web").await?;
    for k in &kubectls {
        let shown = k.bin.display().to_string();
        // Running is not the same as having written: poll until both lines
        // are in the log, then read it once more as the assertion.
        eventually("both log lines", || async {
            k.ok(&["logs", "web"])
                .await
                .ok()
                .filter(|l| l.contains("second"))
        })
        .await?;
        assert_eq!(k.ok(&["logs", "web"]).await?, "first\nsecond\n", "{shown}");
        assert_eq!(
            k.ok(&["logs", "web", "--tail=1"]).await?,
            "second\n",
            "{shown}"
        );

        let r = k
            .run(&[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ])
            .await?;
        assert_eq!(r.stdout, "out\n", "{shown}: {}", r.stderr);
        assert!(r.stderr.contains("err"), "{shown}: {}", r.stderr);
        assert_eq!(
            r.status, 3,
            "{shown}: the command's exit code: {}",
            r.stderr
        );

        let r = run_stdin(k, &["exec", "-i", "web", "--", "cat"], "piped through\n").await?;
        assert_eq!(r.stdout, "piped through\n", "{shown}: {}", r.stderr);

        let healthz = format!("/api/v1/nodes/{}/proxy/healthz", env.node);
        assert_eq!(k.ok(&["get", "--raw", &healthz]).await?, "ok", "{shown}");
        let page = "/api/v1/namespaces/default/pods/web:8080/proxy/";
        assert_eq!(
            k.ok(&["get", "--raw", page]).await?,
            "hello-from-httpd\n",
            "{shown}"
        );
        assert_eq!(port_forward_get(k).await?, "hello-from-httpd\n", "{shown}");
    }
    Ok(())
}

/// `kubectl port-forward pod/web :8080`, then one GET through the local port.
async fn port_forward_get(k: &Kubectl) -> TestResult<String> {
    let mut child = command(k, &["port-forward", "pod/web", ":8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await? {
            // "Forwarding from 127.0.0.1:41234 -> 8080"
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some((port, _)) = rest.split_once(' ')
            {
                return Ok::<_, std::io::Error>(port.parse::<i32>().ok());
            }
        }
        Ok(None)
    })
    .await??
    .ok_or("port-forward printed no local port")?;
    let body = http_get(port, "/").await;
    child.kill().await?;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_requests_are_checked_as_upstream_checks_them() -> TestResult {
    let env = Env::start("api-log-errors").await?;
    env.create(web_pod(&env.node)).await?;
    running(&env, "web").await?;
    let pods = env.pods();
    let logs = |params: kube::api::LogParams| {
        let pods = pods.clone();
        async move { pods.logs("web", &params).await }
    };
    let status = |r: Result<String, kube::Error>| match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => (0, format!("{other:?}")),
    };
    let (code, message) = status(
        logs(kube::api::LogParams {
            container: Some("nope".into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (code, message.as_str()),
        (400, "container nope is not valid for pod web")
    );
    let (code, message) = status(
        logs(kube::api::LogParams {
            tail_lines: Some(-1),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("tailLines"), "{message}");
    let followed = logs(kube::api::LogParams {
        limit_bytes: Some(3),
        ..Default::default()
    })
    .await?;
    assert_eq!(followed, "fir");
    let missing = status(pods.logs("ghost", &Default::default()).await);
    assert_eq!(missing.0, 404, "{}", missing.1);
    Ok(())
}
