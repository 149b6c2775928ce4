//! Durable state: a record of every task taken from the broker, and an outbox of
//! status updates not yet confirmed by the main broker.
//!
//! The worker acknowledges a task only after its record is on disk, then runs it,
//! and deletes the record in the same durable step that puts the final status in
//! the outbox (see [`State::enqueue`]). So a task is
//! never lost (a worker killed mid-run finds the record at its next start and runs
//! the task again), never run twice for one delivery (the ack happens at once, long
//! before RabbitMQ's consumer timeout, and a redelivery of a recorded task is
//! dropped), and its statuses wait on disk for as long as the main broker is away.
//! Files are written to a temporary name, synced and renamed, so a crash leaves
//! either the old or the new file. The directory is private (0700): outbox entries
//! hold the submission secret the site needs back.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A task as taken from the broker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Celery task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// AMQP priority, to keep when handing the task back.
    #[serde(default)]
    pub priority: Option<u8>,
    /// When it was taken (seconds since the epoch).
    pub received_at: u64,
    /// How often a run of it started (resumes after restarts count).
    #[serde(default)]
    pub starts: u32,
    /// How often it was handed back after a transient failure (Celery's `retries`).
    #[serde(default)]
    pub retries: u32,
}

/// A status update waiting to be published.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outgoing {
    /// The task it belongs to.
    pub task_id: String,
    /// The site's job id (first argument of the task).
    pub job_id: Value,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// `extra` of `update_submission`.
    pub extra: Map<String, Value>,
    /// The submission secret.
    pub secret: String,
}

/// Extension of a committed final status not yet handed to the sender.
const FINAL: &str = "final";

/// The state directory.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    sequence: AtomicU64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Task ids become file names: keep what is safe, hash the rest away.
fn file_name(task_id: &str) -> String {
    let safe: String = task_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(100)
        .collect();
    if safe == task_id { safe } else { format!("{safe}-{:08x}", fnv(task_id)) }
}

/// Whether a status ends its task.
fn is_final(status: &str) -> bool {
    use celery_amqp::codalab::SubmissionStatus;
    [SubmissionStatus::Finished, SubmissionStatus::Failed].iter().any(|s| s.as_str() == status)
}

/// The outbox sequence number at the start of a file name.
fn sequence_of(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.split('-').next()?.parse::<u64>().ok()
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension().is_some_and(|e| e == extension)
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl State {
    /// Opens (creating) the state directory.
    pub fn open(dir: &Path) -> std::io::Result<State> {
        for sub in ["tasks", "outbox", "done"] {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join(sub))?;
        }
        let state = State { dir: dir.to_path_buf(), sequence: AtomicU64::new(0) };
        // Continue the outbox sequence after what is already there.
        let (finals, others): (Vec<PathBuf>, Vec<PathBuf>) = state
            .files_in("outbox")?
            .into_iter()
            .filter(|p| has_extension(p, "json") || has_extension(p, FINAL))
            .partition(|p| has_extension(p, FINAL));
        let last = finals.iter().chain(&others).filter_map(|p| sequence_of(p)).max();
        state.sequence.store(last.map_or(0, |l| l + 1), Ordering::SeqCst);
        state.complete_finals(finals)?;
        Ok(state)
    }

    /// Completes final statuses a stop interrupted between their commit and
    /// their release to the sender (see [`State::enqueue`]): `finals`, the
    /// staged entries of the outbox, in order.
    fn complete_finals(&self, finals: Vec<PathBuf>) -> std::io::Result<()> {
        for path in finals {
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Outgoing>(&b)) {
                Ok(Ok(update)) => {
                    self.finish(&update.task_id)?;
                    self.release(&path)?;
                }
                _ => {
                    tracing::error!(path = %path.display(), "unreadable outbox entry set aside");
                    std::fs::rename(&path, path.with_extension("unreadable"))?;
                }
            }
        }
        Ok(())
    }

    /// Hands a committed final status to the sender.
    fn release(&self, path: &Path) -> std::io::Result<()> {
        std::fs::rename(path, path.with_extension("json"))?;
        std::fs::File::open(self.dir.join("outbox"))?.sync_all()
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    /// Records a task before it is acknowledged. `Ok(false)` when it is known
    /// already (running, or finished recently): the delivery is a duplicate.
    pub fn record(&self, record: &TaskRecord) -> std::io::Result<bool> {
        let name = file_name(&record.id);
        let path = self.dir.join("tasks").join(format!("{name}.json"));
        if path.exists() || self.dir.join("done").join(&name).exists() {
            return Ok(false);
        }
        self.write_atomic(&path, &serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
        Ok(true)
    }

    /// Saves a changed record (its start count).
    pub fn update(&self, record: &TaskRecord) -> std::io::Result<()> {
        let path = self.dir.join("tasks").join(format!("{}.json", file_name(&record.id)));
        self.write_atomic(&path, &serde_json::to_vec(record).map_err(std::io::Error::other)?)
    }

    /// The task is over: its record goes, a marker stays to drop redeliveries.
    pub fn finish(&self, task_id: &str) -> std::io::Result<()> {
        let name = file_name(task_id);
        self.write_atomic(&self.dir.join("done").join(&name), now().to_string().as_bytes())?;
        match std::fs::remove_file(self.dir.join("tasks").join(format!("{name}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The task is handed back to the broker: its record goes, with no marker.
    pub fn forget(&self, task_id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(
            self.dir.join("tasks").join(format!("{}.json", file_name(task_id))),
        ) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether the task's final status is in the outbox (or was sent).
    pub fn is_done(&self, task_id: &str) -> bool {
        self.dir.join("done").join(file_name(task_id)).exists()
    }

    /// Tasks recorded and not finished: to resume at start-up. A record whose
    /// task is done (a stop came between the done marker and the record's
    /// removal) is removed instead.
    pub fn pending(&self) -> std::io::Result<Vec<TaskRecord>> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("tasks"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                match std::fs::read(&path).map(|b| serde_json::from_slice::<TaskRecord>(&b)) {
                    Ok(Ok(record)) if self.is_done(&record.id) => self.finish(&record.id)?,
                    Ok(Ok(record)) => records.push(record),
                    _ => {
                        tracing::error!(path = %path.display(), "unreadable task record left in place")
                    }
                }
            }
        }
        records.sort_by_key(|r| r.received_at);
        Ok(records)
    }

    /// Removes markers of tasks finished more than `age` ago.
    pub fn prune_done(&self, age: Duration) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.dir.join("done"))? {
            let entry = entry?;
            let old = entry.metadata()?.modified()?.elapsed().unwrap_or_default() > age;
            if old {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Puts a status update in the outbox, after those already there.
    ///
    /// A final status (`finished`, `failed`) also ends its task, as one durable
    /// step: the update is first written under a name the sender ignores (the
    /// commit), then the task is marked done and its record removed, then the
    /// update is renamed for the sender. A stop anywhere in between is completed
    /// by the next [`State::open`], so a task whose final status was committed is
    /// never resumed, and a task marked done always has its final status sent.
    pub fn enqueue(&self, update: &Outgoing) -> std::io::Result<()> {
        let seq = self.sequence.fetch_add(1, Ordering::SeqCst);
        let name = format!("{seq:020}-{}", file_name(&update.task_id));
        let bytes = serde_json::to_vec(update).map_err(std::io::Error::other)?;
        if !is_final(&update.status) {
            return self
                .write_atomic(&self.dir.join("outbox").join(format!("{name}.json")), &bytes);
        }
        let staged = self.dir.join("outbox").join(format!("{name}.{FINAL}"));
        self.write_atomic(&staged, &bytes)?;
        self.finish(&update.task_id)?;
        self.release(&staged)
    }

    /// The files of `sub`, sorted.
    fn files_in(&self, sub: &str) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join(sub))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The updates released to the sender, in order.
    fn outbox_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = self.files_in("outbox")?;
        files.retain(|p| has_extension(p, "json"));
        Ok(files)
    }

    /// The oldest update waiting, if any.
    pub fn next_outgoing(&self) -> std::io::Result<Option<(PathBuf, Outgoing)>> {
        for path in self.outbox_files()? {
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Outgoing>(&b)) {
                Ok(Ok(update)) => return Ok(Some((path, update))),
                _ => {
                    tracing::error!(path = %path.display(), "unreadable outbox entry set aside");
                    std::fs::rename(&path, path.with_extension("unreadable"))?;
                }
            }
        }
        Ok(None)
    }

    /// How many updates wait.
    pub fn outbox_len(&self) -> usize {
        self.outbox_files().map_or(0, |f| f.len())
    }

    /// The update was confirmed by the broker.
    pub fn sent(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> TaskRecord {
        TaskRecord {
            id: id.into(),
            name: "compute_worker_run".into(),
            args: vec![Value::from(1)],
            kwargs: Map::new(),
            priority: Some(2),
            received_at: now(),
            starts: 0,
            retries: 0,
        }
    }

    fn update(task_id: &str, status: &str) -> Outgoing {
        Outgoing {
            task_id: task_id.into(),
            job_id: Value::from(7),
            status: status.into(),
            extra: Map::new(),
            secret: "s".into(),
        }
    }

    fn statuses(state: &State) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some((path, update)) = state.next_outgoing().unwrap() {
            seen.push(update.status);
            state.sent(&path).unwrap();
        }
        seen
    }

    #[test]
    fn a_final_status_ends_its_task_in_the_same_step() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.record(&record("t-1")).unwrap();
        state.enqueue(&update("t-1", "running")).unwrap();
        assert_eq!(state.pending().unwrap().len(), 1, "running does not end the task");
        state.enqueue(&update("t-1", "failed")).unwrap();
        // A kill now, before the caller's own bookkeeping: nothing to resume.
        let reopened = State::open(dir.path()).unwrap();
        assert!(reopened.pending().unwrap().is_empty());
        assert!(reopened.is_done("t-1"));
        assert!(!reopened.record(&record("t-1")).unwrap(), "a redelivery is dropped");
        assert_eq!(statuses(&reopened), ["running", "failed"]);
    }

    #[test]
    fn a_stop_inside_the_final_step_is_completed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.record(&record("t-1")).unwrap();
        state.enqueue(&update("t-1", "running")).unwrap();
        // Killed right after the commit: the final status is written under the
        // name the sender ignores, the task not yet marked done.
        let seq = state.sequence.fetch_add(1, Ordering::SeqCst);
        let staged = dir.path().join("outbox").join(format!("{seq:020}-t-1.{FINAL}"));
        state
            .write_atomic(&staged, &serde_json::to_vec(&update("t-1", "finished")).unwrap())
            .unwrap();
        assert_eq!(state.outbox_len(), 1, "not released yet");
        // A task killed between its done marker and its record's removal.
        state.record(&record("t-2")).unwrap();
        state.write_atomic(&dir.path().join("done").join("t-2"), b"0").unwrap();

        let reopened = State::open(dir.path()).unwrap();
        assert!(reopened.pending().unwrap().is_empty(), "neither task runs again");
        assert!(reopened.is_done("t-1") && reopened.is_done("t-2"));
        assert_eq!(statuses(&reopened), ["running", "finished"], "sent once, in order");
        reopened.enqueue(&update("t-3", "running")).unwrap();
        assert!(
            reopened.next_outgoing().unwrap().unwrap().0.file_name().unwrap().to_str().unwrap()
                > staged.file_name().unwrap().to_str().unwrap(),
            "the sequence goes on after the staged entry"
        );
    }

    #[test]
    fn a_task_is_recorded_once_and_resumed_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        assert!(state.record(&record("t-1")).unwrap());
        assert!(!state.record(&record("t-1")).unwrap(), "duplicate delivery");
        assert!(state.record(&record("../evil/../t2")).unwrap());
        let reopened = State::open(dir.path()).unwrap();
        assert_eq!(reopened.pending().unwrap().len(), 2);
        reopened.finish("t-1").unwrap();
        assert!(!reopened.record(&record("t-1")).unwrap(), "redelivery after finishing");
        reopened.forget("../evil/../t2").unwrap();
        assert!(reopened.pending().unwrap().is_empty());
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| e.unwrap().path().is_dir()));
    }

    #[test]
    fn the_outbox_keeps_order_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        state.enqueue(&update("t", "running")).unwrap();
        let state = State::open(dir.path()).unwrap();
        state.enqueue(&update("t", "finished")).unwrap();
        let (path, first) = state.next_outgoing().unwrap().unwrap();
        assert_eq!(first.status, "running");
        state.sent(&path).unwrap();
        assert_eq!(state.next_outgoing().unwrap().unwrap().1.status, "finished");
        assert_eq!(state.outbox_len(), 1);
    }
}
