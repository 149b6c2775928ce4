//! Reporting a submission's status to the site.

use compute::{BoxError, BoxFuture};
use serde_json::{Map, Value};

/// A status the site understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Work started.
    Running,
    /// Done; outputs uploaded.
    Finished,
    /// Done, unsuccessfully.
    Failed,
}

impl Status {
    /// The word the site expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
        }
    }
}

/// One update: status, debug metadata, and for failures a text the participant
/// reads.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    /// The status.
    pub status: Status,
    /// Flat debug fields (`extra.metadata`).
    pub metadata: Map<String, Value>,
    /// Why it failed (`extra.traceback`).
    pub traceback: Option<String>,
}

impl StatusUpdate {
    /// The `extra` mapping of CodaLab's `update_submission`.
    pub fn extra(&self) -> Map<String, Value> {
        let mut extra = Map::new();
        extra.insert("metadata".into(), Value::Object(self.metadata.clone()));
        if let Some(tb) = &self.traceback {
            extra.insert("traceback".into(), Value::String(tb.clone()));
        }
        extra
    }
}

/// Where status updates go: the site's `update_submission` task in production, a
/// list in tests, JSON lines for local runs.
pub trait StatusSink: Send + Sync {
    /// Delivers one update; an error means it did not reach its destination.
    fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// Keeps every update, for tests and local runs.
#[derive(Debug, Default)]
pub struct Recorded(pub std::sync::Mutex<Vec<StatusUpdate>>);

impl Recorded {
    /// The updates so far.
    pub fn updates(&self) -> Vec<StatusUpdate> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl StatusSink for Recorded {
    fn send<'a>(&'a self, update: StatusUpdate) -> BoxFuture<'a, Result<(), BoxError>> {
        self.0.lock().expect("not poisoned").push(update);
        Box::pin(async { Ok(()) })
    }
}
