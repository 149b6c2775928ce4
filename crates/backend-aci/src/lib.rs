//! A [`ComputeBackend`] on Azure Container Instances.
//!
//! Each job becomes one container group named after the job id, with one container
//! per [`ContainerSpec`](compute::ContainerSpec). The workspace reaches the
//! containers through Azure File shares staged by `afs-staging`: every mounted
//! workspace folder is a share of its own, mounted read-only or not where the spec
//! says, so a folder only some containers mount (hidden reference data) is seen by
//! those alone. Containers run argv exactly as given: under a fixed `/bin/sh`
//! wrapper that takes every value as a positional argument (never splicing input
//! into a shell string), changes to the working directory and sends stdout and
//! stderr to files on a share; for an image without a shell the group is run again
//! without the wrapper and the logs API supplies the output.
//!
//! The backend polls the group (quickly at first, then less often, honouring
//! `Retry-After`), reports containers starting and exiting, follows watched files,
//! stops the group at the time limit, brings writable folders and output back, and
//! always deletes the group and its shares, also when the run future is dropped.
//! ARM throttling and server errors are retried; quota and capacity errors are
//! retried with backoff for a configured time; a Spot eviction is retried as
//! Regular; validation errors fail at once with ARM's message; an image that cannot
//! be pulled fails with ACI's event text.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
//! use afs_staging::auth::SharedKey;
//! use backend_aci::{AciBackend, AciConfig, ArmClient, ArmTarget, credentials};
//! use compute::ComputeBackend;
//!
//! # async fn example(spec: compute::JobSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let auth = credentials::SdkAuth::from_file("/etc/aci-worker/azure_creds".as_ref())?;
//! let http = credentials::http_client(None)?;
//! let arm = ArmClient::new(http.clone(), auth.credential(&http)?, ArmTarget {
//!     endpoint: auth.resource_manager_endpoint_url.clone(),
//!     subscription_id: auth.subscription_id.clone(),
//!     resource_group: "codalab-workers".into(),
//!     api_version: backend_aci::API_VERSION.into(),
//! });
//! let key = SharedKey::new("mystorageaccount", "base64key==")?;
//! let files = FileClient::new(ClientConfig::new(
//!     ClientConfig::azure_endpoint("mystorageaccount"),
//!     Credential::SharedKey(key),
//! ))?;
//! let stager = Stager::shares(files, StagingConfig::default());
//! let backend = AciBackend::new(arm, stager, AciConfig::new("westeurope", "worker-1"));
//! let outcome = backend.run(&spec, &|event| println!("{event:?}")).await?;
//! println!("succeeded: {}", outcome.succeeded());
//! # Ok(())
//! # }
//! ```

pub mod arm;
pub mod credentials;
pub mod model;
mod plan;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use afs_staging::Stager;
use backoff::Backoff;
use compute::{
    BoxFuture, ComputeBackend, ContainerOutcome, Error, Event, EventSink, JobId, JobSpec, Outcome,
    WorkspacePath,
};

pub use arm::{ArmClient, ArmError, ArmTarget};

use crate::model::{ContainerGroup, ContainerState};
use crate::plan::Plan;

/// The Microsoft.ContainerInstance API version the backend speaks.
pub const API_VERSION: &str = "2023-05-01";

/// Tag naming the job of a container group.
pub const TAG_JOB: &str = "aci-worker-job";
/// Tag naming the worker that created a container group.
pub const TAG_WORKER: &str = "aci-worker-worker";
/// Tag holding a container group's creation time (seconds since the epoch).
pub const TAG_CREATED: &str = "aci-worker-created";

/// ACI priority of container groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Full price, never evicted.
    Regular,
    /// Cheaper, may be evicted; an evicted job is run again as Regular.
    Spot,
}

impl Priority {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Regular => "Regular",
            Priority::Spot => "Spot",
        }
    }
}

/// How the backend behaves.
#[derive(Clone, Debug)]
pub struct AciConfig {
    /// The Azure region for container groups.
    pub location: String,
    /// This worker's name, tagged on every group (and share) it creates.
    pub worker: String,
    /// Regular or Spot.
    pub priority: Priority,
    /// CPU cores for a container that does not say.
    pub default_cpus: f64,
    /// Memory in GB for a container that does not say.
    pub default_memory_gb: f64,
    /// GPU SKU when a container asks for GPUs without naming one.
    pub gpu_sku: String,
    /// First pause between polls.
    pub poll_initial: Duration,
    /// Longest pause between polls.
    pub poll_max: Duration,
    /// How long a group may take to get a container running (image pulls included).
    pub provisioning_timeout: Duration,
    /// How long quota and capacity errors are retried before the job fails.
    pub capacity_retry_for: Duration,
    /// First pause after a quota or capacity error (doubling up to a minute).
    pub capacity_backoff: Duration,
}

impl AciConfig {
    /// Defaults for a region and worker name.
    pub fn new(location: impl Into<String>, worker: impl Into<String>) -> Self {
        AciConfig {
            location: location.into(),
            worker: worker.into(),
            priority: Priority::Regular,
            default_cpus: 1.0,
            default_memory_gb: 1.5,
            gpu_sku: "V100".into(),
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(15),
            provisioning_timeout: Duration::from_secs(30 * 60),
            capacity_retry_for: Duration::from_secs(15 * 60),
            capacity_backoff: Duration::from_secs(5),
        }
    }
}

/// What an orphan sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Container groups deleted.
    pub groups: Vec<String>,
    /// Shares deleted.
    pub shares: Vec<String>,
}

/// Runs jobs on Azure Container Instances. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AciBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    arm: ArmClient,
    stager: Stager,
    config: AciConfig,
}

/// How following a group ended.
enum Followed {
    Done(Outcome),
    Evicted,
    NoShell(Vec<usize>),
}

impl AciBackend {
    /// A backend creating groups through `arm` and staging through `stager`.
    pub fn new(arm: ArmClient, stager: Stager, config: AciConfig) -> Self {
        AciBackend { inner: Arc::new(Inner { arm, stager, config }) }
    }

    /// The ARM client.
    pub fn arm(&self) -> &ArmClient {
        &self.inner.arm
    }

    /// The stager.
    pub fn stager(&self) -> &Stager {
        &self.inner.stager
    }

    /// The container group `run` would create first for `spec` (for inspection and
    /// dry runs; nothing is sent).
    pub fn container_group(&self, spec: &JobSpec) -> Result<ContainerGroup, Error> {
        spec.validate()?;
        let plan = Plan::new(spec)?;
        let wrapped = vec![true; spec.containers.len()];
        plan.group(
            spec,
            &self.inner.stager,
            &self.inner.config,
            self.inner.config.priority,
            &wrapped,
        )
    }

    /// Deletes this worker's container groups and shares older than `older_than`:
    /// what a crash or a lost connection left behind.
    pub async fn sweep_orphans(&self, older_than: Duration) -> Result<SweepReport, Error> {
        let inner = &self.inner;
        let now = unix_now();
        let mut report = SweepReport::default();
        let groups = inner.arm.list_groups().await.map_err(arm_error("list container groups"))?;
        // Jobs whose group stays: their shares are in use, however old.
        let mut live = std::collections::HashSet::new();
        for group in groups {
            let tags = group.tags.clone().unwrap_or_default();
            if tags.get(TAG_WORKER) != Some(&inner.config.worker) {
                continue;
            }
            let created = tags.get(TAG_CREATED).and_then(|c| c.parse::<u64>().ok());
            if created.is_none_or(|c| now.saturating_sub(c) < older_than.as_secs()) {
                live.extend(tags.get(TAG_JOB).cloned());
                continue;
            }
            let Some(name) = group.name.clone() else { continue };
            inner.arm.delete_group(&name).await.map_err(arm_error("delete container group"))?;
            if let Some(job) = tags.get(TAG_JOB).and_then(|j| JobId::new(j.clone()).ok()) {
                inner.stager.discard(&job).await.map_err(staging_error("delete shares"))?;
            }
            report.groups.push(name);
        }
        let shares = inner
            .stager
            .stale_shares(&inner.config.worker, older_than.as_secs())
            .await
            .map_err(staging_error("list shares"))?;
        for share in shares {
            if share.job.as_ref().is_some_and(|job| live.contains(job)) {
                continue;
            }
            let deleted = inner
                .stager
                .delete_share(&share.name)
                .await
                .map_err(staging_error("delete share"))?;
            if deleted {
                report.shares.push(share.name);
            }
        }
        Ok(report)
    }

    async fn cleanup_job(&self, job: &JobId) -> Result<(), Error> {
        self.inner
            .arm
            .delete_group(job.as_str())
            .await
            .map_err(arm_error("delete container group"))?;
        self.inner.stager.discard(job).await.map_err(staging_error("delete shares"))?;
        Ok(())
    }

    async fn run_job(&self, spec: &JobSpec, events: &dyn EventSink) -> Result<Outcome, Error> {
        let inner = &self.inner;
        let plan = Plan::new(spec)?;
        for volume in &plan.volumes {
            let path = volume.source.under(&spec.workspace);
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::InvalidSpec(format!(
                        "{} is a file; ACI mounts folders only",
                        volume.source
                    )));
                }
                Err(e) => {
                    return Err(Error::InvalidSpec(format!(
                        "mounted folder {}: {e}",
                        volume.source
                    )));
                }
            }
        }
        let mut wrapped = vec![true; spec.containers.len()];
        let mut priority = inner.config.priority;
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            inner
                .stager
                .publish(&spec.id, &spec.workspace, &plan.volume_names(), &plan.uploads())
                .await
                .map_err(staging_error("stage the workspace on Azure Files"))?;
            let group = plan.group(spec, &inner.stager, &inner.config, priority, &wrapped)?;
            self.create_group(spec.id.as_str(), &group).await?;
            for c in &spec.containers {
                events.emit(Event::Created { container: c.name.clone() });
            }
            match self.follow(spec, &plan, events, &wrapped).await? {
                Followed::Done(outcome) => break outcome,
                Followed::Evicted if attempts < 3 => {
                    tracing::warn!(job = %spec.id, "Spot container group evicted; running it again as Regular");
                    priority = Priority::Regular;
                }
                Followed::Evicted => {
                    return Err(Error::platform(
                        "run container group",
                        true,
                        "the container group was evicted again",
                    ));
                }
                Followed::NoShell(containers) if attempts < 3 => {
                    for i in containers {
                        tracing::info!(job = %spec.id, container = %spec.containers[i].name,
                            "image has no /bin/sh: running it without the wrapper, output from the logs API");
                        wrapped[i] = false;
                    }
                }
                Followed::NoShell(_) => {
                    return Err(Error::platform(
                        "run container group",
                        false,
                        "containers could not start",
                    ));
                }
            }
            // Start the next attempt from a clean slate: the group and what it wrote.
            self.cleanup_job(&spec.id).await?;
        };

        inner
            .stager
            .collect(&spec.id, &spec.workspace, &plan.downloads())
            .await
            .map_err(staging_error("bring the results back from Azure Files"))?;
        for (i, c) in spec.containers.iter().enumerate() {
            if !wrapped[i] {
                let text =
                    inner.arm.logs(spec.id.as_str(), c.name.as_str()).await.unwrap_or_else(|e| {
                        format!("(the container's log could not be read: {e})\n")
                    });
                if let Some(stdout) = &c.stdout {
                    write_file(&stdout.under(&spec.workspace), text.as_bytes())?;
                }
            }
            for local in [&c.stdout, &c.stderr].into_iter().flatten() {
                let path = local.under(&spec.workspace);
                if !path.exists() {
                    write_file(&path, b"")?;
                }
            }
        }
        Ok(outcome)
    }

    /// PUTs the group, waiting out quota and capacity errors for a while.
    async fn create_group(&self, name: &str, group: &ContainerGroup) -> Result<(), Error> {
        let config = &self.inner.config;
        let started = Instant::now();
        let mut backoff = Backoff::new(config.capacity_backoff, Duration::from_secs(60));
        loop {
            let error = match self.inner.arm.put_group(name, group).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let Some(refusal) = Refusal::of(&error) else {
                return Err(match error.status() {
                    Some(400 | 422) => {
                        Error::InvalidSpec(format!("ACI refused the container group: {error}"))
                    }
                    _ => Error::platform("create container group", error.is_transient(), error),
                });
            };
            if started.elapsed() >= config.capacity_retry_for {
                return Err(refusal.give_up(error, &config.location, started.elapsed()));
            }
            let delay = backoff.next_delay();
            tracing::warn!(group = name, error = %error, delay_s = delay.as_secs(), "ACI cannot take the group yet; waiting");
            tokio::time::sleep(delay).await;
        }
    }

    /// Polls the group until its containers are done, the deadline passes, it is
    /// evicted, or an image turns out to have no shell.
    async fn follow(
        &self,
        spec: &JobSpec,
        plan: &Plan,
        events: &dyn EventSink,
        wrapped: &[bool],
    ) -> Result<Followed, Error> {
        let inner = &self.inner;
        let name = spec.id.as_str();
        let created = Instant::now();
        let mut running_since: Option<Instant> = None;
        let mut interval = inner.config.poll_initial;
        let mut started = vec![false; spec.containers.len()];
        let mut exited = vec![false; spec.containers.len()];
        let mut watches = Vec::new();
        for (local, volume, remote) in &plan.watches {
            let watch = inner
                .stager
                .watch(&spec.id, volume, remote, local.under(&spec.workspace))
                .map_err(staging_error("watch a file"))?;
            watches.push((local.clone(), watch));
        }
        // The last state read: the time limit and the provisioning timeout hold
        // through an ARM outage too, with what was known before it.
        let mut last: Option<ContainerGroup> = None;
        loop {
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(inner.config.poll_max);
            let mut read_error = None;
            match inner.arm.get_group(name).await {
                Ok(Some(group)) => {
                    let states = container_states(&group, spec);
                    if spec_is_spot(&group) && evicted(&group) {
                        return Ok(Followed::Evicted);
                    }
                    for (i, c) in spec.containers.iter().enumerate() {
                        if let Some(reason) = image_pull_failure(&group, c.name.as_str()) {
                            return Err(Error::ImageUnavailable {
                                image: c.image.to_string(),
                                reason,
                            });
                        }
                        let state =
                            states[i].as_ref().and_then(|s| s.state.as_deref()).unwrap_or("");
                        if (state == "Running" || state == "Terminated") && !started[i] {
                            started[i] = true;
                            events.emit(Event::Started { container: c.name.clone() });
                        }
                        if state == "Terminated" && !exited[i] {
                            exited[i] = true;
                            let exit_code = states[i].as_ref().and_then(|s| s.exit_code);
                            events.emit(Event::Exited { container: c.name.clone(), exit_code });
                        }
                    }
                    if running_since.is_none() && started.iter().any(|s| *s) {
                        running_since = Some(Instant::now());
                    }
                    poll_watches(&mut watches, events).await;
                    if exited.iter().all(|e| *e) {
                        let no_shell: Vec<usize> = (0..spec.containers.len())
                            .filter(|i| {
                                wrapped[*i]
                                    && lacks_shell(&group, spec.containers[*i].name.as_str())
                            })
                            .collect();
                        if !no_shell.is_empty() {
                            return Ok(Followed::NoShell(no_shell));
                        }
                        return Ok(Followed::Done(outcome(spec, &states, false)));
                    }
                    if running_since.is_none()
                        && let Some(failure) = provisioning_failure(&group)
                    {
                        return Err(Error::platform("create container group", false, failure));
                    }
                    last = Some(group);
                }
                Ok(None) => {
                    return Err(Error::platform(
                        "run container group",
                        true,
                        "the container group disappeared",
                    ));
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(group = name, error = %e, "could not read the container group; polling on");
                    poll_watches(&mut watches, events).await;
                    read_error = Some(e);
                }
                Err(e) => return Err(Error::platform("read container group", false, e)),
            }
            match (running_since, spec.time_limit) {
                (Some(since), Some(limit)) if since.elapsed() >= limit => {
                    tracing::info!(
                        group = name,
                        "time limit reached; stopping the container group"
                    );
                    inner.arm.stop_group(name).await.map_err(arm_error("stop container group"))?;
                    let after = inner.arm.get_group(name).await.ok().flatten().or(last);
                    let states = match &after {
                        Some(group) => container_states(group, spec),
                        None => vec![None; spec.containers.len()],
                    };
                    for (i, c) in spec.containers.iter().enumerate() {
                        if !exited[i] {
                            let exit_code = states[i].as_ref().and_then(|s| s.exit_code);
                            events.emit(Event::Exited { container: c.name.clone(), exit_code });
                        }
                    }
                    let mut outcome = outcome(spec, &states, true);
                    for (i, c) in outcome.containers.iter_mut().enumerate() {
                        c.timed_out = !exited[i];
                    }
                    return Ok(Followed::Done(outcome));
                }
                (None, _) if created.elapsed() >= inner.config.provisioning_timeout => {
                    let mut why = last.as_ref().map_or_else(
                        || "the container group was never read".to_owned(),
                        group_events_text,
                    );
                    if let Some(e) = &read_error {
                        why = format!("{why}; the last read failed: {e}");
                    }
                    return Err(Error::platform(
                        "start container group",
                        true,
                        format!(
                            "no container started within {} s: {why}",
                            inner.config.provisioning_timeout.as_secs(),
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
}

/// Reports the watched files that changed since the last poll.
async fn poll_watches(watches: &mut [(WorkspacePath, afs_staging::Watch)], events: &dyn EventSink) {
    for (path, watch) in watches {
        match watch.poll().await {
            Ok(true) => events.emit(Event::FileChanged { path: path.clone() }),
            Ok(false) => {}
            Err(e) => tracing::debug!(path = %path, error = %e, "watched file not read"),
        }
    }
}

/// Why ACI would not take a container group yet: worth waiting for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The subscription's quota in the region is used up (`…QuotaReached`).
    Quota,
    /// The region has no capacity for the group now (503, `ServiceUnavailable`,
    /// `InsufficientCapacity`, ...).
    Capacity,
    /// Another 409 Conflict: an operation on the same group is still going on (it
    /// is being deleted, or another definition of it runs).
    Conflict,
}

impl Refusal {
    /// The refusal `error` is, or `None` for an error that waiting does not help.
    fn of(error: &ArmError) -> Option<Refusal> {
        let code = error.code().unwrap_or("");
        if code.contains("Quota") {
            return Some(Refusal::Quota);
        }
        let capacity = error.status() == Some(503)
            || ["ServiceUnavailable", "InsufficientCapacity", "SkuNotAvailable", "RegionCapacity"]
                .iter()
                .any(|c| code.contains(c));
        if capacity {
            return Some(Refusal::Capacity);
        }
        (error.status() == Some(409)).then_some(Refusal::Conflict)
    }

    /// The job's error once the refusal lasted `waited`: ARM's words and what to do.
    fn give_up(self, error: ArmError, location: &str, waited: Duration) -> Error {
        let operation = "create container group";
        match self {
            Refusal::Quota => Error::platform(
                operation,
                false,
                format!(
                    "{error}. The subscription's Azure Container Instances quota in {location} \
                     is used up: request a higher quota for this region, or lower \
                     WORKER_CONCURRENCY"
                ),
            ),
            Refusal::Capacity => Error::platform(
                operation,
                true,
                format!(
                    "{error}. Azure has no capacity for this container group in {location} now: \
                     the task will be tried again later; smaller CPU, memory or GPU requests or \
                     another region may help"
                ),
            ),
            Refusal::Conflict => Error::platform(
                operation,
                true,
                format!(
                    "{error}. The container group was still in conflict with an earlier one of \
                     the same name after {} s (being deleted, or still running for another \
                     worker): the task will be tried again later",
                    waited.as_secs()
                ),
            ),
        }
    }
}

impl ComputeBackend for AciBackend {
    fn name(&self) -> &'static str {
        "aci"
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, compute::Result<Outcome>> {
        Box::pin(async move {
            spec.validate()?;
            // A group or shares left by an earlier attempt of the same job (a worker
            // killed mid-run and restarted) go first: the run starts clean.
            self.cleanup_job(&spec.id).await?;
            let guard = CleanupGuard { backend: self.clone(), job: Some(spec.id.clone()) };
            let result = self.run_job(spec, events).await;
            let cleaned = self.cleanup_job(&spec.id).await;
            guard.disarm();
            if let Err(e) = &cleaned {
                tracing::warn!(job = %spec.id, error = %compute::error_chain(e),
                    "could not delete the container group or its shares; the orphan sweep will");
            }
            result
        })
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, compute::Result<()>> {
        Box::pin(self.cleanup_job(job))
    }
}

/// Deletes the group and shares of a run whose future was dropped midway.
struct CleanupGuard {
    backend: AciBackend,
    job: Option<JobId>,
}

impl CleanupGuard {
    fn disarm(mut self) {
        self.job = None;
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        let backend = self.backend.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = backend.cleanup_job(&job).await {
                        tracing::warn!(job = %job, error = %compute::error_chain(&e),
                            "cleanup after cancel failed; the orphan sweep will retry");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(job = %job, "cancelled outside a runtime; the orphan sweep will clean up")
            }
        }
    }
}

fn container_states(group: &ContainerGroup, spec: &JobSpec) -> Vec<Option<ContainerState>> {
    spec.containers
        .iter()
        .map(|c| {
            group
                .properties
                .containers
                .iter()
                .find(|g| g.name == c.name.as_str())
                .and_then(|g| g.properties.instance_view.as_ref())
                .and_then(|v| v.current_state.clone())
        })
        .collect()
}

fn outcome(spec: &JobSpec, states: &[Option<ContainerState>], timed_out: bool) -> Outcome {
    let containers = spec
        .containers
        .iter()
        .zip(states)
        .map(|(c, state)| {
            let state = state.clone().unwrap_or_default();
            let detail = state.detail_status.clone().unwrap_or_default();
            ContainerOutcome {
                name: c.name.clone(),
                exit_code: state.exit_code,
                started_at: state.start_time.as_deref().and_then(parse_time),
                finished_at: state.finish_time.as_deref().and_then(parse_time),
                timed_out: false,
                oom_killed: detail.contains("OOMKilled"),
            }
        })
        .collect();
    Outcome { containers, timed_out }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    afs_staging::auth::parse_iso8601(text).map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

fn spec_is_spot(group: &ContainerGroup) -> bool {
    group.properties.priority.as_deref() == Some("Spot")
}

/// Every event text of the group and its containers.
fn all_events(group: &ContainerGroup) -> impl Iterator<Item = &model::Event> {
    let group_events = group.properties.instance_view.iter().flat_map(|v| v.events.iter());
    let container_events = group
        .properties
        .containers
        .iter()
        .filter_map(|c| c.properties.instance_view.as_ref())
        .flat_map(|v| v.events.iter());
    group_events.chain(container_events)
}

fn evicted(group: &ContainerGroup) -> bool {
    all_events(group).any(|e| {
        let text =
            format!("{} {}", e.name.as_deref().unwrap_or(""), e.message.as_deref().unwrap_or(""));
        text.to_ascii_lowercase().contains("evict")
    })
}

fn container_events<'g>(group: &'g ContainerGroup, name: &str) -> Vec<&'g model::Event> {
    group
        .properties
        .containers
        .iter()
        .filter(|c| c.name == name)
        .filter_map(|c| c.properties.instance_view.as_ref())
        .flat_map(|v| v.events.iter())
        .collect()
}

/// ACI's words when the image of container `name` cannot be pulled: its last
/// `Failed` event about a pull, or its `ErrImagePull` state in a failed group.
pub fn image_pull_failure(group: &ContainerGroup, name: &str) -> Option<String> {
    let events = container_events(group, name);
    let failed = events.iter().rev().find(|e| {
        let failed = e.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("Failed"));
        let message = e.message.as_deref().unwrap_or("").to_ascii_lowercase();
        failed && message.contains("pull")
    });
    if let Some(event) = failed {
        return event.message.clone();
    }
    let state = group
        .properties
        .containers
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.properties.instance_view.as_ref())
        .and_then(|v| v.current_state.as_ref());
    let detail = state.and_then(|s| s.detail_status.as_deref()).unwrap_or("");
    (group.properties.provisioning_state.as_deref() == Some("Failed")
        && (detail.contains("ErrImagePull") || detail.contains("ImagePullBackOff")))
    .then(|| format!("{detail}: {}", group_events_text(group)))
}

/// Whether a container could not start because its image has no `/bin/sh`.
fn lacks_shell(group: &ContainerGroup, name: &str) -> bool {
    let Some(container) = group.properties.containers.iter().find(|c| c.name == name) else {
        return false;
    };
    let Some(view) = container.properties.instance_view.as_ref() else { return false };
    let state = view.current_state.as_ref();
    let code = state.and_then(|s| s.exit_code);
    let detail = state.and_then(|s| s.detail_status.as_deref()).unwrap_or("");
    let mentions_shell = std::iter::once(detail)
        .chain(view.events.iter().filter_map(|e| e.message.as_deref()))
        .any(|text| {
            text.contains(plan::SHELL)
                && (text.contains("no such file") || text.contains("not found"))
        });
    mentions_shell && matches!(code, Some(126..=128) | None)
}

/// Why a container group failed to provision, in ACI's words (the events of the
/// group and its containers: a mount, a start, ...), or `None` when its
/// provisioning did not fail. An image that cannot be pulled is told apart first by
/// [`image_pull_failure`].
pub fn provisioning_failure(group: &ContainerGroup) -> Option<String> {
    (group.properties.provisioning_state.as_deref() == Some("Failed"))
        .then(|| format!("the container group failed: {}", group_events_text(group)))
}

fn group_events_text(group: &ContainerGroup) -> String {
    let texts: Vec<String> =
        all_events(group).filter_map(|e| e.message.clone()).filter(|m| !m.is_empty()).collect();
    if texts.is_empty() { "no event from ACI".to_owned() } else { texts.join("; ") }
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::platform("write output", false, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::platform("write output", false, e))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn arm_error(operation: &'static str) -> impl Fn(ArmError) -> Error {
    move |e| Error::platform(operation, e.is_transient(), e)
}

fn staging_error(operation: &'static str) -> impl Fn(afs_staging::Error) -> Error {
    move |e| Error::platform(operation, e.is_transient(), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str, message: &str) -> ArmError {
        ArmError::Status {
            operation: "create container group job".into(),
            status,
            code: Some(code.into()),
            message: Some(message.into()),
            request_id: None,
            retry_after: None,
        }
    }

    #[test]
    fn refusals_are_told_apart_and_each_says_what_it_is() {
        let waited = Duration::from_secs(900);
        let quota = refused(409, "ContainerGroupQuotaReached", "quota 'StandardCores' exceeded");
        assert_eq!(Refusal::of(&quota), Some(Refusal::Quota));
        let text = compute::error_chain(&Refusal::Quota.give_up(quota, "westeurope", waited));
        assert!(text.contains("request a higher quota for this region"), "{text}");
        assert!(text.contains("lower WORKER_CONCURRENCY"), "{text}");

        let capacity = refused(503, "ServiceUnavailable", "not available in the location");
        assert_eq!(Refusal::of(&capacity), Some(Refusal::Capacity));
        let error = Refusal::Capacity.give_up(capacity, "westeurope", waited);
        assert!(error.is_transient());
        let text = compute::error_chain(&error);
        assert!(text.contains("no capacity"), "{text}");

        let conflict = refused(409, "Conflict", "The container group 'job' is being deleted.");
        assert_eq!(Refusal::of(&conflict), Some(Refusal::Conflict));
        let error = Refusal::Conflict.give_up(conflict, "westeurope", waited);
        let text = compute::error_chain(&error);
        assert!(error.is_transient(), "{text}");
        assert!(text.contains("is being deleted") && text.contains("900 s"), "{text}");
        assert!(!text.contains("capacity") && !text.contains("quota"), "{text}");

        let invalid = refused(400, "InvalidContainerGroupName", "The name is invalid.");
        assert_eq!(Refusal::of(&invalid), None);
    }
}
