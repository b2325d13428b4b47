//! Replays the script against one server through the `kube` client and
//! records what came back, step by step.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::script::{Step, WatchSpec};
use super::{Error, Result};

/// What one server answered to one step.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body parsed as JSON (a watch: the array of events read), or the
    /// text when it is not JSON.
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    Text(String),
    Empty,
}

/// One server and the values captured from its responses so far.
pub struct Side {
    client: kube::Client,
    vars: HashMap<String, String>,
}

impl Side {
    pub async fn connect(kubeconfig: &Path) -> Result<Side> {
        let err = |e: String| Error::Client(format!("{}: {e}", kubeconfig.display()));
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| err(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| err(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| err(e.to_string()))?;
        Ok(Side {
            client,
            vars: HashMap::new(),
        })
    }

    /// Runs every step in order; a transport failure ends the run.
    pub async fn run(mut self, steps: &[Step]) -> Result<Vec<Observed>> {
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let observed = self.step(step).await?;
            if let Body::Json(body) = &observed.body {
                for (name, pointer) in &step.capture {
                    if let Some(v) = body.pointer(pointer) {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        self.vars.insert(name.clone(), v);
                    }
                }
            }
            out.push(observed);
        }
        Ok(out)
    }

    /// Replaces `{{name}}` with captured values; unknown names stay as they are
    /// (and make the request fail the same way on both sides).
    fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find("}}") {
                Some(end) => {
                    let name = &after[..end];
                    match self.vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[start..start + 4 + end]),
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    async fn step(&self, step: &Step) -> Result<Observed> {
        let failed = |e: String| Error::Request {
            step: step.id.clone(),
            message: e,
        };
        let body = match (&step.body, &step.raw_body) {
            (Some(v), _) => Some(self.expand(&v.to_string())),
            (None, Some(raw)) => Some(self.expand(raw)),
            (None, None) => None,
        };
        let mut req = http::Request::builder()
            .method(step.method.as_str())
            .uri(self.expand(&step.path))
            .header(
                http::header::ACCEPT,
                step.accept.as_deref().unwrap_or("application/json"),
            );
        if body.is_some() {
            req = req.header(
                http::header::CONTENT_TYPE,
                step.content_type.as_deref().unwrap_or("application/json"),
            );
        }
        let req = req
            .body(kube::client::Body::from(
                body.map(String::into_bytes).unwrap_or_default(),
            ))
            .map_err(|e| failed(e.to_string()))?;
        let res = self
            .client
            .send(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match step.watch {
            Some(spec) if status == 200 => read_events(res.into_body(), spec).await,
            _ => {
                let bytes = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .to_bytes();
                parse(&bytes)
            }
        };
        Ok(Observed {
            status,
            content_type,
            body,
        })
    }
}

fn parse(bytes: &Bytes) -> Body {
    if bytes.is_empty() {
        return Body::Empty;
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Body::Json(v),
        Err(_) => Body::Text(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Reads newline-delimited watch events until `spec.events` arrived or the
/// timeout passed; the result is the JSON array of the events read.
async fn read_events(mut body: kube::client::Body, spec: WatchSpec) -> Body {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(spec.timeout_seconds);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    while events.len() < spec.events {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            // Timed out, ended or failed: report what arrived.
            _ => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                events.push(v);
            }
        }
    }
    // A chunk may carry more events than asked for; how many depends on the
    // server's buffering, so only the asked-for number is compared.
    events.truncate(spec.events);
    Body::Json(Value::Array(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captured_values_replace_their_placeholders() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("uri"));
        let mut side = Side {
            client: kube::Client::try_from(config).expect("client"),
            vars: HashMap::new(),
        };
        side.vars.insert("rv".into(), "42".into());
        assert_eq!(side.expand("a={{rv}}&b={{none}}&c"), "a=42&b={{none}}&c");
        assert_eq!(side.expand("{{rv"), "{{rv");
    }
}
