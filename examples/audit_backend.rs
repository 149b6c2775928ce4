//! A `ComputeBackend` of your own: [`AuditBackend`] wraps another backend (here the
//! local Docker engine) and appends one JSON line to an audit log per job start,
//! per event and per outcome. It plugs into `codalab-run`'s [`Runner`] like any
//! backend, so the whole CodaLab submission lifecycle runs through it unchanged.
//!
//! ```text
//! audit-backend TASK_ARGS.json AUDIT_LOG
//! ```
//!
//! The task file and the stdout lines are those of `run-task-docker`; the audit log
//! is appended to (several runs may share it). Its lines, all with `time` (Unix
//! seconds), `job`, `backend` and `kind`:
//!
//! - `start`: what the job asks for: containers with image, argv, the names (never
//!   the values) of their environment variables, resources and mounts; time limit,
//!   network, watched files.
//! - `event`: one per [`Event`], `event` being `created`, `started`, `file_changed`
//!   or `exited`.
//! - `outcome`: per container exit code, run time, time-out and memory kill; or
//!   `error` when the platform failed, with the error chain and whether it is
//!   transient; or `abandoned` when the caller dropped the run before its end.
//! - `cleanup`: a request to remove what a job left behind.
//!
//! A job whose `start` line cannot be written does not run: nothing runs unaudited.
//!
//! Exit status as for `run-task-docker`; the work root is always a temporary folder.

use std::error::Error;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use backend_docker::{DockerBackend, DockerConfig};
use codalab_run::{Runner, RunnerConfig, Status, StatusSink, StatusUpdate};
use compute::{
    BoxError, BoxFuture, ComputeBackend, Event, EventSink, JobId, JobSpec, Outcome, Result,
    error_chain,
};
use serde_json::{Map, Value, json};

/// Runs jobs on `inner` and writes what happens to an audit log.
struct AuditBackend<B> {
    inner: B,
    log: Mutex<File>,
}

impl<B: ComputeBackend> AuditBackend<B> {
    /// Wraps `inner`, appending to the log at `path` (created if missing).
    fn open(inner: B, path: &Path) -> std::io::Result<Self> {
        let log = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditBackend { inner, log: Mutex::new(log) })
    }

    /// Appends one line. Each line goes out in one write to a file opened for
    /// appending, so lines of concurrent jobs, or of several processes, never mix.
    fn record(&self, job: &JobId, kind: &str, fields: Value) -> std::io::Result<()> {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut line = Map::new();
        line.insert("time".into(), json!(time.as_secs_f64()));
        line.insert("job".into(), json!(job.as_str()));
        line.insert("backend".into(), json!(self.inner.name()));
        line.insert("kind".into(), json!(kind));
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        self.log.lock().unwrap_or_else(|e| e.into_inner()).write_all(text.as_bytes())
    }

    /// For lines whose loss must not stop the job: a failed write is logged.
    fn record_or_warn(&self, job: &JobId, kind: &str, fields: Value) {
        if let Err(e) = self.record(job, kind, fields) {
            tracing::warn!(job = %job, kind, error = %e, "could not write the audit log");
        }
    }
}

impl<B: ComputeBackend> ComputeBackend for AuditBackend<B> {
    /// The wrapped backend's name: logs and metrics still say where jobs ran.
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            self.record(&spec.id, "start", describe(spec))
                .map_err(|e| compute::Error::platform("write the audit log", false, e))?;
            let mut pending = Abandoned { audit: self, job: &spec.id, armed: true };

            // Every event is written down, then passed on to the caller.
            let tee = |event: Event| {
                self.record_or_warn(&spec.id, "event", event_fields(&event));
                events.emit(event);
            };
            let result = self.inner.run(spec, &tee).await;

            pending.armed = false;
            match &result {
                Ok(outcome) => self.record_or_warn(&spec.id, "outcome", outcome_fields(outcome)),
                Err(e) => self.record_or_warn(
                    &spec.id,
                    "error",
                    json!({ "error": error_chain(e), "transient": e.is_transient() }),
                ),
            }
            result
        })
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        self.record_or_warn(job, "cleanup", json!({}));
        self.inner.cleanup(job)
    }
}

/// Writes `abandoned` when the future of a run is dropped before the run ends (the
/// wrapped backend then removes its containers in the background).
struct Abandoned<'a, B: ComputeBackend> {
    audit: &'a AuditBackend<B>,
    job: &'a JobId,
    armed: bool,
}

impl<B: ComputeBackend> Drop for Abandoned<'_, B> {
    fn drop(&mut self) {
        if self.armed {
            self.audit.record_or_warn(self.job, "abandoned", json!({}));
        }
    }
}

/// What a job asks for. Environment values and registry passwords may be secrets:
/// only names and the registry's server are written.
fn describe(spec: &JobSpec) -> Value {
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| {
            let mounts: Vec<Value> = c
                .mounts
                .iter()
                .map(|m| {
                    json!({
                        "source": m.source.as_str(),
                        "target": m.target.as_str(),
                        "read_only": m.read_only,
                    })
                })
                .collect();
            json!({
                "name": c.name.as_str(),
                "image": c.image.to_string(),
                "argv": c.argv,
                "env": c.env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                "cpus": c.resources.cpus,
                "memory_bytes": c.resources.memory_bytes,
                "gpus": c.resources.gpu.as_ref().map(|g| g.count),
                "mounts": mounts,
            })
        })
        .collect();
    json!({
        "workspace": spec.workspace.display().to_string(),
        "time_limit_secs": spec.time_limit.map(|d| d.as_secs_f64()),
        "network": spec.network,
        "registry": spec.registry.as_ref().map(|r| r.server.as_str()),
        "watch": spec.watch.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        "containers": containers,
    })
}

fn event_fields(event: &Event) -> Value {
    match event {
        Event::Created { container } => json!({ "event": "created", "container": container }),
        Event::Started { container } => json!({ "event": "started", "container": container }),
        Event::FileChanged { path } => json!({ "event": "file_changed", "path": path }),
        Event::Exited { container, exit_code } => {
            json!({ "event": "exited", "container": container, "exit_code": exit_code })
        }
        // Events added to `compute` later still get a line.
        other => json!({ "event": format!("{other:?}") }),
    }
}

fn outcome_fields(outcome: &Outcome) -> Value {
    let containers: Vec<Value> = outcome
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "exit_code": c.exit_code,
                "seconds": c.duration().map(|d| d.as_secs_f64()),
                "timed_out": c.timed_out,
                "oom_killed": c.oom_killed,
            })
        })
        .collect();
    json!({
        "succeeded": outcome.succeeded(),
        "timed_out": outcome.timed_out,
        "containers": containers,
    })
}

/// Prints each status update as one JSON line on stdout, as `run-task-docker` does.
struct JsonLines;

impl StatusSink for JsonLines {
    fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>> {
        let line = json!({ "status": update.status.as_str(), "extra": update.extra() });
        let written = writeln!(std::io::stdout().lock(), "{line}").map_err(BoxError::from);
        Box::pin(async move { written })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let [task_file, audit_log] = args.as_slice() else {
        eprintln!("usage: audit-backend TASK_ARGS.json AUDIT_LOG");
        return ExitCode::from(2);
    };
    match run(Path::new(task_file), Path::new(audit_log)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("audit-backend: {}", error_chain(&*e));
            ExitCode::from(2)
        }
    }
}

async fn run(task_file: &Path, audit_log: &Path) -> Result<ExitCode, Box<dyn Error>> {
    let text = std::fs::read(task_file).map_err(|e| format!("{}: {e}", task_file.display()))?;
    let Value::Object(task_args) = serde_json::from_slice(&text)? else {
        return Err(format!("{}: expected the task_args object", task_file.display()).into());
    };
    let work = tempfile::Builder::new().prefix("audit-backend-").tempdir()?;

    let docker = DockerConfig { worker: "audit-backend".into(), ..Default::default() };
    let backend = AuditBackend::open(DockerBackend::connect(docker).await?, audit_log)
        .map_err(|e| format!("{}: {e}", audit_log.display()))?;
    let mut config = RunnerConfig::new(work.path());
    config.transfer.allow_file_urls = true;
    let runner = Runner::new(backend, config);

    let task_id = format!("audit-{}", std::process::id());
    Ok(match runner.run(&task_id, &task_args, &JsonLines).await {
        Ok(report) if report.status == Status::Finished => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("audit-backend: failed: {}", report.traceback.unwrap_or_default());
            ExitCode::from(1)
        }
        Err(retry) => {
            eprintln!("audit-backend: {}", error_chain(&retry));
            ExitCode::from(3)
        }
    })
}
