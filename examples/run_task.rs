//! Runs one CodaLab task on the local Docker engine, without a broker.
//!
//! The file names the `task_args` of a `compute_worker_run` task: the JSON object that
//! the CodaLab site sends as the task's second argument. `codalab-run`'s [`Runner`]
//! runs it with `backend-docker`, exactly as the worker would, and every status update
//! the site would receive is printed on stdout as one JSON line, the `{"status": ...,
//! "extra": {...}}` mapping of `update_submission`.
//!
//! ```text
//! run-task-docker TASK_ARGS.json
//! ```
//!
//! Bundle and upload URLs may be `file://` URLs (`TransferConfig::allow_file_urls`):
//! a download reads the file, an upload copies the file to that path, creating its
//! folder. `make-competition` writes such task files for the example competition in
//! `examples/competition/`.
//!
//! Environment:
//!
//! - `SUBMISSION_TEMP_DIR`: the work root, under which the run's workspace lives.
//!   Default: a temporary folder, removed at exit.
//! - `DONT_FINALIZE_SUBMISSION`: when set (and not empty, `0` or `false`), the
//!   workspace is kept, and the temporary work root with it; its path goes to stderr.
//! - `DOCKER_HOST`: the engine, as for the `docker` command.
//! - `RUST_LOG`: the log filter for stderr; default `info`.
//!
//! Exit status: 0 when the final status is `finished`, 1 when it is `failed`, 2 when
//! the task could not be run at all (unreadable file, no engine), 3 after a passing
//! platform failure, for which the worker would hand the task back to the broker.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backend_docker::{DockerBackend, DockerConfig};
use codalab_run::{Runner, RunnerConfig, Status, StatusSink, StatusUpdate};
use compute::{BoxError, BoxFuture, error_chain};
use serde_json::{Map, Value, json};

/// Prints each update as one JSON line on stdout. The worker's sink publishes the
/// same mapping to the site's `submission-updates` queue instead.
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
    init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [task_file] = args.as_slice() else {
        eprintln!("usage: run-task-docker TASK_ARGS.json");
        return ExitCode::from(2);
    };
    match run(Path::new(task_file)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("run-task-docker: {}", error_chain(&*e));
            ExitCode::from(2)
        }
    }
}

async fn run(task_file: &Path) -> Result<ExitCode, Box<dyn Error>> {
    let task_args = read_task_args(task_file)?;
    let work = WorkRoot::new()?;

    let mut config = RunnerConfig::new(work.path());
    config.transfer.allow_file_urls = true;
    config.dont_finalize = work.keep;
    let docker = DockerConfig { worker: "run-task-docker".into(), ..Default::default() };
    let backend = DockerBackend::connect(docker).await?;
    let runner = Runner::new(backend, config);

    // The Celery task id names the run's workspace and containers.
    let task_id = format!("{}-{}", file_stem(task_file), std::process::id());
    let code = match runner.run(&task_id, &task_args, &JsonLines).await {
        Ok(report) if report.status == Status::Finished => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("run-task-docker: failed: {}", report.traceback.unwrap_or_default());
            ExitCode::from(1)
        }
        Err(retry) => {
            eprintln!("run-task-docker: {}", error_chain(&retry));
            ExitCode::from(3)
        }
    };
    work.finish();
    Ok(code)
}

/// Reads the `task_args` object.
fn read_task_args(path: &Path) -> Result<Map<String, Value>, Box<dyn Error>> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))? {
        Value::Object(args) => Ok(args),
        _ => Err(format!("{}: expected the task_args object", path.display()).into()),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or("task".into(), |s| s.to_string_lossy().into_owned())
}

/// The work root: `SUBMISSION_TEMP_DIR`, or a temporary folder.
struct WorkRoot {
    path: PathBuf,
    temporary: Option<tempfile::TempDir>,
    keep: bool,
}

impl WorkRoot {
    fn new() -> std::io::Result<Self> {
        let keep = std::env::var("DONT_FINALIZE_SUBMISSION")
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        match std::env::var_os("SUBMISSION_TEMP_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => {
                // Bind-mount sources must be absolute.
                let path = std::path::absolute(dir)?;
                std::fs::create_dir_all(&path)?;
                Ok(WorkRoot { path, temporary: None, keep })
            }
            None => {
                let dir = tempfile::Builder::new().prefix("run-task-docker-").tempdir()?;
                Ok(WorkRoot { path: dir.path().to_owned(), temporary: Some(dir), keep })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Removes a temporary root, unless workspaces are to be kept.
    fn finish(self) {
        if self.keep {
            eprintln!("run-task-docker: workspaces kept under {}", self.path.display());
            if let Some(dir) = self.temporary {
                let _kept = dir.keep();
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
