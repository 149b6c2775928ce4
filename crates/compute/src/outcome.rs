//! What a backend reports when a job is over, and on the way there.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{ContainerName, WorkspacePath};

/// How a job ended. A container that exits non-zero, is killed for memory or
/// outlives the time limit still gives an `Outcome`: those are the participant's
/// results, not the platform's failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// One entry per container, in the order of the spec.
    pub containers: Vec<ContainerOutcome>,
    /// The time limit passed and the backend stopped the containers still running.
    pub timed_out: bool,
}

impl Outcome {
    /// The outcome of the container with this name.
    pub fn container(&self, name: &str) -> Option<&ContainerOutcome> {
        self.containers.iter().find(|c| c.name.as_str() == name)
    }

    /// Every container exited with code 0 before the time limit.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.containers.iter().all(ContainerOutcome::succeeded)
    }
}

/// How one container ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOutcome {
    /// The container's name from the spec.
    pub name: ContainerName,
    /// Exit code; `None` when the platform could not tell (a container that never
    /// started, or a platform that lost the code).
    pub exit_code: Option<i64>,
    /// When it started running.
    pub started_at: Option<SystemTime>,
    /// When it stopped.
    pub finished_at: Option<SystemTime>,
    /// It was still running at the time limit and was killed.
    pub timed_out: bool,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
}

impl ContainerOutcome {
    /// Exit code 0, not timed out, not killed for memory.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.oom_killed
    }

    /// Wall-clock run time, when both ends are known.
    pub fn duration(&self) -> Option<Duration> {
        self.finished_at?.duration_since(self.started_at?).ok()
    }
}

/// Progress of a running job, for the caller's logs and live uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The backend created the container (it may still wait for its image).
    Created {
        /// Which container.
        container: ContainerName,
    },
    /// The container began to run.
    Started {
        /// Which container.
        container: ContainerName,
    },
    /// A watched file has new contents in the local workspace.
    FileChanged {
        /// The file, as named in [`JobSpec::watch`](crate::JobSpec::watch).
        path: WorkspacePath,
    },
    /// The container stopped.
    Exited {
        /// Which container.
        container: ContainerName,
        /// Its exit code, when known.
        exit_code: Option<i64>,
    },
}

/// Receives [`Event`]s while a job runs. Implemented for closures.
pub trait EventSink: Send + Sync {
    /// Called for each event, in order; must not block for long.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// An [`EventSink`] that drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}
