//! Whole submissions on the real Docker engine, with bundles and outputs in Azurite
//! or the S3-compatible server behind signed URLs.

mod common;

use codalab_run::Status;
use common::*;
use serde_json::json;

const EXEC: u32 = 0o755;
const FILE: u32 = 0o644;

/// Uploads `run.txt` naming `bundles` (key to URL) and returns its URL.
fn run_txt(blobs: &Blobs, name: &str, bundles: &[(&str, String)]) -> String {
    let text: String = bundles.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    blobs.put_bytes(name, text.as_bytes())
}

#[tokio::test]
async fn a_result_submission_is_scored_into_scores_txt() {
    let blobs = Blobs::new(Store::Azurite, "results");
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;

    // Prediction: the submission holds results only.
    let submission =
        blobs.put_bytes("submission.zip", &zip(&[("predictions.txt", "1\n0\n1\n", FILE)]));
    let run = run_txt(&blobs, "predict-run.txt", &[("program", submission)]);
    let args = task_args(&blobs, &run, &busybox(), true, 60);
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-results-predict", &args, &statuses).await.unwrap();
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    let output = unzip(&blobs.get("output.zip").unwrap());
    assert_eq!(output["predictions.txt"], "1\n0\n1\n");
    assert!(output["metadata"].contains("exitCode: 0"), "{output:?}");

    // Scoring: input names the reference data and the prediction step's output.
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[
            ("metadata", "command: sh $program/score.sh $input $output\n", FILE),
            (
                "score.sh",
                "set -e\nok=0\nn=0\nwhile read -r a && read -r b <&3; do n=$((n+1)); \
                 [ \"$a\" = \"$b\" ] && ok=$((ok+1)); done < $1/res/predictions.txt 3< $1/ref/truth.txt\n\
                 echo \"correct: $ok\" > $2/scores.txt\necho \"scored $n lines\"\n",
                EXEC,
            ),
        ]),
    );
    let reference = blobs.put_bytes("reference.zip", &zip(&[("truth.txt", "1\n1\n1\n", FILE)]));
    let predictions = blobs.sign_get("output.zip");
    let input =
        blobs.put_bytes("input.txt", format!("ref: {reference}\nres: {predictions}\n").as_bytes());
    let run = run_txt(&blobs, "score-run.txt", &[("program", scoring), ("input", input)]);
    let mut args = task_args(&blobs, &run, &busybox(), false, 60);
    args.insert("output_url".into(), json!(blobs.sign_put("score-output.zip")));
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-results-score", &args, &statuses).await.unwrap();
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    let output = unzip(&blobs.get("score-output.zip").unwrap());
    assert_eq!(output["scores.txt"], "correct: 2\n");
    assert_eq!(blobs.get_text("stdout.txt").unwrap(), "scored 3 lines\n");
    assert_eq!(last(&statuses).status, Status::Finished);
    assert!(
        files_under(work.path()).is_empty(),
        "workspaces are removed: {:?}",
        files_under(work.path())
    );
}

#[tokio::test]
async fn a_code_submission_runs_with_and_without_an_ingestion_program() {
    for store in [Store::Azurite, Store::S3] {
        let blobs = Blobs::new(store, "code");
        let work = tempfile::tempdir().unwrap();
        let runner = runner(work.path()).await;
        let submission = blobs.put_bytes(
            "submission.zip",
            &zip(&[
                ("metadata", "command: python3 $program/predict.py $input $output\n", FILE),
                (
                    "predict.py",
                    "import os, sys\nprint('hidden visible:', os.path.exists('/codalab/hidden/answers.txt'))\n\
                     open(os.path.join(sys.argv[2], 'predictions.txt'), 'w').write('42\\n')\n",
                    FILE,
                ),
            ]),
        );
        let data = blobs.put_bytes("data.zip", &zip(&[("x.txt", "input data\n", FILE)]));

        // Without an ingestion program: the submission's own command runs.
        let run = run_txt(
            &blobs,
            "run-plain.txt",
            &[("program", submission.clone()), ("input", data.clone())],
        );
        let args = task_args(&blobs, &run, &python_image(), true, 120);
        let statuses = codalab_run::Recorded::default();
        let report = runner.run("task-code-plain", &args, &statuses).await.unwrap();
        assert_eq!(report.status, Status::Finished, "{store:?}: {:?}", report.traceback);
        assert_eq!(unzip(&blobs.get("output.zip").unwrap())["predictions.txt"], "42\n");
        assert_eq!(blobs.get_text("stdout.txt").unwrap(), "hidden visible: False\n");

        // With an ingestion program and hidden reference data, which only it sees.
        let ingestion = blobs.put_bytes(
            "ingestion.zip",
            &zip(&[
                ("metadata", "command: python3 $program/ingest.py $hidden $output $submission_program\n", FILE),
                (
                    "ingest.py",
                    "import os, sys\nhidden = open(os.path.join(sys.argv[1], 'answers.txt')).read()\n\
                     open(os.path.join(sys.argv[2], 'ingested.txt'), 'w').write(hidden)\n\
                     print('submission files:', sorted(os.listdir(sys.argv[3])))\n",
                    FILE,
                ),
            ]),
        );
        let hidden =
            blobs.put_bytes("hidden.zip", &zip(&[("answers.txt", "secret answers\n", FILE)]));
        let run = run_txt(
            &blobs,
            "run-ingestion.txt",
            &[
                ("program", submission),
                ("input", data),
                ("ingestion_program", ingestion),
                ("hidden_ref", hidden),
            ],
        );
        let args = task_args(&blobs, &run, &python_image(), true, 120);
        let statuses = codalab_run::Recorded::default();
        let report = runner.run("task-code-ingestion", &args, &statuses).await.unwrap();
        assert_eq!(report.status, Status::Finished, "{store:?}: {:?}", report.traceback);
        let output = unzip(&blobs.get("output.zip").unwrap());
        assert_eq!(output["ingested.txt"], "secret answers\n");
        assert_eq!(output["predictions.txt"], "42\n");
        assert!(output["metadata"].contains("ingestionExitCode: 0"), "{output:?}");
        assert_eq!(blobs.get_text("stdout.txt").unwrap(), "hidden visible: False\n");
        assert_eq!(
            blobs.get_text("ingestion_stdout.txt").unwrap(),
            "submission files: ['metadata', 'predict.py']\n"
        );
        let last = last(&statuses);
        assert_eq!(last.metadata["hostname"], json!("test-host"));
        assert!(last.metadata.contains_key("ingestion_program_duration"));
    }
}

#[tokio::test]
async fn scoring_commands_run_in_order_and_stop_at_the_first_failure() {
    let blobs = Blobs::new(Store::Azurite, "multi");
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[(
            "metadata",
            "command:\n  - sh -c 'echo first > $output/first.txt'\n  - sh -c 'echo broken >&2; exit 4'\n  \
             - sh -c 'echo third > $output/third.txt'\n",
            FILE,
        )]),
    );
    let run = run_txt(&blobs, "run.txt", &[("program", scoring)]);
    let args = task_args(&blobs, &run, &busybox(), false, 60);
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-multi", &args, &statuses).await.unwrap();
    assert_eq!(report.status, Status::Failed);
    let traceback = report.traceback.unwrap();
    assert!(
        traceback.contains("exited with code 4") && traceback.contains("broken"),
        "{traceback}"
    );
    let output = unzip(&blobs.get("output.zip").unwrap());
    assert_eq!(output["first.txt"], "first\n");
    assert!(!output.contains_key("third.txt"), "the third command never ran");
    let metadata = &output["metadata"];
    assert_eq!(metadata.matches("- ").count(), 2, "two records, as a list: {metadata}");
    assert!(metadata.contains("exitCode: 4"), "{metadata}");
    assert_eq!(last(&statuses).traceback.as_deref(), Some(traceback.as_str()));
}

#[tokio::test]
async fn the_time_limit_stops_the_run_and_outputs_are_still_uploaded() {
    let blobs = Blobs::new(Store::Azurite, "limit");
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[(
            "metadata",
            "command: sh -c 'echo started; echo partial > $output/partial.txt; sleep 600'\n",
            FILE,
        )]),
    );
    let run = run_txt(&blobs, "run.txt", &[("program", scoring)]);
    let args = task_args(&blobs, &run, &busybox(), false, 3);
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-limit", &args, &statuses).await.unwrap();
    assert_eq!(report.status, Status::Failed);
    assert!(report.timed_out);
    assert!(report.traceback.unwrap().contains("Execution time limit exceeded (3 s)"));
    assert_eq!(unzip(&blobs.get("output.zip").unwrap())["partial.txt"], "partial\n");
    assert_eq!(blobs.get_text("stdout.txt").unwrap(), "started\n");
}

#[tokio::test]
async fn a_failing_program_reports_its_stderr_and_private_output_is_split() {
    let blobs = Blobs::new(Store::Azurite, "private");
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[(
            "metadata",
            "command: sh -c 'mkdir -p $output/private && echo hidden-score > $output/private/s.txt && \
             echo public > $output/public.txt && echo ValueError, bad input >&2 && exit 1'\n",
            FILE,
        )]),
    );
    let run = run_txt(&blobs, "run.txt", &[("program", scoring)]);
    let args = task_args(&blobs, &run, &busybox(), false, 60);
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-private", &args, &statuses).await.unwrap();
    assert_eq!(report.status, Status::Failed);
    let traceback = report.traceback.unwrap();
    assert!(traceback.contains("ValueError, bad input"), "{traceback}");
    let public = unzip(&blobs.get("output.zip").unwrap());
    assert_eq!(public["public.txt"], "public\n");
    assert!(public.keys().all(|k| !k.starts_with("private")), "{public:?}");
    let private = unzip(&blobs.get("private_output.zip").unwrap());
    assert_eq!(private["s.txt"], "hidden-score\n");
}

#[tokio::test]
async fn detailed_results_are_uploaded_while_the_program_runs() {
    let blobs = std::sync::Arc::new(Blobs::new(Store::Azurite, "detailed"));
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[(
            "metadata",
            "command: sh -c 'for v in 1 2 3 4; do echo \"<p>version $v</p>\" > $output/detailed_results.html; \
             for i in 1 2 3 4 5 6 7 8; do ls -A $output >> $output/listing.txt; done; sleep 3; done'\n",
            FILE,
        )]),
    );
    let run = run_txt(&blobs, "run.txt", &[("program", scoring)]);
    let args = task_args(&blobs, &run, &busybox(), false, 120);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (blobs, done) = (blobs.clone(), done.clone());
        tokio::task::spawn_blocking(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(text) = blobs.get_text("detailed_results.html") {
                    seen.insert(text);
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            seen
        })
    };
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-detailed", &args, &statuses).await.unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    let seen = watcher.await.unwrap();
    assert!(seen.len() >= 2, "versions seen while running: {seen:?}");
    assert_eq!(blobs.get_text("detailed_results.html").unwrap(), "<p>version 4</p>\n");
    // The program never saw an upload's snapshot in its output folder.
    let listing = &unzip(&blobs.get("output.zip").unwrap())["listing.txt"];
    assert!(listing.contains("detailed_results.html"), "{listing}");
    assert!(!listing.contains("uploading"), "{listing}");
}

#[tokio::test]
async fn the_steps_folder_lives_from_prediction_to_the_end_of_scoring() {
    let blobs = Blobs::new(Store::Azurite, "steps");
    let work = tempfile::tempdir().unwrap();
    let runner = runner(work.path()).await;
    let submission = blobs.put_bytes(
        "submission.zip",
        &zip(&[("metadata", "command: sh -c 'echo from-prediction > $STEPS/note.txt'\n", FILE)]),
    );
    let run = run_txt(&blobs, "predict.txt", &[("program", submission)]);
    let args = task_args(&blobs, &run, &busybox(), true, 60);
    let report =
        runner.run("task-steps-predict", &args, &codalab_run::Recorded::default()).await.unwrap();
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    let steps: Vec<_> = std::fs::read_dir(work.path().join("steps")).unwrap().flatten().collect();
    assert_eq!(steps.len(), 1, "one steps folder for the submission");

    // Scoring with an ingestion program beside the scoring program; both see $STEPS.
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[("metadata", "command: sh -c 'cat $STEPS/note.txt > $output/scored.txt'\n", FILE)]),
    );
    let ingestion = blobs.put_bytes(
        "ingestion.zip",
        &zip(&[("metadata", "command: sh -c 'echo ingestion saw $(cat $STEPS/note.txt)'\n", FILE)]),
    );
    let run =
        run_txt(&blobs, "score.txt", &[("program", scoring), ("ingestion_program", ingestion)]);
    let mut args = task_args(&blobs, &run, &busybox(), false, 60);
    args.insert("submission_id".into(), json!(std::process::id()));
    let report =
        runner.run("task-steps-score", &args, &codalab_run::Recorded::default()).await.unwrap();
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    assert_eq!(unzip(&blobs.get("output.zip").unwrap())["scored.txt"], "from-prediction\n");
    assert_eq!(blobs.get_text("ingestion_stdout.txt").unwrap(), "ingestion saw from-prediction\n");
    assert_eq!(
        std::fs::read_dir(work.path().join("steps")).unwrap().count(),
        0,
        "removed after scoring"
    );
}

#[tokio::test]
async fn an_unreachable_upload_target_hands_the_task_back_without_a_final_status() {
    let blobs = Blobs::new(Store::Azurite, "retry");
    let work = tempfile::tempdir().unwrap();
    let runner = runner_with(work.path(), |c| c.transfer.attempts = 2).await;
    let scoring = blobs.put_bytes("scoring.zip", &zip(&[("metadata", "command: true\n", FILE)]));
    let run = run_txt(&blobs, "run.txt", &[("program", scoring)]);
    let mut args = task_args(&blobs, &run, &busybox(), false, 60);
    // Nothing listens on port 1: a network failure, which may pass.
    args.insert("output_url".into(), json!("http://127.0.0.1:1/output.zip?sig=x"));
    let statuses = codalab_run::Recorded::default();
    let retry = runner.run("task-retry", &args, &statuses).await.unwrap_err();
    assert!(retry.to_string().contains("retried"), "{retry}");
    let updates = statuses.updates();
    assert_eq!(updates.len(), 1, "only `running` was sent: {updates:?}");
    assert!(files_under(work.path()).is_empty(), "the workspace is removed all the same");
}
