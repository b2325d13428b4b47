//! Writes the files of an API-data volume (configMap, secret, downwardAPI,
//! projected) so that a reader sees either the old set or the new one,
//! never a mix: upstream's `AtomicWriter` layout.
//!
//! ```text
//! <dir>/
//!   ..2026_12_03_09_30_00.1234567/   one directory per version of the data
//!   ..data -> ..2026_12_03_09_30_00.1234567
//!   key    -> ..data/key             one link per top-level name
//! ```
//!
//! A new version goes into a fresh timestamped directory; `..data_tmp` is
//! pointed at it and renamed over `..data` (rename(2) replaces the link
//! atomically); then the visible links of new names are added, those of
//! names gone are removed, and the old directory is deleted. Nothing is
//! written when the data and modes are unchanged. Names starting with `..`
//! are reserved.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
const MAX_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// One file of a volume: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub(crate) data: Vec<u8>,
    pub(crate) mode: u32,
}

/// Relative path → file.
pub(crate) type Payload = BTreeMap<String, File>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("invalid file path {path:?}: {reason}")]
    Path { path: String, reason: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// Projects `payload` into `dir` (which must exist). Returns whether
/// anything changed.
pub(crate) fn write(dir: &Path, payload: &Payload) -> Result<bool> {
    for path in payload.keys() {
        validate(path)?;
    }
    let data_link = dir.join(DATA);
    let old_version = match std::fs::read_link(&data_link) {
        Ok(target) => Some(target),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("reading link", &data_link)(e)),
    };
    let old_files = match &old_version {
        Some(v) => files_under(&dir.join(v))?,
        None => BTreeSet::new(),
    };
    if old_version.is_some() && !changed(&dir.join(DATA), payload, &old_files) {
        return Ok(false);
    }

    let version = new_version_dir(dir)?;
    let version_path = dir.join(&version);
    for (path, file) in payload {
        let full = version_path.join(path);
        if let Some(parent) = full.parent()
            && parent != version_path
        {
            std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
            chmod_dirs(&version_path, parent)?;
        }
        std::fs::write(&full, &file.data).map_err(io_err("writing", &full))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("setting the mode of", &full))?;
    }

    let tmp = dir.join(DATA_TMP);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &tmp)(e)),
    }
    std::os::unix::fs::symlink(&version, &tmp).map_err(io_err("linking", &tmp))?;
    std::fs::rename(&tmp, &data_link).map_err(io_err("renaming", &tmp))?;

    let new_top: BTreeSet<&str> = payload.keys().map(|p| top_level(p)).collect();
    for name in &new_top {
        let visible = dir.join(name);
        match std::fs::symlink_metadata(&visible) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(Path::new(DATA).join(name), &visible)
                    .map_err(io_err("linking", &visible))?;
            }
            Err(e) => return Err(io_err("inspecting", &visible)(e)),
        }
    }
    for name in old_files.iter().map(|p| top_level(p)) {
        if !new_top.contains(name) {
            let visible = dir.join(name);
            match std::fs::remove_file(&visible) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &visible)(e)),
            }
        }
    }
    if let Some(old) = old_version {
        let old = dir.join(old);
        if old != version_path {
            std::fs::remove_dir_all(&old).map_err(io_err("removing", &old))?;
        }
    }
    Ok(true)
}

/// Upstream's checks: relative, no `..` element, no leading `..`, bounded
/// lengths.
fn validate(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::Path {
            path: path.into(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("must not be empty");
    }
    if path.len() > MAX_PATH {
        return bad("must not be longer than 4096 characters");
    }
    if Path::new(path).is_absolute() {
        return bad("must be relative");
    }
    if path.starts_with("..") {
        return bad("must not start with '..'");
    }
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => return bad("must not contain '..'"),
            Component::Normal(n) if n.len() > MAX_NAME => {
                return bad("must not have an element longer than 255 characters");
            }
            _ => {}
        }
    }
    Ok(())
}

fn top_level(path: &str) -> &str {
    path.split('/').find(|s| !s.is_empty()).unwrap_or(path)
}

/// Whether the data under `current` differs from `payload` (names, bytes or
/// permission bits).
fn changed(current: &Path, payload: &Payload, old_files: &BTreeSet<String>) -> bool {
    if old_files.len() != payload.len() || !payload.keys().all(|k| old_files.contains(k)) {
        return true;
    }
    payload.iter().any(|(path, file)| {
        let full = current.join(path);
        let same_mode = std::fs::metadata(&full)
            .is_ok_and(|m| m.permissions().mode() & 0o7777 == file.mode & 0o7777);
        !same_mode || std::fs::read(&full).map_or(true, |d| d != file.data)
    })
}

/// Relative paths of the regular files under `root`.
fn files_under(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("reading", &dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io_err("inspecting", &path))?;
            if ty.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}

/// Creates `..<UTC timestamp>.<random>` with mode 0755 whatever the umask,
/// so that any user in the container can traverse it.
fn new_version_dir(dir: &Path) -> Result<String> {
    let stamp = Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S").to_string();
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i128(Timestamp::now().as_nanosecond());
        let name = format!("..{stamp}.{}", h.finish() % 10_000_000_000);
        let path = dir.join(&name);
        match std::fs::create_dir(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err("setting the mode of", &path))?;
                return Ok(name);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating", &path)(e)),
        }
    }
}

/// Mode 0755 on the directories from `root` (exclusive) down to `dir`.
fn chmod_dirs(root: &Path, dir: &Path) -> Result<()> {
    let mut d = dir;
    while d != root && d.starts_with(root) {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("setting the mode of", d))?;
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> File {
        File {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn read(dir: &Path, path: &str) -> String {
        std::fs::read_to_string(dir.join(path)).unwrap()
    }

    #[test]
    fn swaps_versions_through_the_data_link() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut payload = Payload::from([
            ("a".to_string(), file("1", 0o644)),
            ("sub/b".to_string(), file("2", 0o400)),
        ]);
        assert!(write(dir, &payload).unwrap());
        assert_eq!(read(dir, "a"), "1");
        assert_eq!(read(dir, "sub/b"), "2");
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap(),
            Path::new("..data/a")
        );
        let first = std::fs::read_link(dir.join(DATA)).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        let mode = std::fs::metadata(dir.join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o400);

        // Unchanged: nothing written.
        assert!(!write(dir, &payload).unwrap());
        assert_eq!(std::fs::read_link(dir.join(DATA)).unwrap(), first);

        // A changed value and a removed name.
        payload.insert("a".into(), file("one", 0o644));
        payload.remove("sub/b");
        assert!(write(dir, &payload).unwrap());
        assert_eq!(read(dir, "a"), "one");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join(&first).exists(), "old version removed");

        // A mode change alone is a change.
        payload.insert("a".into(), file("one", 0o600));
        assert!(write(dir, &payload).unwrap());

        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn rejects_unsafe_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["/abs", "../x", "a/../b", "..hidden", ""] {
            let payload = Payload::from([(bad.to_string(), file("x", 0o644))]);
            assert!(write(tmp.path(), &payload).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_payload_still_gets_a_data_link() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(write(tmp.path(), &Payload::new()).unwrap());
        assert!(tmp.path().join(DATA).exists());
        assert!(!write(tmp.path(), &Payload::new()).unwrap());
    }
}
