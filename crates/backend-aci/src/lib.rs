//! A [`ComputeBackend`] on Azure Container Instances.
//!
//! Run a job as a container group, its workspace staged on Azure Files:
//!
//! ```no_run
//! use afs_staging::auth::SharedKey;
//! use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
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
//! let key = SharedKey::new("mystorageaccount", &std::env::var("AZURE_STORAGE_KEY")?)?;
//! let endpoint = ClientConfig::azure_endpoint("mystorageaccount");
//! let files = FileClient::new(ClientConfig::new(endpoint, Credential::SharedKey(key)))?;
//! let stager = Stager::shares(files, StagingConfig::default());
//! let backend = AciBackend::new(arm, stager, AciConfig::new("westeurope", "worker-1"));
//!
//! // Stages, creates the group, follows it, collects, and deletes group and shares.
//! let outcome = backend.run(&spec, &|event| println!("{event:?}")).await?;
//! println!("succeeded: {}", outcome.succeeded());
//! // What a crash left of a job (a group, shares), by its id:
//! backend.cleanup(&spec.id).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Each job becomes one container group named after the job id, with one container
//! per [`ContainerSpec`](compute::ContainerSpec). The workspace reaches the
//! containers through Azure File shares staged by `afs-staging`: every mounted
//! workspace folder is a share of its own, mounted read-only or not where the spec
//! says, so a folder only some containers mount (hidden reference data) is seen by
//! those alone. Containers run argv exactly as given: under a fixed `/bin/sh`
//! wrapper that takes every value as a positional argument (never splicing input
//! into a shell string), changes to the working directory and sends stdout and
//! stderr to files on a logs share of that container's own (`<job>-logs<index>`,
//! mounted in no other container: what ingestion prints, perhaps from hidden data,
//! the participant's container can neither read nor overwrite); a program name
//! starting with `-` is never read as an option of the wrapper's `exec`. For an
//! image without a shell the group is run again without the wrapper, and a
//! container with an empty argv runs without it from the start, with no command, so
//! that its image's own entrypoint and command run: for both the logs API supplies
//! the output (all of it in the stdout file), and the working directory is the
//! image's own. Mounted mode needs the wrapper, and refuses an empty argv; it is
//! weaker, as every container mounts its one share (each container's output goes to
//! a folder of its own there).
//!
//! The backend polls the group (quickly at first, then less often, honouring
//! `Retry-After`), reports containers starting and exiting, follows watched files,
//! stops the group at the time limit (counted from the containers' `startTime` as
//! ACI reports it, and never slept past), brings writable folders and output back,
//! and always deletes the group and its shares, also when the run future is
//! dropped (a run of the same job started meanwhile waits until that cleanup is
//! done). A group that is over (`Succeeded`, `Failed`, `Stopped`, or a failed
//! provisioning) ends the run even when its containers report no exit: `Succeeded`
//! means every container exited with 0; otherwise a container without an exit code
//! fails the job, saying that the group was stopped from outside or ended.
//!
//! ARM throttling and server errors are retried; quota and capacity errors are
//! retried with backoff for a configured time; a Spot eviction (an event about it,
//! or the group's state or a container's `detailStatus` saying so) is retried as
//! Regular; a job that asks for a GPU runs as Regular even on a Spot backend (ACI
//! takes no GPU in a Spot group); validation errors fail at once with ARM's
//! message; an image that cannot be pulled fails as [`Error::ImageUnavailable`] with
//! ACI's words, whether ACI refuses it at once (`InaccessibleImage`, a registry
//! refusing the credentials) or reports a failed pull in the instance view.
//!
//! # Network
//!
//! `JobSpec.network = false` cannot be enforced: every ACI container group has
//! outbound network access. The API (2023-05-01 and later) has two network
//! settings, neither of which takes it away: `ipAddress` gives the group an address
//! that others can connect to (the backend sends none, so nothing can reach the
//! containers from outside), and `subnetIds` places the group in a virtual network,
//! where a network security group could deny outbound traffic; the backend does not
//! use it (that needs a virtual network, a subnet delegated to ACI and its rules
//! made beforehand, outside the worker). The log says so once.
//!
//! # Orphans
//!
//! [`AciBackend::sweep_orphans`] removes this worker's groups and shares older than
//! an age (what a crash left): it never touches a job this process is running,
//! however old, goes on past a delete that fails, and reports what it removed and
//! what it could not. It is safe to run periodically while jobs run.
//! [`ComputeBackend::cleanup`] removes one job's group and shares.

pub mod arm;
pub mod credentials;
pub mod model;
mod plan;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// What an orphan sweep removed, and what it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Container groups deleted.
    pub groups: Vec<String>,
    /// Shares deleted.
    pub shares: Vec<String>,
    /// Old container groups left alone because this process is running their job.
    pub running: Vec<String>,
    /// Groups and shares that could not be deleted, and why; the next sweep tries
    /// them again.
    pub failures: Vec<SweepFailure>,
}

impl SweepReport {
    /// How many groups and shares were deleted.
    pub fn removed(&self) -> usize {
        self.groups.len() + self.shares.len()
    }

    /// How many could not be.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }
}

/// A container group or share that an orphan sweep could not delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepFailure {
    /// The group, or the share (`shares of JOB` when a job's shares went together).
    pub name: String,
    /// Why, in ARM's or Azure Files' words.
    pub error: String,
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
    /// The jobs this process runs, and those an orphan sweep is deleting.
    claims: Arc<Claims>,
    /// Whether the log has said that ACI cannot take the network away.
    network_warned: AtomicBool,
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
        AciBackend {
            inner: Arc::new(Inner {
                arm,
                stager,
                config,
                claims: Arc::default(),
                network_warned: AtomicBool::new(false),
            }),
        }
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
    /// dry runs; nothing is sent): every container under the wrapper, but for those
    /// with an empty argv, which keep their image's entrypoint.
    pub fn container_group(&self, spec: &JobSpec) -> Result<ContainerGroup, Error> {
        spec.validate()?;
        let plan = Plan::new(spec)?;
        self.group_of(spec, &plan, &plan.wrapped)
    }

    /// The container group of a rerun for images without `/bin/sh`: no container
    /// under the wrapper, each running its argv (or its image's entrypoint) as it
    /// is, with its output from the logs API (for inspection; nothing is sent).
    /// Mounted mode needs the wrapper, and refuses.
    pub fn container_group_without_wrapper(&self, spec: &JobSpec) -> Result<ContainerGroup, Error> {
        spec.validate()?;
        let plan = Plan::new(spec)?;
        self.group_of(spec, &plan, &vec![false; spec.containers.len()])
    }

    fn group_of(
        &self,
        spec: &JobSpec,
        plan: &Plan,
        wrapped: &[bool],
    ) -> Result<ContainerGroup, Error> {
        let inner = &self.inner;
        plan.group(spec, &inner.stager, &inner.config, inner.config.priority, wrapped)
    }

    /// Deletes this worker's container groups and shares older than `older_than`:
    /// what a crash or a lost connection left behind.
    ///
    /// The group and shares of a job this process is running stay, however old
    /// (they are listed in [`SweepReport::running`]), and so do the shares of every
    /// group that stays; a run that starts while the sweep deletes its job's
    /// leftovers waits for it. A delete that fails is reported in
    /// [`SweepReport::failures`] and the sweep goes on with the rest. Safe to call
    /// again, and while jobs run; it fails only when the groups or shares cannot be
    /// listed.
    pub async fn sweep_orphans(&self, older_than: Duration) -> Result<SweepReport, Error> {
        let inner = &self.inner;
        let now = unix_now();
        let mut report = SweepReport::default();
        let groups = inner.arm.list_groups().await.map_err(arm_error("list container groups"))?;
        // Jobs whose group stays: their shares are in use, however old.
        let mut live = HashSet::new();
        for group in groups {
            let tags = group.tags.clone().unwrap_or_default();
            if tags.get(TAG_WORKER) != Some(&inner.config.worker) {
                continue;
            }
            let Some(name) = group.name.clone() else { continue };
            let job = tags.get(TAG_JOB).cloned().unwrap_or_else(|| name.clone());
            let created = tags.get(TAG_CREATED).and_then(|c| c.parse::<u64>().ok());
            if created.is_none_or(|c| now.saturating_sub(c) < older_than.as_secs()) {
                live.insert(job);
                continue;
            }
            let _claim = match inner.claims.sweep(&job) {
                Ok(claim) => claim,
                Err(claim) => {
                    if claim.runs_here() {
                        report.running.push(name);
                    }
                    live.insert(job);
                    continue;
                }
            };
            if let Err(e) = inner.arm.delete_group(&name).await {
                tracing::warn!(
                    group = %name, error = %e,
                    "orphan sweep: could not delete the container group"
                );
                report.failures.push(SweepFailure { name, error: e.to_string() });
                // Its shares stay while it does.
                live.insert(job);
                continue;
            }
            report.groups.push(name);
            if let Ok(id) = JobId::new(job.clone())
                && let Err(e) = inner.stager.discard(&id).await
            {
                let error = compute::error_chain(&e);
                tracing::warn!(
                    job = %job, error = %error,
                    "orphan sweep: could not delete the shares"
                );
                report.failures.push(SweepFailure { name: format!("shares of {job}"), error });
            }
        }
        let shares = inner
            .stager
            .stale_shares(&inner.config.worker, older_than.as_secs())
            .await
            .map_err(staging_error("list shares"))?;
        for share in shares {
            let _claim = match &share.job {
                Some(job) if live.contains(job) => continue,
                Some(job) => match inner.claims.sweep(job) {
                    Ok(claim) => Some(claim),
                    Err(_) => continue,
                },
                None => None,
            };
            match inner.stager.delete_share(&share.name).await {
                Ok(true) => report.shares.push(share.name),
                Ok(false) => {}
                Err(e) => {
                    let error = compute::error_chain(&e);
                    tracing::warn!(
                        share = %share.name, error = %error,
                        "orphan sweep: could not delete the share"
                    );
                    report.failures.push(SweepFailure { name: share.name, error });
                }
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
        let mut wrapped = plan.wrapped.clone();
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
            // The next attempt gets a new group; its publish empties the shares left
            // from this one. Deleting them instead would leave their names refused
            // (409 ShareBeingDeleted) for seconds to minutes on Azure.
            inner
                .arm
                .delete_group(spec.id.as_str())
                .await
                .map_err(arm_error("delete container group"))?;
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
            if let Some(refused) = image_refusal(&error, group) {
                return Err(refused);
            }
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

    /// Polls the group until its containers are done, the group ends otherwise
    /// (stopped from outside, failed), the deadline passes, it is evicted, or an
    /// image turns out to have no shell.
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
        // When the first container started, on this process's clock: from ACI's
        // `startTime` when it tells, else when a poll first saw it running.
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
            // No pause runs past the deadline, or past the provisioning timeout.
            let due = match running_since {
                Some(since) => spec.time_limit.and_then(|limit| since.checked_add(limit)),
                None => created.checked_add(inner.config.provisioning_timeout),
            };
            let pause = due.map_or(interval, |due| {
                interval.min(due.saturating_duration_since(Instant::now()))
            });
            tokio::time::sleep(pause).await;
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
                    if let Some(at) = acis_start(&states, created) {
                        running_since = Some(running_since.map_or(at, |since| since.min(at)));
                    } else if running_since.is_none() && started.iter().any(|s| *s) {
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
                    if let Some(state) = group_ended(&group) {
                        let seen = Seen { started: &started, exited: &exited };
                        return ended_early(spec, &group, states, seen, &state, events);
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

/// Which containers were reported started and exited so far.
#[derive(Clone, Copy)]
struct Seen<'a> {
    started: &'a [bool],
    exited: &'a [bool],
}

/// The group ended while some of its containers had not reported an exit: done
/// with what is known. ACI's `Succeeded` says that every container exited with 0;
/// otherwise a container without an exit code fails the job, saying why.
fn ended_early(
    spec: &JobSpec,
    group: &ContainerGroup,
    mut states: Vec<Option<ContainerState>>,
    seen: Seen<'_>,
    state: &str,
    events: &dyn EventSink,
) -> Result<Followed, Error> {
    let mut unknown = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        if seen.exited[i] {
            continue;
        }
        if state == "Succeeded" {
            let known = states[i].get_or_insert_with(ContainerState::default);
            known.state = Some("Terminated".into());
            known.exit_code = Some(0);
            if !seen.started[i] {
                events.emit(Event::Started { container: c.name.clone() });
            }
            events.emit(Event::Exited { container: c.name.clone(), exit_code: Some(0) });
        } else {
            unknown.push(c.name.as_str());
            if seen.started[i] {
                events.emit(Event::Exited { container: c.name.clone(), exit_code: None });
            }
        }
    }
    if unknown.is_empty() {
        return Ok(Followed::Done(outcome(spec, &states, false)));
    }
    let what = if state == "Stopped" {
        "the container group was stopped from outside the worker".to_owned()
    } else {
        format!("the container group ended ({state})")
    };
    Err(Error::platform(
        "run container group",
        false,
        format!(
            "{what} before {} reported an exit code; ACI's events: {}",
            unknown.join(", "),
            group_events_text(group)
        ),
    ))
}

/// The state of a group that is over (`Succeeded`, `Failed`, `Stopped`, or a
/// failed provisioning), or `None` while it may still run.
fn group_ended(group: &ContainerGroup) -> Option<String> {
    let state = group.properties.instance_view.as_ref().and_then(|v| v.state.as_deref());
    if let Some(state @ ("Succeeded" | "Failed" | "Stopped")) = state {
        return Some(state.to_owned());
    }
    (group.properties.provisioning_state.as_deref() == Some("Failed"))
        .then(|| "its provisioning failed".to_owned())
}

/// When the first of the containers started according to ACI's `startTime`, on
/// this process's clock; never before the group was created here (a clock that is
/// ahead must not shorten the time limit), never after now.
fn acis_start(states: &[Option<ContainerState>], created: Instant) -> Option<Instant> {
    let earliest = states
        .iter()
        .flatten()
        .filter(|s| matches!(s.state.as_deref(), Some("Running" | "Terminated")))
        .filter_map(|s| s.start_time.as_deref().and_then(parse_time))
        .min()?;
    let ago = SystemTime::now().duration_since(earliest).unwrap_or_default();
    let now = Instant::now();
    Some(now.checked_sub(ago).map_or(created, |at| at.max(created)))
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
            // While the job runs, an orphan sweep leaves its group and shares alone;
            // a sweep already deleting them, the cleanup after a cancelled run of the
            // same job, or another run of it, finishes first.
            let claim = self.inner.claims.run(spec.id.as_str()).await;
            if !spec.network && !self.inner.network_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "ACI container groups always have outbound network access: jobs asking \
                     for no network get it all the same"
                );
            }
            // From here on, a dropped run future leaves a cleanup behind that holds
            // the claim until it is done.
            let guard =
                CleanupGuard { backend: self.clone(), job: spec.id.clone(), claim: Some(claim) };
            // A group or shares left by an earlier attempt of the same job (a worker
            // killed mid-run and restarted) go first: the run starts clean.
            if let Err(e) = self.cleanup_job(&spec.id).await {
                guard.disarm();
                return Err(e);
            }
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
        Box::pin(async move {
            // After a sweep, a cancelled run's cleanup or a run of the same job,
            // never alongside one.
            let _claim = self.inner.claims.run(job.as_str()).await;
            self.cleanup_job(job).await
        })
    }
}

/// Deletes the group and shares of a run whose future was dropped midway, holding
/// the run's claim until that is done: a new run of the same job waits for it, so
/// that the late cleanup cannot delete the new run's group and shares.
struct CleanupGuard {
    backend: AciBackend,
    job: JobId,
    /// The run's hold on the job; `None` once disarmed.
    claim: Option<ClaimGuard>,
}

impl CleanupGuard {
    /// The run cleaned up itself: releases the claim.
    fn disarm(mut self) {
        drop(self.claim.take());
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(mut claim) = self.claim.take() else { return };
        let (backend, job) = (self.backend.clone(), self.job.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                claim.cleaning();
                handle.spawn(async move {
                    if let Err(e) = backend.cleanup_job(&job).await {
                        tracing::warn!(job = %job, error = %compute::error_chain(&e),
                            "cleanup after cancel failed; the orphan sweep will retry");
                    }
                    drop(claim);
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

/// An ISO 8601 time as ACI writes it, fractions of a second included.
fn parse_time(text: &str) -> Option<SystemTime> {
    let secs = afs_staging::auth::parse_iso8601(text)?;
    let nanos = text.split_once('.').map_or(0, |(_, fraction)| {
        let digits: String = fraction.chars().take_while(char::is_ascii_digit).take(9).collect();
        format!("{digits:0<9}").parse::<u32>().unwrap_or(0)
    });
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
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

/// Whether the group was evicted: an event about it, the group's state, or a
/// container's `detailStatus` (now or before a restart) says so. Only meaningful
/// for Spot groups.
fn evicted(group: &ContainerGroup) -> bool {
    let says = |text: &str| text.to_ascii_lowercase().contains("evict");
    let state = group.properties.instance_view.as_ref().and_then(|v| v.state.as_deref());
    let mut details = group
        .properties
        .containers
        .iter()
        .filter_map(|c| c.properties.instance_view.as_ref())
        .flat_map(|v| [&v.current_state, &v.previous_state])
        .filter_map(|s| s.as_ref()?.detail_status.as_deref());
    state.is_some_and(says)
        || details.any(says)
        || all_events(group).any(|e| {
            says(e.name.as_deref().unwrap_or("")) || says(e.message.as_deref().unwrap_or(""))
        })
}

/// ACI's refusal of a group at PUT for an image it cannot reach or pull, or a
/// registry that refused the credentials (`InaccessibleImage`,
/// `RegistryErrorResponse`, `…RegistryCredential…`): the image error, in ARM's
/// words. The image is the one ARM's message names, else every image of the group.
fn image_refusal(error: &ArmError, group: &ContainerGroup) -> Option<Error> {
    let code = error.code()?;
    let about_images = matches!(code, "InaccessibleImage" | "RegistryErrorResponse")
        || code.contains("RegistryCredential");
    if !about_images {
        return None;
    }
    let reason = match error {
        ArmError::Status { message: Some(message), .. } => format!("{message} ({code})"),
        other => other.to_string(),
    };
    let mut images: Vec<&str> = Vec::new();
    for c in &group.properties.containers {
        if !images.contains(&c.properties.image.as_str()) {
            images.push(&c.properties.image);
        }
    }
    let named = images.iter().find(|image| reason.contains(&format!("'{image}'")));
    let image = named.map_or_else(|| images.join(", "), |image| (*image).to_owned());
    Some(Error::ImageUnavailable { image, reason })
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

/// Which jobs this process runs, and which an orphan sweep is deleting: one hold
/// per job at a time. A sweep never deletes the group or shares of a job that runs
/// here, and a run waits for a sweep that is deleting its job's leftovers, for the
/// cleanup of a cancelled run of the same job, and for another run of it (each run
/// starts by deleting the group named after the job: two at once cannot work).
#[derive(Debug, Default)]
struct Claims {
    jobs: Mutex<HashMap<String, Hold>>,
    released: tokio::sync::Notify,
}

/// What holds a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// A run of it here (or a [`ComputeBackend::cleanup`] call).
    Run,
    /// A cancelled run's cleanup is deleting its group and shares.
    Cleanup,
    /// A sweep is deleting its group or shares.
    Sweep,
}

impl Hold {
    /// Whether a run of the job goes on here (not only a cleanup or a sweep).
    fn runs_here(self) -> bool {
        self == Hold::Run
    }
}

impl Claims {
    fn jobs(&self) -> MutexGuard<'_, HashMap<String, Hold>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `job` as running until the guard is dropped; waits while anything
    /// else holds it: a sweep, a cancelled run's cleanup, or another run.
    async fn run(self: &Arc<Self>, job: &str) -> ClaimGuard {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the look, so that no release is missed.
            released.as_mut().enable();
            if let Entry::Vacant(free) = self.jobs().entry(job.to_owned()) {
                free.insert(Hold::Run);
                return ClaimGuard { claims: Arc::clone(self), job: job.to_owned() };
            }
            released.await;
        }
    }

    /// Holds `job` for deleting until the guard is dropped, or tells what holds it.
    fn sweep(self: &Arc<Self>, job: &str) -> Result<ClaimGuard, Hold> {
        match self.jobs().entry(job.to_owned()) {
            Entry::Occupied(held) => Err(*held.get()),
            Entry::Vacant(free) => {
                free.insert(Hold::Sweep);
                Ok(ClaimGuard { claims: Arc::clone(self), job: job.to_owned() })
            }
        }
    }
}

/// A run's, a cleanup's or a sweep's hold on a job: the only one until dropped.
#[derive(Debug)]
struct ClaimGuard {
    claims: Arc<Claims>,
    job: String,
}

impl ClaimGuard {
    /// Turns a run's hold into that of its cleanup after a cancel: new runs of the
    /// job still wait until it is dropped, and a sweep no longer lists it as running.
    fn cleaning(&mut self) {
        if let Some(hold @ Hold::Run) = self.claims.jobs().get_mut(&self.job) {
            *hold = Hold::Cleanup;
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.jobs().remove(&self.job);
        self.claims.released.notify_waiters();
    }
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

    fn group(
        priority: &str,
        state: &str,
        containers: &[(&str, Option<i64>, &str)],
    ) -> ContainerGroup {
        let json = serde_json::json!({
            "name": "job",
            "properties": {
                "priority": priority,
                "osType": "Linux",
                "provisioningState": "Succeeded",
                "instanceView": {"state": state, "events": []},
                "containers": containers.iter().map(|(name, code, detail)| serde_json::json!({
                    "name": name,
                    "properties": {
                        "image": "busybox",
                        "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
                        "instanceView": {"currentState": {
                            "state": if code.is_some() { "Terminated" } else { "Running" },
                            "exitCode": code,
                            "startTime": "2024-05-01T10:00:00.250Z",
                            "detailStatus": detail,
                        }},
                    },
                })).collect::<Vec<_>>(),
            },
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_eviction_is_recognised_without_an_event_about_it() {
        // No event at all: the container's detailStatus says it.
        let by_detail = group("Spot", "Stopped", &[("main", Some(137), "Evicted")]);
        assert!(spec_is_spot(&by_detail) && evicted(&by_detail));
        // Or the group's state does.
        let by_state = group("Spot", "Evicted", &[("main", None, "")]);
        assert!(evicted(&by_state));
        // Or an event, as before.
        let mut by_event = group("Spot", "Stopped", &[("main", Some(137), "Killed")]);
        assert!(!evicted(&by_event));
        by_event.properties.instance_view.as_mut().unwrap().events.push(model::Event {
            name: Some("SpotContainerGroupEvicted".into()),
            ..model::Event::default()
        });
        assert!(evicted(&by_event));
        // A stop is no eviction; the follow loop asks only of Spot groups.
        let stopped = group("Spot", "Stopped", &[("main", Some(137), "Killed")]);
        assert!(!evicted(&stopped));
        assert!(!spec_is_spot(&group("Regular", "Stopped", &[("main", Some(137), "Evicted")])));
    }

    #[test]
    fn groups_that_are_over_are_told_apart_from_those_that_run() {
        assert_eq!(group_ended(&group("Regular", "Running", &[])), None);
        assert_eq!(group_ended(&group("Regular", "Pending", &[])), None);
        for state in ["Succeeded", "Failed", "Stopped"] {
            assert_eq!(group_ended(&group("Regular", state, &[])).as_deref(), Some(state));
        }
        let mut failed = group("Regular", "Running", &[]);
        failed.properties.provisioning_state = Some("Failed".into());
        assert!(group_ended(&failed).is_some());
    }

    fn job(names: &[&str]) -> JobSpec {
        let mut spec =
            JobSpec::new(JobId::new("job").unwrap(), std::path::PathBuf::from("/tmp/job"));
        spec.containers = names
            .iter()
            .map(|n| {
                compute::ContainerSpec::new(
                    compute::ContainerName::new(*n).unwrap(),
                    compute::ImageRef::parse("busybox").unwrap(),
                    vec!["true".into()],
                )
            })
            .collect();
        spec
    }

    #[test]
    fn a_group_over_without_exit_codes_ends_the_job_with_what_is_known() {
        let spec = job(&["done", "running"]);
        let seen = Seen { started: &[true, true], exited: &[true, false] };
        let events = Mutex::new(Vec::new());
        let sink = |e: Event| events.lock().unwrap().push(e);

        // Stopped from outside: the container still running has no exit code.
        let stopped =
            group("Regular", "Stopped", &[("done", Some(0), "Completed"), ("running", None, "")]);
        let states = container_states(&stopped, &spec);
        let err = ended_early(&spec, &stopped, states, seen, "Stopped", &sink).err().unwrap();
        let text = compute::error_chain(&err);
        assert!(!err.is_transient(), "{text}");
        assert!(text.contains("stopped from outside the worker before running reported"), "{text}");
        assert_eq!(
            events.lock().unwrap().as_slice(),
            [Event::Exited { container: spec.containers[1].name.clone(), exit_code: None }]
        );

        // Succeeded: ACI says every container exited with 0.
        let succeeded =
            group("Regular", "Succeeded", &[("done", Some(0), "Completed"), ("running", None, "")]);
        let states = container_states(&succeeded, &spec);
        let Ok(Followed::Done(outcome)) =
            ended_early(&spec, &succeeded, states, seen, "Succeeded", &sink)
        else {
            panic!("a succeeded group is done");
        };
        assert!(outcome.succeeded(), "{outcome:?}");
        assert_eq!(outcome.containers[1].exit_code, Some(0));
    }

    #[test]
    fn times_keep_their_fractions() {
        let at = parse_time("2024-05-01T10:00:00.250Z").unwrap();
        let whole = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(at.duration_since(whole).unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_time("2024-05-01T10:00:00.1234567891234Z"),
            whole.checked_add(Duration::from_nanos(123_456_789))
        );
        assert_eq!(parse_time("not a time"), None);
    }

    #[test]
    fn the_deadline_counts_from_acis_start_time_but_never_before_the_group() {
        let created = Instant::now();
        // Started "long ago" by ACI's clock: no earlier than the group's creation.
        let old = group("Regular", "Running", &[("main", None, "")]);
        let spec = job(&["main"]);
        assert_eq!(acis_start(&container_states(&old, &spec), created), Some(created));
        // Started a while ago: that long before now.
        let created = Instant::now().checked_sub(Duration::from_secs(3600)).unwrap_or(created);
        let ago = SystemTime::now() - Duration::from_secs(600);
        let mut recent = old.clone();
        let secs = ago.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let state = recent.properties.containers[0].properties.instance_view.as_mut().unwrap();
        state.current_state.as_mut().unwrap().start_time =
            Some(afs_staging::auth::format_iso8601(secs));
        let at = acis_start(&container_states(&recent, &spec), created).unwrap();
        assert!(at.elapsed() >= Duration::from_secs(599), "{:?}", at.elapsed());
        // Unknown start: nothing to tell.
        let waiting = group("Regular", "Pending", &[]);
        assert_eq!(acis_start(&container_states(&waiting, &spec), created), None);
    }

    #[test]
    fn image_refusals_at_put_are_image_errors_in_arms_words() {
        let body = group("Regular", "Running", &[("main", None, "")]);
        let refused = refused(
            400,
            "InaccessibleImage",
            "The image 'busybox' in container group 'job' is not accessible. Please check the \
             image and registry credential.",
        );
        match image_refusal(&refused, &body) {
            Some(Error::ImageUnavailable { image, reason }) => {
                assert_eq!(image, "busybox");
                assert!(
                    reason.contains("is not accessible") && reason.contains("InaccessibleImage")
                );
            }
            other => panic!("{other:?}"),
        }
        let invalid = refused_error(400, "InvalidContainerGroupName");
        assert!(image_refusal(&invalid, &body).is_none());
    }

    fn refused_error(status: u16, code: &str) -> ArmError {
        refused(status, code, "refused")
    }

    #[tokio::test]
    async fn a_sweep_never_takes_a_running_job_and_a_run_waits_for_a_sweep() {
        use futures_util::FutureExt as _;
        let claims = Arc::new(Claims::default());
        let running = claims.run("a").await;
        assert_eq!(claims.sweep("a").err(), Some(Hold::Run));
        // A second run of the job waits for the first.
        let mut twice = Box::pin(claims.run("a"));
        assert!((&mut twice).now_or_never().is_none(), "two runs of one job held it at once");
        drop(running);
        let twice = twice.await;
        assert_eq!(claims.sweep("a").err(), Some(Hold::Run));
        drop(twice);

        let sweeping = claims.sweep("a").unwrap();
        assert_eq!(claims.sweep("a").err(), Some(Hold::Sweep));
        let mut run = Box::pin(claims.run("a"));
        assert!((&mut run).now_or_never().is_none(), "a run started while a sweep deletes its job");
        // Another job is not held up.
        drop(claims.run("b").await);
        drop(sweeping);
        let running = run.await;
        assert_eq!(claims.sweep("a").err(), Some(Hold::Run));
        drop(running);
        assert!(claims.sweep("a").is_ok());
    }

    #[tokio::test]
    async fn a_run_waits_for_the_cleanup_of_a_cancelled_run_of_its_job() {
        use futures_util::FutureExt as _;
        let claims = Arc::new(Claims::default());
        let mut cancelled = claims.run("a").await;
        let held = claims.sweep("a").err().unwrap();
        assert_eq!(held, Hold::Run);
        assert!(held.runs_here());
        cancelled.cleaning();
        // Only the cleanup holds the job: no sweep takes it, and it is no run.
        let cleaning = claims.sweep("a").err().unwrap();
        assert_eq!(cleaning, Hold::Cleanup);
        assert!(!cleaning.runs_here());
        let mut run = Box::pin(claims.run("a"));
        assert!((&mut run).now_or_never().is_none(), "a run started while a cleanup went on");
        drop(claims.run("b").await);
        drop(cancelled);
        let running = run.await;
        assert_eq!(claims.sweep("a").err(), Some(Hold::Run));
        drop(running);
        assert!(claims.sweep("a").is_ok());
    }
}
