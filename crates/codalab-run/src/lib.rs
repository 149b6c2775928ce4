//! The CodaLab v1 submission lifecycle: one `compute_worker_run` task turned into a
//! finished or failed submission, on any [`compute::ComputeBackend`].
//!
//! A runner on the local Docker engine, with a [`StatusSink`] that prints each
//! update where the worker would publish it to the site as `update_submission`:
//!
//! ```no_run
//! use backend_docker::{DockerBackend, DockerConfig};
//! use codalab_run::{Runner, RunnerConfig, Status, StatusSink, StatusUpdate};
//! use compute::{BoxError, BoxFuture};
//! use serde_json::{Value, json};
//!
//! struct Print;
//!
//! impl StatusSink for Print {
//!     fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>> {
//!         println!("{} {}", update.status.as_str(), Value::Object(update.extra()));
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = DockerBackend::connect(DockerConfig::default()).await?;
//! let runner = Runner::new(backend, RunnerConfig::new("/var/lib/aci-worker/work"));
//! // The second argument of a `compute_worker_run` task, with the site's signed URLs.
//! let Value::Object(task_args) = json!({
//!     "submission_id": 42,
//!     "bundle_url": "https://storage.example.org/42/run.txt?sig=r",
//!     "stdout_url": "https://storage.example.org/42/stdout.txt?sig=w",
//!     "stderr_url": "https://storage.example.org/42/stderr.txt?sig=w",
//!     "output_url": "https://storage.example.org/42/output.zip?sig=w",
//!     "secret": "sent back with every update",
//!     "execution_time_limit": 600,
//! }) else {
//!     unreachable!()
//! };
//! match runner.run("6f1c2a9e-task-id", &task_args, &Print).await {
//!     Ok(report) if report.status == Status::Finished => println!("finished"),
//!     Ok(report) => println!("failed: {}", report.traceback.unwrap_or_default()),
//!     // No final status was sent: hand the task back to the broker.
//!     Err(retry) => eprintln!("{retry}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Runner::run`] reads the task's arguments ([`TaskArgs`]), reports `running`,
//! fetches the run bundle and every bundle it names ([`bundle`]), decides what runs
//! (a result submission, a code submission with or without an ingestion program, a
//! scoring program with one or several commands), runs it through the backend
//! within the time limit, writes `output/metadata`, uploads logs, `output.zip`,
//! `private_output.zip` and detailed results to the signed URLs
//! ([`transfer`]), and reports `finished` or `failed` through a [`StatusSink`].
//!
//! The repository's `examples/run_task.rs` is a complete program of this kind, with
//! an example competition to run (from `file://` URLs); `examples/audit_backend.rs`
//! runs the same lifecycle on a backend of its own that wraps Docker.

pub mod archive;
pub mod bundle;
pub mod layout;
pub mod metadata;
mod run;
mod status;
mod task;
pub mod transfer;

pub use run::{Report, Retry, Runner, RunnerConfig, hostname};
pub use status::{Recorded, Status, StatusSink, StatusUpdate};
pub use task::{Hints, InvalidTaskArgs, SignedUrl, TaskArgs};
