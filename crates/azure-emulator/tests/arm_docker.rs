//! Container groups that really run, on the Docker engine of `scripts/dev-services`:
//! a share mounted as an `azureFile` volume, exit codes, logs, a program that does
//! not exist, an image that cannot be pulled, stop, delete and a Spot eviction.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use azure_emulator::{ArmFaults, KILLED_EXIT_CODE, SPOT_EVICTION_EVENT};
use bollard::query_parameters::ListContainersOptions;
use common::arm::{Arm, busybox, container, group_body, provisioning, share_volume, state, view};
use serde_json::{Value, json};

/// Containers on the engine that this emulator created and still has.
async fn containers_left(arm: &Arm) -> usize {
    let data_dir = arm.emulator().share_dir("x").parent().unwrap().parent().unwrap().to_owned();
    let label = format!("{}=azure-emulator:{}", backend_docker::LABEL_WORKER, data_dir.display());
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    docker.list_containers(Some(options)).await.unwrap().len()
}

fn event_names(events: &Value) -> Vec<&str> {
    events.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_runs_with_its_share_mounted_and_reports_exit_codes_and_logs() {
    let arm = Arm::start(|_| {}).await;
    let share = arm.share("runs").await;
    std::fs::write(share.join("input.txt"), "from the host\n").unwrap();

    let script = "cat /mnt/runs/input.txt > /mnt/runs/copy.txt; echo \"$PLAIN $HIDDEN\" > \
                  /mnt/runs/env.txt; echo line-1; echo line-2; echo oops >&2; exit 3";
    let mut worker = container("worker", &busybox(), &["/bin/sh", "-c", script]);
    worker["properties"]["volumeMounts"] = json!([{"name": "runs", "mountPath": "/mnt/runs"}]);
    worker["properties"]["environmentVariables"] =
        json!([{"name": "PLAIN", "value": "plain"}, {"name": "HIDDEN", "secureValue": "hidden"}]);
    let auth_image = std::env::var("ACI_TEST_AUTH_BUSYBOX")
        .unwrap_or_else(|_| "127.0.0.1:5001/aci-worker-test/busybox:latest".to_owned());
    let reader = container("reader", &auth_image, &["/bin/sh", "-c", "echo fine"]);
    let mut body = group_body(vec![worker, reader]);
    body["properties"]["volumes"] = json!([share_volume("runs", "runs")]);
    body["properties"]["imageRegistryCredentials"] = json!([{
        "server": std::env::var("ACI_TEST_AUTH_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5001".into()),
        "username": std::env::var("ACI_TEST_REGISTRY_USER").unwrap_or_else(|_| "aciworker".into()),
        "password": std::env::var("ACI_TEST_REGISTRY_PASS").unwrap_or_else(|_| "aciworker-test-pass".into()),
    }]);

    let created = arm.put_group("real-run", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(provisioning(&created.body), "Pending");

    let done = arm.wait_finished("real-run").await;
    assert_eq!((provisioning(&done), state(&done)), ("Succeeded", "Failed"), "{done:#}");
    let worker = view(&done, 0);
    assert_eq!(worker["restartCount"], 0);
    let current = &worker["currentState"];
    assert_eq!(current["state"], "Terminated");
    assert_eq!(current["exitCode"], 3);
    assert_eq!(current["detailStatus"], "Error");
    assert!(current["startTime"].is_string() && current["finishTime"].is_string());
    assert_eq!(event_names(&worker["events"]), ["Pulling", "Pulled", "Started"]);
    let reader = &view(&done, 1)["currentState"];
    assert_eq!(
        (reader["exitCode"].as_i64(), reader["detailStatus"].as_str()),
        (Some(0), Some("Completed"))
    );

    assert_eq!(std::fs::read_to_string(share.join("copy.txt")).unwrap(), "from the host\n");
    assert_eq!(std::fs::read_to_string(share.join("env.txt")).unwrap(), "plain hidden\n");

    let logs_path = format!("{}/containers/worker/logs", arm.group_path("real-run"));
    let logs = arm.call("GET", &logs_path, None).await;
    assert_eq!(logs.body["content"], "line-1\nline-2\noops\n");
    let tail = arm.call("GET", &format!("{logs_path}?tail=1"), None).await;
    assert_eq!(tail.body["content"], "oops\n");
    let missing = arm
        .call("GET", &format!("{}/containers/nope/logs", arm.group_path("real-run")), None)
        .await;
    assert_eq!(missing.status, 404);

    assert_eq!(containers_left(&arm).await, 0, "the containers are removed once they exited");
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn a_program_that_does_not_exist_fails_with_dockers_words() {
    let arm = Arm::start(|_| {}).await;
    let body =
        group_body(vec![container("main", &busybox(), &["/bin/no-such-shell", "-c", "true"])]);
    assert_eq!(arm.put_group("no-shell", &body).await.status, 201);

    let done = arm.wait_finished("no-shell").await;
    assert_eq!((provisioning(&done), state(&done)), ("Failed", "Failed"), "{done:#}");
    let main = view(&done, 0);
    assert_eq!(main["currentState"]["state"], "Terminated");
    assert_eq!(main["currentState"]["exitCode"], 127);
    let failed = main["events"].as_array().unwrap().iter().find(|e| e["name"] == "Failed").unwrap();
    assert_eq!(failed["type"], "Warning");
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("exec: \"/bin/no-such-shell\""), "{message}");
    assert!(message.contains("no such file or directory"), "{message}");
    assert_eq!(containers_left(&arm).await, 0);
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_leaves_the_container_waiting() {
    let arm = Arm::start(|c| {
        c.faults =
            ArmFaults { pull_failures: vec!["forced-failure".into()], ..ArmFaults::default() };
    })
    .await;
    let registry = std::env::var("ACI_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let missing = format!("{registry}/aci-worker-test/does-not-exist:latest");
    let forced = format!("{registry}/aci-worker-test/forced-failure:latest");
    for (name, image) in [("missing-image", &missing), ("forced-pull", &forced)] {
        let body = group_body(vec![container("main", image, &["true"])]);
        assert_eq!(arm.put_group(name, &body).await.status, 201);
        let done = arm.wait_finished(name).await;
        assert_eq!(provisioning(&done), "Failed", "{done:#}");
        assert_eq!(state(&done), "Pending", "as ACI's Get_Failed example shows it");
        let main = view(&done, 0);
        assert_eq!(main["currentState"]["state"], "Waiting");
        assert_eq!(main["currentState"]["detailStatus"], "ErrImagePull");
        assert_eq!(event_names(&main["events"]), ["Pulling", "Failed"]);
        let failed = &main["events"][1];
        assert_eq!(failed["type"], "Warning");
        let message = failed["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("Failed to pull image \"{image}\": ")), "{message}");
        assert!(message.len() > format!("Failed to pull image \"{image}\": ").len());

        // The deployment's asynchronous operation failed too, saying why.
        let operation =
            arm.put_group(name, &body).await.header("azure-asyncoperation").unwrap().to_owned();
        let status = arm.call_url("GET", &operation, Some(&arm.token), None).await;
        assert_eq!(status.body["status"], "Failed");
        assert_eq!(status.body["error"]["message"].as_str(), Some(message));
    }
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn stop_kills_the_containers_and_delete_removes_the_group() {
    let arm = Arm::start(|_| {}).await;
    let body = group_body(vec![
        container("sleeper", &busybox(), &["sleep", "600"]),
        container("other", &busybox(), &["sleep", "600"]),
    ]);
    for name in ["to-stop", "to-delete"] {
        assert_eq!(arm.put_group(name, &body).await.status, 201);
    }
    for name in ["to-stop", "to-delete"] {
        let running = arm.wait_group(name, |g| provisioning(g) == "Succeeded").await;
        assert_eq!(state(&running), "Running");
        assert_eq!(view(&running, 0)["currentState"]["state"], "Running");
    }

    let stop = arm.call("POST", &format!("{}/stop", arm.group_path("to-stop")), None).await;
    assert_eq!(stop.status, 204);
    let stopped = arm.get_group("to-stop").await;
    assert_eq!(state(&stopped), "Stopped");
    for i in 0..2 {
        let current = &view(&stopped, i)["currentState"];
        assert_eq!(current["state"], "Terminated");
        assert_eq!(current["exitCode"], KILLED_EXIT_CODE);
        assert_eq!(current["detailStatus"], "Killed");
        assert!(current["finishTime"].is_string());
        assert!(event_names(&view(&stopped, i)["events"]).contains(&"Killing"));
    }

    let deleted = arm.call("DELETE", &arm.group_path("to-delete"), None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(view(&deleted.body, 0)["currentState"]["exitCode"], KILLED_EXIT_CODE);
    assert_eq!(arm.call("GET", &arm.group_path("to-delete"), None).await.status, 404);
    assert_eq!(arm.emulator().container_groups(), ["to-stop"]);
    assert_eq!(containers_left(&arm).await, 0, "stopped and deleted groups keep no container");
    let logs = arm
        .call("GET", &format!("{}/containers/sleeper/logs", arm.group_path("to-stop")), None)
        .await;
    assert_eq!(logs.body["content"], "");
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn a_spot_group_is_evicted_once_its_containers_run() {
    let arm = Arm::start(|c| {
        c.faults = ArmFaults {
            spot_evictions: 1,
            spot_eviction_delay: Duration::from_millis(200),
            ..ArmFaults::default()
        };
    })
    .await;
    let mut body = group_body(vec![container("main", &busybox(), &["sleep", "600"])]);
    body["properties"]["priority"] = json!("Spot");
    assert_eq!(arm.put_group("spot", &body).await.status, 201);
    let evicted = arm.wait_group("spot", |g| state(g) == "Stopped").await;
    let event = &evicted["properties"]["instanceView"]["events"][0];
    assert_eq!(
        (event["name"].as_str(), event["type"].as_str()),
        (Some(SPOT_EVICTION_EVENT), Some("Warning"))
    );
    let current = &view(&evicted, 0)["currentState"];
    assert_eq!(current["exitCode"], KILLED_EXIT_CODE);
    assert_eq!(current["detailStatus"], "Evicted");
    assert!(current["startTime"].is_string());
    assert_eq!(evicted["properties"]["priority"], "Spot");
    assert_eq!(containers_left(&arm).await, 0);

    // One eviction was asked for: the next Spot group runs to its end.
    let short = group_body(vec![container("main", &busybox(), &["true"])]);
    let mut short = short;
    short["properties"]["priority"] = json!("Spot");
    assert_eq!(arm.put_group("spot-2", &short).await.status, 201);
    let done = arm.wait_finished("spot-2").await;
    assert_eq!(state(&done), "Succeeded");
    arm.files.emulator.shutdown().await;
}
