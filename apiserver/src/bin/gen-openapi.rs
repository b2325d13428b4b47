//! Writes the vendored OpenAPI documents (`vendor-openapi/v3/*.json`,
//! `vendor-openapi/swagger.json`) and their embedding table; see
//! [`apiserver::openapi`]. Usage: `gen-openapi [REPO_ROOT]` (default: the
//! workspace this binary was built from).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    let files = apiserver::openapi::generate();
    let v3_dir = root.join(apiserver::openapi::VENDOR_DIR).join("v3");
    std::fs::create_dir_all(&v3_dir)?;
    // Documents of group-versions no longer served go away.
    for entry in std::fs::read_dir(&v3_dir)?.flatten() {
        let rel = format!(
            "{}/v3/{}",
            apiserver::openapi::VENDOR_DIR,
            entry.file_name().to_string_lossy()
        );
        if !files.contains_key(&rel) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (path, content) in &files {
        let target = root.join(path);
        if std::fs::read_to_string(&target).ok().as_deref() != Some(content.as_str()) {
            std::fs::write(&target, content)?;
            println!("wrote {path} ({} bytes)", content.len());
        }
    }
    Ok(())
}
