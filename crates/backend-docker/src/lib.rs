//! [`ComputeBackend`] on the local Docker engine, through its HTTP API ([`bollard`]).
//!
//! Run a one-container job and read its output:
//!
//! ```no_run
//! use backend_docker::{DockerBackend, DockerConfig};
//! use compute::*;
//!
//! # async fn example() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let backend = DockerBackend::connect(DockerConfig::default()).await?;
//! let workspace = tempfile::tempdir()?;
//! let mut job = JobSpec::new(JobId::new("hello-job")?, workspace.path());
//! let mut hello = ContainerSpec::new(
//!     ContainerName::new("hello")?,
//!     ImageRef::parse("busybox:latest")?,
//!     vec!["echo".into(), "hello".into()],
//! );
//! hello.stdout = Some(WorkspacePath::new("stdout.txt")?);
//! job.containers.push(hello);
//! job.time_limit = Some(std::time::Duration::from_secs(60));
//!
//! // Created, Started and Exited arrive while the job runs.
//! let events = |event: Event| println!("{event:?}");
//! let outcome = backend.run(&job, &events).await?;
//! assert_eq!(outcome.container("hello").unwrap().exit_code, Some(0));
//! assert_eq!(std::fs::read_to_string(workspace.path().join("stdout.txt"))?, "hello\n");
//! # Ok(())
//! # }
//! ```
//!
//! Each container of a [`JobSpec`] becomes one Docker container named
//! `<job id>-<container name>` and labelled with the job, the container and the
//! worker. Workspace folders are bind-mounted; output streams are attached before
//! the containers start and copied into the workspace files the spec names. At the
//! time limit the containers are killed. They are removed when the run ends,
//! whichever way it ends, including when the future of [`DockerBackend::run`] is
//! dropped.
//!
//! The engine is found through `DOCKER_HOST` (`unix://` or `tcp://`), else the
//! default socket `/var/run/docker.sock`.
//!
//! The repository's `examples/local_job.rs` runs a two-container job (a program and
//! an ingestion program sharing a folder) the same way.

mod output;
mod time;
mod watch;
mod workspace;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Mount as DockerMount,
    MountType,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    ListContainersOptions, RemoveContainerOptions, WaitContainerOptions,
};
use compute::{
    BoxFuture, ComputeBackend, ContainerOutcome, ContainerSpec, Error, Event, EventSink, ImageRef,
    JobId, JobSpec, Outcome, RegistryCredentials, Result,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::workspace::Workspace;

/// Label naming the job a container belongs to.
pub const LABEL_JOB: &str = "org.codalab.aci-worker.job";
/// Label naming the container within its job.
pub const LABEL_CONTAINER: &str = "org.codalab.aci-worker.container";
/// Label naming the worker that created the container.
pub const LABEL_WORKER: &str = "org.codalab.aci-worker.worker";

/// Memory kept for the host when a container has no limit of its own, as the
/// upstream CodaLab worker did.
const HOST_RESERVE: u64 = 512 * 1024 * 1024;

/// Settings of the Docker backend that do not change from job to job.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The worker's name, written on every container's labels. Default: the
    /// host name.
    pub worker: String,
    /// Most processes one container may run (fork bombs stop there). Default 4096.
    pub pids_limit: i64,
    /// How long pulling one image may take before the job fails. Default 10 minutes.
    pub pull_timeout: Duration,
    /// How often watched files are checked for changes. Default 1 second.
    pub watch_interval: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            worker: default_worker_name(),
            pids_limit: 4096,
            pull_timeout: Duration::from_secs(600),
            watch_interval: Duration::from_secs(1),
        }
    }
}

fn default_worker_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aci-worker".to_owned())
}

/// Runs jobs as containers on one Docker engine.
#[derive(Clone, Debug)]
pub struct DockerBackend {
    docker: Docker,
    config: DockerConfig,
    host_memory: u64,
}

impl DockerBackend {
    /// Connects to the engine named by `DOCKER_HOST` (else the default socket),
    /// agrees on an API version and reads the host's memory.
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| platform("connect to the Docker engine", e))?;
        Self::with_client(docker, config).await
    }

    /// Uses an existing client.
    pub async fn with_client(docker: Docker, config: DockerConfig) -> Result<Self> {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| platform("negotiate the Docker API version", e))?;
        let info = docker.info().await.map_err(|e| platform("read Docker engine info", e))?;
        let host_memory = info.mem_total.and_then(|m| u64::try_from(m).ok()).unwrap_or(0);
        Ok(DockerBackend { docker, config, host_memory })
    }

    /// The client, for callers that need the engine for something else.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Pulls the image unless the engine has it. The engine's or registry's refusal
    /// becomes [`Error::ImageUnavailable`] with its reason.
    pub async fn ensure_image(
        &self,
        image: &ImageRef,
        registry: Option<&RegistryCredentials>,
    ) -> Result<()> {
        let reference = image.to_string();
        match self.docker.inspect_image(&reference).await {
            Ok(_) => return Ok(()),
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(platform("inspect image", e)),
        }
        let credentials =
            registry.filter(|r| same_registry(&r.server, image)).map(|r| DockerCredentials {
                username: Some(r.username.clone()),
                password: Some(r.password.expose().to_owned()),
                serveraddress: Some(r.server.clone()),
                ..Default::default()
            });
        let options = CreateImageOptions {
            from_image: Some(image.repository()),
            tag: Some(image.tag_or_digest().to_owned()),
            ..Default::default()
        };
        tracing::info!(image = %reference, "pulling image");
        let unavailable =
            |reason: String| Error::ImageUnavailable { image: reference.clone(), reason };
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        let pull = async {
            while let Some(step) = progress.next().await {
                match step {
                    Ok(_) => {}
                    Err(DockerError::DockerStreamError { error }) => {
                        return Err(unavailable(error));
                    }
                    Err(DockerError::DockerResponseServerError { status_code, message })
                        if status_code < 500 || message.contains("pull access denied") =>
                    {
                        return Err(unavailable(message));
                    }
                    Err(DockerError::DockerResponseServerError { message, .. }) => {
                        return Err(unavailable(message));
                    }
                    Err(e) => return Err(platform("pull image", e)),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.config.pull_timeout, pull).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(format!(
                "the pull did not finish within {} s",
                self.config.pull_timeout.as_secs()
            ))),
        }
    }

    /// Removes every container labelled with this job, running or not.
    pub async fn remove_job_containers(&self, job: &JobId) -> Result<usize> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_JOB}={job}")])]);
        let options =
            ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| platform("list containers", e))?;
        let mut removed = 0;
        for summary in found {
            if let Some(id) = summary.id {
                remove(&self.docker, &id).await.map_err(|e| platform("remove container", e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes this worker's job containers created more than `older_than` ago:
    /// what a crash left behind. Returns how many went.
    pub async fn sweep_orphans(&self, older_than: Duration) -> Result<usize> {
        let label = format!("{LABEL_WORKER}={}", self.config.worker);
        let filters = HashMap::from([("label".to_owned(), vec![label])]);
        let options =
            ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| platform("list containers", e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut removed = 0;
        for summary in found {
            let old = summary.created.is_some_and(|c| now - c >= older_than.as_secs() as i64);
            if let (true, Some(id)) = (old, summary.id) {
                remove(&self.docker, &id).await.map_err(|e| platform("remove container", e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Asks the engine whether it is there.
    pub async fn ping(&self) -> Result<()> {
        self.docker.ping().await.map(|_| ()).map_err(|e| platform("ping the Docker engine", e))
    }

    fn create_body(
        &self,
        spec: &JobSpec,
        c: &ContainerSpec,
        ws: &Workspace,
    ) -> Result<ContainerCreateBody> {
        let mut mounts = Vec::with_capacity(c.mounts.len());
        for m in &c.mounts {
            let source = ws.folder(&m.source)?;
            mounts.push(DockerMount {
                typ: Some(MountType::BIND),
                source: Some(source.to_string_lossy().into_owned()),
                target: Some(m.target.as_str().to_owned()),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        let mut env: Vec<String> =
            c.env.iter().map(|v| format!("{}={}", v.name, v.value.expose())).collect();
        if !c.env.iter().any(|v| v.name == "PYTHONUNBUFFERED") {
            env.push("PYTHONUNBUFFERED=1".to_owned());
        }
        let memory = c
            .resources
            .memory_bytes
            .unwrap_or_else(|| self.host_memory.saturating_sub(HOST_RESERVE))
            .min(i64::MAX as u64) as i64;
        let memory = (memory > 0).then_some(memory);
        let device_requests = c.resources.gpu.as_ref().map(|gpu| {
            vec![DeviceRequest {
                count: Some(i64::from(gpu.count)),
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                ..Default::default()
            }]
        });
        let host_config = HostConfig {
            mounts: Some(mounts),
            memory,
            // Swap equal to memory: a program over its limit is killed, not slowed.
            memory_swap: memory,
            nano_cpus: c.resources.cpus.map(|cpus| (cpus * 1e9).round() as i64),
            pids_limit: Some(self.config.pids_limit),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            network_mode: (!spec.network).then(|| "none".to_owned()),
            device_requests,
            // Output goes to the workspace files; a second copy in the engine's log
            // store would only fill its disk.
            log_config: Some(HostConfigLogConfig { typ: Some("none".to_owned()), config: None }),
            ..Default::default()
        };
        let (entrypoint, cmd) = match c.argv.split_first() {
            Some((program, args)) => (Some(vec![program.clone()]), Some(args.to_vec())),
            None => (None, None),
        };
        let labels = HashMap::from([
            (LABEL_JOB.to_owned(), spec.id.to_string()),
            (LABEL_CONTAINER.to_owned(), c.name.to_string()),
            (LABEL_WORKER.to_owned(), self.config.worker.clone()),
        ]);
        Ok(ContainerCreateBody {
            image: Some(c.image.to_string()),
            entrypoint,
            cmd,
            env: Some(env),
            working_dir: c.workdir.as_ref().map(|w| w.as_str().to_owned()),
            labels: Some(labels),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        })
    }

    async fn run_job(&self, spec: &JobSpec, events: &dyn EventSink) -> Result<Outcome> {
        spec.validate()?;
        let ws = Workspace::open(&spec.workspace)?;
        // A job id names one run; containers left by an earlier, interrupted attempt
        // of the same job are in the way of the names.
        self.remove_job_containers(&spec.id).await?;
        for image in unique_images(spec) {
            self.ensure_image(image, spec.registry.as_ref()).await?;
        }

        let mut guard = RemoveOnDrop { docker: self.docker.clone(), ids: Vec::new() };
        let result = self.run_containers(spec, &ws, &mut guard, events).await;
        // Removed before returning on every path; the guard only acts if this
        // future is dropped before it gets here.
        let removed = guard.remove_now().await;
        let outcome = result?;
        removed?;
        Ok(outcome)
    }

    /// Creates, starts and waits for the job's containers, recording each one in
    /// `guard` as soon as it exists.
    async fn run_containers(
        &self,
        spec: &JobSpec,
        ws: &Workspace,
        guard: &mut RemoveOnDrop,
        events: &dyn EventSink,
    ) -> Result<Outcome> {
        let mut pumps = Vec::with_capacity(spec.containers.len());
        for c in &spec.containers {
            let body = self.create_body(spec, c, ws)?;
            let sinks = output::Sinks {
                stdout: c.stdout.as_ref().map(|p| ws.create_file(p)).transpose()?.map(Into::into),
                stderr: c.stderr.as_ref().map(|p| ws.create_file(p)).transpose()?.map(Into::into),
            };
            let name = format!("{}-{}", spec.id, c.name);
            let options = CreateContainerOptions { name: Some(name), ..Default::default() };
            let created = self
                .docker
                .create_container(Some(options), body)
                .await
                .map_err(|e| platform("create container", e))?;
            guard.ids.push(created.id.clone());
            events.emit(Event::Created { container: c.name.clone() });
            let attach = AttachContainerOptions {
                stream: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let attached = self
                .docker
                .attach_container(&created.id, Some(attach))
                .await
                .map_err(|e| platform("attach to container", e))?;
            pumps.push(tokio::spawn(output::pump(attached.output, sinks)));
        }

        for (c, id) in spec.containers.iter().zip(&guard.ids) {
            self.docker
                .start_container(id, None)
                .await
                .map_err(|e| platform("start container", e))?;
            events.emit(Event::Started { container: c.name.clone() });
        }
        tracing::debug!(job = %spec.id, containers = guard.ids.len(), "job started");

        let (exit_codes, timed_out) = self.wait_all(spec, &guard.ids, ws, events).await?;
        for pump in pumps {
            match pump.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(Error::platform("write container output", false, e)),
                Err(e) => return Err(Error::platform("copy container output", false, e)),
            }
        }

        let mut containers = Vec::with_capacity(spec.containers.len());
        for (i, (c, id)) in spec.containers.iter().zip(&guard.ids).enumerate() {
            let inspected = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(|e| platform("inspect container", e))?;
            let state = inspected.state.unwrap_or_default();
            let started_at = state.started_at.as_deref().and_then(time::parse_rfc3339);
            // The engine records the start after the process may already have
            // exited, so a very short program can appear to finish before it
            // started; its run time is then as good as zero.
            let finished_at = state
                .finished_at
                .as_deref()
                .and_then(time::parse_rfc3339)
                .map(|finished| started_at.map_or(finished, |started| finished.max(started)));
            containers.push(ContainerOutcome {
                name: c.name.clone(),
                exit_code: state.exit_code.or(exit_codes[i]),
                started_at,
                finished_at,
                timed_out: timed_out[i],
                oom_killed: state.oom_killed.unwrap_or(false),
            });
        }
        Ok(Outcome { containers, timed_out: timed_out.iter().any(|&t| t) })
    }

    /// Waits for every container to stop, killing those still running at the time
    /// limit, and reports watched files on the way. Returns each container's exit
    /// code as the wait call saw it and whether the limit killed it.
    async fn wait_all(
        &self,
        spec: &JobSpec,
        ids: &[String],
        ws: &Workspace,
        events: &dyn EventSink,
    ) -> Result<(Vec<Option<i64>>, Vec<bool>)> {
        let mut exit_codes = vec![None; ids.len()];
        let mut running = vec![true; ids.len()];
        let mut timed_out = vec![false; ids.len()];
        let mut waits: FuturesUnordered<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let docker = self.docker.clone();
                async move { (i, wait_exit(&docker, id).await) }
            })
            .collect();
        let deadline = tokio::time::sleep(spec.time_limit.unwrap_or(Duration::MAX));
        tokio::pin!(deadline);
        let mut limit_passed = spec.time_limit.is_none();
        let mut watcher = watch::Watcher::new(ws.root(), &spec.watch);
        let mut tick = tokio::time::interval(self.config.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        while !waits.is_empty() {
            tokio::select! {
                Some((i, code)) = waits.next() => {
                    let code = code?;
                    exit_codes[i] = code;
                    running[i] = false;
                    events.emit(Event::Exited {
                        container: spec.containers[i].name.clone(),
                        exit_code: code,
                    });
                }
                () = &mut deadline, if !limit_passed => {
                    limit_passed = true;
                    tracing::info!(job = %spec.id, "time limit reached, killing the job's containers");
                    for (i, id) in ids.iter().enumerate().filter(|(i, _)| running[*i]) {
                        timed_out[i] = true;
                        kill(&self.docker, id).await?;
                    }
                }
                _ = tick.tick(), if !spec.watch.is_empty() => {
                    for path in watcher.changed(ws.root()) {
                        events.emit(Event::FileChanged { path });
                    }
                }
            }
        }
        for path in watcher.changed(ws.root()) {
            events.emit(Event::FileChanged { path });
        }
        Ok((exit_codes, timed_out))
    }
}

impl ComputeBackend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(self.run_job(spec, events))
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.remove_job_containers(job).await.map(|_| ()) })
    }
}

/// Removes the job's containers when dropped, which is what happens when the run's
/// future is dropped or fails half-way. Removal then continues on the runtime in
/// the background.
struct RemoveOnDrop {
    docker: Docker,
    ids: Vec<String>,
}

impl RemoveOnDrop {
    async fn remove_now(&mut self) -> Result<()> {
        let ids = std::mem::take(&mut self.ids);
        for id in &ids {
            remove(&self.docker, id).await.map_err(|e| platform("remove container", e))?;
        }
        Ok(())
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.ids);
        let docker = self.docker.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    for id in ids {
                        if let Err(e) = remove(&docker, &id).await {
                            tracing::warn!(container = %id, error = %e, "could not remove container");
                        }
                    }
                });
            }
            Err(_) => tracing::warn!(
                containers = ?ids,
                "no runtime left to remove containers; `cleanup` will remove them"
            ),
        }
    }
}

async fn wait_exit(docker: &Docker, id: &str) -> Result<Option<i64>> {
    let options = WaitContainerOptions { condition: "not-running".to_owned() };
    let mut stream = docker.wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(response)) => Ok(Some(response.status_code)),
        // bollard reports a non-zero exit as an error; for us it is the result.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(Some(code)),
        Some(Err(e)) => Err(platform("wait for container", e)),
        None => Ok(None),
    }
}

async fn kill(docker: &Docker, id: &str) -> Result<()> {
    match docker.kill_container(id, Some(KillContainerOptions::default())).await {
        Ok(()) => Ok(()),
        // Stopped between the deadline and the kill: nothing left to do.
        Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
        Err(e) => Err(platform("kill container", e)),
    }
}

async fn remove(docker: &Docker, id: &str) -> std::result::Result<(), DockerError> {
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        // Already gone, or already being removed by another call.
        Err(DockerError::DockerResponseServerError { status_code: 404 | 409, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn unique_images(spec: &JobSpec) -> Vec<&ImageRef> {
    let mut images: Vec<&ImageRef> = Vec::new();
    for c in &spec.containers {
        if !images.contains(&&c.image) {
            images.push(&c.image);
        }
    }
    images
}

/// Whether credentials for `server` belong to the image's registry. `server` may be
/// written as a URL.
fn same_registry(server: &str, image: &ImageRef) -> bool {
    let host = server.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.trim_end_matches('/');
    let host = if host == "index.docker.io" || host == "registry-1.docker.io" {
        compute::DEFAULT_REGISTRY
    } else {
        host
    };
    host == image.registry()
}

/// Wraps an engine error. Connection trouble and the engine's own 5xx other than a
/// plain 500 are worth retrying; a refused request is not.
fn platform(operation: &'static str, e: impl Into<DockerError>) -> Error {
    let e = e.into();
    let transient = match &e {
        DockerError::DockerResponseServerError { status_code, .. } => {
            *status_code > 500 || *status_code == 429
        }
        DockerError::RequestTimeoutError
        | DockerError::IOError { .. }
        | DockerError::HyperResponseError { .. } => true,
        _ => false,
    };
    Error::platform(operation, transient, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use compute::{ContainerName, ContainerPath, EnvVar, Gpu, Mount, WorkspacePath};

    fn backend() -> DockerBackend {
        // The client connects lazily; building a create body never calls the engine.
        let docker =
            Docker::connect_with_http("http://127.0.0.1:9", 5, bollard::API_DEFAULT_VERSION)
                .unwrap();
        DockerBackend { docker, config: DockerConfig::default(), host_memory: 8 << 30 }
    }

    fn container(argv: &[&str]) -> ContainerSpec {
        ContainerSpec::new(
            ContainerName::new("main").unwrap(),
            ImageRef::parse("busybox").unwrap(),
            argv.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn argv_replaces_entrypoint_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let spec = JobSpec::new(JobId::new("body-test").unwrap(), dir.path());
        let body =
            backend().create_body(&spec, &container(&["python3", "-c", "print(1)"]), &ws).unwrap();
        assert_eq!(body.entrypoint, Some(vec!["python3".to_owned()]));
        assert_eq!(body.cmd, Some(vec!["-c".to_owned(), "print(1)".to_owned()]));
        let image_default = backend().create_body(&spec, &container(&[]), &ws).unwrap();
        assert_eq!((image_default.entrypoint, image_default.cmd), (None, None));
    }

    #[test]
    fn limits_default_to_the_host_and_gpus_become_device_requests() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let mut spec = JobSpec::new(JobId::new("body-test").unwrap(), dir.path());
        spec.network = true;
        let mut c = container(&["true"]);
        c.resources.gpu = Some(Gpu { count: 2, sku: None });
        c.env.push(EnvVar::plain("PYTHONUNBUFFERED", "0"));
        c.mounts.push(Mount::ro(
            WorkspacePath::new("input").unwrap(),
            ContainerPath::new("/codalab/input").unwrap(),
        ));
        let body = backend().create_body(&spec, &c, &ws).unwrap();
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some((8 << 30) - (512 << 20)));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.nano_cpus, None);
        assert_eq!(host.network_mode, None, "the engine's default network when asked for one");
        let gpu = &host.device_requests.unwrap()[0];
        assert_eq!(gpu.count, Some(2));
        assert_eq!(gpu.capabilities, Some(vec![vec!["gpu".to_owned()]]));
        assert_eq!(body.env, Some(vec!["PYTHONUNBUFFERED=0".to_owned()]), "a set value wins");
        assert!(dir.path().join("input").is_dir(), "mount sources are created");
    }

    #[test]
    fn credentials_go_only_to_their_registry() {
        let image = ImageRef::parse("127.0.0.1:5001/x/y:1").unwrap();
        assert!(same_registry("127.0.0.1:5001", &image));
        assert!(same_registry("http://127.0.0.1:5001/", &image));
        assert!(!same_registry("127.0.0.1:5000", &image));
        let hub = ImageRef::parse("codalab/codalab-legacy").unwrap();
        assert!(same_registry("https://index.docker.io", &hub));
        assert!(!same_registry("myreg.azurecr.io", &hub));
    }
}
