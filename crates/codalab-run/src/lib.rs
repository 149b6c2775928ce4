//! The CodaLab v1 submission lifecycle: one `compute_worker_run` task turned into a
//! finished or failed submission, on any [`compute::ComputeBackend`].
//!
//! [`Runner::run`] reads the task's arguments ([`TaskArgs`]), reports `running`,
//! fetches the run bundle and every bundle it names ([`bundle`]), decides what runs
//! (a result submission, a code submission with or without an ingestion program, a
//! scoring program with one or several commands), runs it through the backend
//! within the time limit, writes `output/metadata`, uploads logs, `output.zip`,
//! `private_output.zip` and detailed results to the signed URLs
//! ([`transfer`]), and reports `finished` or `failed` through a [`StatusSink`].
//!
//! # Example
//!
//! ```no_run
//! use codalab_run::{Recorded, Runner, RunnerConfig};
//! # async fn example(backend: impl compute::ComputeBackend, task_args: serde_json::Map<String, serde_json::Value>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let runner = Runner::new(backend, RunnerConfig::new("/var/lib/aci-worker/work"));
//! let statuses = Recorded::default();
//! let report = runner.run("6f1c2a9e-task-id", &task_args, &statuses).await?;
//! println!("{:?}: {:?}", report.status, report.traceback);
//! # Ok(())
//! # }
//! ```

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
