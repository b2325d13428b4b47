//! `/logs/` and `/logs/{path}`: the host's log directory as a file server
//! (what `nodes/proxy/logs/` shows): an HTML listing for directories, the
//! bytes for files. Paths that climb out of the directory are refused.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Error, Result};

/// The host's log directory, as upstream serves it.
const LOG_DIR: &str = "/var/log";

pub(super) async fn root() -> Result<Response> {
    serve(FsPath::new(LOG_DIR), "").await
}

pub(super) async fn path(Path(path): Path<String>) -> Result<Response> {
    serve(FsPath::new(LOG_DIR), &path).await
}

/// `relative` resolved under `root`, or `None` if it tries to leave it.
fn resolve(root: &FsPath, relative: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for component in FsPath::new(relative).components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

async fn serve(root: &FsPath, relative: &str) -> Result<Response> {
    let path = resolve(root, relative)
        .ok_or_else(|| Error::BadRequest(format!("invalid log path \"{relative}\"")))?;
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|_| Error::NotFound("404 page not found".into()))?;
    if meta.is_dir() {
        let listing = list(&path)
            .await
            .map_err(|e| Error::Internal(format!("listing {}: {e}", path.display())))?;
        return Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            listing,
        )
            .into_response());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::NotFound(format!("opening {relative}: {e}")))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A directory's entries as links, sorted, directories with a trailing `/`.
async fn list(dir: &FsPath) -> std::io::Result<String> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().await?.is_dir() {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    let mut html = String::from("<pre>\n");
    for name in names {
        let escaped = escape(&name);
        html.push_str(&format!("<a href=\"{escaped}\">{escaped}</a>\n"));
    }
    html.push_str("</pre>\n");
    Ok(html)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_out_of_the_root() {
        let root = FsPath::new("/var/log");
        assert_eq!(resolve(root, "a/./b"), Some(PathBuf::from("/var/log/a/b")));
        assert_eq!(resolve(root, ""), Some(PathBuf::from("/var/log")));
        assert_eq!(resolve(root, "../etc/passwd"), None);
        assert_eq!(resolve(root, "a/../../x"), None);
        assert_eq!(resolve(root, "/etc"), None);
    }

    #[tokio::test]
    async fn lists_and_serves_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.log"), "line\n").unwrap();
        let listing = list(dir.path()).await.unwrap();
        assert!(listing.contains("<a href=\"a.log\">a.log</a>"), "{listing}");
        assert!(listing.contains("<a href=\"sub/\">sub/</a>"), "{listing}");
        let file = serve(dir.path(), "a.log").await.unwrap();
        assert_eq!(file.status(), 200);
        let missing = serve(dir.path(), "nope").await.unwrap_err();
        assert!(matches!(missing, Error::NotFound(_)));
    }
}
