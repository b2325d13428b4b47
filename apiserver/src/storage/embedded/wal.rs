//! On-disk format of the embedded store: a write-ahead log of records and a
//! snapshot file holding every live key at one revision.
//!
//! Each record and the snapshot body are framed as `len: u32 LE | crc32: u32 LE | payload`.
//! A torn or corrupt frame at the end of the log (a crash mid-write) ends replay and
//! is truncated away; the same damage in a snapshot is an error, since snapshots are
//! written to a temporary file and renamed into place only once complete.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;

use crate::storage::{Revision, StorageError};

const SNAPSHOT_MAGIC: &[u8; 8] = b"IKSNAP01";

/// One logged write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) revision: Revision,
    pub(crate) create_revision: Revision,
    pub(crate) key: String,
    /// `None` for a delete.
    pub(crate) value: Option<Bytes>,
}

impl Record {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let mut payload =
            Vec::with_capacity(32 + self.key.len() + self.value.as_ref().map_or(0, |v| v.len()));
        payload.push(if self.value.is_some() { 1 } else { 2 });
        payload.extend_from_slice(&self.revision.to_le_bytes());
        payload.extend_from_slice(&self.create_revision.to_le_bytes());
        put_bytes(&mut payload, self.key.as_bytes());
        put_bytes(&mut payload, self.value.as_deref().unwrap_or_default());
        frame(out, &payload);
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let mut cur = Cursor { buf: payload };
        let kind = cur.u8()?;
        let revision = cur.i64()?;
        let create_revision = cur.i64()?;
        let key = String::from_utf8(cur.bytes()?.to_vec()).ok()?;
        let value = cur.bytes()?;
        let value = match kind {
            1 => Some(Bytes::copy_from_slice(value)),
            2 => None,
            _ => return None,
        };
        Some(Record {
            revision,
            create_revision,
            key,
            value,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Reads every intact record of the log at `path`, truncating a damaged tail.
pub(crate) fn replay_log(path: &Path) -> Result<Vec<Record>, StorageError> {
    read_log(path, true)
}

/// Reads every intact record of the log at `path`; with `repair`, truncates a
/// damaged tail (only the store's owner may: a reader of a live store must not).
pub(crate) fn read_log(path: &Path, repair: bool) -> Result<Vec<Record>, StorageError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut data = Vec::new();
    BufReader::new(file).read_to_end(&mut data)?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    while let Some((payload, next)) = read_frame(&data, offset) {
        match Record::decode(payload) {
            Some(r) => records.push(r),
            None => break,
        }
        offset = next;
    }
    if repair && offset < data.len() {
        tracing::warn!(path = %path.display(), valid = offset, total = data.len(), "truncating damaged write-ahead log tail");
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(offset as u64)?;
        f.sync_all()?;
    }
    Ok(records)
}

fn read_frame(data: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let header = data.get(offset..offset + 8)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let payload = data.get(offset + 8..offset + 8 + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, offset + 8 + len))
}

/// Every live key at one revision.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) revision: Revision,
    /// (key, create revision, mod revision, value), in key order.
    pub(crate) entries: Vec<(String, Revision, Revision, Bytes)>,
}

impl Snapshot {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&self.revision.to_le_bytes());
        payload.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (key, create, modrev, value) in &self.entries {
            put_bytes(&mut payload, key.as_bytes());
            payload.extend_from_slice(&create.to_le_bytes());
            payload.extend_from_slice(&modrev.to_le_bytes());
            put_bytes(&mut payload, value);
        }
        let mut out = SNAPSHOT_MAGIC.to_vec();
        frame(&mut out, &payload);
        out
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Snapshot, StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("snapshot: {what}"));
        let body = data
            .strip_prefix(SNAPSHOT_MAGIC.as_slice())
            .ok_or_else(|| corrupt("bad magic"))?;
        let (payload, end) =
            read_frame(body, 0).ok_or_else(|| corrupt("bad checksum or truncated"))?;
        if end != body.len() {
            return Err(corrupt("trailing bytes"));
        }
        let mut cur = Cursor { buf: payload };
        let revision = cur.i64().ok_or_else(|| corrupt("header"))?;
        let count = cur.u64().ok_or_else(|| corrupt("header"))?;
        let mut entries = Vec::with_capacity(count.min(1 << 20) as usize);
        for _ in 0..count {
            let entry = (|| {
                let key = String::from_utf8(cur.bytes()?.to_vec()).ok()?;
                let create = cur.i64()?;
                let modrev = cur.i64()?;
                let value = Bytes::copy_from_slice(cur.bytes()?);
                Some((key, create, modrev, value))
            })();
            entries.push(entry.ok_or_else(|| corrupt("entry"))?);
        }
        Ok(Snapshot { revision, entries })
    }

    pub(crate) fn read(path: &Path) -> Result<Option<Snapshot>, StorageError> {
        match std::fs::read(path) {
            Ok(data) => Snapshot::decode(&data).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes atomically: temporary file, fsync, rename, fsync of the directory.
    pub(crate) fn write(&self, path: &Path) -> Result<(), StorageError> {
        let tmp = path.with_extension("tmp");
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            w.write_all(&self.encode())?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damaged_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let recs = vec![
            Record {
                revision: 1,
                create_revision: 1,
                key: "/a".into(),
                value: Some(Bytes::from_static(b"x")),
            },
            Record {
                revision: 2,
                create_revision: 1,
                key: "/a".into(),
                value: None,
            },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.encode_into(&mut buf);
        }
        let full = buf.len();
        buf.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &buf).unwrap();
        assert_eq!(replay_log(&path).unwrap(), recs);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, full);
    }

    #[test]
    fn snapshot_round_trip_and_corruption_detected() {
        let snap = Snapshot {
            revision: 7,
            entries: vec![("/k".into(), 3, 7, Bytes::from_static(b"v"))],
        };
        let mut data = snap.encode();
        assert_eq!(Snapshot::decode(&data).unwrap(), snap);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(Snapshot::decode(&data).is_err());
    }
}
