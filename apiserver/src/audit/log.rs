//! The audit log backend: one JSON event per line, appended by a writer
//! thread (a request waits only when 10,000 events are queued, as upstream's
//! blocking mode), rotated by size, with old files pruned by count and age,
//! named as upstream's rotation names them (`audit-2026-12-03T10-00-00.000.log`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// `--audit-log-*` settings.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `-` for standard output.
    pub path: PathBuf,
    /// Days to keep rotated files (0: no limit).
    pub max_age_days: u32,
    /// Rotated files to keep (0: no limit).
    pub max_backups: u32,
    /// Size in MiB at which the file is rotated (0: never).
    pub max_size_mb: u64,
}

/// Sends events to the writer thread.
pub struct LogWriter {
    lines: mpsc::SyncSender<Vec<u8>>,
}

const QUEUE: usize = 10_000;

impl LogWriter {
    pub fn start(config: LogConfig) -> std::io::Result<LogWriter> {
        let mut sink = Sink::open(config)?;
        let (lines, queue) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                while let Ok(line) = queue.recv() {
                    if let Err(e) = sink.write(&line) {
                        tracing::error!(error = %e, "writing the audit log");
                    }
                }
            })?;
        Ok(LogWriter { lines })
    }

    /// Queues one event (a JSON object, without its newline).
    pub fn write(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        if self.lines.send(line).is_err() {
            tracing::error!("the audit log writer has stopped");
        }
    }
}

struct Sink {
    config: LogConfig,
    file: Option<File>,
    size: u64,
}

impl Sink {
    fn open(config: LogConfig) -> std::io::Result<Sink> {
        let mut sink = Sink {
            config,
            file: None,
            size: 0,
        };
        sink.reopen()?;
        Ok(sink)
    }

    fn stdout(&self) -> bool {
        self.config.path.as_os_str() == "-"
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        if self.stdout() {
            return Ok(());
        }
        if let Some(dir) = self
            .config
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.stdout() {
            return std::io::stdout().write_all(line);
        }
        let limit = self.config.max_size_mb.saturating_mul(1024 * 1024);
        if limit > 0 && self.size > 0 && self.size + line.len() as u64 > limit {
            self.rotate()?;
        }
        if let Some(file) = &mut self.file {
            file.write_all(line)?;
            self.size += line.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let stamp = chrono::Utc::now()
            .format("%Y-%m-%dT%H-%M-%S%.3f")
            .to_string();
        // Two rotations within a millisecond get a counter after the stamp.
        let mut target = backup_name(&self.config.path, &stamp);
        let mut n = 1;
        while target.exists() {
            target = backup_name(&self.config.path, &format!("{stamp}-{n}"));
            n += 1;
        }
        std::fs::rename(&self.config.path, target)?;
        self.reopen()?;
        self.prune();
        Ok(())
    }

    /// Removes rotated files beyond `max_backups` and older than `max_age_days`.
    fn prune(&self) {
        let mut backups = backups_of(&self.config.path);
        backups.sort();
        backups.reverse();
        let max_age = u64::from(self.config.max_age_days) * 24 * 3600;
        for (index, path) in backups.iter().enumerate() {
            let too_many = self.config.max_backups > 0 && index >= self.config.max_backups as usize;
            let too_old = max_age > 0
                && std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > max_age);
            if (too_many || too_old)
                && let Err(e) = std::fs::remove_file(path)
            {
                tracing::warn!(path = %path.display(), error = %e, "removing an old audit log");
            }
        }
    }
}

/// `dir/audit.log` → `dir/audit-<stamp>.log`.
fn backup_name(path: &Path, stamp: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}-{stamp}.{ext}"),
        None => format!("{stem}-{stamp}"),
    };
    path.with_file_name(name)
}

/// The rotated files of `path`.
fn backups_of(path: &Path) -> Vec<PathBuf> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
    let prefix = format!("{stem}-");
    let ext = path.extension().and_then(|e| e.to_str());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                        && p.extension().and_then(|e| e.to_str()) == ext
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_rotate_by_size_and_keep_the_newest_backups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let mut sink = Sink::open(LogConfig {
            path: path.clone(),
            max_age_days: 0,
            max_backups: 2,
            max_size_mb: 1,
        })
        .expect("open");
        let line = vec![b'x'; 300 * 1024];
        for _ in 0..20 {
            sink.write(&line).expect("write");
        }
        let backups = backups_of(&path);
        assert_eq!(backups.len(), 2, "{backups:?}");
        assert!(std::fs::metadata(&path).expect("current").len() <= 1024 * 1024);
    }
}
