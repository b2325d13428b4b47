//! PodSecurity admission with stock kubectl (1.32 and 1.34): a namespace
//! labelled `pod-security.kubernetes.io/enforce=restricted` refuses a
//! privileged pod with upstream's message and admits a compliant one;
//! `baseline` refuses host namespaces; unlabelled namespaces admit anything;
//! `warn=baseline` admits with upstream's warning.

mod common;

use std::path::PathBuf;

use common::{KUBECTL_132, Server, kubectl_134};

const PRIVILEGED: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root"},
 "spec":{"containers":[{"name":"shell","image":"busybox","securityContext":{"privileged":true}}]}}"#;

const COMPLIANT: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"tidy"},
 "spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}},
  "containers":[{"name":"app","image":"busybox","securityContext":{"allowPrivilegeEscalation":false,
   "capabilities":{"drop":["ALL"]}}}]}}"#;

const HOST_NETWORK: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"host"},
 "spec":{"hostNetwork":true,"containers":[{"name":"app","image":"busybox"}]}}"#;

#[test]
fn namespaces_enforce_their_pod_security_level() {
    let server = Server::start_apiserver(&[]);
    for (i, bin) in [PathBuf::from(KUBECTL_132), kubectl_134()]
        .into_iter()
        .enumerate()
    {
        let k = server.kubectl(&bin);
        let strict = format!("strict-{i}");
        let base = format!("base-{i}");
        let open = format!("open-{i}");
        for ns in [&strict, &base, &open] {
            k.ok(&["create", "namespace", ns]);
        }
        k.ok(&[
            "label",
            "namespace",
            &strict,
            "pod-security.kubernetes.io/enforce=restricted",
        ]);
        k.ok(&[
            "label",
            "namespace",
            &base,
            "pod-security.kubernetes.io/enforce=baseline",
        ]);

        let refused = k.run_stdin(&["create", "-n", &strict, "-f", "-"], PRIVILEGED);
        assert_ne!(refused.status, 0);
        assert!(
            refused.stderr.contains(
                r#"pods "root" is forbidden: violates PodSecurity "restricted:latest": privileged (container "shell" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "shell" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "shell" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "shell" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "shell" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
            ),
            "{}",
            refused.stderr
        );
        k.ok_stdin(&["create", "-n", &strict, "-f", "-"], COMPLIANT);

        let host = k.run_stdin(&["create", "-n", &base, "-f", "-"], HOST_NETWORK);
        assert!(
            host.stderr.contains(
                r#"pods "host" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#
            ),
            "{}",
            host.stderr
        );
        k.ok_stdin(&["create", "-n", &base, "-f", "-"], COMPLIANT);

        k.ok_stdin(&["create", "-n", &open, "-f", "-"], PRIVILEGED);
        k.ok_stdin(&["create", "-n", &open, "-f", "-"], HOST_NETWORK);

        // `warn`: the pod is created, and the client is told what it breaks.
        let warned = format!("warned-{i}");
        k.ok(&["create", "namespace", &warned]);
        k.ok(&[
            "label",
            "namespace",
            &warned,
            "pod-security.kubernetes.io/warn=baseline",
        ]);
        let r = k.run_stdin(&["create", "-n", &warned, "-f", "-"], HOST_NETWORK);
        assert_eq!(r.status, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains(
                r#"Warning: would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#
            ),
            "{}",
            r.stderr
        );
    }
}
