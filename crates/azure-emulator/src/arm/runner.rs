//! Running one container group on the local Docker engine through `backend-docker`,
//! and turning what happens (pulls, starts, exits, failures) into its instance view.
//!
//! Each group gets one task. It waits out the provisioning delay, pulls each image
//! (reporting `Pulling`, `Pulled` or a failed pull), then runs the job with
//! [`ComputeBackend::run`] and applies its events as they come. A stop, a delete or
//! the emulator's shutdown cancels the task; a Spot eviction ends it from inside.
//! Either way, when the task ends no container of the group is left on the engine.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backend_docker::DockerBackend;
use compute::{ComputeBackend as _, Error, Event, ImageRef, JobId, JobSpec, Outcome, error_chain};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ArmService;
use super::group::Group;

/// How often removal is tried and checked before the task gives up (50 ms apart).
const REMOVE_ATTEMPTS: usize = 200;

/// One image to pull and the containers (by index) that use it.
#[derive(Debug)]
pub(crate) struct ImagePull {
    pub(crate) image: ImageRef,
    /// As the request wrote it, for event messages.
    pub(crate) text: String,
    pub(crate) containers: Vec<usize>,
    /// Set when an injected fault makes this pull fail: the pattern that matched.
    pub(crate) forced_failure: Option<String>,
}

/// What the task of one group does.
#[derive(Debug)]
pub(crate) struct RunPlan {
    pub(crate) key: super::GroupKey,
    pub(crate) uid: u64,
    pub(crate) job: JobSpec,
    pub(crate) pulls: Vec<ImagePull>,
    /// Waited before anything is pulled (injected slow provisioning).
    pub(crate) delay: Duration,
    /// Set for a Spot group to be evicted: how long after all its containers
    /// started.
    pub(crate) evict_after: Option<Duration>,
}

/// How the work of a group ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Ran to its end, or failed; the instance view says which.
    Done,
    /// Cancelled from outside (stop, delete, shutdown); the canceller updates the view.
    Cancelled,
    /// Evicted (an injected Spot eviction).
    Evicted,
}

/// The task of one group.
pub(crate) async fn run(service: Arc<ArmService>, plan: RunPlan, cancel: CancellationToken) {
    let ended = tokio::select! {
        biased;
        () = cancel.cancelled() => Ended::Cancelled,
        ended = drive(&service, &plan) => ended,
    };
    // Dropping the run above already started removing the containers (in the
    // background); this waits until they are gone.
    if let Some(backend) = service.connected_docker().await {
        remove_containers(&backend, &plan.job.id, &plan.key.1).await;
    }
    if ended == Ended::Evicted {
        service.update(&plan.key, plan.uid, Group::evicted);
        tracing::info!(group = %plan.key.1, "spot container group evicted (injected)");
    }
    tracing::debug!(group = %plan.key.1, ?ended, "container group task ended");
}

/// Removes the job's containers and waits until the engine lists none (a removal
/// that another call already started is answered before it is done).
async fn remove_containers(backend: &DockerBackend, job: &JobId, group: &str) {
    use bollard::query_parameters::ListContainersOptions;
    let label = format!("{}={job}", backend_docker::LABEL_JOB);
    for _ in 0..REMOVE_ATTEMPTS {
        if let Err(err) = backend.remove_job_containers(job).await {
            tracing::warn!(group, error = %error_chain(&err), "could not remove containers");
        }
        let filters = std::collections::HashMap::from([("label".to_owned(), vec![label.clone()])]);
        let options =
            ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        match backend.client().list_containers(Some(options)).await {
            Ok(left) if left.is_empty() => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => {
                tracing::warn!(group, error = %err, "could not list the group's containers");
                return;
            }
        }
    }
    tracing::warn!(group, "containers still there after removal");
}

async fn drive(service: &ArmService, plan: &RunPlan) -> Ended {
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    if !service.update(&plan.key, plan.uid, |g| g.provisioning = "Creating") {
        return Ended::Done;
    }
    let backend = match service.docker().await {
        Ok(backend) => backend,
        Err(message) => {
            service.update(&plan.key, plan.uid, |g| {
                g.platform_failed(format!("The container runtime is not available: {message}"))
            });
            return Ended::Done;
        }
    };

    for pull in &plan.pulls {
        service.update(&plan.key, plan.uid, |g| {
            for &i in &pull.containers {
                g.containers[i].event("Pulling", false, format!("pulling image \"{}\"", pull.text));
            }
        });
        let pulled = match &pull.forced_failure {
            Some(pattern) => {
                Err(format!("the emulator was told to fail pulls of images matching \"{pattern}\""))
            }
            None => {
                backend.ensure_image(&pull.image, plan.job.registry.as_ref()).await.map_err(|err| {
                    match err {
                        Error::ImageUnavailable { reason, .. } => reason,
                        err => error_chain(&err),
                    }
                })
            }
        };
        match pulled {
            Ok(()) => service.update(&plan.key, plan.uid, |g| {
                for &i in &pull.containers {
                    let message = format!("Successfully pulled image \"{}\"", pull.text);
                    g.containers[i].event("Pulled", false, message);
                }
            }),
            Err(reason) => {
                tracing::info!(group = %plan.key.1, image = %pull.text, %reason, "image pull failed");
                service.update(&plan.key, plan.uid, |g| {
                    g.pull_failed(&pull.containers, &pull.text, &reason)
                });
                return Ended::Done;
            }
        };
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<(Event, SystemTime)>();
    let sink = move |event: Event| {
        let _ = tx.send((event, SystemTime::now()));
    };
    let run = backend.run(&plan.job, &sink);
    tokio::pin!(run);
    let mut started = 0;
    let mut evict_at: Option<Instant> = None;
    loop {
        tokio::select! {
            Some((event, at)) = rx.recv() => {
                if apply(service, plan, event, at) {
                    started += 1;
                }
                if started == plan.job.containers.len() && evict_at.is_none() {
                    evict_at = plan.evict_after.map(|after| Instant::now() + after);
                }
            }
            result = &mut run => {
                while let Ok((event, at)) = rx.try_recv() {
                    apply(service, plan, event, at);
                }
                service.update(&plan.key, plan.uid, |g| finish(g, plan, result));
                return Ended::Done;
            }
            () = tokio::time::sleep_until(evict_at.unwrap_or_else(Instant::now)),
                if evict_at.is_some() => return Ended::Evicted,
        }
    }
}

/// Applies one event of the backend; true when it was a start.
fn apply(service: &ArmService, plan: &RunPlan, event: Event, at: SystemTime) -> bool {
    let index =
        |name: &compute::ContainerName| plan.job.containers.iter().position(|c| &c.name == name);
    match event {
        Event::Started { container } => {
            let Some(i) = index(&container) else { return false };
            service.update(&plan.key, plan.uid, |g| g.container_started(i, at));
            true
        }
        Event::Exited { container, exit_code } => {
            if let Some(i) = index(&container) {
                // The group settles only when the run is over: by then the output is
                // all in the log files and the containers are gone.
                service.update(&plan.key, plan.uid, |g| g.containers[i].exited(exit_code, at));
            }
            false
        }
        _ => false,
    }
}

/// The run is over: exact times and codes from the engine, or the failure.
fn finish(group: &mut Group, plan: &RunPlan, result: compute::Result<Outcome>) {
    match result {
        Ok(outcome) => {
            for (i, c) in outcome.containers.iter().enumerate() {
                let Some(view) = group.containers.get_mut(i) else { continue };
                let finish = c.finished_at.unwrap_or_else(SystemTime::now);
                view.exited(c.exit_code, finish);
                if c.started_at.is_some() {
                    view.current.start = c.started_at;
                }
                view.current.finish = Some(finish);
                view.current.exit_code = c.exit_code;
                if c.oom_killed {
                    view.current.detail = "OOMKilled".to_owned();
                }
            }
            group.settle();
        }
        Err(Error::Platform { operation: "start container", source, .. }) => {
            // The backend starts containers in order: the first one without a start
            // is the one that failed.
            let index =
                group.containers.iter().position(|c| c.current.start.is_none()).unwrap_or(0);
            let docker_says = error_chain(source.as_ref());
            // As the Docker CLI does: 127 for a program that is not there, 126 for one
            // that cannot be run.
            let exit_code = if docker_says.contains("no such file or directory")
                || docker_says.contains("not found")
            {
                127
            } else if docker_says.contains("permission denied") {
                126
            } else {
                128
            };
            let name = &plan.job.containers[index].name;
            let message = format!("Error: failed to start container \"{name}\": {docker_says}");
            group.start_failed(index, exit_code, message);
        }
        Err(Error::ImageUnavailable { image, reason }) => {
            let indexes: Vec<usize> = (0..plan.job.containers.len())
                .filter(|&i| plan.job.containers[i].image.to_string() == image)
                .collect();
            group.pull_failed(&indexes, &image, &reason);
        }
        Err(err) => group.platform_failed(error_chain(&err)),
    }
}
