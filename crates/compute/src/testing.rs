//! A scripted, in-memory [`ComputeBackend`] for unit tests of code built on this
//! seam. It runs nothing: each container "exits" as its script says, after writing
//! the scripted output into the workspace. Tests of real backends never use it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::{
    BoxFuture, ComputeBackend, ContainerOutcome, Error, Event, EventSink, JobId, JobSpec, Outcome,
    Result, WorkspacePath,
};

/// What one scripted container does.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Exit code to report.
    pub exit_code: i64,
    /// Written to the container's stdout file, when the spec keeps one.
    pub stdout: String,
    /// Written to the container's stderr file, when the spec keeps one.
    pub stderr: String,
    /// Files written into the workspace, as if by the container.
    pub files: Vec<(WorkspacePath, Vec<u8>)>,
    /// Report the container as killed at the time limit.
    pub timed_out: bool,
    /// Report the container as killed for memory.
    pub oom_killed: bool,
}

impl Script {
    /// A container that exits with `code` and writes nothing.
    pub fn exit(code: i64) -> Self {
        Script { exit_code: code, ..Script::default() }
    }
}

/// Plays back [`Script`]s by container name and records every spec it was given.
#[derive(Debug, Default)]
pub struct ScriptedBackend {
    scripts: Mutex<HashMap<String, Script>>,
    failures: Mutex<Vec<(String, bool)>>,
    runs: Mutex<Vec<JobSpec>>,
    cleaned: Mutex<Vec<JobId>>,
}

impl ScriptedBackend {
    /// A backend whose containers all exit with 0 until scripted otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts the container called `name` in every later job.
    pub fn script(&self, name: &str, script: Script) -> &Self {
        self.scripts.lock().unwrap().insert(name.to_owned(), script);
        self
    }

    /// Makes the next `run` fail as a platform error with this message.
    pub fn fail_next(&self, message: &str, transient: bool) -> &Self {
        self.failures.lock().unwrap().push((message.to_owned(), transient));
        self
    }

    /// Every spec passed to `run`, in order.
    pub fn runs(&self) -> Vec<JobSpec> {
        self.runs.lock().unwrap().clone()
    }

    /// Every id passed to `cleanup`, in order.
    pub fn cleaned(&self) -> Vec<JobId> {
        self.cleaned.lock().unwrap().clone()
    }

    fn play(&self, spec: &JobSpec, events: &dyn EventSink) -> Result<Outcome> {
        spec.validate()?;
        self.runs.lock().unwrap().push(spec.clone());
        let failure = {
            let mut failures = self.failures.lock().unwrap();
            (!failures.is_empty()).then(|| failures.remove(0))
        };
        if let Some((message, transient)) = failure {
            return Err(Error::platform("scripted run", transient, message));
        }
        let write = |path: &WorkspacePath, bytes: &[u8]| -> Result<()> {
            let full = path.under(&spec.workspace);
            let io = |e| Error::platform("write scripted output", false, e);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(full, bytes).map_err(io)
        };
        let scripts = self.scripts.lock().unwrap().clone();
        let mut outcomes = Vec::new();
        for c in &spec.containers {
            let script = scripts.get(c.name.as_str()).cloned().unwrap_or_default();
            events.emit(Event::Created { container: c.name.clone() });
            let started_at = SystemTime::now();
            events.emit(Event::Started { container: c.name.clone() });
            if let Some(path) = &c.stdout {
                write(path, script.stdout.as_bytes())?;
            }
            if let Some(path) = &c.stderr {
                write(path, script.stderr.as_bytes())?;
            }
            for (path, bytes) in &script.files {
                write(path, bytes)?;
                if spec.watch.contains(path) {
                    events.emit(Event::FileChanged { path: path.clone() });
                }
            }
            events.emit(Event::Exited {
                container: c.name.clone(),
                exit_code: Some(script.exit_code),
            });
            outcomes.push(ContainerOutcome {
                name: c.name.clone(),
                exit_code: Some(script.exit_code),
                started_at: Some(started_at),
                finished_at: Some(SystemTime::now()),
                timed_out: script.timed_out,
                oom_killed: script.oom_killed,
            });
        }
        let timed_out = outcomes.iter().any(|o| o.timed_out);
        Ok(Outcome { containers: outcomes, timed_out })
    }
}

impl ComputeBackend for ScriptedBackend {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn run<'a>(
        &'a self,
        spec: &'a JobSpec,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move { self.play(spec, events) })
    }

    fn cleanup<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.cleaned.lock().unwrap().push(job.clone());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerName, ContainerSpec, ImageRef};

    fn job(dir: &std::path::Path) -> JobSpec {
        let mut spec = JobSpec::new(JobId::new("job-1").unwrap(), dir);
        let mut c = ContainerSpec::new(
            ContainerName::new("main").unwrap(),
            ImageRef::parse("busybox").unwrap(),
            vec!["true".into()],
        );
        c.stdout = Some(WorkspacePath::new("out/stdout.txt").unwrap());
        spec.containers.push(c);
        spec.watch.push(WorkspacePath::new("out/detail.html").unwrap());
        spec
    }

    #[tokio::test]
    async fn plays_back_the_script_and_records_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let backend = ScriptedBackend::new();
        backend.script(
            "main",
            Script {
                exit_code: 3,
                stdout: "hello\n".into(),
                files: vec![(WorkspacePath::new("out/detail.html").unwrap(), b"<p>".to_vec())],
                ..Script::default()
            },
        );
        let events = Mutex::new(Vec::new());
        let sink = |e: Event| events.lock().unwrap().push(e);
        let outcome = backend.run(&job(dir.path()), &sink).await.unwrap();
        assert_eq!(outcome.container("main").unwrap().exit_code, Some(3));
        assert!(!outcome.succeeded());
        assert_eq!(std::fs::read_to_string(dir.path().join("out/stdout.txt")).unwrap(), "hello\n");
        let events = events.into_inner().unwrap();
        assert!(events.iter().any(|e| matches!(e, Event::FileChanged { .. })));
        assert_eq!(backend.runs().len(), 1);
    }

    #[tokio::test]
    async fn scripted_failures_keep_their_transience() {
        let dir = tempfile::tempdir().unwrap();
        let backend = ScriptedBackend::new();
        backend.fail_next("engine down", true);
        let err = backend.run(&job(dir.path()), &crate::NoEvents).await.unwrap_err();
        assert!(err.is_transient());
        assert!(backend.run(&job(dir.path()), &crate::NoEvents).await.is_ok());
    }
}
