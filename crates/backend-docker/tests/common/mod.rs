//! Shared helpers for the tests against the real Docker engine that
//! `scripts/dev-services up` starts, with images from its local registries.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use backend_docker::{DockerBackend, DockerConfig, LABEL_JOB};
use bollard::query_parameters::ListContainersOptions;
use compute::*;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Busybox from the open local registry.
pub fn busybox() -> ImageRef {
    ImageRef::parse(&env_or("ACI_TEST_BUSYBOX", "127.0.0.1:5000/aci-worker-test/busybox:latest"))
        .unwrap()
}

/// Debian bookworm with python3, from the open local registry.
pub fn python() -> ImageRef {
    ImageRef::parse(&env_or("ACI_TEST_PYTHON", "127.0.0.1:5000/aci-worker-test/python:bookworm"))
        .unwrap()
}

/// Connects to the engine; a missing engine fails the test loudly.
pub async fn backend() -> DockerBackend {
    let config = DockerConfig { worker: "backend-docker-tests".into(), ..DockerConfig::default() };
    DockerBackend::connect(config)
        .await
        .expect("the Docker engine must be running: scripts/dev-services up")
}

/// A job id unique to this test run.
pub fn job_id(test: &str) -> JobId {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    JobId::derive(&[test, &std::process::id().to_string(), &nanos.to_string()])
}

pub fn name(s: &str) -> ContainerName {
    ContainerName::new(s).unwrap()
}

pub fn path(s: &str) -> WorkspacePath {
    WorkspacePath::new(s).unwrap()
}

pub fn cpath(s: &str) -> ContainerPath {
    ContainerPath::new(s).unwrap()
}

/// A container running `sh -c script` in busybox, with stdout and stderr kept as
/// `<name>.out` and `<name>.err`.
pub fn sh(container: &str, script: &str) -> ContainerSpec {
    let mut c = ContainerSpec::new(
        name(container),
        busybox(),
        vec!["sh".into(), "-c".into(), script.into()],
    );
    c.stdout = Some(path(&format!("{container}.out")));
    c.stderr = Some(path(&format!("{container}.err")));
    c
}

pub fn job(test: &str, workspace: &std::path::Path, containers: Vec<ContainerSpec>) -> JobSpec {
    let mut spec = JobSpec::new(job_id(test), workspace);
    spec.containers = containers;
    spec.time_limit = Some(Duration::from_secs(120));
    spec
}

pub fn read(workspace: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(workspace.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every container, running or not, labelled with this job.
pub async fn containers_of(backend: &DockerBackend, job: &JobId) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_JOB}={job}")])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let list = backend.client().list_containers(Some(options)).await.unwrap();
    list.into_iter().filter_map(|c| c.names.and_then(|n| n.into_iter().next())).collect()
}

/// Records events for later assertions.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}
