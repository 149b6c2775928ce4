//! What the engine sees of a job while it runs, and what is left when a run is
//! abandoned.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use compute::*;
use tokio::sync::mpsc;

/// Forwards events to the test while the job runs.
struct Channel(mpsc::UnboundedSender<Event>);

impl EventSink for Channel {
    fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

async fn started(rx: &mut mpsc::UnboundedReceiver<Event>) {
    let wait = async {
        while let Some(event) = rx.recv().await {
            if matches!(event, Event::Started { .. }) {
                return;
            }
        }
        panic!("the run ended before its container started");
    };
    tokio::time::timeout(Duration::from_secs(120), wait).await.expect("container never started");
}

#[tokio::test]
async fn containers_carry_the_isolation_settings() {
    let backend = Arc::new(backend().await);
    let ws = tempfile::tempdir().unwrap();
    let mut c = sh("inspected", "sleep 600");
    c.resources.cpus = Some(0.5);
    c.resources.memory_bytes = Some(128 << 20);
    c.mounts.push(Mount::ro(path("input"), cpath("/codalab/input")));
    let spec = job("inspect", ws.path(), vec![c]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = {
        let (backend, spec) = (backend.clone(), spec.clone());
        tokio::spawn(async move { backend.run(&spec, &Channel(tx)).await })
    };
    started(&mut rx).await;

    let name = format!("{}-inspected", spec.id);
    let inspected = backend.client().inspect_container(&name, None).await.unwrap();
    let host = inspected.host_config.unwrap();
    assert!(host.security_opt.unwrap().iter().any(|o| o.starts_with("no-new-privileges")));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.pids_limit, Some(4096));
    let mount = &host.mounts.unwrap()[0];
    assert_eq!(mount.read_only, Some(true));
    assert_eq!(mount.target.as_deref(), Some("/codalab/input"));
    let labels = inspected.config.unwrap().labels.unwrap();
    assert_eq!(labels[backend_docker::LABEL_JOB], spec.id.as_str());
    assert_eq!(labels[backend_docker::LABEL_WORKER], "backend-docker-tests");

    run.abort();
    let _ = run.await;
    gone(&backend, &spec.id).await;
}

#[tokio::test]
async fn a_cancelled_run_leaves_no_container() {
    let backend = Arc::new(backend().await);
    let ws = tempfile::tempdir().unwrap();
    let spec = job("cancel", ws.path(), vec![sh("a", "sleep 600"), sh("b", "sleep 600")]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = {
        let (backend, spec) = (backend.clone(), spec.clone());
        tokio::spawn(async move { backend.run(&spec, &Channel(tx)).await })
    };
    started(&mut rx).await;
    assert_eq!(containers_of(&backend, &spec.id).await.len(), 2);
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    gone(&backend, &spec.id).await;
}

#[tokio::test]
async fn cleanup_removes_what_a_dead_worker_left() {
    let backend = backend().await;
    let id = job_id("leftover");
    let body = bollard::models::ContainerCreateBody {
        image: Some(busybox().to_string()),
        cmd: Some(vec!["sleep".into(), "600".into()]),
        labels: Some([(backend_docker::LABEL_JOB.to_owned(), id.to_string())].into()),
        ..Default::default()
    };
    backend.ensure_image(&busybox(), None).await.unwrap();
    let created = backend.client().create_container(None, body).await.unwrap();
    backend.client().start_container(&created.id, None).await.unwrap();
    assert_eq!(containers_of(&backend, &id).await.len(), 1);
    backend.cleanup(&id).await.unwrap();
    assert!(containers_of(&backend, &id).await.is_empty());
}

/// Removal after a cancel happens in the background: wait for it, within reason.
async fn gone(backend: &backend_docker::DockerBackend, id: &JobId) {
    for _ in 0..300 {
        if containers_of(backend, id).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("containers of {id} are still there: {:?}", containers_of(backend, id).await);
}
