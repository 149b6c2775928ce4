//! `aci-worker`: a CodaLab Competitions compute worker. It takes
//! `compute_worker_run` tasks from RabbitMQ, runs each submission's programs on
//! Azure Container Instances or the local Docker engine, and reports back with
//! `update_submission`. See `docs/configuration.md` and `docs/operations.md`.

mod backends;
mod check;
mod config;
mod logging;
mod ops;
mod state;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use codalab_run::{StatusSink, StatusUpdate};
use compute::{BoxError, BoxFuture};
use serde_json::{Map, Value};

use crate::config::{Config, Purpose, Sources};
use crate::logging::Secrets;

/// Exit codes (see docs/configuration.md).
const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 3;
const EXIT_CHECK: u8 = 4;
const EXIT_TASK_FAILED: u8 = 5;

#[derive(Parser)]
#[command(
    name = "aci-worker",
    version,
    about = "CodaLab Competitions compute worker on Azure Container Instances or local Docker"
)]
struct Cli {
    /// A TOML file of settings (overridden by the environment); also ACI_WORKER_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Take tasks from the queue and run them (the default).
    Serve,
    /// Run one task from a JSON file without a broker; status lines as JSON on stdout.
    RunTask {
        /// The task: its `task_args` object, `{"task_args": {...}}`, or `[job_id, task_args]`.
        task: PathBuf,
    },
    /// Verify the configuration and every connection.
    Check,
    /// Remove this worker's orphaned container groups, shares and containers.
    Cleanup,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let file = cli.config.or_else(|| std::env::var_os("ACI_WORKER_CONFIG").map(PathBuf::from));
    let purpose = match command {
        Command::Serve | Command::Check => Purpose::Serve,
        Command::RunTask { .. } => Purpose::RunTask,
        Command::Cleanup => Purpose::Cleanup,
    };
    // Not `std::env::vars`, which panics on a value that is not UTF-8.
    let env = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()));
    let config = match Sources::load(file.as_deref(), env).and_then(|s| config::build(&s, purpose))
    {
        Ok(config) => config,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let secrets = Secrets::default();
    for secret in &config.secrets {
        secrets.add(secret);
    }
    logging::init(&config.log_level, config.log_format, secrets.clone(), std::io::stderr);
    for notice in &config.notices {
        tracing::warn!("{notice}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(async move {
        let result = match command {
            Command::Serve => serve(config, secrets).await,
            Command::RunTask { task } => run_task(config, secrets, &task).await,
            Command::Check => Ok(if check::check(&config).await { 0 } else { EXIT_CHECK }),
            Command::Cleanup => cleanup(&config).await,
        };
        result.unwrap_or_else(|e| {
            tracing::error!("{e:#}");
            EXIT_FAILURE
        })
    });
    // Tasks that were cancelled may still be removing containers: give them a moment.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    ExitCode::from(code)
}

async fn serve(config: Config, secrets: Secrets) -> anyhow::Result<u8> {
    let readiness = ops::Readiness::default();
    let handle = ops::metrics()?;
    if let Some(addr) = config.http_addr {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if let Err(e) = ops::serve(addr, readiness, handle).await {
                tracing::error!(%addr, "the health and metrics endpoint stopped: {e:#}");
            }
        });
    }
    worker::serve(config, secrets, readiness).await
}

/// Prints every status update as one JSON line on stdout.
struct PrintSink;

impl StatusSink for PrintSink {
    fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let line =
                serde_json::json!({"status": update.status.as_str(), "extra": update.extra()});
            println!("{line}");
            Ok(())
        })
    }
}

/// Reads a task file in any of its three shapes.
fn read_task(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    let args = match value {
        Value::Array(items) if items.len() >= 2 => items[1].clone(),
        Value::Object(mut object) => match object.remove("task_args") {
            Some(args) => args,
            None => Value::Object(object),
        },
        _ => Value::Null,
    };
    match args {
        Value::Object(args) => Ok(args),
        _ => anyhow::bail!(
            "{}: expected task_args, {{\"task_args\": ...}} or [job_id, task_args]",
            path.display()
        ),
    }
}

async fn run_task(config: Config, secrets: Secrets, path: &Path) -> anyhow::Result<u8> {
    let args = read_task(path)?;
    if let Some(secret) = args.get("secret").and_then(Value::as_str) {
        secrets.add(secret);
    }
    let backends = backends::build(&config, true).await?;
    let predict = args.get("predict").and_then(Value::as_bool).unwrap_or(false);
    let (runner, backend) = backends.for_step(predict);
    let task_id = format!("local-{}", uuid::Uuid::new_v4());
    tracing::info!(%task_id, backend, "running one task");
    match runner.run(&task_id, &args, &PrintSink).await {
        Ok(report) if report.status == codalab_run::Status::Finished => Ok(0),
        Ok(_) => Ok(EXIT_TASK_FAILED),
        Err(retry) => anyhow::bail!("the task could not run: {}", compute::error_chain(&*retry.0)),
    }
}

async fn cleanup(config: &Config) -> anyhow::Result<u8> {
    let age = config.orphan_age;
    let mut failed = false;
    if let Some(aci) = backends::aci(config)? {
        let report =
            aci.sweep_orphans(age).await.map_err(|e| anyhow::anyhow!(compute::error_chain(&e)))?;
        println!(
            "removed {} container group(s) and {} share(s)",
            report.groups.len(),
            report.shares.len()
        );
        for name in report.groups.iter().chain(&report.shares) {
            println!("  {name}");
        }
        if !report.failures.is_empty() {
            println!("could not remove {} (a later cleanup tries again):", report.failed());
            for failure in &report.failures {
                println!("  {}: {}", failure.name, failure.error);
            }
            failed = true;
        }
    }
    if !(config.aci_pred && config.aci_score) {
        let docker = backends::docker(config).await?;
        let removed = docker
            .sweep_orphans(age)
            .await
            .map_err(|e| anyhow::anyhow!(compute::error_chain(&e)))?;
        println!("removed {removed} Docker container(s)");
    }
    Ok(if failed { EXIT_FAILURE } else { 0 })
}
