//! One `compute_worker_run` task from start to end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use compute::{
    ComputeBackend, ContainerName, ContainerPath, ContainerSpec, EnvVar, Event, Gpu, ImageRef,
    JobId, JobSpec, Mount, Outcome, RegistryCredentials, WorkspacePath, error_chain as chain,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::archive::{self, Limits};
use crate::bundle::{self, BundleError, Staged};
use crate::layout::{Role, argv, container, local};
use crate::metadata::{Metadata, write_records};
use crate::status::{Status, StatusSink, StatusUpdate};
use crate::task::{SignedUrl, TaskArgs};
use crate::transfer::{Transfer, TransferConfig};

/// Settings that hold for every task.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Where workspaces live (`SUBMISSION_TEMP_DIR`); also the root that backends
    /// see, with one folder per job under `jobs/` and one per submission under
    /// `steps/`.
    pub work_root: PathBuf,
    /// Steps folders older than this are removed by [`Runner::sweep_steps`].
    pub steps_max_age: Duration,
    /// Image when the task names none.
    pub default_image: String,
    /// `hostname` in the debug metadata (`CODALAB_HOSTNAME`).
    pub hostname: String,
    /// Keep workspaces after the run (`DONT_FINALIZE_SUBMISSION`).
    pub dont_finalize: bool,
    /// Caps on bundle archives.
    pub limits: Limits,
    /// Transfer behaviour (timeouts, retries, `file://`).
    pub transfer: TransferConfig,
    /// Give containers a network.
    pub network: bool,
    /// Credentials for a private registry.
    pub registry: Option<RegistryCredentials>,
    /// GPUs for a container whose task gives no GPU hint (the upstream worker's
    /// `USE_GPU`).
    pub default_gpus: Option<u32>,
}

impl RunnerConfig {
    /// Defaults under `work_root`: no network, workspaces removed, steps folders
    /// kept two days at most.
    pub fn new(work_root: impl Into<PathBuf>) -> Self {
        RunnerConfig {
            work_root: work_root.into(),
            steps_max_age: Duration::from_secs(2 * 24 * 3600),
            default_image: "codalab/codalab-legacy:py37".into(),
            hostname: hostname(),
            dont_finalize: false,
            limits: Limits::default(),
            transfer: TransferConfig::default(),
            network: false,
            registry: None,
            default_gpus: None,
        }
    }
}

/// The host name for debug metadata: `CODALAB_HOSTNAME`, else the kernel's.
pub fn hostname() -> String {
    std::env::var("CODALAB_HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    })
}

/// How a task ended, for the caller's acknowledgement and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The final status sent: `Finished` or `Failed`.
    pub status: Status,
    /// The text sent as traceback, if any.
    pub traceback: Option<String>,
    /// The step's time limit was exceeded.
    pub timed_out: bool,
}

/// Why a task was neither finished nor failed: the platform had a passing
/// problem, no final status was sent, and the task may be tried again.
#[derive(Debug, thiserror::Error)]
#[error("transient platform failure; the task can be retried")]
pub struct Retry(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Runs tasks on one backend.
pub struct Runner<B> {
    backend: B,
    transfer: Transfer,
    config: RunnerConfig,
}

/// What went wrong inside a run, before it is turned into a status.
enum Failure {
    /// Told to the participant.
    Permanent(String),
    /// Worth retrying.
    Transient(Box<dyn std::error::Error + Send + Sync>),
}

impl From<BundleError> for Failure {
    fn from(e: BundleError) -> Self {
        if e.is_transient() {
            Failure::Transient(Box::new(e))
        } else {
            Failure::Permanent(chain(&e))
        }
    }
}

impl From<compute::Error> for Failure {
    fn from(e: compute::Error) -> Self {
        if e.is_transient() {
            Failure::Transient(Box::new(e))
        } else {
            Failure::Permanent(chain(&e))
        }
    }
}

/// The local places of one run.
struct Workspace {
    /// The work root, as backends see it.
    root: PathBuf,
    /// `jobs/<dir>`, relative to the root.
    rel: String,
    /// `steps/<submission>`, relative to the root.
    steps: String,
}

impl Workspace {
    fn path(&self, sub: &str) -> PathBuf {
        self.root.join(&self.rel).join(sub)
    }

    fn wp(&self, sub: &str) -> WorkspacePath {
        WorkspacePath::new(format!("{}/{sub}", self.rel)).expect("layout paths are plain")
    }
}

impl<B: ComputeBackend> Runner<B> {
    /// A runner on `backend`.
    pub fn new(backend: B, config: RunnerConfig) -> Self {
        let transfer = Transfer::new(config.transfer.clone());
        Runner { backend, transfer, config }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs one task: `task_id` is the Celery task id, `task_args` the second
    /// argument of `compute_worker_run`. Sends `running`, then `finished` or
    /// `failed`, through `sink`, unless a transient platform failure makes the task
    /// worth retrying ([`Retry`]).
    pub async fn run(
        &self,
        task_id: &str,
        task_args: &Map<String, Value>,
        sink: &dyn StatusSink,
    ) -> Result<Report, Retry> {
        let started = Instant::now();
        let mut metadata = debug_metadata(&self.config.hostname, "beginning");
        let args = match TaskArgs::from_json(task_args) {
            Ok(args) => args,
            Err(e) => {
                return Ok(self
                    .finish(sink, Status::Failed, metadata, Some(e.to_string()), false)
                    .await);
            }
        };
        let send = sink.send(StatusUpdate {
            status: Status::Running,
            metadata: metadata.clone(),
            traceback: None,
        });
        if let Err(e) = send.await {
            return Err(Retry(e));
        }
        let ws = self.prepare(task_id, &args).await;
        let result = match &ws {
            Ok(ws) => self.run_in(ws, task_id, &args, &mut metadata).await,
            Err(e) => Err(Failure::Permanent(format!("preparing the workspace failed: {e}"))),
        };
        metadata.extend(debug_metadata(&self.config.hostname, "end"));
        metadata.insert("run_duration".into(), json!(started.elapsed().as_secs_f64()));
        let report = match result {
            Ok((status, traceback, timed_out)) => {
                Ok(self.finish(sink, status, metadata, traceback, timed_out).await)
            }
            Err(Failure::Permanent(reason)) => {
                Ok(self.finish(sink, Status::Failed, metadata, Some(reason), false).await)
            }
            Err(Failure::Transient(e)) => {
                tracing::warn!(task.id = task_id, error = %chain(&*e), "transient failure; the task will be retried");
                Err(Retry(e))
            }
        };
        if let Ok(ws) = &ws {
            self.finalize(ws, &args).await;
        }
        report
    }

    /// Removes steps folders older than the configured age (submissions whose
    /// scoring never came).
    pub async fn sweep_steps(&self) -> std::io::Result<usize> {
        let dir = self.config.work_root.join("steps");
        let mut removed = 0;
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else { return Ok(0) };
        while let Some(entry) = entries.next_entry().await? {
            let age = entry.metadata().await?.modified()?.elapsed().unwrap_or_default();
            if age > self.config.steps_max_age {
                tokio::fs::remove_dir_all(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn finish(
        &self,
        sink: &dyn StatusSink,
        status: Status,
        metadata: Map<String, Value>,
        traceback: Option<String>,
        timed_out: bool,
    ) -> Report {
        let update = StatusUpdate { status, metadata, traceback: traceback.clone() };
        if let Err(e) = sink.send(update).await {
            tracing::warn!(error = %e, "the final status could not be sent");
        }
        Report { status, traceback, timed_out }
    }

    async fn prepare(&self, task_id: &str, args: &TaskArgs) -> std::io::Result<Workspace> {
        let dir = JobId::derive(&[task_id, args.step()]);
        let submission = JobId::derive(&["submission", &args.submission_id.to_string()]);
        let ws = Workspace {
            root: self.config.work_root.clone(),
            rel: format!("jobs/{dir}"),
            steps: format!("steps/{submission}"),
        };
        let job_dir = ws.root.join(&ws.rel);
        if tokio::fs::metadata(&job_dir).await.is_ok() {
            tokio::fs::remove_dir_all(&job_dir).await?;
        }
        tokio::fs::create_dir_all(&job_dir).await?;
        tokio::fs::create_dir_all(ws.root.join(&ws.steps)).await?;
        Ok(ws)
    }

    async fn finalize(&self, ws: &Workspace, args: &TaskArgs) {
        if self.config.dont_finalize {
            return;
        }
        let _ = tokio::fs::remove_dir_all(ws.root.join(&ws.rel)).await;
        if !args.predict {
            let _ = tokio::fs::remove_dir_all(ws.root.join(&ws.steps)).await;
        }
    }

    /// Stages, runs and uploads; returns the final status, traceback and whether
    /// the time limit passed.
    async fn run_in(
        &self,
        ws: &Workspace,
        task_id: &str,
        args: &TaskArgs,
        debug: &mut Map<String, Value>,
    ) -> Result<(Status, Option<String>, bool), Failure> {
        let job_root = ws.root.join(&ws.rel);
        let staged = bundle::fetch(
            &self.transfer,
            &job_root,
            local::RUN,
            &args.bundle_url,
            &self.config.limits,
        )
        .await?;
        let find = |rel: &str| staged.iter().find(|s| s.path == rel);
        let io = |what: &str, e: std::io::Error| Failure::Permanent(format!("{what}: {e}"));
        for dir in [local::INPUT, local::OUTPUT, local::TEMP, local::SHARED, local::LOGS] {
            tokio::fs::create_dir_all(ws.path(dir))
                .await
                .map_err(|e| io("creating the run folders", e))?;
        }
        // Hidden data leaves the run folder, so that only the ingestion program,
        // which alone mounts it, can see it.
        if find(local::HIDDEN_FETCHED).is_some() {
            tokio::fs::rename(ws.path(local::HIDDEN_FETCHED), ws.path(local::HIDDEN))
                .await
                .map_err(|e| io("moving hidden data", e))?;
        }
        tokio::fs::create_dir_all(ws.path(local::HIDDEN))
            .await
            .map_err(|e| io("creating the hidden folder", e))?;

        let program = find(local::PROGRAM)
            .ok_or_else(|| Failure::Permanent("the run bundle names no program".into()))?;
        let ingestion = find(local::INGESTION_PROGRAM);
        let plan = plan(args.predict, program, ingestion)?;
        let (stdout_name, stderr_name) = if args.predict {
            ("prediction_stdout_file.txt", "prediction_stderr_file.txt")
        } else {
            ("stdout.txt", "stderr.txt")
        };

        let mut records = Vec::new();
        let mut timed_out = false;
        let mut failure: Option<String> = None;
        let deadline = Instant::now() + Duration::from_secs_f64(args.execution_time_limit);
        match &plan {
            Plan::Results => {
                // A result submission: its files are the output.
                tokio::fs::remove_dir_all(ws.path(local::OUTPUT))
                    .await
                    .map_err(|e| io("replacing the output", e))?;
                tokio::fs::rename(ws.path(local::PROGRAM), ws.path(local::OUTPUT))
                    .await
                    .map_err(|e| io("moving the results to the output", e))?;
                records.push(record(Some(0), None, 0.0));
            }
            Plan::Rounds { program, ingestion } => {
                let rounds = program.len().max(usize::from(ingestion.is_some()));
                for round in 0..rounds {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let spec = self.job_spec(
                        ws,
                        task_id,
                        args,
                        round,
                        program.get(round),
                        ingestion.as_deref(),
                    )?;
                    let spec = JobSpec { time_limit: Some(remaining), ..spec };
                    let outcome = self.run_job(&spec, args, &ws.path(local::LOGS)).await?;
                    let program_outcome = outcome.container("program");
                    let ingestion_outcome = outcome.container("ingestion");
                    let elapsed = program_outcome
                        .or(ingestion_outcome)
                        .and_then(|c| c.duration())
                        .map_or(0.0, |d| d.as_secs_f64());
                    if let Some(i) = ingestion_outcome {
                        debug.insert(
                            "ingestion_program_duration".into(),
                            json!(i.duration().map(|d| d.as_secs_f64())),
                        );
                    }
                    records.push(record(
                        program_outcome.and_then(|c| c.exit_code),
                        ingestion_outcome.map(|c| c.exit_code),
                        elapsed,
                    ));
                    self.append_logs(ws, round, stdout_name, stderr_name).await;
                    timed_out = outcome.timed_out;
                    if !outcome.succeeded() {
                        failure = Some(self.explain(ws, &outcome, args, round).await);
                        break;
                    }
                }
            }
        }
        tokio::fs::write(ws.path(&format!("{}/metadata", local::OUTPUT)), write_records(&records))
            .await
            .map_err(|e| io("writing the output metadata", e))?;
        self.upload_outputs(ws, args, stdout_name, stderr_name).await?;
        let status = if failure.is_some() { Status::Failed } else { Status::Finished };
        Ok((status, failure, timed_out))
    }

    fn job_spec(
        &self,
        ws: &Workspace,
        task_id: &str,
        args: &TaskArgs,
        round: usize,
        program_command: Option<&String>,
        ingestion_command: Option<&str>,
    ) -> Result<JobSpec, Failure> {
        let image = |name: Option<&str>| {
            let name = name.filter(|s| !s.trim().is_empty()).unwrap_or(&self.config.default_image);
            ImageRef::parse(name.trim()).map_err(|e| Failure::Permanent(e.to_string()))
        };
        let hints = args.hints();
        let mut job =
            JobSpec::new(JobId::derive(&[task_id, args.step(), &round.to_string()]), &ws.root);
        job.network = self.config.network;
        job.registry = self.config.registry.clone();
        job.watch.push(ws.wp(&format!("{}/detailed_results.html", local::OUTPUT)));
        let mount = |sub: &str, target: &str, read_only: bool| Mount {
            source: ws.wp(sub),
            target: ContainerPath::new(target).expect("layout paths are absolute"),
            read_only,
        };
        let steps = Mount {
            source: WorkspacePath::new(ws.steps.clone()).expect("plain path"),
            target: ContainerPath::new(container::STEPS).expect("absolute"),
            read_only: false,
        };
        let common = |c: &mut ContainerSpec, logs: &str| {
            c.workdir = Some(ContainerPath::new(container::RUN).expect("absolute"));
            c.env.push(EnvVar::plain("STEPS", container::STEPS));
            c.resources.cpus = hints.cpu;
            c.resources.memory_bytes =
                hints.ram_gb.map(|gb| (gb * 1024.0 * 1024.0 * 1024.0) as u64);
            c.resources.gpu = hints
                .gpu
                .or(self.config.default_gpus)
                .filter(|n| *n > 0)
                .map(|count| Gpu { count, sku: None });
            c.stdout = Some(ws.wp(&format!("{}/{round}-{logs}.stdout", local::LOGS)));
            c.stderr = Some(ws.wp(&format!("{}/{round}-{logs}.stderr", local::LOGS)));
        };
        let build = |name: &str, role: Role, command: &str, image_name: Option<&str>, mounts| {
            let argv = argv(command, role)
                .map_err(|e| Failure::Permanent(format!("{} command: {e}", describe(name))))?;
            let mut c = ContainerSpec::new(
                ContainerName::new(name).expect("valid"),
                image(image_name)?,
                argv,
            );
            c.mounts = mounts;
            common(&mut c, name);
            Ok::<_, Failure>(c)
        };
        if let Some(command) = program_command {
            let mounts = vec![
                mount(local::PROGRAM, container::PROGRAM, false),
                mount(local::INPUT, container::INPUT, true),
                mount(local::OUTPUT, container::OUTPUT, false),
                mount(local::TEMP, container::TEMP, false),
                mount(local::SHARED, container::SHARED, false),
                steps.clone(),
            ];
            let image_name = args.docker_image.as_deref();
            job.containers.push(build("program", Role::Program, command, image_name, mounts)?);
        }
        if let Some(command) = ingestion_command {
            let mounts = vec![
                mount(local::INGESTION_PROGRAM, container::INGESTION_PROGRAM, true),
                mount(local::PROGRAM, container::PROGRAM, true),
                mount(local::INPUT, container::INPUT, true),
                mount(local::OUTPUT, container::OUTPUT, false),
                mount(local::TEMP, container::TEMP, false),
                mount(local::SHARED, container::SHARED, false),
                mount(local::HIDDEN, container::HIDDEN, true),
                steps,
            ];
            let image_name =
                args.ingestion_program_docker_image.as_deref().or(args.docker_image.as_deref());
            job.containers.push(build("ingestion", Role::Ingestion, command, image_name, mounts)?);
        }
        Ok(job)
    }

    /// Runs one job while uploading detailed results whenever they change, each
    /// time from a snapshot in `snapshots` (the workspace's logs folder, which no
    /// container mounts: a program listing its output never sees one).
    async fn run_job(
        &self,
        spec: &JobSpec,
        args: &TaskArgs,
        snapshots: &Path,
    ) -> Result<Outcome, Failure> {
        let (tx, mut rx) = mpsc::unbounded_channel::<WorkspacePath>();
        let sink = move |event: Event| {
            if let Event::FileChanged { path } = event {
                let _ = tx.send(path);
            }
        };
        let run = self.backend.run(spec, &sink);
        tokio::pin!(run);
        let mut uploads = Vec::new();
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome?,
                Some(path) = rx.recv() => {
                    if let Some(url) = args.detailed_results_url.clone() {
                        let transfer = self.transfer.clone();
                        let file = path.under(&spec.workspace);
                        let snapshot = snapshots.join(format!("detailed_results-{}.uploading", uploads.len()));
                        uploads.push(tokio::spawn(async move { upload_copy(&transfer, &url, &file, &snapshot).await }));
                    }
                }
            }
        };
        for upload in uploads {
            if let Ok(Err(e)) = upload.await {
                tracing::debug!(error = %e, "a live upload of detailed results failed");
            }
        }
        Ok(outcome)
    }

    async fn append_logs(&self, ws: &Workspace, round: usize, stdout: &str, stderr: &str) {
        let pairs = [
            ("program.stdout", stdout),
            ("program.stderr", stderr),
            ("ingestion.stdout", "ingestion_stdout_file.txt"),
            ("ingestion.stderr", "ingestion_stderr_file.txt"),
        ];
        for (from, to) in pairs {
            let src = ws.path(&format!("{}/{round}-{from}", local::LOGS));
            let Ok(bytes) = tokio::fs::read(&src).await else { continue };
            let dest = ws.path(&format!("{}/{to}", local::LOGS));
            if let Ok(mut f) =
                tokio::fs::OpenOptions::new().create(true).append(true).open(&dest).await
            {
                use tokio::io::AsyncWriteExt;
                let _ = f.write_all(&bytes).await;
            }
        }
    }

    /// The participant's explanation of a failed round.
    async fn explain(
        &self,
        ws: &Workspace,
        outcome: &Outcome,
        args: &TaskArgs,
        round: usize,
    ) -> String {
        let mut parts = Vec::new();
        if outcome.timed_out {
            parts.push(format!("Execution time limit exceeded ({} s).", args.execution_time_limit));
        }
        for c in &outcome.containers {
            if c.oom_killed {
                parts.push(format!(
                    "The {} ran out of memory and was killed.",
                    describe(c.name.as_str())
                ));
            } else if !c.timed_out && c.exit_code != Some(0) {
                let code = c.exit_code.map_or("unknown".to_owned(), |c| c.to_string());
                parts.push(format!("The {} exited with code {code}.", describe(c.name.as_str())));
            }
            if !c.succeeded() {
                let path = ws.path(&format!("{}/{round}-{}.stderr", local::LOGS, c.name));
                if let Some(tail) = tail(&path, 32 * 1024).await.filter(|t| !t.trim().is_empty()) {
                    parts.push(format!("stderr of the {}:\n{tail}", describe(c.name.as_str())));
                }
            }
        }
        parts.join("\n")
    }

    async fn upload_outputs(
        &self,
        ws: &Workspace,
        args: &TaskArgs,
        stdout: &str,
        stderr: &str,
    ) -> Result<(), Failure> {
        let logs = |name: &str| ws.path(&format!("{}/{name}", local::LOGS));
        let mut uploads: Vec<(SignedUrl, PathBuf)> =
            vec![(args.stdout_url.clone(), logs(stdout)), (args.stderr_url.clone(), logs(stderr))];
        if let Some(url) = &args.ingestion_program_output_url {
            uploads.push((url.clone(), logs("ingestion_stdout_file.txt")));
        }
        if let Some(url) = &args.ingestion_program_stderr_url {
            uploads.push((url.clone(), logs("ingestion_stderr_file.txt")));
        }
        let output = ws.path(local::OUTPUT);
        let private = output.join("private");
        if tokio::fs::metadata(&private).await.is_ok() {
            let zip = ws.path("private_output.zip");
            let (src, dest) = (private.clone(), zip.clone());
            blocking(move || archive::create_zip(&src, &dest, &[])).await?;
            if let Some(url) = &args.private_output_url {
                uploads.push((url.clone(), zip));
            }
        }
        let zip = ws.path("output.zip");
        let (src, dest) = (output.clone(), zip.clone());
        blocking(move || archive::create_zip(&src, &dest, &["private"])).await?;
        uploads.push((args.output_url.clone(), zip));
        if let (Some(url), Some(html)) = (&args.detailed_results_url, detailed_results(&output)) {
            uploads.push((url.clone(), html));
        }
        for (url, file) in uploads {
            if tokio::fs::metadata(&file).await.is_err() {
                tokio::fs::write(&file, b"")
                    .await
                    .map_err(|e| Failure::Permanent(format!("{e}")))?;
            }
            self.transfer.upload(&url, &file).await.map_err(|e| {
                let message = format!("uploading {} failed: {}", file_name(&file), chain(&e));
                if e.is_transient() {
                    Failure::Transient(message.into())
                } else {
                    Failure::Permanent(message)
                }
            })?;
        }
        Ok(())
    }
}

/// What runs in a step.
enum Plan {
    /// A result submission: nothing runs.
    Results,
    /// Commands of the program, run in order, each beside the ingestion program
    /// when there is one.
    Rounds { program: Vec<String>, ingestion: Option<String> },
}

fn plan(predict: bool, program: &Staged, ingestion: Option<&Staged>) -> Result<Plan, Failure> {
    let permanent = |m: &str| Failure::Permanent(m.to_owned());
    let ingestion = match ingestion {
        None => None,
        Some(Staged { metadata: None, .. }) => {
            return Err(permanent(
                "the ingestion program has no metadata file (is it in a sub-folder of the zip?)",
            ));
        }
        Some(Staged { metadata: Some(m), .. }) => Some(
            m.commands()
                .into_iter()
                .next()
                .ok_or_else(|| permanent("the ingestion program's metadata has no command"))?,
        ),
    };
    let commands = program.metadata.as_ref().map(Metadata::commands).unwrap_or_default();
    if predict {
        if program.metadata.is_none() {
            return Ok(Plan::Results);
        }
        if commands.is_empty() && ingestion.is_none() {
            return Err(permanent(
                "the submission has a metadata file but no command, and the phase has no ingestion program",
            ));
        }
    } else {
        if program.metadata.is_none() {
            return Err(permanent("the scoring program has no metadata file"));
        }
        if commands.is_empty() {
            return Err(permanent("the scoring program's metadata has no command"));
        }
    }
    Ok(Plan::Rounds { program: commands, ingestion })
}

fn record(
    exit_code: Option<i64>,
    ingestion: Option<Option<i64>>,
    elapsed: f64,
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("exitCode".into(), json!(exit_code));
    if let Some(code) = ingestion {
        r.insert("ingestionExitCode".into(), json!(code));
    }
    r.insert("elapsedTime".into(), json!(elapsed));
    r
}

fn describe(container: &str) -> &'static str {
    if container == "ingestion" { "ingestion program" } else { "program" }
}

/// `detailed_results.html` in the output, else (older competitions) the first
/// `*.html` file found.
fn detailed_results(output: &Path) -> Option<PathBuf> {
    let direct = output.join("detailed_results.html");
    if direct.is_file() {
        return Some(direct);
    }
    let mut stack = vec![output.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in &entries {
            let meta = std::fs::symlink_metadata(path).ok()?;
            if meta.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("html")) {
                return Some(path.clone());
            }
        }
        stack.extend(
            entries.into_iter().filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())),
        );
    }
    None
}

/// Uploads a snapshot, taken at `snapshot`, of a file the program may still be
/// writing.
async fn upload_copy(
    transfer: &Transfer,
    url: &SignedUrl,
    file: &Path,
    snapshot: &Path,
) -> Result<u64, crate::transfer::TransferError> {
    tokio::fs::copy(file, snapshot)
        .await
        .map_err(|source| crate::transfer::TransferError::Io { path: file.to_owned(), source })?;
    let result = transfer.upload(url, snapshot).await;
    let _ = tokio::fs::remove_file(snapshot).await;
    result
}

async fn tail(path: &Path, max: usize) -> Option<String> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let start = bytes.len().saturating_sub(max);
    Some(String::from_utf8_lossy(&bytes[start..]).into_owned())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

async fn blocking<F>(f: F) -> Result<(), Failure>
where
    F: FnOnce() -> Result<archive::Extracted, archive::ArchiveError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failure::Permanent(format!("packing the output failed: {}", chain(&e)))),
        Err(e) => Err(Failure::Permanent(format!("packing the output failed: {e}"))),
    }
}

/// Host figures for `extra.metadata`, prefixed `beginning_` or `end_`.
fn debug_metadata(hostname: &str, when: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hostname".into(), json!(hostname));
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let field = |name: &str| {
            meminfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        };
        let memory = json!({
            "total": field("MemTotal:").map(|k| k * 1024),
            "available": field("MemAvailable:").map(|k| k * 1024),
            "swap_total": field("SwapTotal:").map(|k| k * 1024),
            "swap_free": field("SwapFree:").map(|k| k * 1024),
        });
        m.insert(format!("{when}_virtual_memory_usage"), json!(memory.to_string()));
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one: Option<f64> = load.split_whitespace().next().and_then(|s| s.parse().ok());
        m.insert(format!("{when}_load_average"), json!(one));
    }
    m.insert(
        "cpu_count".into(),
        json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    );
    m
}
