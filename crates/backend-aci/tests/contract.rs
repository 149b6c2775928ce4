//! The backend against the ACI API description: every official example response
//! reads, and every request body the backend builds validates against the
//! container group schema of the OpenAPI document.

use std::path::{Path, PathBuf};

use afs_staging::auth::SharedKey;
use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
use backend_aci::model::{ContainerGroup, GroupList, Logs, UsageList};
use backend_aci::{AciBackend, AciConfig, ArmClient, ArmTarget, Priority};
use compute::{
    ContainerName, ContainerPath, ContainerSpec, EnvVar, Gpu, ImageRef, JobId, JobSpec, Mount,
    RegistryCredentials, WorkspacePath,
};
use serde_json::Value;

/// The ACI fixtures: under `$ACI_FIXTURES`, else `shared/fixtures` beside the checkout.
fn fixtures() -> PathBuf {
    std::env::var_os("ACI_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"))
        .join("aci")
}

fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for version in ["2023-05-01", "2025-09-01"] {
        for entry in std::fs::read_dir(fixtures().join(version)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "containerInstance.json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// What the responses of an example file hold, by the operation it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// One container group (create, get, delete).
    Group,
    /// A page of container groups.
    GroupList,
    /// A container's log.
    Logs,
    /// The region's quota usages.
    Usages,
    /// No body at all (stop).
    Empty,
}

/// The operation of every example file; a file not listed fails the test, so that
/// a new example is never skipped silently.
fn answer_of(path: &Path) -> Answer {
    let name = path.file_name().unwrap().to_str().unwrap();
    match name {
        "ContainerGroups_CreateOrUpdate_Confidential_Container_Group.json"
        | "ContainerGroups_CreateOrUpdate_Container_Group_Create_With_Extensions.json"
        | "ContainerGroups_CreateOrUpdate_Container_Group_With_Encryption_Properties.json"
        | "ContainerGroups_CreateOrUpdate_Container_Groups_Create_Or_Update.json"
        | "ContainerGroups_CreateOrUpdate_Container_Groups_Create_With_Priority.json"
        | "ContainerGroups_Delete.json"
        | "ContainerGroups_Get_Container_Groups_Get_Failed.json"
        | "ContainerGroups_Get_Container_Groups_Get_Succeeded.json"
        | "ContainerGroups_Get_Container_Groups_Get_With_Priority.json"
        | "ContainerGroupsCreateOrUpdate.json"
        | "ContainerGroupsCreatePriority.json"
        | "ContainerGroupsGetPriority.json"
        | "ContainerGroupsGet_Failed.json"
        | "ContainerGroupsGet_Succeeded.json" => Answer::Group,
        "ContainerGroups_List.json" => Answer::GroupList,
        "Containers_ListLogs.json" => Answer::Logs,
        "ContainerGroupUsage.json" => Answer::Usages,
        "ContainerGroups_Stop.json" => Answer::Empty,
        other => panic!("{}: an example the test does not know ({other})", path.display()),
    }
}

fn read<T: serde::de::DeserializeOwned>(body: &Value, what: &str) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn example(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(path)).unwrap()).unwrap()
}

#[test]
fn every_example_response_reads() {
    let mut groups = 0;
    let mut usages = 0;
    for path in example_files() {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.display();
        let answer = answer_of(&path);
        if let Some(request) = doc["parameters"]["containerGroup"].as_object() {
            let _: ContainerGroup = serde_json::from_value(Value::Object(request.clone()))
                .unwrap_or_else(|e| panic!("{name} request: {e}"));
        }
        let responses = doc["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{name}: no response");
        for (status, response) in responses {
            let body = &response["body"];
            // 202 and 204 carry no body, whatever the operation.
            if body.is_null() {
                assert!(
                    answer == Answer::Empty || matches!(status.as_str(), "202" | "204"),
                    "{name} {status}: no body"
                );
                continue;
            }
            let what = format!("{name} {status}");
            match answer {
                Answer::Group => {
                    let group: ContainerGroup = read(body, &what);
                    assert!(!group.properties.containers.is_empty(), "{what}");
                    groups += 1;
                }
                Answer::GroupList => {
                    let list: GroupList = read(body, &what);
                    assert!(!list.value.is_empty(), "{what}");
                    groups += list.value.len();
                }
                Answer::Logs => {
                    let logs: Logs = read(body, &what);
                    assert!(logs.content.is_some(), "{what}");
                }
                Answer::Usages => {
                    let list: UsageList = read(body, &what);
                    for usage in &list.value {
                        assert!(usage.current_value.is_some() && usage.limit.is_some(), "{name}");
                        let quota = usage.name.as_ref().and_then(|n| n.value.as_deref());
                        assert!(quota.is_some_and(|q| !q.is_empty()), "{name}: {usage:?}");
                    }
                    usages += list.value.len();
                }
                Answer::Empty => panic!("{name} {status}: a body where none is expected"),
            }
        }
    }
    assert!(groups >= 15, "only {groups} container groups read");
    assert!(usages >= 1, "no usage read");

    // The states the backend relies on are there.
    let doc = example("2023-05-01/ContainerGroups_Get_Container_Groups_Get_With_Priority.json");
    let spot: ContainerGroup =
        serde_json::from_value(doc["responses"]["200"]["body"].clone()).unwrap();
    let state = spot.properties.containers[0].properties.instance_view.as_ref().unwrap();
    let current = state.current_state.as_ref().unwrap();
    assert_eq!(current.state.as_deref(), Some("Terminated"));
    assert_eq!(current.exit_code, Some(0));
    assert_eq!(spot.properties.priority.as_deref(), Some("Spot"));
}

#[test]
fn the_official_failed_groups_read_as_failures_in_acis_words() {
    for path in [
        "2023-05-01/ContainerGroups_Get_Container_Groups_Get_Failed.json",
        "2025-09-01/ContainerGroupsGet_Failed.json",
    ] {
        let doc = example(path);
        let group: ContainerGroup =
            serde_json::from_value(doc["responses"]["200"]["body"].clone()).unwrap();
        let container = &group.properties.containers[0].name;
        // A mount failed, not a pull: the image is not to blame.
        assert_eq!(backend_aci::image_pull_failure(&group, container), None, "{path}");
        let failure = backend_aci::provisioning_failure(&group)
            .unwrap_or_else(|| panic!("{path}: not read as a failure"));
        assert!(failure.contains("mount error(2): Permission denied"), "{path}: {failure}");
    }
    for path in [
        "2023-05-01/ContainerGroups_Get_Container_Groups_Get_Succeeded.json",
        "2025-09-01/ContainerGroupsGet_Succeeded.json",
    ] {
        let doc = example(path);
        let group: ContainerGroup =
            serde_json::from_value(doc["responses"]["200"]["body"].clone()).unwrap();
        assert_eq!(backend_aci::provisioning_failure(&group), None, "{path}");
    }
}

/// A validator for the subset of JSON Schema the OpenAPI document uses: `$ref`,
/// `allOf`, `type`, `properties`, `required`, `items`, `enum`, `readOnly`. Unknown
/// properties are errors (the API would ignore a misspelt field silently), and so
/// are read-only ones (they belong in responses).
struct Validator {
    definitions: Value,
}

impl Validator {
    fn new() -> Self {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("2023-05-01/containerInstance.json")).unwrap(),
        )
        .unwrap();
        Validator { definitions: doc["definitions"].clone() }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.strip_prefix("#/definitions/").expect("local reference");
                self.resolve(&self.definitions[name])
            }
            None => schema,
        }
    }

    /// Every schema an object must satisfy: the schema and its `allOf` branches.
    fn branches<'a>(&'a self, schema: &'a Value, out: &mut Vec<&'a Value>) {
        let schema = self.resolve(schema);
        out.push(schema);
        if let Some(all) = schema["allOf"].as_array() {
            for branch in all {
                self.branches(branch, out);
            }
        }
    }

    fn validate(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let mut branches = Vec::new();
        self.branches(schema, &mut branches);
        for branch in &branches {
            if branch["readOnly"] == Value::Bool(true) {
                errors.push(format!("{path}: read-only, must not be sent"));
            }
            if let Some(allowed) = branch["enum"].as_array()
                && !allowed.contains(value)
            {
                errors.push(format!("{path}: {value} is not one of {allowed:?}"));
            }
            if let Some(kind) = branch["type"].as_str() {
                let ok = match kind {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    _ => true,
                };
                if !ok {
                    errors.push(format!("{path}: {value} is not of type {kind}"));
                }
            }
            if let Some(items) = branch.get("items")
                && let Some(array) = value.as_array()
            {
                for (i, item) in array.iter().enumerate() {
                    self.validate(items, item, &format!("{path}[{i}]"), errors);
                }
            }
            if let (Some(required), Some(object)) =
                (branch["required"].as_array(), value.as_object())
            {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        errors.push(format!("{path}: required {name} is missing"));
                    }
                }
            }
        }
        if let Some(object) = value.as_object() {
            for (name, field) in object {
                let schema = branches.iter().find_map(|b| b["properties"].get(name));
                match schema {
                    Some(schema) => self.validate(schema, field, &format!("{path}.{name}"), errors),
                    None => {
                        // A free-form object (no declared properties) takes anything.
                        let open = branches.iter().any(|b| b.get("additionalProperties").is_some())
                            || branches.iter().all(|b| b.get("properties").is_none());
                        if !open {
                            errors.push(format!("{path}: unknown property {name}"));
                        }
                    }
                }
            }
        }
    }

    fn errors(&self, group: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.validate(&self.definitions["ContainerGroup"], group, "$", &mut errors);
        errors
    }
}

fn spec(workspace: &Path) -> JobSpec {
    let ws = |p: &str| WorkspacePath::new(p).unwrap();
    let cp = |p: &str| ContainerPath::new(p).unwrap();
    for dir in
        ["run/program", "run/ingestion_program", "run/input", "run/output", "shared", "hidden"]
    {
        std::fs::create_dir_all(workspace.join(dir)).unwrap();
    }
    let mut job =
        JobSpec::new(JobId::new("contract-job-predict").unwrap(), workspace.to_path_buf());
    job.registry = Some(RegistryCredentials {
        server: "myregistry.azurecr.io".into(),
        username: "puller".into(),
        password: "registry-password".into(),
    });
    job.watch.push(ws("run/output/detailed_results.html"));
    let mut program = ContainerSpec::new(
        ContainerName::new("program").unwrap(),
        ImageRef::parse("myregistry.azurecr.io/team/model:1.0").unwrap(),
        vec![
            "python".into(),
            "/codalab/run/program/predict.py".into(),
            "it's \"quoted\" $HOME".into(),
        ],
    );
    program.mounts = vec![
        Mount::rw(ws("run/program"), cp("/codalab/run/program")),
        Mount::ro(ws("run/input"), cp("/codalab/run/input")),
        Mount::rw(ws("run/output"), cp("/codalab/run/output")),
        Mount::rw(ws("shared"), cp("/codalab/shared")),
    ];
    program.workdir = Some(cp("/codalab/run"));
    program.env = vec![EnvVar::plain("STEPS", "/codalab/steps"), EnvVar::secret("TOKEN", "s3cr3t")];
    program.resources.cpus = Some(2.0);
    program.resources.memory_bytes = Some(3 << 30);
    program.resources.gpu = Some(Gpu { count: 1, sku: None });
    program.stdout = Some(ws("logs/program.stdout"));
    program.stderr = Some(ws("logs/program.stderr"));
    let mut ingestion = ContainerSpec::new(
        ContainerName::new("ingestion").unwrap(),
        ImageRef::parse("python:3.11").unwrap(),
        vec!["python".into(), "ingestion.py".into()],
    );
    ingestion.mounts = vec![
        Mount::ro(ws("run/ingestion_program"), cp("/codalab/run/ingestion_program")),
        Mount::ro(ws("run/program"), cp("/codalab/run/program")),
        Mount::rw(ws("run/output"), cp("/codalab/run/output")),
        Mount::ro(ws("hidden"), cp("/codalab/hidden")),
    ];
    ingestion.stdout = Some(ws("logs/ingestion.stdout"));
    job.containers = vec![program, ingestion];
    job
}

fn backend(stager: Stager, priority: Priority) -> AciBackend {
    let http = backend_aci::credentials::http_client(None).unwrap();
    let auth = backend_aci::credentials::SdkAuth::parse(
        r#"{"clientId":"c","clientSecret":"s","subscriptionId":"sub","tenantId":"tenant"}"#,
        "inline",
    )
    .unwrap();
    let arm = ArmClient::new(
        http.clone(),
        auth.credential(&http).unwrap(),
        ArmTarget {
            endpoint: "https://127.0.0.1:9".into(),
            subscription_id: "sub".into(),
            resource_group: "rg".into(),
            api_version: backend_aci::API_VERSION.into(),
        },
    );
    let mut config = AciConfig::new("westeurope", "worker-1");
    config.priority = priority;
    AciBackend::new(arm, stager, config)
}

fn key() -> SharedKey {
    SharedKey::new("storageacct", "AAECAwQFBgcICQoLDA0ODw==").unwrap()
}

#[test]
fn the_official_examples_pass_the_validator_and_a_typo_does_not() {
    let validator = Validator::new();
    for path in example_files().iter().filter(|p| p.to_string_lossy().contains("2023-05-01")) {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if let Some(request) = doc["parameters"].get("containerGroup") {
            let errors = validator.errors(request);
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
    }
    let mut typo = serde_json::json!({
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "containers": [{"name": "a", "properties": {"image": "x", "resources": {"requests": {"cpu": 1, "memoryInGb": 1.5}}}}]
        }
    });
    let errors = validator.errors(&typo);
    assert!(errors.iter().any(|e| e.contains("memoryInGb")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("required memoryInGB")), "{errors:?}");
    typo["properties"]["restartPolicy"] = "Sometimes".into();
    assert!(validator.errors(&typo).iter().any(|e| e.contains("Sometimes")));
}

#[test]
fn every_body_the_backend_builds_validates() {
    let validator = Validator::new();
    let workspace = tempfile::tempdir().unwrap();
    let spec = spec(workspace.path());
    let files = FileClient::new(ClientConfig::new(
        "https://storageacct.file.core.windows.net",
        Credential::SharedKey(key()),
    ))
    .unwrap();
    let mount = tempfile::tempdir().unwrap();
    let stagers = [
        Stager::shares(files, StagingConfig::default()),
        Stager::mounted(
            mount.path().into(),
            "afsshare".into(),
            Some(key()),
            StagingConfig::default(),
        ),
    ];
    // A third container keeps its image's entrypoint (empty argv).
    let mut with_entrypoint = spec.clone();
    let mut own = with_entrypoint.containers[1].clone();
    own.name = ContainerName::new("scorer").unwrap();
    own.argv.clear();
    own.stdout = Some(WorkspacePath::new("logs/scorer.stdout").unwrap());
    with_entrypoint.containers.push(own);
    for stager in stagers {
        for priority in [Priority::Regular, Priority::Spot] {
            let backend = backend(stager.clone(), priority);
            let mounted = stager.is_mounted();
            let group = backend.container_group(&spec).unwrap();
            let body = serde_json::to_value(&group).unwrap();
            let errors = validator.errors(&body);
            assert!(errors.is_empty(), "{errors:?}\n{body:#}");
            check_body(&body, &spec, mounted);

            // The rerun for images without /bin/sh, and a container that keeps its
            // entrypoint: mounted mode needs the wrapper for both.
            let fallback = backend.container_group_without_wrapper(&spec);
            let own = backend.container_group(&with_entrypoint);
            if mounted {
                for refused in [fallback, own] {
                    let err = refused.unwrap_err();
                    assert!(matches!(err, compute::Error::InvalidSpec(_)), "{err}");
                }
                continue;
            }
            let body = serde_json::to_value(fallback.unwrap()).unwrap();
            let errors = validator.errors(&body);
            assert!(errors.is_empty(), "{errors:?}\n{body:#}");
            for (i, c) in spec.containers.iter().enumerate() {
                check_unwrapped(&body, i, &c.argv);
            }
            let body = serde_json::to_value(own.unwrap()).unwrap();
            let errors = validator.errors(&body);
            assert!(errors.is_empty(), "{errors:?}\n{body:#}");
            check_body(&body, &with_entrypoint, false);
            check_unwrapped(&body, 2, &[]);
        }
    }
}

/// Container `i` of `body` runs `argv` as it is (no command when empty: the image's
/// entrypoint), and does not mount the share the wrapper writes output to.
fn check_unwrapped(body: &Value, i: usize, argv: &[String]) {
    let container = &body["properties"]["containers"][i]["properties"];
    match container.get("command") {
        None => assert!(argv.is_empty(), "no command for {argv:?}"),
        Some(command) => assert_eq!(command, &serde_json::json!(argv)),
    }
    let mounts = container["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["mountPath"] != "/aci-worker-io"), "{container:#}");
}

#[test]
fn a_spot_group_never_asks_for_a_gpu() {
    let workspace = tempfile::tempdir().unwrap();
    let mut spec = spec(workspace.path());
    let files = FileClient::new(ClientConfig::new(
        "https://storageacct.file.core.windows.net",
        Credential::SharedKey(key()),
    ))
    .unwrap();
    let spot = backend(Stager::shares(files, StagingConfig::default()), Priority::Spot);
    let priority = |spec: &JobSpec| {
        let body = serde_json::to_value(spot.container_group(spec).unwrap()).unwrap();
        assert!(Validator::new().errors(&body).is_empty());
        body["properties"]["priority"].as_str().unwrap().to_owned()
    };
    // The program asks for a GPU: ACI refuses that in a Spot group.
    assert_eq!(priority(&spec), "Regular");
    spec.containers[0].resources.gpu = None;
    assert_eq!(priority(&spec), "Spot");
}

fn check_body(body: &Value, spec: &JobSpec, mounted: bool) {
    let props = &body["properties"];
    assert_eq!(props["restartPolicy"], "Never");
    assert_eq!(props["osType"], "Linux");
    // The program asks for a GPU, which no Spot group may hold.
    assert_eq!(props["priority"], "Regular");
    assert_eq!(body["tags"]["aci-worker-job"], spec.id.as_str());
    assert_eq!(body["tags"]["aci-worker-worker"], "worker-1");
    let created = body["tags"][backend_aci::TAG_CREATED].as_str().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let created: u64 = created.parse().unwrap_or_else(|e| panic!("{created:?}: {e}"));
    assert!(now.as_secs().abs_diff(created) < 3600, "creation time {created}");
    assert_eq!(props["imageRegistryCredentials"][0]["password"], "registry-password");
    let program = &props["containers"][0]["properties"];
    // argv survives exactly, after the fixed wrapper and its positional values.
    let command: Vec<&str> =
        program["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    assert!(
        !command[2].contains("predict.py") && !command[2].contains("codalab"),
        "script holds no input"
    );
    assert_eq!(
        command[command.len() - 3..],
        ["python", "/codalab/run/program/predict.py", "it's \"quoted\" $HOME"]
    );
    let env = program["environmentVariables"].as_array().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "TOKEN"
            && e["secureValue"] == "s3cr3t"
            && e.get("value").is_none())
    );
    assert_eq!(program["resources"]["requests"]["cpu"], 2.0);
    assert_eq!(program["resources"]["requests"]["memoryInGB"], 3.0);
    assert_eq!(program["resources"]["requests"]["gpu"]["count"], 1);

    let shares_of = |container: usize| -> Vec<String> {
        let mounts =
            props["containers"][container]["properties"]["volumeMounts"].as_array().unwrap();
        mounts
            .iter()
            .map(|m| {
                let volume = props["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["name"] == m["name"])
                    .unwrap();
                volume["azureFile"]["shareName"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    if mounted {
        assert_eq!(props["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(props["volumes"][0]["azureFile"]["shareName"], "afsshare");
    } else {
        // The hidden folder's share is mounted by ingestion only.
        let hidden_volume = props["containers"][1]["properties"]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/codalab/hidden")
            .unwrap()["name"]
            .clone();
        let program_mounts =
            props["containers"][0]["properties"]["volumeMounts"].as_array().unwrap();
        assert!(program_mounts.iter().all(|m| m["name"] != hidden_volume));
        let input = program_mounts.iter().find(|m| m["mountPath"] == "/codalab/run/input").unwrap();
        assert_eq!(input["readOnly"], true);
        assert!(shares_of(0).iter().all(|s| s.starts_with("contract-job-predict-")));
        for volume in props["volumes"].as_array().unwrap() {
            assert_eq!(volume["azureFile"]["storageAccountName"], "storageacct");
            assert_eq!(volume["azureFile"]["storageAccountKey"], key().base64_key());
        }
    }
    check_captures(props, spec, mounted);
}

/// Each wrapped container writes its stdout and stderr to a place no other
/// container sees: a logs share of its own mounted at `/aci-worker-io` (in mounted
/// mode, the weaker one, a folder of its own on the one share all mount).
fn check_captures(props: &Value, spec: &JobSpec, mounted: bool) {
    let containers = props["containers"].as_array().unwrap();
    let mut folders = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let container = &containers[i]["properties"];
        let mounts = container["volumeMounts"].as_array().unwrap();
        let io: Vec<&Value> =
            mounts.iter().filter(|m| m["mountPath"] == "/aci-worker-io").collect();
        if c.argv.is_empty() {
            assert!(io.is_empty(), "{container:#}");
            continue;
        }
        let command = container["command"].as_array().unwrap();
        let (stdout, stderr) = (command[4].as_str().unwrap(), command[5].as_str().unwrap());
        assert_eq!(stdout.ends_with(&format!("/{}.stdout", c.name)), c.stdout.is_some());
        assert_eq!(stderr == "/dev/null", c.stderr.is_none(), "{stderr}");
        let folder = stdout.rsplit_once('/').unwrap().0.to_owned();
        if mounted {
            assert!(io.is_empty(), "{container:#}");
            assert!(folder.starts_with("/aci-worker-share/"), "{folder}");
        } else {
            assert_eq!(folder, "/aci-worker-io");
            assert_eq!(io.len(), 1, "{container:#}");
            let name = &io[0]["name"];
            assert_eq!(io[0]["readOnly"], false);
            let volume =
                props["volumes"].as_array().unwrap().iter().find(|v| &v["name"] == name).unwrap();
            let share = volume["azureFile"]["shareName"].as_str().unwrap();
            assert_eq!(share, format!("{}-logs{i}", spec.id), "container {}", c.name);
            assert!(share.len() <= 63, "{share}");
            // No other container mounts it.
            for (j, other) in containers.iter().enumerate().filter(|(j, _)| *j != i) {
                let mounts = other["properties"]["volumeMounts"].as_array().unwrap();
                assert!(mounts.iter().all(|m| &m["name"] != name), "{j} mounts {name}");
            }
            folders.push(share.to_owned());
            continue;
        }
        folders.push(folder);
    }
    let mut distinct = folders.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), folders.len(), "shared by two containers: {folders:?}");
    assert!(folders.len() >= 2, "{folders:?}");
}

#[test]
fn specs_aci_cannot_express_are_refused() {
    let workspace = tempfile::tempdir().unwrap();
    let mut spec = spec(workspace.path());
    spec.containers[1].mounts.push(Mount::ro(
        WorkspacePath::new("run").unwrap(),
        ContainerPath::new("/codalab/run-all").unwrap(),
    ));
    let files = FileClient::new(ClientConfig::new(
        "https://storageacct.file.core.windows.net",
        Credential::SharedKey(key()),
    ))
    .unwrap();
    let err = backend(Stager::shares(files, StagingConfig::default()), Priority::Regular)
        .container_group(&spec)
        .unwrap_err();
    assert!(matches!(err, compute::Error::InvalidSpec(_)), "{err}");
}
