//! The seam between what to run and where it runs.
//!
//! A backend of your own implements [`ComputeBackend`]; here one that runs nothing
//! and reports every container as exited with 0, given a one-container job:
//!
//! ```
//! use compute::*;
//!
//! struct DryRun;
//!
//! impl ComputeBackend for DryRun {
//!     fn name(&self) -> &'static str {
//!         "dry-run"
//!     }
//!
//!     fn run<'a>(&'a self, spec: &'a JobSpec, events: &'a dyn EventSink)
//!         -> BoxFuture<'a, Result<Outcome>> {
//!         Box::pin(async move {
//!             spec.validate()?;
//!             let containers = spec.containers.iter().map(|c| {
//!                 events.emit(Event::Exited { container: c.name.clone(), exit_code: Some(0) });
//!                 ContainerOutcome { name: c.name.clone(), exit_code: Some(0), started_at: None,
//!                     finished_at: None, timed_out: false, oom_killed: false }
//!             });
//!             Ok(Outcome { containers: containers.collect(), timed_out: false })
//!         })
//!     }
//!
//!     fn cleanup<'a>(&'a self, _job: &'a JobId) -> BoxFuture<'a, Result<()>> {
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let mut job = JobSpec::new(JobId::derive(&["task-42", "score"]), "/tmp/run");
//! let mut scorer = ContainerSpec::new(
//!     ContainerName::new("scoring")?,
//!     ImageRef::parse("codalab/codalab-legacy:py37")?,
//!     vec!["python3".into(), "/codalab/run/program/score.py".into()],
//! );
//! let output = ContainerPath::new("/codalab/run/output")?;
//! scorer.mounts.push(Mount::rw(WorkspacePath::new("output")?, output));
//! scorer.stdout = Some(WorkspacePath::new("output/stdout.txt")?);
//! job.containers.push(scorer);
//!
//! let outcome = block_on(DryRun.run(&job, &NoEvents))?;
//! assert!(outcome.succeeded());
//! # Ok(())
//! # }
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! A [`JobSpec`] describes containers that run side by side over one local
//! workspace: their images, argv, environment, resources and the workspace folders
//! they see. A [`ComputeBackend`] runs it — on the local Docker engine, on Azure
//! Container Instances, or on anything else — and returns an [`Outcome`] with each
//! container's exit code and times. The caller (the CodaLab submission lifecycle in
//! `codalab-run`) never learns which backend it used.
//!
//! This crate does no I/O. Names and paths that reach a backend are checked when
//! they are built ([`JobId`], [`ContainerName`], [`WorkspacePath`],
//! [`ContainerPath`], [`ImageRef`]), so a backend receives nothing that could escape
//! the workspace or be read by a shell.
//!
//! A backend may also wrap another one: the repository's `examples/audit_backend.rs`
//! passes every job to the Docker backend and writes its start, events and outcome
//! to an audit log.
//!
//! # Features
//!
//! - `testing`: [`testing::ScriptedBackend`], an in-memory backend that plays back
//!   scripted exits and output, for unit tests of code built on this seam.

mod error;
mod image;
mod names;
mod outcome;
mod secret;
mod spec;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use error::{BoxError, Error, Result, error_chain};
pub use image::{DEFAULT_REGISTRY, ImageRef, InvalidImageRef};
pub use names::{ContainerName, ContainerPath, InvalidName, JobId, WorkspacePath};
pub use outcome::{ContainerOutcome, Event, EventSink, NoEvents, Outcome};
pub use secret::Secret;
pub use spec::{
    ContainerSpec, EnvValue, EnvVar, Gpu, JobSpec, Mount, RegistryCredentials, Resources,
};

/// A boxed future, as the methods of [`ComputeBackend`] return, so that the trait
/// can be used as `dyn ComputeBackend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs jobs somewhere.
///
/// Contract, for every implementation:
///
/// - `run` validates the spec, makes the workspace folders named by the mounts
///   visible to the containers, starts all containers together, streams their
///   stdout and stderr into the workspace files the spec names, reports watched
///   files as they change, and returns when every container has stopped. The files
///   the containers wrote are in the local workspace when it returns.
/// - At the time limit, every container still running is killed and reported
///   `timed_out`; the call still returns `Ok`.
/// - Whatever `run` created is removed before it returns, whether the job
///   succeeded, failed or timed out, and also when the returned future is dropped
///   before completion (removal then continues in the background).
/// - `Err` means the platform failed; a non-zero exit is an `Ok` [`Outcome`].
pub trait ComputeBackend: Send + Sync {
    /// A short name for logs and metrics, e.g. `docker` or `aci`.
    fn name(&self) -> &'static str;

    /// Runs a job to the end; see the trait documentation for the contract.
    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>>;

    /// Removes, best effort, anything a job with this id left behind, for example
    /// after the worker was killed in the middle of it.
    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>>;
}

impl<B: ComputeBackend + ?Sized> ComputeBackend for Arc<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>> {
        (**self).run(spec, events)
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        (**self).cleanup(job)
    }
}

impl<B: ComputeBackend + ?Sized> ComputeBackend for Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>> {
        (**self).run(spec, events)
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        (**self).cleanup(job)
    }
}
