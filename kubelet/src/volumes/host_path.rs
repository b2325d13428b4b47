//! hostPath volumes: the host's path itself, checked against the volume's
//! `type` (created first for the `...OrCreate` types), as upstream's
//! `checkType`.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::{Error, Result, io_err};

pub(super) fn check(path: &str, ty: &str) -> Result<()> {
    let p = Path::new(path);
    let exists = match std::fs::metadata(p) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(io_err("inspecting", p)(e)),
    };
    match ty {
        "DirectoryOrCreate" if !exists => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(p)
                .map_err(io_err("creating", p))?;
        }
        "FileOrCreate" if !exists => {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(p)
                .map_err(io_err("creating", p))?;
        }
        _ => {}
    }
    let what = match ty {
        "Directory" | "DirectoryOrCreate" => "directory",
        "File" | "FileOrCreate" => "file",
        "Socket" => "socket file",
        "CharDevice" => "character device",
        "BlockDevice" => "block device",
        // Unset (and anything validation would have rejected): no check.
        _ => return Ok(()),
    };
    let ft = std::fs::metadata(p).ok().map(|m| m.file_type());
    let ok = ft.is_some_and(|ft| match what {
        "directory" => ft.is_dir(),
        "file" => ft.is_file(),
        "socket file" => ft.is_socket(),
        "character device" => ft.is_char_device(),
        _ => ft.is_block_device(),
    });
    if ok {
        Ok(())
    } else {
        Err(Error::HostPathType {
            path: path.into(),
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_and_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d/e");
        let s = |p: &Path| p.to_string_lossy().into_owned();
        assert!(check(&s(&dir), "Directory").is_err());
        check(&s(&dir), "DirectoryOrCreate").unwrap();
        assert!(dir.is_dir());
        check(&s(&dir), "Directory").unwrap();
        let file = tmp.path().join("f");
        check(&s(&file), "FileOrCreate").unwrap();
        assert!(file.is_file());
        check(&s(&file), "File").unwrap();
        assert_eq!(
            check(&s(&file), "Directory").unwrap_err().to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                s(&file)
            )
        );
        assert!(check(&s(&dir), "Socket").is_err());
        check("/dev/null", "CharDevice").unwrap();
        check("/nonexistent/anything", "").unwrap();
    }
}
