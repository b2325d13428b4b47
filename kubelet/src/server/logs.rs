//! `/containerLogs/{namespace}/{pod}/{container}`: a container's output from
//! its CRI log file, with upstream's query options.
//!
//! The file is read from where `tailLines` puts the start, entries before
//! `sinceTime`/`sinceSeconds` are skipped, each line may get its timestamp,
//! and output stops at `limitBytes`. With `follow` the reader keeps polling
//! the file as it grows and ends once the container has exited and the
//! file is drained; the body streams as lines arrive.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{Error, Result, lookup, query_bool};
use crate::cri::{Runtime, v1};

/// How often a followed log file is polled for growth once drained.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Every how many idle polls the container's state is checked.
const STATE_EVERY: u32 = 5;

/// The query options of a log request (upstream `PodLogOptions`).
#[derive(Debug, Default, Clone, PartialEq)]
struct Options {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<u64>,
    limit_bytes: Option<u64>,
    since: Option<Timestamp>,
}

impl Options {
    fn parse(query: &[(String, String)], now: Timestamp) -> Result<Self> {
        let mut opts = Options::default();
        let mut since_seconds = None;
        for (key, value) in query {
            let number = |what: &str| {
                value
                    .parse::<i64>()
                    .map_err(|_| Error::BadRequest(format!("{what}: invalid value \"{value}\"")))
            };
            match key.as_str() {
                "follow" => opts.follow = query_bool(value),
                "previous" => opts.previous = query_bool(value),
                "timestamps" => opts.timestamps = query_bool(value),
                "tailLines" => opts.tail_lines = Some(non_negative("tailLines", number(key)?)?),
                "limitBytes" => {
                    let n = number(key)?;
                    if n < 1 {
                        return Err(Error::BadRequest(format!(
                            "limitBytes: must be greater than 0, got {n}"
                        )));
                    }
                    opts.limit_bytes = Some(n.unsigned_abs());
                }
                "sinceSeconds" => {
                    let n = number(key)?;
                    if n < 1 {
                        return Err(Error::BadRequest(format!(
                            "sinceSeconds: must be greater than 0, got {n}"
                        )));
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t = value.parse::<Timestamp>().map_err(|e| {
                        Error::BadRequest(format!("sinceTime: invalid time \"{value}\": {e}"))
                    })?;
                    opts.since = Some(t);
                }
                _ => {}
            }
        }
        if let (None, Some(secs)) = (opts.since, since_seconds) {
            opts.since = now.checked_sub(SignedDuration::from_secs(secs)).ok();
        }
        Ok(opts)
    }
}

fn non_negative(what: &str, n: i64) -> Result<u64> {
    u64::try_from(n)
        .map_err(|_| Error::BadRequest(format!("{what}: must be greater than or equal to 0")))
}

pub(super) async fn container_logs(
    State(runtime): State<Runtime>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let opts = Options::parse(&query, Timestamp::now())?;
    let instances = lookup::containers(&runtime, &namespace, &pod, &container).await?;
    let chosen = if opts.previous {
        instances.get(1).ok_or_else(|| {
            Error::BadRequest(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            ))
        })?
    } else {
        let latest = instances.first().ok_or_else(|| waiting(&container, &pod))?;
        if latest.state == v1::ContainerState::ContainerCreated as i32 {
            return Err(waiting(&container, &pod));
        }
        latest
    };
    let status = lookup::status(&runtime, &chosen.id).await?;
    let path = PathBuf::from(&status.log_path);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::NotFound(format!("reading log of container \"{container}\": {e}")))?;
    let start = match opts.tail_lines {
        Some(n) => tail_offset(&mut file, n)
            .await
            .map_err(|e| Error::Internal(format!("reading log: {e}")))?,
        None => 0,
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| Error::Internal(format!("reading log: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let follow = opts.follow.then(|| (runtime.clone(), chosen.id.clone()));
    tokio::spawn(async move {
        if let Err(e) = pump(file, Formatter::new(opts), follow, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(body),
    )
        .into_response())
}

fn waiting(container: &str, pod: &str) -> Error {
    Error::BadRequest(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
    ))
}

/// Reads the file from its current position, sending formatted output,
/// until EOF (or, when following, until the container has exited and the
/// file is drained), the limit is reached or the client goes away.
async fn pump(
    mut file: tokio::fs::File,
    mut fmt: Formatter,
    follow: Option<(Runtime, String)>,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    let mut idle = 0u32;
    let mut exited = false;
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            idle = 0;
            pending.extend_from_slice(&buf[..n]);
            let complete = pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let mut out = Vec::new();
            for line in pending[..complete].split(|b| *b == b'\n') {
                if !fmt.write(line, &mut out) {
                    break;
                }
            }
            pending.drain(..complete);
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return Ok(());
            }
            if fmt.full() {
                return Ok(());
            }
            continue;
        }
        let Some((runtime, id)) = &follow else {
            return Ok(());
        };
        if exited {
            return Ok(());
        }
        if tx.is_closed() {
            return Ok(());
        }
        idle += 1;
        if idle.is_multiple_of(STATE_EVERY) {
            let state = lookup::status(runtime, id).await.map(|s| s.state);
            // Gone or exited: read once more to drain, then stop.
            exited = !matches!(state, Ok(s) if s == v1::ContainerState::ContainerRunning as i32);
            if exited {
                continue;
            }
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// The offset where the last `n` lines of the file begin.
async fn tail_offset(file: &mut tokio::fs::File, n: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 8 * 1024;
    let len = file.metadata().await?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut seen = 0u64;
    let mut block = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let size = (end - start) as usize;
        file.seek(std::io::SeekFrom::Start(start)).await?;
        file.read_exact(&mut block[..size]).await?;
        for i in (0..size).rev() {
            if block[i] != b'\n' {
                continue;
            }
            let pos = start + i as u64;
            // The newline ending the file's last line opens no new line.
            if pos + 1 == len {
                continue;
            }
            seen += 1;
            if seen == n {
                return Ok(pos + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

/// One CRI log entry: `<RFC 3339 time> <stdout|stderr> <P|F> <content>`,
/// where `P` marks a partial line continued by the next entry.
struct Entry<'a> {
    time: &'a [u8],
    partial: bool,
    content: &'a [u8],
}

fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = parts.next()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    Some(Entry {
        time,
        partial: tag == b"P",
        content: parts.next().unwrap_or(b""),
    })
}

/// Turns CRI log entries into output under the request's options.
struct Formatter {
    opts: Options,
    written: u64,
}

impl Formatter {
    fn new(opts: Options) -> Self {
        Self { opts, written: 0 }
    }

    fn full(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    /// Appends one entry's output; false once the byte limit is reached.
    fn write(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        if self.full() {
            return false;
        }
        let Some(entry) = parse_entry(line) else {
            return true;
        };
        let time = std::str::from_utf8(entry.time)
            .ok()
            .and_then(|t| t.parse::<Timestamp>().ok());
        if let (Some(since), Some(t)) = (self.opts.since, time)
            && t < since
        {
            return true;
        }
        let mut piece = Vec::with_capacity(entry.content.len() + 32);
        if self.opts.timestamps {
            match time {
                Some(t) => piece.extend_from_slice(format_time(t).as_bytes()),
                None => piece.extend_from_slice(entry.time),
            }
            piece.push(b' ');
        }
        piece.extend_from_slice(entry.content);
        if !entry.partial {
            piece.push(b'\n');
        }
        if let Some(limit) = self.opts.limit_bytes {
            let room = usize::try_from(limit - self.written).unwrap_or(usize::MAX);
            piece.truncate(room);
        }
        self.written += piece.len() as u64;
        out.extend_from_slice(&piece);
        !self.full()
    }
}

/// RFC 3339 in UTC with nanoseconds always written out, as upstream's
/// kubelet prints log timestamps.
fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// The container's output from a whole CRI log file, without options.
pub fn decode_cri_log(raw: &str) -> String {
    let mut fmt = Formatter::new(Options::default());
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.lines() {
        fmt.write(line.as_bytes(), &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "2024-01-01T00:00:00.1Z stdout F hello\n\
                       2024-01-01T00:00:00.2Z stderr P par\n\
                       2024-01-01T00:00:00.3Z stderr F tial\n\
                       2024-01-01T00:00:00.4Z stdout F \n";

    fn render(opts: Options) -> String {
        let mut fmt = Formatter::new(opts);
        let mut out = Vec::new();
        for line in RAW.lines() {
            if !fmt.write(line.as_bytes(), &mut out) {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_full_and_partial_lines() {
        assert_eq!(decode_cri_log(RAW), "hello\npartial\n\n");
    }

    #[test]
    fn prefixes_timestamps_with_nanoseconds() {
        let out = render(Options {
            timestamps: true,
            ..Default::default()
        });
        assert!(
            out.starts_with("2024-01-01T00:00:00.100000000Z hello\n"),
            "{out}"
        );
    }

    #[test]
    fn limits_bytes_and_skips_before_since() {
        let limited = render(Options {
            limit_bytes: Some(3),
            ..Default::default()
        });
        assert_eq!(limited, "hel");
        let since = render(Options {
            since: Some("2024-01-01T00:00:00.2Z".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(since, "partial\n\n");
    }

    #[test]
    fn parses_options() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let opts = Options::parse(
            &q(&[
                ("follow", ""),
                ("previous", "false"),
                ("tailLines", "2"),
                ("sinceSeconds", "60"),
            ]),
            now,
        )
        .unwrap();
        assert!(opts.follow && !opts.previous);
        assert_eq!(opts.tail_lines, Some(2));
        assert_eq!(opts.since, Some("2024-01-01T00:00:00Z".parse().unwrap()));
        assert!(Options::parse(&q(&[("limitBytes", "0")]), now).is_err());
        assert!(Options::parse(&q(&[("sinceTime", "yesterday")]), now).is_err());
    }

    #[tokio::test]
    async fn tail_offset_finds_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        let mut file = tokio::fs::File::open(&path).await.unwrap();
        assert_eq!(tail_offset(&mut file, 1).await.unwrap(), 4);
        assert_eq!(tail_offset(&mut file, 2).await.unwrap(), 2);
        assert_eq!(tail_offset(&mut file, 9).await.unwrap(), 0);
        assert_eq!(tail_offset(&mut file, 0).await.unwrap(), 6);
    }
}
