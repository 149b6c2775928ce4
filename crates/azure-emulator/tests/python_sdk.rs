//! Conformance with the official Python SDK (azure-storage-file-share): shares,
//! directories, files of every size and awkward names, paged listings, ranges, SAS
//! tokens and a wrong key, all through `tests/python/files_sdk.py`.

mod common;

use std::process::{Command, Stdio};

use common::{Harness, python, script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_finds_what_it_expects() {
    let harness = Harness::start().await;
    let endpoint = harness.emulator.files_endpoint();
    let (account, key) = (azure_emulator::DEFAULT_ACCOUNT, azure_emulator::DEFAULT_KEY);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script("files_sdk.py"))
            .args([endpoint.as_str(), account, key, "conformance"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/dev-services up)", python().display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "files_sdk.py failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line");
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    let passed: Vec<&str> =
        result["passed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        passed,
        [
            "share",
            "directories",
            "files",
            "list",
            "deletes",
            "share sas",
            "file sas",
            "account sas",
            "wrong key",
            "list shares and delete"
        ]
    );
    // Everything the script made, it deleted.
    assert!(common::tree(&harness.data_dir().join("shares")).is_empty());
    harness.emulator.shutdown().await;
}
