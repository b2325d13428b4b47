//! Differential testing against the reference API server: one committed
//! request script (`conformance/differential/script.yaml`) is replayed to
//! upstream's `kube-apiserver` and to ironkube's API server side by side; both
//! answers are normalised (`normalise`), compared structurally (`compare`),
//! and every difference must be explained by the allow-list
//! (`conformance/differential/allow.yaml`), whose entries must each still match
//! something.
//!
//! ironkube runs in this process (`apiserver::server::start`, what
//! `ironkube apiserver` runs), so the test always exercises the code it was
//! built with.

pub mod allow;
pub mod compare;
pub mod normalise;
pub mod runner;
pub mod script;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::reference::{ReferenceApiServer, ReferenceError};
use allow::{Category, Entry};
use compare::Difference;

#[derive(Debug, Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("step id {0} appears twice")]
    DuplicateStep(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("starting ironkube's API server: {0}")]
    Ironkube(#[from] apiserver::server::ServerError),
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("client for {0}")]
    Client(String),
    #[error("step {step}: request failed: {message}")]
    Request { step: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The committed script and allow-list.
pub fn default_files() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    (dir.join("script.yaml"), dir.join("allow.yaml"))
}

/// The outcome of one run.
pub struct Report {
    pub steps: usize,
    pub kinds: usize,
    pub entries: Vec<Entry>,
    pub allowed: Vec<(usize, Difference)>,
    pub unexplained: Vec<Difference>,
    pub stale: Vec<usize>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.unexplained.is_empty() && self.stale.is_empty()
    }

    /// Allowed differences per category.
    pub fn counts(&self) -> Vec<(Category, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for (i, _) in &self.allowed {
            if let Some(e) = self.entries.get(*i) {
                *counts.entry(e.category).or_insert(0) += 1;
            }
        }
        counts.into_iter().collect()
    }
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// One difference as the report shows it.
fn describe(out: &mut String, label: &str, d: &Difference, reason: &str) {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    let _ = writeln!(
        out,
        "{label} step={} path={}{reason}\n    reference: {}\n    ironkube:  {}",
        d.step,
        d.path,
        short(&d.reference),
        short(&d.ours)
    );
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "differential run: {} steps ({} kinds in the CRUD table); {} allowed differences {:?}, {} unexplained, {} stale allow-list entries",
            self.steps,
            self.kinds,
            self.allowed.len(),
            self.counts(),
            self.unexplained.len(),
            self.stale.len()
        );
        for d in &self.unexplained {
            describe(&mut s, "UNEXPLAINED", d, "");
        }
        for i in &self.stale {
            if let Some(e) = self.entries.get(*i) {
                let _ = writeln!(
                    s,
                    "STALE allow-list entry (matches nothing): step={} path={} ({})",
                    e.step, e.path, e.reason
                );
            }
        }
        if std::env::var_os("DIFFERENTIAL_VERBOSE").is_some() {
            for (i, d) in &self.allowed {
                let reason = self.entries.get(*i).map_or("", |e| e.reason.as_str());
                describe(&mut s, "allowed", d, reason);
            }
        }
        f.write_str(&s)
    }
}

/// Writes both normalised answers of a step under `dir` (`DIFFERENTIAL_DUMP`),
/// for reading what a difference is about.
fn dump_step(dir: &Path, id: &str, r: &runner::Observed, o: &runner::Observed) -> Result<()> {
    let file = |side: &str| dir.join(format!("{}.{side}", id.replace('/', "_")));
    let text = |obs: &runner::Observed| {
        let body = match &obs.body {
            runner::Body::Json(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            runner::Body::Text(t) => t.clone(),
            runner::Body::Empty => String::new(),
        };
        format!("{} {:?}\n{body}\n", obs.status, obs.content_type)
    };
    std::fs::create_dir_all(dir).map_err(Error::Io)?;
    std::fs::write(file("reference"), text(r)).map_err(Error::Io)?;
    std::fs::write(file("ironkube"), text(o)).map_err(Error::Io)
}

/// Starts both servers, replays the script and compares.
pub fn run(script_path: &Path, allow_path: &Path) -> Result<Report> {
    let script = script::Script::load(script_path)?;
    let entries = allow::load(allow_path)?;
    let reference = ReferenceApiServer::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    let ours_dir = tempfile::tempdir().map_err(Error::Io)?;
    let (ref_obs, our_obs) = runtime.block_on(async {
        let running = apiserver::server::start(apiserver::server::ServerConfig {
            data_dir: ours_dir.path().to_path_buf(),
            listen: ([127, 0, 0, 1], 0).into(),
            kubeconfig: ours_dir.path().join("admin.kubeconfig"),
            compaction_interval: None,
            etcd: None,
            auth: Default::default(),
            encryption_config: None,
        })
        .await?;
        let kubeconfig = running.kubeconfig.clone();
        tokio::spawn(running.serve(std::future::pending()));
        let ref_side = runner::Side::connect(&reference.kubeconfig).await?;
        let our_side = runner::Side::connect(&kubeconfig).await?;
        let (r, o) = tokio::join!(ref_side.run(&script.steps), our_side.run(&script.steps));
        Ok::<_, Error>((r?, o?))
    })?;
    runtime.shutdown_background();
    let (mut nr, mut no) = (
        normalise::Normaliser::default(),
        normalise::Normaliser::default(),
    );
    let mut differences = Vec::new();
    let dump = std::env::var_os("DIFFERENTIAL_DUMP").map(PathBuf::from);
    for ((step, mut r), mut o) in script.steps.iter().zip(ref_obs).zip(our_obs) {
        for (n, obs) in [(&mut nr, &mut r), (&mut no, &mut o)] {
            n.set_step(&step.id);
            if let runner::Body::Json(v) = &mut obs.body {
                n.normalise(v);
            }
        }
        if let Some(dir) = &dump {
            dump_step(dir, &step.id, &r, &o)?;
        }
        differences.extend(compare::compare(
            &step.id,
            &step.select,
            step.ignore_body,
            &r,
            &o,
        ));
    }
    let (allowed, unexplained, stale) = allow::apply(&entries, differences);
    Ok(Report {
        steps: script.steps.len(),
        kinds: script.kinds,
        entries,
        allowed,
        unexplained,
        stale,
    })
}
