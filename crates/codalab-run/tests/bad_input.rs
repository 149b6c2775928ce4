//! Bad bundles and arguments: each gives a `failed` status with a reason the
//! participant can read, writes nothing outside the workspace, and the next task
//! runs normally.

mod common;

use codalab_run::Status;
use common::*;

const FILE: u32 = 0o644;

fn run_txt(blobs: &Blobs, name: &str, text: &str) -> String {
    blobs.put_bytes(name, text.as_bytes())
}

#[tokio::test]
async fn bad_inputs_fail_with_a_readable_reason_and_the_next_task_runs() {
    let blobs = Blobs::new(Store::Azurite, "bad");
    let sandbox = tempfile::tempdir().unwrap();
    let work = sandbox.path().join("work");
    let runner = runner_with(&work, |c| {
        c.limits.max_total_bytes = 1 << 20;
        c.limits.max_entries = 1000;
    })
    .await;

    let missing = blobs.sign_get("never-uploaded.zip");
    let corrupt =
        blobs.put_bytes("corrupt.zip", b"PK\x03\x04 this is not really a zip archive at all");
    let slip = blobs.put_bytes(
        "slip.zip",
        &zip(&[("metadata", "command: true\n", FILE), ("../../../evil.txt", "pwned", FILE)]),
    );
    let zeros = "\0".repeat(8 << 20);
    let bomb = blobs.put_bytes(
        "bomb.zip",
        &zip(&[("metadata", "command: true\n", FILE), ("zeros.bin", &zeros, FILE)]),
    );
    let no_command = blobs
        .put_bytes("nocommand.zip", &zip(&[("metadata", "description: no command here\n", FILE)]));
    let not_mapping =
        blobs.put_bytes("list.zip", &zip(&[("metadata", "- just\n- a list\n", FILE)]));
    let scoring = blobs.put_bytes(
        "scoring.zip",
        &zip(&[("metadata", "command: sh -c 'echo fine > $output/ok.txt'\n", FILE)]),
    );
    let write_only = blobs.sign_put("write-only-target.zip");

    let cases = [
        (format!("program: {missing}\n"), "bundle 'program' could not be fetched"),
        (format!("program: {corrupt}\n"), "bundle 'program' could not be unpacked"),
        (format!("program: {slip}\n"), "bundle 'program' could not be unpacked"),
        (format!("program: {bomb}\n"), "bundle 'program' could not be unpacked"),
        (format!("input: {scoring}\n"), "the run bundle names no program"),
        (format!("program: {no_command}\n"), "the scoring program's metadata has no command"),
        (format!("program: {not_mapping}\n"), "not a mapping"),
        (
            format!("program: {scoring}\nextra_data: {write_only}\n"),
            "bundle 'extra_data' could not be fetched",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let run = run_txt(&blobs, &format!("run-{i}.txt"), text);
        let args = task_args(&blobs, &run, &busybox(), false, 60);
        let statuses = codalab_run::Recorded::default();
        let report = runner.run(&format!("task-bad-{i}"), &args, &statuses).await.unwrap();
        let traceback = report.traceback.clone().unwrap_or_default();
        assert_eq!(report.status, Status::Failed, "case {i}");
        assert!(traceback.contains(expected), "case {i}: {traceback}");
        assert!(
            !traceback.contains("sig="),
            "no signature in what the participant reads: {traceback}"
        );
        assert_eq!(last(&statuses).status, Status::Failed);
    }
    let mut missing_field = task_args(&blobs, &blobs.sign_get("x"), &busybox(), false, 60);
    missing_field.remove("output_url");
    let statuses = codalab_run::Recorded::default();
    let report = runner.run("task-bad-args", &missing_field, &statuses).await.unwrap();
    assert!(report.traceback.unwrap().contains("output_url"));

    let stray: Vec<_> =
        files_under(sandbox.path()).into_iter().filter(|p| !p.starts_with(&work)).collect();
    assert!(stray.is_empty(), "written outside the work root: {stray:?}");
    assert!(files_under(&work).is_empty(), "workspaces are removed: {:?}", files_under(&work));

    let run = run_txt(&blobs, "run-good.txt", &format!("program: {scoring}\n"));
    let args = task_args(&blobs, &run, &busybox(), false, 60);
    let report =
        runner.run("task-good-after-bad", &args, &codalab_run::Recorded::default()).await.unwrap();
    assert_eq!(report.status, Status::Finished, "{:?}", report.traceback);
    assert_eq!(unzip(&blobs.get("output.zip").unwrap())["ok.txt"], "fine\n");
}
