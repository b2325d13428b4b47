//! The etcd backend: [`Storage`] on a real etcd cluster (v3 API over gRPC; works
//! with etcd 3.4 and newer).
//!
//! Our revisions *are* etcd's: an object's `resourceVersion` is its etcd mod
//! revision, lists read at an etcd revision and watches resume from one. Every
//! write is one etcd transaction:
//!
//! ```text
//!  create:  if create_revision(k) == 0                      then put(k)          else -> AlreadyExists
//!  update:  if version(k) > 0 && mod_revision(k) == expected then put(k)          else get(k) -> NotFound | Conflict{actual}
//!  delete:  if version(k) > 0 [&& mod_revision(k) == expected] then delete(k, prev_kv) else get(k) -> NotFound | Conflict{actual}
//! ```
//!
//! Reads are linearizable (etcd's default). A list's `remaining` is the range's
//! `count` (all keys in the range at that revision) minus the items returned, so
//! it comes from the same consistent read as the page. Watches are etcd watches
//! from `after` with `prev_kv` (events at `after` dropped), re-established from the last revision received
//! whenever the stream breaks (see [`watch`]).
//!
//! Keys: the configured prefix replaces the leading `/registry` of the trait's keys
//! (see [`keys`]); with the default prefix keys are stored unchanged.
//!
//! Compaction: [`Storage::compacted_revision`] is the newest compaction this process
//! knows of — learned at connect time (one probe), from its own `compact` calls, and
//! from etcd's answers to reads and watches below a compaction done elsewhere.
//!
//! Errors: anything that is not a storage-level answer (connection refused, timeouts,
//! no leader, a request etcd refuses) is [`StorageError::Unavailable`]; a request that
//! timed out may still have been applied.

mod keys;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KvClient, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::{
    KeyValue, ListOptions, ListResult, Result, Revision, Storage, StorageError, WatchStream,
};
use keys::KeyMap;

/// The default etcd key prefix (as kube-apiserver's `--etcd-prefix`).
pub const DEFAULT_PREFIX: &str = "/registry";

/// Establishing a connection to an endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One unary request (get, list, txn, compact), including waiting for a connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 keep-alive pings on open streams (as kube-apiserver: 30 s, 10 s timeout),
/// so a silently dead connection breaks watches instead of stalling them.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted (lists and watch batches can be large; etcd bounds
/// requests itself).
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// Where and how to reach etcd (`--etcd-servers`, `--etcd-prefix`, `--etcd-cafile`,
/// `--etcd-certfile`, `--etcd-keyfile`).
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `http://127.0.0.1:2379` or `https://etcd-0:2379`.
    pub endpoints: Vec<String>,
    /// Replaces the leading `/registry` of every key (default `/registry`: keys
    /// unchanged). A trailing `/` is ignored.
    pub prefix: String,
    /// CA bundle (PEM) to verify the servers with; without it, the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`, for etcd's client-cert auth.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for EtcdConfig {
    fn default() -> EtcdConfig {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            prefix: DEFAULT_PREFIX.to_string(),
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl EtcdConfig {
    fn uses_tls(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.endpoints.iter().any(|e| e.starts_with("https://"))
    }
}

/// State shared by the store and its watch streams.
struct Shared {
    /// The newest compaction revision this process knows of.
    compacted: AtomicI64,
}

impl Shared {
    fn saw_compaction(&self, revision: Revision) -> Revision {
        let before = self.compacted.fetch_max(revision, Ordering::AcqRel);
        before.max(revision)
    }
}

/// The etcd-backed store; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    watch: WatchClient,
    keys: KeyMap,
    shared: Arc<Shared>,
}

/// What [`EtcdStore::snapshot_save`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Size of the snapshot file (etcd's bolt database plus its SHA-256 trailer).
    pub bytes: u64,
    /// The etcd revision the snapshot was taken at, if etcd reported it.
    pub revision: Option<Revision>,
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers (one linearizable read, which
    /// needs a leader). Fails with [`StorageError::Unavailable`] if it does not,
    /// and with [`StorageError::Io`] if the TLS files cannot be read.
    pub async fn connect(cfg: EtcdConfig) -> Result<EtcdStore> {
        if cfg.endpoints.is_empty() {
            return Err(StorageError::Unavailable(
                "no etcd endpoints configured".into(),
            ));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            // etcd (grpc-go's default policy) answers pings on idle connections
            // with GOAWAY "too_many_pings".
            .with_keep_alive_while_idle(false)
            // A member that lost its leader fails requests and cancels watches at
            // once instead of stalling them (watches then resume elsewhere or later).
            .with_require_leader(true);
        if cfg.uses_tls() {
            options = options.with_tls(tls_options(&cfg).await?);
        }
        let client = Client::connect(&cfg.endpoints, Some(options))
            .await
            .map_err(|e| unavailable("connecting to etcd", &e))?;
        let store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            client,
            keys: KeyMap::new(&cfg.prefix),
            shared: Arc::new(Shared {
                compacted: AtomicI64::new(0),
            }),
        };
        let revision = store.current_revision_inner().await?;
        let compacted = store.learn_compacted().await;
        tracing::info!(
            endpoints = ?cfg.endpoints,
            prefix = store.keys.prefix(),
            revision,
            compacted,
            "connected to etcd"
        );
        Ok(store)
    }

    /// Streams a snapshot of etcd's whole database (etcd's Maintenance.Snapshot,
    /// like `etcdctl snapshot save`) to `path`: written to a temporary file next to
    /// it, checked against the SHA-256 trailer etcd appends, fsync'd, then renamed
    /// into place. The file can be restored with `etcdctl snapshot restore`.
    pub async fn snapshot_save(&self, path: &Path) -> Result<SnapshotInfo> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".part");
        let tmp = PathBuf::from(tmp_name);
        let result = self.snapshot_to(&tmp).await;
        match result {
            Ok(info) => {
                tokio::fs::rename(&tmp, path).await?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::File::open(dir).await?.sync_all().await?;
                }
                tracing::info!(path = %path.display(), bytes = info.bytes, revision = ?info.revision, "etcd snapshot saved");
                Ok(info)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn snapshot_to(&self, tmp: &Path) -> Result<SnapshotInfo> {
        // Snapshot chunks are small (etcd sends 32 KiB blobs).
        let mut maintenance = self.client.maintenance_client();
        let mut stream = timed(maintenance.snapshot())
            .await?
            .map_err(|e| unavailable("etcd snapshot", &e))?;
        let mut file = tokio::fs::File::create(tmp).await?;
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        // The last 32 bytes of the stream are the SHA-256 of everything before them;
        // hold back the newest 32 bytes until the stream ends.
        let mut tail: Vec<u8> = Vec::with_capacity(64 << 10);
        let mut bytes = 0u64;
        let mut revision = None;
        loop {
            let message = tokio::time::timeout(REQUEST_TIMEOUT, stream.message())
                .await
                .map_err(|_| StorageError::Unavailable("etcd snapshot stream stalled".into()))?
                .map_err(|e| unavailable("etcd snapshot", &e))?;
            let Some(mut message) = message else { break };
            if revision.is_none() {
                revision = message
                    .take_header()
                    .map(|h| h.revision())
                    .filter(|r| *r > 0);
            }
            tail.extend_from_slice(message.blob());
            bytes += message.blob().len() as u64;
            if tail.len() > 32 {
                let flush = tail.len() - 32;
                hasher.update(&tail[..flush]);
                file.write_all(&tail[..flush]).await?;
                tail.drain(..flush);
            }
        }
        if tail.len() != 32 {
            return Err(StorageError::Corrupt(format!(
                "etcd snapshot too short ({bytes} bytes)"
            )));
        }
        if hasher.finish().as_ref() != tail.as_slice() {
            return Err(StorageError::Corrupt(
                "etcd snapshot checksum mismatch".into(),
            ));
        }
        file.write_all(&tail).await?;
        file.flush().await?;
        file.sync_all().await?;
        Ok(SnapshotInfo { bytes, revision })
    }

    fn kv(&self) -> KvClient {
        self.kv.clone()
    }

    /// Some key under the prefix (never empty, which etcd refuses), for reads that
    /// only want a response header.
    fn probe_key(&self) -> Result<Vec<u8>> {
        self.keys.to_etcd("/registry/")
    }

    async fn current_revision_inner(&self) -> Result<Revision> {
        // A count-only read of one key: cheap, linearizable, and its header carries
        // the store's current revision.
        let key = self.probe_key()?;
        let resp = timed(
            self.kv()
                .get(key, Some(GetOptions::new().with_count_only())),
        )
        .await?
        .map_err(|e| unavailable("etcd read", &e))?;
        Ok(header_revision(resp.header()))
    }

    /// Asks etcd for its compaction revision and records it. A read at revision 1
    /// is refused iff anything was compacted; only then a watch from revision 1,
    /// which etcd cancels at once naming the compaction revision, finds the value.
    async fn learn_compacted(&self) -> Revision {
        let known = self.shared.compacted.load(Ordering::Acquire);
        let probe_key = match self.probe_key() {
            Ok(k) => k,
            Err(_) => return known,
        };
        let read = timed(self.kv().get(
            probe_key.clone(),
            Some(GetOptions::new().with_revision(1).with_count_only()),
        ))
        .await;
        match read {
            Ok(Ok(_)) => return known,
            Ok(Err(e)) if is_compacted(&e) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "compaction probe failed");
                return known;
            }
            Err(_) => return known,
        }
        let mut watch = self.watch.clone();
        let probe = async move {
            let mut stream = watch
                .watch(probe_key, Some(WatchOptions::new().with_start_revision(1)))
                .await?;
            while let Some(resp) = stream.message().await? {
                if resp.compact_revision() > 0 || resp.canceled() {
                    return Ok(resp.compact_revision());
                }
            }
            Ok::<_, etcd_client::Error>(0)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, probe).await {
            Ok(Ok(rev)) if rev > 0 => self.shared.saw_compaction(rev),
            Ok(Ok(_)) => known,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "compaction probe watch failed");
                known
            }
            Err(_) => known,
        }
    }

    /// Commits `txn` (whether its compares held is `succeeded()`).
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        timed(self.kv().txn(txn))
            .await?
            .map_err(|e| unavailable("etcd transaction", &e))
    }

    /// The reason a guarded write's compare failed: the key is gone, or it has
    /// another mod revision.
    fn failed_precondition(
        &self,
        key: &str,
        expected: Revision,
        resp: &TxnResponse,
    ) -> StorageError {
        let current = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        });
        match current {
            Some(actual) => StorageError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            },
            None => StorageError::NotFound(key.to_string()),
        }
    }

    async fn list_inner(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let rerooted = KeyMap::reroots(prefix);
        let etcd_prefix = self.keys.to_etcd(prefix)?;
        let range_end = keys::prefix_end(&etcd_prefix);
        let mut start = if etcd_prefix.is_empty() {
            vec![0]
        } else {
            etcd_prefix.clone()
        };
        if let Some(after) = opts.start_after.as_deref() {
            if after.starts_with(prefix) {
                // The smallest key greater than `after`.
                start = self.keys.to_etcd(after)?;
                start.push(0);
            } else if after > prefix {
                // Past every key with this prefix: an empty page (still read, for the
                // revision and its checks).
                start = range_end.clone();
            }
        }
        let at = opts.revision.filter(|r| *r > 0);
        let mut get = GetOptions::new().with_range(range_end);
        if let Some(at) = at {
            get = get.with_revision(at);
        }
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            get = get.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let resp = match timed(self.kv().get(start, Some(get))).await? {
            Ok(resp) => resp,
            Err(e) => return Err(self.read_error(e, at.unwrap_or(0)).await),
        };
        let mut resp = resp;
        let revision = at.unwrap_or_else(|| header_revision(resp.header()));
        let count = usize::try_from(resp.count()).unwrap_or(0);
        let mut items = Vec::with_capacity(resp.kvs().len());
        for kv in resp.take_kvs() {
            let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
            let (key, value) = kv.into_key_value();
            items.push(KeyValue {
                key: self.keys.to_logical(rerooted, &key)?,
                value: Bytes::from(value),
                create_revision,
                mod_revision,
            });
        }
        Ok(ListResult {
            remaining: count.saturating_sub(items.len()),
            items,
            revision,
        })
    }

    /// Turns a failed read at revision `at` into the storage error it stands for.
    async fn read_error(&self, e: etcd_client::Error, at: Revision) -> StorageError {
        if is_compacted(&e) {
            let compacted = self.learn_compacted().await;
            return StorageError::Compacted {
                requested: at,
                compacted,
            };
        }
        if is_future_revision(&e) {
            let current = self.current_revision_inner().await.unwrap_or(0);
            return StorageError::FutureRevision {
                requested: at,
                current,
            };
        }
        unavailable("etcd read", &e)
    }
}

impl Storage for EtcdStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>>> {
        async move {
            let etcd_key = self.keys.to_etcd(key)?;
            let mut resp = timed(self.kv().get(etcd_key, None))
                .await?
                .map_err(|e| unavailable("etcd read", &e))?;
            Ok(resp.take_kvs().into_iter().next().map(|kv| KeyValue {
                key: key.to_string(),
                create_revision: kv.create_revision(),
                mod_revision: kv.mod_revision(),
                value: Bytes::from(kv.into_key_value().1),
            }))
        }
        .boxed()
    }

    fn list<'a>(&'a self, prefix: &'a str, opts: ListOptions) -> BoxFuture<'a, Result<ListResult>> {
        self.list_inner(prefix, opts).boxed()
    }

    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let k = self.keys.to_etcd(key)?;
            let txn = Txn::new()
                .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(k, Vec::from(value), None)]);
            let resp = self.txn(txn).await?;
            if !resp.succeeded() {
                return Err(StorageError::AlreadyExists(key.to_string()));
            }
            Ok(header_revision(resp.header()))
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Revision,
    ) -> BoxFuture<'a, Result<Revision>> {
        async move {
            let k = self.keys.to_etcd(key)?;
            // `version > 0`: a missing key has mod revision 0, which must not match.
            let txn = Txn::new()
                .when([
                    Compare::version(k.clone(), CompareOp::Greater, 0),
                    Compare::mod_revision(k.clone(), CompareOp::Equal, expected),
                ])
                .and_then([TxnOp::put(k.clone(), Vec::from(value), None)])
                .or_else([TxnOp::get(k, None)]);
            let resp = self.txn(txn).await?;
            if !resp.succeeded() {
                return Err(self.failed_precondition(key, expected, &resp));
            }
            Ok(header_revision(resp.header()))
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue>> {
        async move {
            let k = self.keys.to_etcd(key)?;
            let mut when = vec![Compare::version(k.clone(), CompareOp::Greater, 0)];
            if let Some(expected) = expected {
                when.push(Compare::mod_revision(k.clone(), CompareOp::Equal, expected));
            }
            let txn = Txn::new()
                .when(when)
                .and_then([TxnOp::delete(
                    k.clone(),
                    Some(DeleteOptions::new().with_prev_key()),
                )])
                .or_else([TxnOp::get(k, None)]);
            let resp = self.txn(txn).await?;
            if !resp.succeeded() {
                return Err(self.failed_precondition(key, expected.unwrap_or(0), &resp));
            }
            let revision = header_revision(resp.header());
            let prev = resp.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Delete(mut del) => del.take_prev_kvs().into_iter().next(),
                _ => None,
            });
            let prev = prev.ok_or_else(|| {
                StorageError::Corrupt(format!("etcd deleted {key} but returned no previous value"))
            })?;
            Ok(KeyValue {
                key: key.to_string(),
                create_revision: prev.create_revision(),
                mod_revision: revision,
                value: Bytes::from(prev.into_key_value().1),
            })
        }
        .boxed()
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if after < compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted,
            });
        }
        let rerooted = KeyMap::reroots(prefix);
        let etcd_prefix = self.keys.to_etcd(prefix)?;
        Ok(watch::stream(watch::WatchSpec {
            client: self.watch.clone(),
            keys: self.keys.clone(),
            shared: self.shared.clone(),
            rerooted,
            range_end: keys::prefix_end(&etcd_prefix),
            key: if etcd_prefix.is_empty() {
                vec![0]
            } else {
                etcd_prefix
            },
            after,
        }))
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<Revision>> {
        self.current_revision_inner().boxed()
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<()>> {
        async move {
            match timed(self.kv().compact(revision, None)).await? {
                Ok(_) => {
                    self.shared.saw_compaction(revision);
                    tracing::debug!(revision, "etcd compacted");
                    Ok(())
                }
                // Already compacted at or past `revision` (by us or another server).
                Err(e) if is_compacted(&e) => {
                    self.shared.saw_compaction(revision);
                    Ok(())
                }
                Err(e) if is_future_revision(&e) => Err(StorageError::FutureRevision {
                    requested: revision,
                    current: self.current_revision_inner().await.unwrap_or(0),
                }),
                Err(e) => Err(unavailable("etcd compaction", &e)),
            }
        }
        .boxed()
    }
}

async fn tls_options(cfg: &EtcdConfig) -> Result<TlsOptions> {
    let mut tls = TlsOptions::new();
    tls = match &cfg.ca_file {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read_file(ca).await?)),
        None => tls.with_native_roots(),
    };
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read_file(cert).await?,
                read_file(key).await?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(StorageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "etcd client certificate and key must be given together",
            )));
        }
    }
    Ok(tls)
}

async fn read_file(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|e| {
        StorageError::Io(std::io::Error::new(
            e.kind(),
            format!("reading {}: {e}", path.display()),
        ))
    })
}

/// Runs one etcd request with [`REQUEST_TIMEOUT`].
async fn timed<T>(fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| {
            StorageError::Unavailable(format!(
                "etcd did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision())
}

fn grpc_status(e: &etcd_client::Error) -> Option<&tonic::Status> {
    match e {
        etcd_client::Error::GRpcStatus(status) => Some(status),
        _ => None,
    }
}

/// etcd's `ErrCompacted` ("mvcc: required revision has been compacted").
fn is_compacted(e: &etcd_client::Error) -> bool {
    grpc_status(e).is_some_and(|s| {
        s.code() == tonic::Code::OutOfRange && s.message().contains("has been compacted")
    })
}

/// etcd's `ErrFutureRev` ("mvcc: required revision is a future revision").
fn is_future_revision(e: &etcd_client::Error) -> bool {
    grpc_status(e).is_some_and(|s| {
        s.code() == tonic::Code::OutOfRange && s.message().contains("future revision")
    })
}

fn unavailable(what: &str, e: &etcd_client::Error) -> StorageError {
    let detail = match grpc_status(e) {
        Some(status) => format!("{:?}: {}", status.code(), status.message()),
        None => e.to_string(),
    };
    StorageError::Unavailable(format!("{what}: {detail}"))
}
