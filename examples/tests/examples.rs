//! The example programs, run as a user runs them, on the local Docker engine and
//! with the images that `scripts/dev-services up` serves (`DOCKER_HOST`,
//! `ACI_TEST_BUSYBOX`, `ACI_TEST_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use codalab_run::archive::{Limits, extract};
use serde_json::Value;

/// The example competition built into a fresh temporary folder.
struct Competition {
    dir: tempfile::TempDir,
}

impl Competition {
    fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = run(env!("CARGO_BIN_EXE_make-competition"), &[dir.path().as_os_str()]);
        assert_success(&out);
        let listed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        let name = |p: &&str| Path::new(p).file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            listed.iter().map(name).collect::<Vec<_>>(),
            ["predict-code.json", "score-code.json", "score-results.json"],
            "prediction steps first"
        );
        Competition { dir }
    }

    fn task(&self, name: &str) -> PathBuf {
        self.dir.path().join("tasks").join(format!("{name}.json"))
    }

    fn output(&self, task: &str, file: &str) -> PathBuf {
        self.dir.path().join("outputs").join(task).join(file)
    }

    fn text(&self, task: &str, file: &str) -> String {
        let path = self.output(task, file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A file of the task's `output.zip`.
    fn zipped(&self, task: &str, file: &str) -> String {
        let dest = tempfile::tempdir().unwrap();
        extract(&self.output(task, "output.zip"), dest.path(), &Limits::default()).unwrap();
        let path = dest.path().join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{file} in the output of {task}: {e}"))
    }
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The status updates printed on stdout, one JSON object per line.
fn statuses(out: &Output) -> Vec<Value> {
    let stdout = std::str::from_utf8(&out.stdout).unwrap();
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

/// Runs `run-task-docker` on a task and checks that it reports `running`, then
/// `finished`, and exits with 0.
fn run_task(task: &Path) {
    let out = run(env!("CARGO_BIN_EXE_run-task-docker"), &[task.as_os_str()]);
    assert_success(&out);
    let statuses = statuses(&out);
    let words: Vec<&str> = statuses.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(words, ["running", "finished"], "{statuses:?}");
    let last = &statuses[1];
    assert!(last["extra"]["metadata"]["run_duration"].is_number(), "{last}");
    assert!(last["extra"].get("traceback").is_none(), "{last}");
}

#[test]
fn run_task_docker_scores_a_result_submission() {
    let competition = Competition::build();
    run_task(&competition.task("score-results"));

    assert_eq!(competition.zipped("score-results", "scores.txt"), "accuracy: 0.9000\n");
    assert!(competition.zipped("score-results", "metadata").contains("exitCode: 0"));
    assert_eq!(
        competition.text("score-results", "stdout.txt"),
        "scored 10 predictions: accuracy 0.9000\n"
    );
    let details = competition.text("score-results", "detailed_results.html");
    assert!(details.starts_with("<table>"), "{details}");
}

#[test]
fn run_task_docker_runs_a_code_submission_through_its_ingestion_program_then_scores_it() {
    let competition = Competition::build();
    run_task(&competition.task("predict-code"));
    let predictions = competition.zipped("predict-code", "predictions.csv");
    assert_eq!(predictions.lines().count(), 11, "{predictions}");
    assert!(
        competition.zipped("predict-code", "metadata").contains("ingestionExitCode: 0"),
        "the ingestion program ran"
    );
    let ingestion = competition.text("predict-code", "ingestion_stdout.txt");
    assert!(ingestion.starts_with("10 predictions in "), "{ingestion}");

    // The scoring step reads the prediction step's output.zip as input/res.
    run_task(&competition.task("score-code"));
    assert_eq!(competition.zipped("score-code", "scores.txt"), "accuracy: 1.0000\n");
}

#[test]
fn run_task_docker_exits_with_1_when_the_submission_fails() {
    let competition = Competition::build();
    let task = competition.task("score-results");
    let mut args: Value = serde_json::from_slice(&std::fs::read(&task).unwrap()).unwrap();
    let missing = format!("file://{}/runs/missing.txt", competition.dir.path().display());
    args["bundle_url"] = Value::String(missing);
    let broken = competition.dir.path().join("tasks/broken.json");
    std::fs::write(&broken, args.to_string()).unwrap();

    let out = run(env!("CARGO_BIN_EXE_run-task-docker"), &[broken.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let last = statuses(&out).pop().unwrap();
    assert_eq!(last["status"], "failed");
    let traceback = last["extra"]["traceback"].as_str().unwrap();
    assert!(traceback.contains("could not be fetched"), "{traceback}");

    let usage = run(env!("CARGO_BIN_EXE_run-task-docker"), &[]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn audit_backend_logs_start_events_and_outcome_of_each_job() {
    let competition = Competition::build();
    let log = competition.dir.path().join("audit.jsonl");
    let task = competition.task("score-results");
    let out = run(env!("CARGO_BIN_EXE_audit-backend"), &[task.as_os_str(), log.as_os_str()]);
    assert_success(&out);
    let last = statuses(&out).pop().unwrap();
    assert_eq!(last["status"], "finished", "{last}");
    assert_eq!(competition.zipped("score-results", "scores.txt"), "accuracy: 0.9000\n");

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{text}");
    assert_eq!(kinds.last(), Some(&"outcome"), "{text}");
    assert!(kinds[1..kinds.len() - 1].iter().all(|k| *k == "event"), "{text}");
    let job = &lines[0]["job"];
    assert!(lines.iter().all(|l| &l["job"] == job && l["backend"] == "docker"), "{text}");

    let start = &lines[0];
    assert_eq!(start["containers"][0]["name"], "program", "{start}");
    assert_eq!(start["containers"][0]["argv"][0], "python3", "{start}");
    assert_eq!(start["containers"][0]["env"], serde_json::json!(["STEPS"]), "{start}");
    let events: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["kind"] == "event" && l["container"] == "program")
        .map(|l| (l["event"].as_str().unwrap(), l["container"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [("created", "program"), ("started", "program"), ("exited", "program")],
        "{text}"
    );
    let outcome = lines.last().unwrap();
    assert_eq!(outcome["succeeded"], true, "{outcome}");
    assert_eq!(outcome["containers"][0]["exit_code"], 0, "{outcome}");
    assert!(!text.contains("example-secret"), "the submission secret stays out of the log");
}

#[test]
fn local_job_still_runs_its_two_containers() {
    let out = run(env!("CARGO_BIN_EXE_local-job"), &[]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scores.txt: accuracy: 0.75"), "{stdout}");
}
