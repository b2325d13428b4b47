//! `/exec`, `/attach` and `/portForward`: validate the request, ask the
//! runtime (CRI `Exec`, `Attach`, `PortForward`) for a one-time streaming
//! URL, then relay the client's upgrade to it ([`super::upgrade`]).

use axum::extract::{Path, Query, Request, State};
use axum::response::Response;

use super::{Error, Result, lookup, query_bool, upgrade};
use crate::cri::{self, Runtime, v1};

/// The streams a client asks for (upstream `remotecommand` options).
#[derive(Debug, Default, PartialEq)]
struct StreamOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl StreamOptions {
    fn parse(query: &[(String, String)]) -> Self {
        let mut opts = StreamOptions::default();
        for (key, value) in query {
            match key.as_str() {
                "command" => opts.command.push(value.clone()),
                "input" | "stdin" => opts.stdin = query_bool(value),
                "output" | "stdout" => opts.stdout = query_bool(value),
                "error" | "stderr" => opts.stderr = query_bool(value),
                "tty" => opts.tty = query_bool(value),
                _ => {}
            }
        }
        opts
    }

    /// Upstream's rule: at least one stream, and no separate stderr with a
    /// TTY (the terminal merges it into stdout).
    fn validate(&mut self) -> Result<()> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Error::BadRequest(
                "you must specify at least 1 of stdin, stdout, stderr".into(),
            ));
        }
        if self.tty && self.stderr {
            self.stderr = false;
        }
        Ok(())
    }
}

/// The path of a container stream, with or without the pod UID segment.
fn container_path(segments: Vec<String>) -> Result<(String, String, String)> {
    match <[String; 3]>::try_from(segments) {
        Ok([ns, pod, c]) => Ok((ns, pod, c)),
        Err(v) => match <[String; 4]>::try_from(v) {
            Ok([ns, pod, _uid, c]) => Ok((ns, pod, c)),
            Err(_) => Err(Error::NotFound("unexpected path".into())),
        },
    }
}

pub(super) async fn exec(
    State(runtime): State<Runtime>,
    Path(segments): Path<Vec<String>>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Result<Response> {
    let (namespace, pod, container) = container_path(segments)?;
    let mut opts = StreamOptions::parse(&query);
    opts.validate()?;
    if opts.command.is_empty() {
        return Err(Error::BadRequest("you must specify a command".into()));
    }
    let target = lookup::running(&runtime, &namespace, &pod, &container).await?;
    let url = runtime
        .runtime
        .clone()
        .exec(v1::ExecRequest {
            container_id: target.id,
            cmd: opts.command,
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
        .map_err(cri::call("Exec"))?
        .into_inner()
        .url;
    upgrade::proxy(req, &url).await
}

pub(super) async fn attach(
    State(runtime): State<Runtime>,
    Path(segments): Path<Vec<String>>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Result<Response> {
    let (namespace, pod, container) = container_path(segments)?;
    let mut opts = StreamOptions::parse(&query);
    opts.validate()?;
    let target = lookup::running(&runtime, &namespace, &pod, &container).await?;
    let url = runtime
        .runtime
        .clone()
        .attach(v1::AttachRequest {
            container_id: target.id,
            stdin: opts.stdin,
            tty: opts.tty,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await
        .map_err(cri::call("Attach"))?
        .into_inner()
        .url;
    upgrade::proxy(req, &url).await
}

pub(super) async fn port_forward(
    State(runtime): State<Runtime>,
    Path(segments): Path<Vec<String>>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Result<Response> {
    let (namespace, pod) = match <[String; 2]>::try_from(segments) {
        Ok([ns, pod]) => (ns, pod),
        Err(v) => match <[String; 3]>::try_from(v) {
            Ok([ns, pod, _uid]) => (ns, pod),
            Err(_) => return Err(Error::NotFound("unexpected path".into())),
        },
    };
    // WebSocket clients name their ports in the query; SPDY clients name
    // them per stream, so none is fine.
    let mut ports = Vec::new();
    for (key, value) in &query {
        if key == "ports" {
            for p in value.split(',') {
                let port = p
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::BadRequest(format!("invalid port \"{p}\"")))?;
                ports.push(i32::from(port));
            }
        }
    }
    let sandbox = lookup::sandbox(&runtime, &namespace, &pod).await?;
    if sandbox.state != v1::PodSandboxState::SandboxReady as i32 {
        return Err(Error::BadRequest(format!("pod \"{pod}\" is not running")));
    }
    let url = runtime
        .runtime
        .clone()
        .port_forward(v1::PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: ports,
        })
        .await
        .map_err(cri::call("PortForward"))?
        .into_inner()
        .url;
    upgrade::proxy(req, &url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_commands_and_streams() {
        let query: Vec<(String, String)> = [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("stdout", "1"),
            ("stderr", "true"),
            ("tty", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut opts = StreamOptions::parse(&query);
        assert!(opts.validate().is_ok());
        assert_eq!(opts.command, ["sh", "-c", "echo hi"]);
        assert!(opts.stdout && opts.stderr && !opts.stdin && !opts.tty);
        assert!(StreamOptions::default().validate().is_err());
    }
}
