//! Container group requests without Docker: validation as ACI does it, secrets that
//! never come back, repeated and conflicting PUTs, injected faults, instant mode
//! with hundreds of groups and paged lists.

mod common;

use std::time::Duration;

use azure_emulator::{ArmFaults, KILLED_EXIT_CODE, SPOT_EVICTION_EVENT};
use common::arm::{Arm, busybox, container, group_body, provisioning, share_volume, state, view};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

/// A valid group using the share `data`, mounted at /data.
fn valid(share: &str) -> Value {
    let mut c = container("main", &busybox(), &["true"]);
    c["properties"]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    let mut body = group_body(vec![c]);
    body["properties"]["volumes"] = json!([share_volume("data", share)]);
    body
}

#[tokio::test]
async fn put_validation_errors_carry_aci_codes() {
    let arm = Arm::instant().await;
    arm.share("data").await;
    assert_eq!(arm.put_group("ok", &valid("data")).await.status, 201);

    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, u16, &str)> = vec![
        (
            "no location",
            |b| drop(b.as_object_mut().unwrap().remove("location")),
            400,
            "LocationRequired",
        ),
        (
            "no os",
            |b| drop(b["properties"].as_object_mut().unwrap().remove("osType")),
            400,
            "InvalidOsType",
        ),
        ("windows", |b| b["properties"]["osType"] = json!("Windows"), 400, "UnsupportedOsType"),
        (
            "restart",
            |b| b["properties"]["restartPolicy"] = json!("Sometimes"),
            400,
            "InvalidRestartPolicy",
        ),
        ("priority", |b| b["properties"]["priority"] = json!("Cheap"), 400, "PriorityNotSpecified"),
        ("no containers", |b| b["properties"]["containers"] = json!([]), 400, "MissingContainers"),
        (
            "container name",
            |b| b["properties"]["containers"][0]["name"] = json!("Main_1"),
            400,
            "InvalidContainerName",
        ),
        (
            "duplicate",
            |b| {
                let c = b["properties"]["containers"][0].clone();
                b["properties"]["containers"].as_array_mut().unwrap().push(c);
            },
            400,
            "DuplicateContainerName",
        ),
        (
            "no image",
            |b| b["properties"]["containers"][0]["properties"]["image"] = json!(""),
            400,
            "MissingContainerImage",
        ),
        (
            "bad image",
            |b| b["properties"]["containers"][0]["properties"]["image"] = json!("UPPER/Case::x"),
            400,
            "InvalidContainerImage",
        ),
        (
            "no cpu",
            |b| {
                b["properties"]["containers"][0]["properties"]["resources"]["requests"]
                    .as_object_mut()
                    .unwrap()
                    .remove("cpu");
            },
            400,
            "InvalidResourceRequests",
        ),
        (
            "no memory",
            |b| {
                b["properties"]["containers"][0]["properties"]["resources"]["requests"]["memoryInGB"] =
                    json!(0)
            },
            400,
            "InvalidResourceRequests",
        ),
        (
            "no resources",
            |b| {
                drop(
                    b["properties"]["containers"][0]["properties"]
                        .as_object_mut()
                        .unwrap()
                        .remove("resources"),
                )
            },
            400,
            "InvalidResourceRequests",
        ),
        (
            "unknown volume",
            |b| {
                b["properties"]["containers"][0]["properties"]["volumeMounts"][0]["name"] =
                    json!("other")
            },
            400,
            "InvalidVolumeMount",
        ),
        (
            "relative mount",
            |b| {
                b["properties"]["containers"][0]["properties"]["volumeMounts"][0]["mountPath"] =
                    json!("data")
            },
            400,
            "InvalidVolumeMount",
        ),
        (
            "missing share",
            |b| b["properties"]["volumes"][0]["azureFile"]["shareName"] = json!("nope"),
            400,
            "AzureFileShareNotFound",
        ),
        (
            "wrong key",
            |b| b["properties"]["volumes"][0]["azureFile"]["storageAccountKey"] = json!("d3Jvbmc="),
            400,
            "InvalidStorageAccountCredentials",
        ),
        (
            "wrong account",
            |b| b["properties"]["volumes"][0]["azureFile"]["storageAccountName"] = json!("other"),
            400,
            "InvalidStorageAccountCredentials",
        ),
        (
            "empty dir",
            |b| b["properties"]["volumes"][0] = json!({"name": "data", "emptyDir": {}}),
            400,
            "UnsupportedVolumeType",
        ),
        (
            "env name",
            |b| {
                b["properties"]["containers"][0]["properties"]["environmentVariables"] =
                    json!([{"name": "", "value": "x"}])
            },
            400,
            "InvalidEnvironmentVariable",
        ),
        (
            "registry",
            |b| {
                b["properties"]["imageRegistryCredentials"] =
                    json!([{"server": "r.io", "username": "u"}])
            },
            400,
            "InvalidImageRegistryCredential",
        ),
        (
            "spot gpu",
            |b| {
                b["properties"]["priority"] = json!("Spot");
                b["properties"]["containers"][0]["properties"]["resources"]["requests"]["gpu"] =
                    json!({"count": 1, "sku": "V100"});
            },
            400,
            "SpotPriorityContainerGroupWithGPUResourcesNotSupported",
        ),
        ("not an object", |b| *b = json!(["x"]), 400, "InvalidRequestContent"),
        (
            "command",
            |b| b["properties"]["containers"][0]["properties"]["command"] = json!([1]),
            400,
            "InvalidRequestContent",
        ),
    ];
    for (what, edit, status, code) in cases {
        let mut body = valid("data");
        edit(&mut body);
        let answer = arm.put_group("checked", &body).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{what}: {:?}", answer.body);
        assert!(answer.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for name in ["Upper", "-dash", "dash-", "under_score", &"x".repeat(64)] {
        let answer = arm.put_group(name, &valid("data")).await;
        assert_eq!((answer.status, answer.code()), (400, "InvalidContainerGroupName"), "{name}");
    }
    assert_eq!(arm.emulator().container_groups(), ["ok"]);
}

#[tokio::test]
async fn secrets_never_come_back_and_a_repeated_put_changes_nothing() {
    let arm = Arm::instant().await;
    arm.share("data").await;
    let mut body = valid("data");
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = json!([
        {"name": "PLAIN", "value": "visible"},
        {"name": "TOKEN", "secureValue": "s3cret-env-value"},
    ]);
    body["properties"]["imageRegistryCredentials"] =
        json!([{"server": "127.0.0.1:5001", "username": "u", "password": "s3cret-registry-pass"}]);

    let created = arm.put_group("quiet", &body).await;
    assert_eq!(created.status, 201);
    let operation = created.header("azure-asyncoperation").unwrap().to_owned();
    let shown = arm.get_group("quiet").await;
    let text = shown.to_string();
    for secret in ["s3cret-env-value", "s3cret-registry-pass", azure_emulator::DEFAULT_KEY] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let env = &shown["properties"]["containers"][0]["properties"]["environmentVariables"];
    assert_eq!(env, &json!([{"name": "PLAIN", "value": "visible"}, {"name": "TOKEN"}]));
    assert_eq!(
        shown["properties"]["imageRegistryCredentials"],
        json!([{"server": "127.0.0.1:5001", "username": "u"}])
    );
    assert_eq!(shown["properties"]["volumes"][0]["azureFile"]["shareName"], "data");
    assert_eq!(shown["type"], "Microsoft.ContainerInstance/containerGroups");
    assert!(
        shown["id"]
            .as_str()
            .unwrap()
            .ends_with("/providers/Microsoft.ContainerInstance/containerGroups/quiet")
    );

    // The same PUT again (a client retrying after a lost answer): 200, same deployment.
    let again = arm.put_group("quiet", &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("azure-asyncoperation").unwrap(), operation);
    assert!(!again.body.to_string().contains("s3cret"));

    // The deployment's status, where the header says.
    let status = arm.call_url("GET", &operation, Some(&arm.token), None).await;
    assert_eq!(status.body["status"], "Succeeded", "{:?}", status.body);

    // A finished group may be redefined: 200, a new deployment.
    body["properties"]["containers"][0]["properties"]["command"] = json!(["echo", "v2"]);
    let replaced = arm.put_group("quiet", &body).await;
    assert_eq!(replaced.status, 200);
    assert_ne!(replaced.header("azure-asyncoperation").unwrap(), operation);
    assert_eq!(
        replaced.body["properties"]["containers"][0]["properties"]["command"],
        json!(["echo", "v2"])
    );
}

#[tokio::test]
async fn a_different_put_on_a_group_that_is_not_done_conflicts() {
    // Docker-backed, but held Pending for an hour: no container ever starts.
    let arm = Arm::start(|c| {
        c.faults =
            ArmFaults { provisioning_delay: Duration::from_secs(3600), ..ArmFaults::default() };
    })
    .await;
    let body = group_body(vec![container("main", &busybox(), &["true"])]);
    let created = arm.put_group("pending", &body).await;
    assert_eq!(created.status, 201);
    assert_eq!(provisioning(&created.body), "Pending");
    assert_eq!(view(&created.body, 0)["currentState"]["state"], "Waiting");

    let mut different = body.clone();
    different["properties"]["containers"][0]["properties"]["command"] = json!(["false"]);
    let conflict = arm.put_group("pending", &different).await;
    assert_eq!((conflict.status, conflict.code()), (409, "Conflict"));
    assert_eq!(arm.put_group("pending", &body).await.status, 200);

    let deleted = arm.call("DELETE", &arm.group_path("pending"), None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["name"], "pending");
    assert_eq!(arm.call("GET", &arm.group_path("pending"), None).await.status, 404);
    assert_eq!(arm.call("DELETE", &arm.group_path("pending"), None).await.status, 204);
    assert!(arm.emulator().container_groups().is_empty());
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn injected_faults_are_counted_down() {
    let arm = Arm::instant().await;
    let body = group_body(vec![container("main", &busybox(), &["true"])]);
    let list = arm.groups_path();

    arm.emulator().set_arm_faults(ArmFaults {
        throttle: 2,
        server_errors: 1,
        ..ArmFaults::default()
    });
    for _ in 0..2 {
        let throttled = arm.call("GET", &list, None).await;
        assert_eq!((throttled.status, throttled.code()), (429, "TooManyRequests"));
        assert_eq!(throttled.header("retry-after"), Some("1"));
    }
    let failed = arm.call("GET", &list, None).await;
    assert_eq!((failed.status, failed.code()), (500, "InternalServerError"));
    assert_eq!(arm.call("GET", &list, None).await.status, 200);

    arm.emulator().set_arm_faults(ArmFaults {
        quota_exceeded: 1,
        capacity_unavailable: 1,
        ..ArmFaults::default()
    });
    let quota = arm.put_group("g1", &body).await;
    assert_eq!((quota.status, quota.code()), (409, "ContainerGroupQuotaReached"));
    assert!(quota.body["error"]["message"].as_str().unwrap().contains("container group quota"));
    let capacity = arm.put_group("g1", &body).await;
    assert_eq!((capacity.status, capacity.code()), (503, "ServiceUnavailable"));
    assert!(
        capacity.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not available in the location")
    );
    // Validation comes first: an invalid PUT uses up no fault.
    arm.emulator().set_arm_faults(ArmFaults { quota_exceeded: 1, ..ArmFaults::default() });
    let invalid = arm.put_group("Bad", &body).await;
    assert_eq!(invalid.code(), "InvalidContainerGroupName");
    assert_eq!(arm.put_group("g1", &body).await.code(), "ContainerGroupQuotaReached");
    assert_eq!(arm.put_group("g1", &body).await.status, 201);
    assert_eq!(arm.emulator().arm_faults(), ArmFaults::default());
    assert!(arm.emulator().token_requests() >= 1, "tokens are never faulted");
}

#[tokio::test]
async fn request_faults_can_be_kept_for_some_methods_and_say_how_long_to_wait() {
    let arm = Arm::instant().await;
    let body = group_body(vec![container("main", &busybox(), &["true"])]);
    arm.emulator().set_arm_faults(ArmFaults {
        throttle: 1,
        throttle_retry_after_secs: Some(7),
        server_errors: 1,
        fault_methods: vec!["put".to_owned()],
        ..ArmFaults::default()
    });
    // Requests of other methods go through and use up nothing...
    assert_eq!(arm.call("GET", &arm.groups_path(), None).await.status, 200);
    assert_eq!(arm.call("DELETE", &arm.group_path("g1"), None).await.status, 204);
    assert_eq!(arm.emulator().arm_faults().throttle, 1);
    // ...and PUTs meet the faults, in order.
    let throttled = arm.put_group("g1", &body).await;
    assert_eq!((throttled.status, throttled.code()), (429, "TooManyRequests"));
    assert_eq!(throttled.header("retry-after"), Some("7"));
    let failed = arm.put_group("g1", &body).await;
    assert_eq!((failed.status, failed.code()), (500, "InternalServerError"));
    assert_eq!(arm.put_group("g1", &body).await.status, 201);
    let left = arm.emulator().arm_faults();
    assert_eq!((left.throttle, left.server_errors), (0, 0));
}

#[tokio::test]
async fn an_inaccessible_image_is_refused_at_put() {
    let arm = Arm::instant().await;
    arm.emulator().set_arm_faults(ArmFaults {
        inaccessible_images: vec!["private-image".to_owned()],
        ..ArmFaults::default()
    });
    let image = "127.0.0.1:5000/private-image:1";
    let body = group_body(vec![
        container("first", &busybox(), &["true"]),
        container("second", image, &["true"]),
    ]);
    // Validation comes first.
    assert_eq!(arm.put_group("Bad", &body).await.code(), "InvalidContainerGroupName");
    let refused = arm.put_group("private", &body).await;
    assert_eq!((refused.status, refused.code()), (400, "InaccessibleImage"));
    assert_eq!(
        refused.body["error"]["message"],
        format!(
            "The image '{image}' in container group 'private' is not accessible. Please check \
             the image and registry credential."
        )
    );
    // Nothing was created; a group of other images is.
    assert_eq!(arm.call("GET", &arm.group_path("private"), None).await.status, 404);
    let other = group_body(vec![container("main", &busybox(), &["true"])]);
    assert_eq!(arm.put_group("public", &other).await.status, 201);
}

#[tokio::test]
async fn a_stop_can_forget_the_containers() {
    // Docker-backed, but held Pending for an hour: no container ever starts.
    let arm = Arm::start(|c| {
        c.faults = ArmFaults {
            provisioning_delay: Duration::from_secs(3600),
            stops_forgetting_containers: 1,
            ..ArmFaults::default()
        };
    })
    .await;
    let body = group_body(vec![container("main", &busybox(), &["true"])]);
    for name in ["forgotten", "killed"] {
        assert_eq!(arm.put_group(name, &body).await.status, 201);
        let stop = arm.call("POST", &format!("{}/stop", arm.group_path(name)), None).await;
        assert_eq!(stop.status, 204);
    }
    // The first stop kept no container state; the second, the usual one.
    let forgotten = arm.get_group("forgotten").await;
    assert_eq!(state(&forgotten), "Stopped");
    assert!(view(&forgotten, 0).is_null(), "{forgotten:#}");
    assert_eq!(forgotten["properties"]["containers"][0]["name"], "main");
    let killed = arm.get_group("killed").await;
    assert_eq!(state(&killed), "Stopped");
    assert_eq!(view(&killed, 0)["currentState"]["exitCode"], KILLED_EXIT_CODE);
    assert_eq!(arm.emulator().arm_faults().stops_forgetting_containers, 0);
    for name in ["forgotten", "killed"] {
        assert_eq!(arm.call("DELETE", &arm.group_path(name), None).await.status, 200);
    }
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn read_errors_fail_gets_of_a_group_and_nothing_else() {
    let arm = Arm::instant().await;
    let body = group_body(vec![container("main", &busybox(), &["true"])]);
    assert_eq!(arm.put_group("g1", &body).await.status, 201);
    arm.emulator().set_arm_faults(ArmFaults { read_errors: 2, ..ArmFaults::default() });

    let path = arm.group_path("g1");
    let failed = arm.call("GET", &path, None).await;
    assert_eq!((failed.status, failed.code()), (500, "InternalServerError"));
    // Listings, logs, stops and PUTs work during the outage and use up nothing.
    let list = arm.call("GET", &arm.groups_path(), None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["value"][0]["name"], "g1");
    assert_eq!(arm.call("GET", &format!("{path}/containers/main/logs"), None).await.status, 200);
    assert_eq!(arm.call("POST", &format!("{path}/stop"), None).await.status, 204);
    assert_eq!(arm.put_group("g2", &body).await.status, 201);
    assert_eq!(arm.emulator().arm_faults().read_errors, 1);
    assert_eq!(arm.call("GET", &arm.group_path("g2"), None).await.status, 500);
    assert_eq!(arm.emulator().arm_faults().read_errors, 0);
    assert_eq!(arm.call("GET", &path, None).await.status, 200);
    assert_eq!(arm.call("DELETE", &path, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_mode_runs_hundreds_of_groups_and_pages_lists() {
    let arm = Arm::instant().await;
    let body = group_body(vec![
        container("first", &busybox(), &["true"]),
        container("second", &busybox(), &["true"]),
    ]);
    let names: Vec<String> = (0..250).map(|i| format!("bench-{i:03}")).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(&names)
        .map(|name| {
            let (arm, body) = (&arm, &body);
            async move { arm.put_group(name, body).await.status }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    assert_eq!(arm.emulator().container_groups().len(), 250);

    let group = arm.get_group("bench-123").await;
    assert_eq!((provisioning(&group), state(&group)), ("Succeeded", "Succeeded"));
    for i in 0..2 {
        let current = &view(&group, i)["currentState"];
        assert_eq!(current["state"], "Terminated");
        assert_eq!(current["exitCode"], 0);
        assert_eq!(current["detailStatus"], "Completed");
        assert!(current["startTime"].is_string() && current["finishTime"].is_string());
    }

    // Pages of 100, in name order, chained by nextLink.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut answer = arm.call("GET", &arm.groups_path(), None).await;
    loop {
        pages += 1;
        for g in answer.body["value"].as_array().unwrap() {
            seen.push(g["name"].as_str().unwrap().to_owned());
        }
        let Some(next) = answer.body["nextLink"].as_str() else { break };
        answer = arm.call_url("GET", next, Some(&arm.token), None).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!((pages, &seen), (3, &names));
    let whole = arm
        .call(
            "GET",
            &format!(
                "{}/providers/Microsoft.ContainerInstance/containerGroups",
                arm.subscription_path()
            ),
            None,
        )
        .await;
    assert_eq!(whole.body["value"].as_array().unwrap().len(), 100);

    let deleted: Vec<u16> = futures_util::stream::iter(&names)
        .map(|name| {
            let arm = &arm;
            async move { arm.call("DELETE", &arm.group_path(name), None).await.status }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(deleted.iter().all(|&s| s == 200));
    assert!(arm.emulator().container_groups().is_empty());
}

#[tokio::test]
async fn instant_mode_with_a_run_time_keeps_groups_running_then_succeeds() {
    let arm = Arm::start(|c| {
        c.instant = true;
        c.instant_run = std::time::Duration::from_secs(2);
        c.docker = None;
    })
    .await;
    let body = group_body(vec![container("main", &busybox(), &["sleep", "600"])]);
    let created = arm.put_group("held", &body).await.body;
    assert_eq!((provisioning(&created), state(&created)), ("Succeeded", "Running"));
    assert_eq!(view(&created, 0)["currentState"]["state"], "Running");
    // A group stopped during its run stays stopped when the run time is over.
    arm.put_group("stopped", &body).await;
    let stop = arm.call("POST", &format!("{}/stop", arm.group_path("stopped")), None).await;
    assert_eq!(stop.status, 204);

    let mut group = arm.get_group("held").await;
    while state(&group) == "Running" {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        group = arm.get_group("held").await;
    }
    assert_eq!(state(&group), "Succeeded");
    let current = &view(&group, 0)["currentState"];
    assert_eq!((&current["state"], &current["exitCode"]), (&json!("Terminated"), &json!(0)));
    assert!(current["finishTime"].as_str() > current["startTime"].as_str(), "{current}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stopped = arm.get_group("stopped").await;
    assert_eq!(state(&stopped), "Stopped");
    // Its container stays killed.
    assert_eq!(view(&stopped, 0)["currentState"]["exitCode"], KILLED_EXIT_CODE, "{stopped}");
}

#[tokio::test]
async fn instant_mode_with_a_run_time_never_ends_the_run_of_a_group_being_deleted() {
    let arm = Arm::start(|c| {
        c.instant = true;
        c.instant_run = Duration::from_secs(1);
        c.docker = None;
    })
    .await;
    // The deletion outlasts the run time by far.
    arm.emulator().set_arm_faults(ArmFaults {
        deletion_delay: Duration::from_secs(5),
        ..ArmFaults::default()
    });
    let body = group_body(vec![container("main", &busybox(), &["sleep", "600"])]);
    assert_eq!(state(&arm.put_group("deleted", &body).await.body), "Running");
    // Put after it: once its run is over, so is the deleted group's run time.
    arm.put_group("witness", &body).await;
    let path = arm.group_path("deleted");
    let delete = arm.call("DELETE", &path, None);
    let look = async {
        let witness = arm.wait_group("witness", |g| state(g) != "Running").await;
        assert_eq!(state(&witness), "Succeeded");
        arm.get_group("deleted").await
    };
    let (deleted, group) = tokio::join!(delete, look);
    // Still being deleted, and the end of the run time did not make it exit 0.
    assert_eq!(provisioning(&group), "Deleting", "{group}");
    assert_ne!(view(&group, 0)["currentState"]["exitCode"], json!(0), "{group}");
    assert_eq!(deleted.status, 200);
    assert!(arm.emulator().container_groups().iter().all(|g| g != "deleted"));
}

#[tokio::test]
async fn instant_mode_shows_evictions_and_failed_pulls_too() {
    let arm = Arm::instant().await;
    arm.emulator().set_arm_faults(ArmFaults {
        spot_evictions: 1,
        pull_failures: vec!["no-such-image".to_owned()],
        ..ArmFaults::default()
    });
    let mut spot = group_body(vec![container("main", &busybox(), &["sleep", "600"])]);
    spot["properties"]["priority"] = json!("Spot");
    let evicted = arm.put_group("spot", &spot).await.body;
    assert_eq!(state(&evicted), "Stopped");
    assert_eq!(evicted["properties"]["instanceView"]["events"][0]["name"], SPOT_EVICTION_EVENT);
    assert_eq!(view(&evicted, 0)["currentState"]["exitCode"], KILLED_EXIT_CODE);
    // The counter is spent: the next Spot group runs to its end.
    assert_eq!(state(&arm.put_group("spot2", &spot).await.body), "Succeeded");

    let image = "127.0.0.1:5000/no-such-image:1";
    let failed =
        arm.put_group("pull", &group_body(vec![container("main", image, &["true"])])).await.body;
    assert_eq!(provisioning(&failed), "Failed");
    let current = &view(&failed, 0)["currentState"];
    assert_eq!(
        (current["state"].as_str(), current["detailStatus"].as_str()),
        (Some("Waiting"), Some("ErrImagePull"))
    );
    let event = &view(&failed, 0)["events"][0];
    assert_eq!((event["name"].as_str(), event["type"].as_str()), (Some("Failed"), Some("Warning")));
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Failed to pull image \"{image}\": "))
    );
}
