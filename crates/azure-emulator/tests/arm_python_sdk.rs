//! Conformance with the official Python SDKs: azure-identity (MSAL) gets a token
//! from the emulator's Entra ID, and azure-mgmt-containerinstance creates a group
//! (waiting on its long-running operation), reads it and its logs, stops one and
//! deletes both, through `tests/python/aci_sdk.py`.

mod common;

use std::process::{Command, Stdio};

use common::arm::{Arm, busybox};
use common::{python, script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdks_find_what_they_expect() {
    let arm = Arm::start(|_| {}).await;
    let emulator = arm.emulator();
    let ca = emulator.ca_cert_pem_path();
    let args = [
        emulator.arm_endpoint(),
        ca.display().to_string(),
        azure_emulator::DEFAULT_TENANT_ID.to_owned(),
        azure_emulator::DEFAULT_CLIENT_ID.to_owned(),
        azure_emulator::DEFAULT_CLIENT_SECRET.to_owned(),
        azure_emulator::DEFAULT_SUBSCRIPTION_ID.to_owned(),
        azure_emulator::DEFAULT_RESOURCE_GROUP.to_owned(),
        busybox(),
        "conformance".to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script("aci_sdk.py"))
            .args(&args)
            // requests (under azure-core) trusts this bundle too, whatever the code says.
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env_remove("AZURE_AUTHORITY_HOST")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/dev-services up)", python().display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aci_sdk.py failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line");
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    let passed: Vec<&str> =
        result["passed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        passed,
        ["token", "wrong secret", "create", "get", "logs", "list", "stop", "delete"]
    );
    assert!(emulator.container_groups().is_empty(), "the script deleted what it made");
    assert!(emulator.token_requests() >= 2);
    arm.files.emulator.shutdown().await;
}
