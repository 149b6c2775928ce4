//! The two CodaLab tasks: `compute_worker_run` (site to worker) and
//! `apps.web.tasks.update_submission` (worker to site).

use serde_json::{Map, Value, json};

use crate::message::TaskMessage;

/// The task the CodaLab site sends to compute workers.
pub const COMPUTE_WORKER_RUN: &str = "compute_worker_run";
/// The task compute workers send back to the site.
pub const UPDATE_SUBMISSION: &str = "apps.web.tasks.update_submission";
/// The queue the site consumes status updates from, and the exchange named like it.
pub const SUBMISSION_UPDATES: &str = "submission-updates";
/// The site's default queue for compute workers.
pub const COMPUTE_WORKER_QUEUE: &str = "compute-worker";

/// Checks `compute_worker_run` arguments: `[job_id, task_args]` with a job id
/// that is a number or a string and `task_args` a mapping. The contents of
/// `task_args` are the submission lifecycle's to judge.
pub fn check_compute_worker_run(task: &TaskMessage) -> Result<(), String> {
    match task.args.as_slice() {
        [Value::Number(_) | Value::String(_), Value::Object(_)] => Ok(()),
        [_, Value::Object(_)] => Err("the job id is neither a number nor a string".into()),
        [_, _] => Err("task_args is not a mapping".into()),
        args => Err(format!("expected [job_id, task_args], got {} arguments", args.len())),
    }
}

/// `(job_id, task_args)` of a checked `compute_worker_run` task.
pub fn compute_worker_run_args(task: &TaskMessage) -> Option<(&Value, &Map<String, Value>)> {
    match task.args.as_slice() {
        [job_id, Value::Object(task_args)] => Some((job_id, task_args)),
        _ => None,
    }
}

/// A submission status the site understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionStatus {
    /// The worker started on it.
    Running,
    /// Done; outputs uploaded.
    Finished,
    /// Done, unsuccessfully; `extra.traceback` says why.
    Failed,
}

impl SubmissionStatus {
    /// The word the site expects.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Running => "running",
            SubmissionStatus::Finished => "finished",
            SubmissionStatus::Failed => "failed",
        }
    }
}

/// The `update_submission` task for a job: args `[job_id, {"status": ..., "extra":
/// extra}, secret]`. Publish it with the secret among the values to elide.
pub fn update_submission(
    job_id: &Value,
    status: SubmissionStatus,
    extra: Map<String, Value>,
    secret: &str,
) -> TaskMessage {
    let args =
        vec![job_id.clone(), json!({"status": status.as_str(), "extra": extra}), json!(secret)];
    TaskMessage::new(UPDATE_SUBMISSION, args)
}
