//! Helpers for lifecycle tests: bundles built here, staged in Azurite or the
//! S3-compatible server through the official SDKs (`tests/python/blobstore.py`),
//! programs run on the real Docker engine.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use backend_docker::{DockerBackend, DockerConfig};
use codalab_run::{Recorded, Runner, RunnerConfig, Status, StatusUpdate};
use serde_json::{Map, Value, json};

pub fn python() -> PathBuf {
    std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".into())
        .into()
}

pub fn busybox() -> String {
    std::env::var("ACI_TEST_BUSYBOX")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/busybox:latest".into())
}

pub fn python_image() -> String {
    std::env::var("ACI_TEST_PYTHON")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/python:bookworm".into())
}

/// A blob store reached through the official SDK of its kind.
#[derive(Clone, Copy, Debug)]
pub enum Store {
    Azurite,
    S3,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Azurite => "azurite",
            Store::S3 => "s3",
        }
    }
}

/// One test's container (bucket) in a store.
pub struct Blobs {
    pub store: Store,
    pub container: String,
}

fn blobstore(args: &[&str]) -> (i32, Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/blobstore.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python venv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "blobstore {args:?}: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("{}");
    (code, serde_json::from_str(line).unwrap())
}

impl Blobs {
    pub fn new(store: Store, test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let container =
            format!("t{}-{}-{}", std::process::id(), nanos, test).to_lowercase().replace('_', "-");
        let container: String = container.chars().take(60).collect();
        Blobs { store, container: container.trim_end_matches('-').to_owned() }
    }

    fn args<'a>(&'a self, verb: &'a str, name: &'a str) -> Vec<&'a str> {
        vec![verb, "--store", self.store.name(), "--container", &self.container, "--name", name]
    }

    /// Uploads a file; returns a read URL.
    pub fn put(&self, name: &str, file: &Path) -> String {
        let mut args = self.args("put", name);
        let file = file.to_str().unwrap();
        args.extend(["--file", file]);
        blobstore(&args).1["url"].as_str().unwrap().to_owned()
    }

    /// Uploads bytes; returns a read URL.
    pub fn put_bytes(&self, name: &str, bytes: &[u8]) -> String {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        self.put(name, tmp.path())
    }

    /// A write URL for a blob the worker will create.
    pub fn sign_put(&self, name: &str) -> String {
        blobstore(&self.args("sign-put", name)).1["url"].as_str().unwrap().to_owned()
    }

    /// A read URL for a blob that may not exist.
    pub fn sign_get(&self, name: &str) -> String {
        blobstore(&self.args("sign-get", name)).1["url"].as_str().unwrap().to_owned()
    }

    /// A blob's bytes, or `None` when it does not exist.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut args = self.args("get", name);
        let path = out.path().to_str().unwrap();
        args.extend(["--out", path]);
        match blobstore(&args).0 {
            0 => Some(std::fs::read(out.path()).unwrap()),
            _ => None,
        }
    }

    pub fn get_text(&self, name: &str) -> Option<String> {
        self.get(name).map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// A zip made of `(name, contents, mode)` entries.
pub fn zip(entries: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, contents, mode) in entries {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(*name, options).unwrap();
            w.write_all(contents.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

/// The files of a zip, name to contents.
pub fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        out.insert(f.name().unwrap().into_owned(), s);
    }
    out
}

/// The upload targets of a task, as the site signs them: key and blob name.
pub const TARGETS: [(&str, &str); 7] = [
    ("stdout_url", "stdout.txt"),
    ("stderr_url", "stderr.txt"),
    ("output_url", "output.zip"),
    ("private_output_url", "private_output.zip"),
    ("ingestion_program_output_url", "ingestion_stdout.txt"),
    ("ingestion_program_stderr_url", "ingestion_stderr.txt"),
    ("detailed_results_url", "detailed_results.html"),
];

/// `task_args` for a run bundle already in the store.
pub fn task_args(
    blobs: &Blobs,
    run_txt_url: &str,
    image: &str,
    predict: bool,
    limit: u64,
) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("submission_id".into(), json!(std::process::id()));
    args.insert("docker_image".into(), json!(image));
    args.insert("ingestion_program_docker_image".into(), json!(image));
    args.insert("bundle_url".into(), json!(run_txt_url));
    args.insert("secret".into(), json!("test-secret-0000"));
    args.insert("execution_time_limit".into(), json!(limit));
    args.insert("predict".into(), json!(predict));
    for (key, name) in TARGETS {
        args.insert(key.into(), json!(blobs.sign_put(name)));
    }
    args
}

pub async fn runner(work: &Path) -> Runner<Arc<DockerBackend>> {
    runner_with(work, |_| {}).await
}

pub async fn runner_with(
    work: &Path,
    adjust: impl FnOnce(&mut RunnerConfig),
) -> Runner<Arc<DockerBackend>> {
    let backend = DockerBackend::connect(DockerConfig {
        worker: "codalab-run-tests".into(),
        ..Default::default()
    })
    .await
    .expect("the Docker engine must run: scripts/dev-services up");
    let mut config = RunnerConfig::new(work);
    config.hostname = "test-host".into();
    adjust(&mut config);
    Runner::new(Arc::new(backend), config)
}

pub fn last(statuses: &Recorded) -> StatusUpdate {
    let updates = statuses.updates();
    assert_eq!(updates.first().map(|u| u.status), Some(Status::Running), "running comes first");
    updates.last().cloned().unwrap()
}

/// Nothing is left under the work root but the (empty) folders the runner keeps.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}
