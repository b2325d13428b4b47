//! The etcd backend against real etcd processes (Debian's `/usr/bin/etcd`, installed
//! by `hack/install-etcd.sh`; `IRONKUBE_ETCD` overrides the path). Each test starts
//! its own single-member etcd on free loopback ports with a temporary data dir.
//! A missing etcd binary fails these tests; it does not skip them.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::storage::cache::CachedStorage;
use apiserver::storage::etcd::{EtcdConfig, EtcdStore};
use apiserver::storage::{EventKind, ListOptions, Revision, Storage, StorageError, testing};
use bytes::Bytes;
use futures::StreamExt;

const MEMBER: &str = "ironkube-test";
const READY_DEADLINE: Duration = Duration::from_secs(60);

fn etcd_binary() -> PathBuf {
    std::env::var_os("IRONKUBE_ETCD").map_or_else(|| PathBuf::from("/usr/bin/etcd"), PathBuf::from)
}

fn etcdctl_binary() -> PathBuf {
    etcd_binary().with_file_name("etcdctl")
}

/// Shows the store's logs (captured per test; printed for failing tests).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "apiserver=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Two distinct free loopback ports (released just before etcd binds them).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind");
    (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    )
}

#[derive(Clone, Default)]
struct Tls {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

enum Failed {
    Exited(String),
    Timeout(String),
}

/// One single-member etcd process; killed when dropped.
struct Etcd {
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    tls: Option<Tls>,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd on a fresh data dir and waits until it serves.
    async fn start() -> Etcd {
        Etcd::start_with(None, None).await
    }

    /// `restored`: an existing (e.g. restored) data dir to serve instead of a new
    /// one, whose member is named [`MEMBER`] and uses the given peer port.
    async fn start_with(tls: Option<Tls>, restored: Option<(PathBuf, u16)>) -> Etcd {
        logs();
        let binary = etcd_binary();
        assert!(
            binary.exists(),
            "{} not found: run hack/install-etcd.sh (or set IRONKUBE_ETCD)",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut etcd = Etcd {
            data_dir: dir.path().join("data"),
            dir,
            client_port: 0,
            peer_port: 0,
            tls,
            child: None,
        };
        // A port taken between picking and binding (by a parallel test) makes etcd
        // exit at once: pick new ports and try again.
        let mut log = String::new();
        for _ in 0..5 {
            let (client_port, peer_port) = free_ports();
            etcd.client_port = client_port;
            match &restored {
                Some((data_dir, peer_port)) => {
                    etcd.data_dir = data_dir.clone();
                    etcd.peer_port = *peer_port;
                }
                None => {
                    let _ = std::fs::remove_dir_all(&etcd.data_dir);
                    etcd.peer_port = peer_port;
                }
            }
            etcd.spawn();
            match etcd.wait_serving().await {
                Ok(()) => return etcd,
                Err(Failed::Exited(l)) => {
                    etcd.kill();
                    log = l;
                }
                Err(Failed::Timeout(l)) => panic!("etcd did not start: {l}"),
            }
        }
        panic!("etcd did not start: {log}");
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Starts the process (on the same data dir and ports as before, if any).
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let mut cmd = Command::new(etcd_binary());
        cmd.arg("--name")
            .arg(MEMBER)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.endpoint())
            .arg("--advertise-client-urls")
            .arg(self.endpoint())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(format!("{MEMBER}={}", self.peer_url()))
            .arg("--heartbeat-interval")
            .arg("50")
            .arg("--election-timeout")
            .arg("500")
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr");
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn etcd"));
    }

    /// SIGKILL (no clean shutdown) and reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Polls until a linearizable read succeeds (so a leader is elected), with a
    /// deadline. Err carries the log if etcd exits or the deadline passes.
    async fn wait_serving(&mut self) -> Result<(), Failed> {
        if self.tls.is_some() {
            // The TLS test connects with its own client settings.
            return self.wait_port().await;
        }
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if self.exited() {
                return Err(Failed::Exited(self.log()));
            }
            let attempt = EtcdStore::connect(self.config()).await;
            match attempt {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(Failed::Timeout(format!("{e}\n{}", self.log())));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn wait_port(&mut self) -> Result<(), Failed> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if self.exited() {
                return Err(Failed::Exited(self.log()));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.client_port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Failed::Timeout(self.log()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![self.endpoint()],
            ..EtcdConfig::default()
        }
    }

    async fn connect(&self) -> EtcdStore {
        EtcdStore::connect(self.config())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log()))
    }

    /// Kills etcd with SIGKILL and starts it again on the same data dir and ports.
    async fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn();
        if let Err(Failed::Exited(log) | Failed::Timeout(log)) = self.wait_serving().await {
            panic!("etcd did not come back: {log}");
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite() {
    let etcd = Etcd::start().await;
    let store = etcd.connect().await;
    let started = Instant::now();
    within(
        "storage suite",
        Duration::from_secs(120),
        testing::run_all(Arc::new(store)),
    )
    .await;
    eprintln!("storage suite on etcd: {:?}", started.elapsed());
}

fn cached(store: EtcdStore, prefixes: Vec<String>, window: usize) -> Arc<CachedStorage> {
    Arc::new(CachedStorage::new(Arc::new(store), prefixes, window))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_behind_the_watch_cache() {
    let etcd = Etcd::start().await;
    let store = etcd.connect().await;
    within(
        "storage suite behind the watch cache",
        Duration::from_secs(120),
        testing::run_all(cached(store, testing::suite_prefixes(), 100)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cache_cases() {
    let etcd = Etcd::start().await;
    let store = etcd.connect().await;
    within(
        "watch cache cases",
        Duration::from_secs(180),
        testing::run_cache_cases(cached(store, testing::cache_prefixes(), 50), 50),
    )
    .await;
}

/// etcd's own count of its open watchers (`etcd_debugging_mvcc_watcher_total`).
fn etcd_watchers(etcd: &Etcd) -> u64 {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", etcd.client_port)).expect("metrics");
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("metrics request");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("metrics response");
    text.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no watcher gauge in etcd's metrics"))
}

/// Ten client watches behind the watch cache share one etcd watch, and each
/// sees every revision of 1,000 updates once, in order, across a `kill -9`
/// and restart of etcd in the middle of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cache_shares_one_etcd_watch_across_a_restart() {
    let mut etcd = Etcd::start().await;
    let backend = Arc::new(etcd.connect().await);
    let inner: Arc<dyn Storage> = backend.clone();
    let store = CachedStorage::new(
        inner,
        ["/load".to_string()],
        apiserver::storage::cache::DEFAULT_WINDOW,
    );
    let start = store.current_revision().await.expect("revision");
    let before = etcd_watchers(&etcd);
    let collectors: Vec<_> = (0..10)
        .map(|_| {
            let mut w = store.watch("/load/", start).expect("watch");
            tokio::spawn(async move {
                let mut revs = Vec::new();
                while revs.len() < 1_010 {
                    match tokio::time::timeout(Duration::from_secs(60), w.next()).await {
                        Ok(Some(Ok(ev))) => revs.push(ev.kv.mod_revision),
                        other => panic!("after {} events: {other:?}", revs.len()),
                    }
                }
                revs
            })
        })
        .collect();
    // A write that fails while etcd restarts is retried: it may or may not
    // have landed, so the reference is etcd's own history, read afterwards.
    let write = |key: String, update: bool| {
        let store = &store;
        async move {
            within("a write", Duration::from_secs(60), async {
                loop {
                    let done = if update {
                        match store.get(&key).await {
                            Ok(Some(kv)) => store.update(&key, b("v"), kv.mod_revision).await,
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        }
                    } else {
                        store.create(&key, b("v")).await
                    };
                    match done {
                        Ok(_) | Err(StorageError::AlreadyExists(_)) => return,
                        Err(StorageError::Conflict { .. }) => return,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            })
            .await
        }
    };
    for k in 0..10 {
        write(format!("/load/k{k}"), false).await;
    }
    for i in 0..1_000 {
        if i == 500 {
            etcd.kill_and_restart().await;
        }
        write(format!("/load/k{}", i % 10), true).await;
    }
    let mut seen = Vec::new();
    for c in collectors {
        seen.push(
            within("collectors", Duration::from_secs(120), c)
                .await
                .expect("collector"),
        );
    }
    // After the restart etcd counts only the cache's resumed watch.
    assert_eq!(
        etcd_watchers(&etcd),
        1,
        "one etcd watch (gauge was {before} before)"
    );
    let end = store.current_revision().await.expect("revision");
    let mut history = backend.watch("/load/", start).expect("history");
    let mut reference = Vec::new();
    while reference.last().is_none_or(|r| *r < end) && reference.len() < seen[0].len() {
        let ev = within("history", Duration::from_secs(30), history.next())
            .await
            .expect("open")
            .expect("event");
        reference.push(ev.kv.mod_revision);
    }
    for revs in &seen {
        assert_eq!(revs, &reference, "every revision once, in order");
    }
}

/// Every event is delivered exactly once, in order, across a `kill -9` of etcd and
/// a restart on the same data dir, including events etcd sent (or was about to
/// send) while the watcher was not reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_etcd_kill_and_restart() {
    type Seen = (EventKind, String, Revision, Bytes);
    let mut etcd = Etcd::start().await;
    let store = etcd.connect().await;
    let start = store.current_revision().await.expect("revision");
    let mut stream = store.watch("/fault/", start).expect("watch");

    // The collector reads only while `reading` is true.
    let (reading_tx, mut reading) = tokio::sync::watch::channel(true);
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(Vec::<Seen>::new());
    let collector = tokio::spawn(async move {
        loop {
            if reading.wait_for(|r| *r).await.is_err() {
                return;
            }
            let Some(item) = stream.next().await else {
                return;
            };
            let ev = item.expect("watch error");
            seen_tx.send_modify(|s| {
                s.push((ev.kind, ev.kv.key.clone(), ev.kv.mod_revision, ev.kv.value))
            });
        }
    });
    let wait_seen = |n: usize, rx: &mut tokio::sync::watch::Receiver<Vec<Seen>>| {
        let mut rx = rx.clone();
        async move {
            within("watch events", Duration::from_secs(60), async {
                rx.wait_for(|s| s.len() >= n)
                    .await
                    .expect("collector alive");
            })
            .await;
        }
    };

    let mut expected: Vec<Seen> = Vec::new();
    // Phase 1: live events.
    for i in 0..5 {
        let key = format!("/fault/k{i}");
        let rev = store
            .create(&key, b(&format!("v{i}")))
            .await
            .expect("create");
        expected.push((EventKind::Put, key, rev, b(&format!("v{i}"))));
        store
            .create(&format!("/other/k{i}"), b("x"))
            .await
            .expect("create");
    }
    wait_seen(expected.len(), &mut seen_rx).await;

    // Phase 2: the watcher stops reading, more writes land, etcd is killed.
    reading_tx.send_replace(false);
    for i in 0..5 {
        let key = format!("/fault/k{i}");
        let kv = store.get(&key).await.expect("get").expect("present");
        let rev = store
            .update(&key, b(&format!("w{i}")), kv.mod_revision)
            .await
            .expect("update");
        expected.push((EventKind::Put, key, rev, b(&format!("w{i}"))));
    }
    let gone = store.delete("/fault/k0", None).await.expect("delete");
    expected.push((
        EventKind::Delete,
        "/fault/k0".into(),
        gone.mod_revision,
        b("w0"),
    ));
    etcd.kill();
    // The watcher resumes reading while etcd is down: it drains what it has, then
    // retries with backoff.
    reading_tx.send_replace(true);

    // Connection failures are `Unavailable`, promptly.
    let t = Instant::now();
    match store.get("/fault/k1").await {
        Err(StorageError::Unavailable(_)) => {}
        other => panic!("expected Unavailable while etcd is down, got {other:?}"),
    }
    let down_latency = t.elapsed();
    assert!(
        down_latency < Duration::from_secs(10),
        "took {down_latency:?}"
    );

    let t = Instant::now();
    etcd.kill_and_restart().await;
    let restart = t.elapsed();

    // Phase 3: after the restart.
    let recreated = store.create("/fault/k0", b("again")).await.expect("create");
    expected.push((EventKind::Put, "/fault/k0".into(), recreated, b("again")));
    for i in 5..8 {
        let key = format!("/fault/k{i}");
        let rev = store
            .create(&key, b(&format!("v{i}")))
            .await
            .expect("create");
        expected.push((EventKind::Put, key, rev, b(&format!("v{i}"))));
    }
    // A sentinel last: anything repeated would show up before it.
    let sentinel = store.create("/fault/zz", b("end")).await.expect("create");
    expected.push((EventKind::Put, "/fault/zz".into(), sentinel, b("end")));
    let t = Instant::now();
    wait_seen(expected.len(), &mut seen_rx).await;
    let catch_up = t.elapsed();
    let seen = seen_rx.borrow().clone();
    assert_eq!(seen, expected, "resumed watch: every event once, in order");

    // And it agrees with etcd's own history, read by a fresh watch.
    let mut fresh = store.watch("/fault/", start).expect("watch");
    for want in &expected {
        let ev = within("fresh watch", Duration::from_secs(20), fresh.next())
            .await
            .expect("open")
            .expect("event");
        assert_eq!(
            (ev.kind, ev.kv.key, ev.kv.mod_revision, ev.kv.value),
            want.clone()
        );
    }
    collector.abort();
    eprintln!(
        "get while down failed in {down_latency:?}; restart took {restart:?}; watcher had every event {catch_up:?} after the last write"
    );
}

/// A loopback TCP proxy whose connections can be cut, and which can refuse new
/// ones for a while: a broken connection while etcd itself keeps running.
struct Proxy {
    port: u16,
    /// `true`: cut every connection and refuse new ones.
    blocked: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (blocked, _) = tokio::sync::watch::channel(false);
        let block = blocked.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut blocked = block.subscribe();
                if *blocked.borrow_and_update() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = blocked.wait_for(|b| *b) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            blocked,
            task,
        }
    }

    fn set_blocked(&self, blocked: bool) {
        self.blocked.send_replace(blocked);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A watch whose connection breaks while etcd keeps taking writes resumes from
/// the last revision it received: the events written while it was cut off arrive,
/// once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_connection_cut() {
    let etcd = Etcd::start().await;
    let direct = etcd.connect().await;
    let proxy = Proxy::start(etcd.client_port).await;
    let via_proxy = EtcdStore::connect(EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{}", proxy.port)],
        ..EtcdConfig::default()
    })
    .await
    .expect("connect through proxy");
    let start = direct.current_revision().await.expect("revision");
    let mut stream = via_proxy.watch("/cut/", start).expect("watch");
    let (seen_tx, seen_rx) = tokio::sync::watch::channel(Vec::<(String, Revision)>::new());
    let collector = tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            let ev = item.expect("watch error");
            seen_tx.send_modify(|s| s.push((ev.kv.key.clone(), ev.kv.mod_revision)));
        }
    });
    let wait_seen = |n: usize| {
        let mut rx = seen_rx.clone();
        async move {
            within("watch events", Duration::from_secs(60), async {
                rx.wait_for(|s| s.len() >= n)
                    .await
                    .expect("collector alive");
            })
            .await;
        }
    };
    let mut expected = Vec::new();
    for i in 0..3 {
        let key = format!("/cut/a{i}");
        expected.push((
            key.clone(),
            direct.create(&key, b("1")).await.expect("create"),
        ));
    }
    wait_seen(expected.len()).await;

    proxy.set_blocked(true);
    // Once a read through the proxy fails, the watcher's connection is gone too
    // (one HTTP/2 connection carries both): connection failures are Unavailable.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match via_proxy.get("/cut/a0").await {
            Err(StorageError::Unavailable(_)) => break,
            Ok(_) if Instant::now() < deadline => tokio::task::yield_now().await,
            other => panic!("expected Unavailable through the cut proxy, got {other:?}"),
        }
    }
    // Written while the watcher is cut off: etcd never sent these on the old stream.
    for i in 0..5 {
        let key = format!("/cut/b{i}");
        expected.push((
            key.clone(),
            direct.create(&key, b("2")).await.expect("create"),
        ));
    }
    proxy.set_blocked(false);
    let sentinel = direct.create("/cut/zz", b("end")).await.expect("create");
    expected.push(("/cut/zz".into(), sentinel));
    wait_seen(expected.len()).await;
    assert_eq!(*seen_rx.borrow(), expected);
    collector.abort();
}

#[tokio::test]
async fn connect_without_etcd_is_unavailable() {
    logs();
    let (port, _) = free_ports();
    let t = Instant::now();
    let result = EtcdStore::connect(EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{port}")],
        ..EtcdConfig::default()
    })
    .await;
    assert!(
        matches!(result, Err(StorageError::Unavailable(_))),
        "got {:?}",
        result.err()
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(matches!(
        EtcdStore::connect(EtcdConfig {
            endpoints: vec![],
            ..EtcdConfig::default()
        })
        .await,
        Err(StorageError::Unavailable(_))
    ));
}

/// The configured prefix replaces the leading `/registry` of keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_replaces_registry() {
    let etcd = Etcd::start().await;
    let store = EtcdStore::connect(EtcdConfig {
        prefix: "/ironkube/".into(),
        ..etcd.config()
    })
    .await
    .expect("connect");
    let plain = etcd.connect().await;
    let start = store.current_revision().await.expect("revision");
    let rev = store
        .create("/registry/pods/ns/a", b("a"))
        .await
        .expect("create");
    store
        .create("/registry/pods/ns/b", b("b"))
        .await
        .expect("create");
    store.create("/elsewhere/x", b("x")).await.expect("create");
    // An empty prefix drops `/registry` altogether.
    let bare = EtcdStore::connect(EtcdConfig {
        prefix: String::new(),
        ..etcd.config()
    })
    .await
    .expect("connect");
    bare.create("/registry/bare/x", b("bare"))
        .await
        .expect("create");

    // Raw etcd keys.
    let mut raw = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .expect("raw client");
    let resp = raw
        .get(
            "/",
            Some(
                etcd_client::GetOptions::new()
                    .with_from_key()
                    .with_keys_only(),
            ),
        )
        .await
        .expect("raw get");
    let keys: Vec<&str> = resp
        .kvs()
        .iter()
        .map(|kv| kv.key_str().expect("utf8"))
        .collect();
    assert_eq!(
        keys,
        [
            "/bare/x",
            "/elsewhere/x",
            "/ironkube/pods/ns/a",
            "/ironkube/pods/ns/b"
        ]
    );

    // Reads, lists and watches speak the trait's keys.
    let kv = store
        .get("/registry/pods/ns/a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (kv.key.as_str(), kv.mod_revision),
        ("/registry/pods/ns/a", rev)
    );
    let list = store
        .list(
            "/registry/pods/",
            ListOptions {
                start_after: Some("/registry/pods/ns/a".into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let keys: Vec<&str> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns/b"]);
    let mut w = store.watch("/registry/pods/", start).expect("watch");
    let ev = within("watch", Duration::from_secs(10), w.next())
        .await
        .expect("open")
        .expect("event");
    assert_eq!(ev.kv.key, "/registry/pods/ns/a");
    assert_eq!(
        store
            .get("/elsewhere/x")
            .await
            .expect("get")
            .expect("present")
            .value,
        b("x")
    );
    // The default prefix does not see the re-rooted keys.
    assert!(
        plain
            .get("/registry/pods/ns/a")
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(
        bare.list("/registry/", ListOptions::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        [
            "/registry/bare/x",
            "/registry/elsewhere/x",
            "/registry/ironkube/pods/ns/a",
            "/registry/ironkube/pods/ns/b"
        ]
    );
    // A key that would alias a re-rooted one is refused.
    assert!(store.create("/ironkube/pods/ns/c", b("c")).await.is_err());
}

/// Compaction done by another server: learned at connect, reported by lists, and
/// ending watches that started below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_by_another_server() {
    let etcd = Etcd::start().await;
    let a = etcd.connect().await;
    let r1 = a.create("/c/a", b("1")).await.expect("create");
    let r2 = a.update("/c/a", b("2"), r1).await.expect("update");
    let r3 = a.update("/c/a", b("3"), r2).await.expect("update");

    let other = etcd.connect().await;
    other.compact(r2).await.expect("compact");
    other.compact(r2).await.expect("compacting again is fine");
    assert_eq!(other.compacted_revision(), r2);
    assert!(matches!(
        other.compact(r3 + 100).await,
        Err(StorageError::FutureRevision { .. })
    ));

    // `a` did not see it happen: its watch from r1 is accepted, then ends in Compacted.
    assert_eq!(a.compacted_revision(), 0);
    let mut w = a.watch("/c/", r1).expect("watch");
    match within("compacted watch", Duration::from_secs(10), w.next()).await {
        Some(Err(StorageError::Compacted { compacted, .. })) => assert_eq!(compacted, r2),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        within("end", Duration::from_secs(10), w.next())
            .await
            .is_none()
    );
    assert_eq!(a.compacted_revision(), r2);

    // A list below the compaction names the compacted revision.
    let fresh = etcd.connect().await;
    match fresh
        .list(
            "/c/",
            ListOptions {
                revision: Some(r1),
                ..Default::default()
            },
        )
        .await
    {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (r1, r2)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // A new connection learns the compaction at connect: watch fails synchronously.
    let late = etcd.connect().await;
    assert_eq!(late.compacted_revision(), r2);
    assert!(matches!(
        late.watch("/c/", r1),
        Err(StorageError::Compacted { .. })
    ));
    // Reads at the compacted revision itself still work.
    let at_r2 = late
        .list(
            "/c/",
            ListOptions {
                revision: Some(r2),
                ..Default::default()
            },
        )
        .await
        .expect("list at compacted revision");
    assert_eq!(at_r2.items[0].value, b("2"));
    // Lists ahead of etcd are FutureRevision.
    match late
        .list(
            "/c/",
            ListOptions {
                revision: Some(r3 + 100),
                ..Default::default()
            },
        )
        .await
    {
        Err(StorageError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (r3 + 100, r3));
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// `snapshot_save` writes a file `etcdctl snapshot restore` accepts, and an etcd
/// started on the restored data dir serves the saved data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_save_and_restore() {
    let etcd = Etcd::start().await;
    let store = etcd.connect().await;
    let rev = store
        .create("/registry/configmaps/ns/saved", b("before"))
        .await
        .expect("create");
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("etcd.snapshot");
    let info = store.snapshot_save(&file).await.expect("snapshot");
    assert_eq!(info.bytes, std::fs::metadata(&file).expect("file").len());
    assert!(info.bytes > 32);
    if let Some(r) = info.revision {
        assert!(r >= rev);
    }
    assert!(!work.path().join("etcd.snapshot.part").exists());
    store
        .create("/registry/configmaps/ns/later", b("after"))
        .await
        .expect("create");

    let (_, peer_port) = free_ports();
    let restored = work.path().join("restored");
    let out = Command::new(etcdctl_binary())
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(&file)
        .arg("--data-dir")
        .arg(&restored)
        .arg("--name")
        .arg(MEMBER)
        .arg("--initial-cluster")
        .arg(format!("{MEMBER}=http://127.0.0.1:{peer_port}"))
        .arg("--initial-advertise-peer-urls")
        .arg(format!("http://127.0.0.1:{peer_port}"))
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl snapshot restore: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = Etcd::start_with(None, Some((restored, peer_port))).await;
    let copy_store = copy.connect().await;
    let kv = copy_store
        .get("/registry/configmaps/ns/saved")
        .await
        .expect("get")
        .expect("restored");
    assert_eq!((kv.value, kv.mod_revision), (b("before"), rev));
    assert!(
        copy_store
            .get("/registry/configmaps/ns/later")
            .await
            .expect("get")
            .is_none()
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with
/// the openssl CLI (ECDSA P-256).
fn make_certs(dir: &Path) -> (Tls, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=ironkube-test-ca",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(dir, &ca);
    for (name, cn, ext) in [
        (
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
        ("client", "ironkube", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
        let subj = format!("/CN={cn}");
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let extfile = format!("{name}.ext");
        let mut req = vec!["req", "-new", "-subj", subj.as_str()];
        req.extend(ec);
        req.extend(["-keyout", key.as_str(), "-out", csr.as_str()]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        );
    }
    (
        Tls {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        },
        dir.join("client.crt"),
        dir.join("client.key"),
    )
}

/// TLS with a private CA and client-certificate authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (tls, client_cert, client_key) = make_certs(certs.path());
    let etcd = Etcd::start_with(Some(tls.clone()), None).await;
    let cfg = EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        ca_file: Some(tls.ca.clone()),
        cert_file: Some(client_cert.clone()),
        key_file: Some(client_key.clone()),
        ..EtcdConfig::default()
    };
    // Poll: the port may accept connections before etcd serves.
    let deadline = Instant::now() + READY_DEADLINE;
    let store = loop {
        match EtcdStore::connect(cfg.clone()).await {
            Ok(store) => break store,
            Err(e) if Instant::now() > deadline => panic!("TLS connect: {e}\n{}", etcd.log()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let rev = store
        .create("/registry/tls/a", b("secure"))
        .await
        .expect("create");
    let kv = store
        .get("/registry/tls/a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!((kv.value, kv.mod_revision), (b("secure"), rev));

    // Without a client certificate etcd refuses us.
    let anonymous = EtcdStore::connect(EtcdConfig {
        cert_file: None,
        key_file: None,
        ..cfg.clone()
    })
    .await;
    assert!(
        matches!(anonymous, Err(StorageError::Unavailable(_))),
        "got {:?}",
        anonymous.err()
    );
    // A certificate without its key is a configuration error.
    assert!(matches!(
        EtcdStore::connect(EtcdConfig {
            key_file: None,
            ..cfg.clone()
        })
        .await,
        Err(StorageError::Io(_))
    ));
}
