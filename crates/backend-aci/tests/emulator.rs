//! The ACI backend against the project's emulator (Entra ID, ARM, Azure Files),
//! whose container groups run for real on the local Docker engine. Each test starts
//! its own emulator, so faults stay local.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afs_staging::auth::SharedKey;
use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
use azure_emulator::{ArmConfig, ArmFaults, Emulator, Faults, FilesConfig};
use backend_aci::credentials::{SdkAuth, http_client};
use backend_aci::model::{
    Container, ContainerGroup, ContainerProperties, GroupProperties, ResourceRequests,
    ResourceRequirements,
};
use backend_aci::{AciBackend, AciConfig, ArmClient, ArmTarget, Priority};
use compute::{
    ComputeBackend, ContainerName, ContainerPath, ContainerSpec, Event, Gpu, ImageRef, JobId,
    JobSpec, Mount, WorkspacePath,
};

struct Stack {
    emulator: Emulator,
    backend: AciBackend,
    files: FileClient,
    workspace: tempfile::TempDir,
    _data: tempfile::TempDir,
}

async fn stack(faults: ArmFaults, tweak: impl FnOnce(&mut AciConfig)) -> Stack {
    let data = tempfile::tempdir().unwrap();
    let mut arm = ArmConfig::new(data.path().join("tls"));
    arm.faults = faults;
    let emulator = Emulator::start_with(
        FilesConfig::new(data.path().join("files")),
        "127.0.0.1:0".parse().unwrap(),
        Some((arm, "127.0.0.1:0".parse().unwrap())),
    )
    .await
    .unwrap();
    let auth = SdkAuth::parse(&emulator.azure_creds_json(), "emulator").unwrap();
    let http = http_client(Some(&emulator.ca_cert_pem_path())).unwrap();
    let arm = ArmClient::new(
        http.clone(),
        auth.credential(&http).unwrap(),
        ArmTarget {
            endpoint: auth.resource_manager_endpoint_url.clone(),
            subscription_id: auth.subscription_id.clone(),
            resource_group: azure_emulator::DEFAULT_RESOURCE_GROUP.into(),
            api_version: backend_aci::API_VERSION.into(),
        },
    )
    .with_retry(8, Duration::from_millis(100));
    let key = SharedKey::new(azure_emulator::DEFAULT_ACCOUNT, azure_emulator::DEFAULT_KEY).unwrap();
    let mut files_config = ClientConfig::new(emulator.files_endpoint(), Credential::SharedKey(key));
    files_config.initial_backoff = Duration::from_millis(20);
    // A share name refused while it is being deleted (only under the Files fault
    // `share_deletion_lag`) fails at once instead of being waited for.
    files_config.share_deletion_wait = Duration::ZERO;
    let files = FileClient::new(files_config).unwrap();
    let stager = Stager::shares(
        files.clone(),
        StagingConfig { worker: "test-worker".into(), ..StagingConfig::default() },
    );
    let mut config = AciConfig::new(azure_emulator::DEFAULT_LOCATION, "test-worker");
    config.poll_initial = Duration::from_millis(200);
    config.poll_max = Duration::from_millis(1000);
    config.capacity_backoff = Duration::from_millis(200);
    config.capacity_retry_for = Duration::from_secs(30);
    config.provisioning_timeout = Duration::from_secs(120);
    tweak(&mut config);
    let backend = AciBackend::new(arm, stager, config);
    Stack { emulator, backend, files, workspace: tempfile::tempdir().unwrap(), _data: data }
}

fn busybox() -> ImageRef {
    ImageRef::parse(
        &std::env::var("ACI_TEST_BUSYBOX").expect("ACI_TEST_BUSYBOX: run scripts/dev-services up"),
    )
    .unwrap()
}

fn ws(path: &str) -> WorkspacePath {
    WorkspacePath::new(path).unwrap()
}

fn cp(path: &str) -> ContainerPath {
    ContainerPath::new(path).unwrap()
}

fn shell(name: &str, script: &str) -> ContainerSpec {
    let mut c = ContainerSpec::new(
        ContainerName::new(name).unwrap(),
        busybox(),
        vec!["sh".into(), "-c".into(), script.into()],
    );
    c.stdout = Some(ws(&format!("logs/{name}.stdout")));
    c.stderr = Some(ws(&format!("logs/{name}.stderr")));
    c
}

fn job(stack: &Stack, id: &str, containers: Vec<ContainerSpec>) -> JobSpec {
    for dir in ["in", "out", "hidden"] {
        std::fs::create_dir_all(stack.workspace.path().join(dir)).unwrap();
    }
    std::fs::write(stack.workspace.path().join("in/data.txt"), "input data\n").unwrap();
    std::fs::write(stack.workspace.path().join("hidden/truth.txt"), "the answers\n").unwrap();
    let mut spec = JobSpec::new(JobId::new(id).unwrap(), stack.workspace.path().to_path_buf());
    spec.containers = containers;
    spec
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Events {
    fn started(&self) -> bool {
        self.0.lock().unwrap().iter().any(|e| matches!(e, Event::Started { .. }))
    }
}

fn sink(events: &Arc<Events>) -> impl Fn(Event) + Send + Sync + 'static {
    let events = events.clone();
    move |e| events.0.lock().unwrap().push(e)
}

/// Starts running `spec` on a task of its own; the events it reports so far, and
/// the run.
fn run_in_background(
    stack: &Arc<Stack>,
    spec: JobSpec,
) -> (Arc<Events>, tokio::task::JoinHandle<compute::Result<compute::Outcome>>) {
    let events = Arc::new(Events::default());
    let (stack, sink) = (stack.clone(), sink(&events));
    let run = tokio::spawn(async move { stack.backend.run(&spec, &sink).await });
    (events, run)
}

async fn assert_nothing_left(stack: &Stack, job: &str) {
    assert!(
        stack.emulator.container_groups().is_empty(),
        "groups left: {:?}",
        stack.emulator.container_groups()
    );
    let shares = stack.files.list_shares(job).await.unwrap();
    assert!(shares.is_empty(), "shares left: {shares:?}");
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_outputs_and_the_hidden_share() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let mut program = shell(
        "program",
        "cat /in/data.txt > /out/copied.txt; \
         if [ -e /hidden/truth.txt ]; then echo yes > /out/program-saw-hidden; fi; \
         echo to-stdout; echo to-stderr >&2; pwd > /out/pwd.txt; exit 3",
    );
    program.mounts = vec![Mount::ro(ws("in"), cp("/in")), Mount::rw(ws("out"), cp("/out"))];
    program.workdir = Some(cp("/in"));
    let mut ingestion =
        shell("ingestion", "cat /hidden/truth.txt > /out/ingestion-saw.txt; printf '%s|' \"$@\"");
    // After `sh -c SCRIPT`, the next argument is $0.
    ingestion.argv.extend(["argv0".into(), "x".into(), "it's $HOME \"q\"".into()]);
    ingestion.mounts =
        vec![Mount::rw(ws("out"), cp("/out")), Mount::ro(ws("hidden"), cp("/hidden"))];
    let spec = job(&stack, "exit-codes", vec![program, ingestion]);
    let events = Arc::new(Events::default());
    let outcome = stack.backend.run(&spec, &sink(&events)).await.unwrap();

    assert_eq!(outcome.container("program").unwrap().exit_code, Some(3));
    assert_eq!(outcome.container("ingestion").unwrap().exit_code, Some(0));
    assert!(!outcome.timed_out);
    assert!(outcome.container("program").unwrap().started_at.is_some());
    let root = stack.workspace.path();
    assert_eq!(read(root, "out/copied.txt"), "input data\n");
    assert_eq!(read(root, "out/ingestion-saw.txt"), "the answers\n");
    assert!(!root.join("out/program-saw-hidden").exists(), "the program saw hidden data");
    assert_eq!(read(root, "out/pwd.txt"), "/in\n");
    assert_eq!(read(root, "logs/program.stdout"), "to-stdout\n");
    assert_eq!(read(root, "logs/program.stderr"), "to-stderr\n");
    // argv arrives exactly, quotes and dollars untouched.
    assert_eq!(read(root, "logs/ingestion.stdout"), "x|it's $HOME \"q\"|");
    let events = events.0.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(e, Event::Exited { exit_code: Some(3), .. })),
        "{events:?}"
    );
    assert_nothing_left(&stack, "exit-codes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_the_group() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let mut sleeper = shell("sleeper", "echo started; sleep 300");
    sleeper.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let mut spec = job(&stack, "deadline", vec![sleeper]);
    spec.time_limit = Some(Duration::from_secs(3));
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.timed_out);
    assert!(outcome.containers[0].timed_out);
    assert!(!outcome.succeeded());
    assert_nothing_left(&stack, "deadline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_holds_while_arm_cannot_read_the_group() {
    let stack = Arc::new(stack(ArmFaults::default(), |_| {}).await);
    let mut sleeper = shell("sleeper", "sleep 300");
    sleeper.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let mut spec = job(&stack, "read-outage", vec![sleeper]);
    spec.time_limit = Some(Duration::from_secs(3));
    let (events, run) = run_in_background(&stack, spec);
    let mut waited = 0;
    while !events.started() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 2400, "the container never started");
    }
    // From now on every GET of the group fails; stop and delete still work.
    let outage = u32::MAX;
    stack.emulator.set_arm_faults(ArmFaults { read_errors: outage, ..ArmFaults::default() });
    let outcome = run.await.unwrap().unwrap();
    assert!(outcome.timed_out, "{outcome:?}");
    assert!(outcome.containers[0].timed_out, "{outcome:?}");
    assert!(!outcome.succeeded());
    // Every read after the start failed, each tried 8 times by the client: at least
    // one poll and the read after the stop.
    let refused = outage - stack.emulator.arm_faults().read_errors;
    assert!(refused >= 16, "only {refused} reads refused");
    assert_nothing_left(&stack, "read-outage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provisioning_timeout_holds_while_arm_cannot_read_the_group() {
    let faults = ArmFaults { read_errors: u32::MAX, ..ArmFaults::default() };
    let stack = stack(faults, |c| c.provisioning_timeout = Duration::from_secs(2)).await;
    let spec = job(&stack, "never-read", vec![shell("one", "sleep 300")]);
    let err = stack.backend.run(&spec, &|_| {}).await.unwrap_err();
    let text = compute::error_chain(&err);
    assert!(err.is_transient(), "{text}");
    assert!(text.contains("no container started within 2 s"), "{text}");
    assert!(text.contains("the container group was never read"), "{text}");
    assert!(text.contains("500 InternalServerError"), "{text}");
    assert_nothing_left(&stack, "never-read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_arm_finds_invalid_fails_at_once_with_arms_words() {
    // The same variable twice: a 400 the backend does not foresee.
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let mut c = shell("one", "true");
    c.env = vec![compute::EnvVar::plain("TWICE", "a"), compute::EnvVar::plain("TWICE", "b")];
    let spec = job(&stack, "invalid", vec![c]);
    let before = stack.emulator.arm_requests();
    let err = stack.backend.run(&spec, &|_| {}).await.unwrap_err();
    let text = compute::error_chain(&err);
    assert!(matches!(err, compute::Error::InvalidSpec(_)), "{text}");
    assert!(text.contains("400 InvalidEnvironmentVariable"), "{text}");
    assert!(
        text.contains(
            "The environment variable name 'TWICE' of container 'one' is empty, invalid or \
             used twice."
        ),
        "{text}"
    );
    // The DELETE of leftovers before the run, one PUT, the DELETE after it: the PUT
    // was neither retried nor waited on.
    assert_eq!(stack.emulator.arm_requests() - before, 3);
    assert_nothing_left(&stack, "invalid").await;
}

/// Throttling and server errors for requests of one method.
fn storm(method: &str) -> ArmFaults {
    ArmFaults {
        throttle: 2,
        server_errors: 2,
        fault_methods: vec![method.to_owned()],
        ..ArmFaults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_error_storms_are_waited_out() {
    // Four failed answers in a row for the PUT (the DELETE before it goes through),
    // then, once the group exists, four for the polls.
    let stack = stack(storm("PUT"), |_| {}).await;
    let mut c = shell("one", "echo fine > /out/fine.txt");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "storm", vec![c]);
    let left_by_put = Mutex::new(None);
    let sink = |event: Event| {
        if matches!(event, Event::Created { .. }) {
            *left_by_put.lock().unwrap() = Some(stack.emulator.arm_faults());
            stack.emulator.set_arm_faults(storm("GET"));
        }
    };
    let outcome = stack.backend.run(&spec, &sink).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(read(stack.workspace.path(), "out/fine.txt"), "fine\n");
    let put = left_by_put.lock().unwrap().clone().expect("the group was created");
    assert_eq!((put.throttle, put.server_errors), (0, 0), "the PUT did not meet them: {put:?}");
    let get = stack.emulator.arm_faults();
    assert_eq!((get.throttle, get.server_errors), (0, 0), "the polls did not meet them: {get:?}");
    assert_nothing_left(&stack, "storm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_call_waits_at_least_the_retry_after() {
    let faults = ArmFaults {
        throttle: 1,
        throttle_retry_after_secs: Some(3),
        fault_methods: vec!["GET".to_owned()],
        ..ArmFaults::default()
    };
    let stack = stack(faults, |_| {}).await;
    // Backoff alone would wait 10 ms.
    let arm = stack.backend.arm().clone().with_retry(2, Duration::from_millis(10));
    let started = Instant::now();
    assert!(arm.get_group("nothing-here").await.unwrap().is_none());
    let waited = started.elapsed();
    assert_eq!(stack.emulator.arm_faults().throttle, 0, "the GET was not throttled");
    assert!(waited >= Duration::from_secs(3), "retried after {waited:?}, before Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_aci_refuses_at_put_is_an_image_error_in_arms_words() {
    let faults = ArmFaults { inaccessible_images: vec!["busybox".into()], ..ArmFaults::default() };
    let stack = stack(faults, |_| {}).await;
    let spec = job(&stack, "inaccessible", vec![shell("one", "true")]);
    let before = stack.emulator.arm_requests();
    let err = stack.backend.run(&spec, &|_| {}).await.unwrap_err();
    match &err {
        compute::Error::ImageUnavailable { image, reason } => {
            assert_eq!(image, &busybox().to_string());
            assert!(
                reason.contains(&format!(
                    "The image '{}' in container group 'inaccessible' is not accessible. Please \
                     check the image and registry credential.",
                    busybox()
                )),
                "{reason}"
            );
            assert!(reason.contains("InaccessibleImage"), "{reason}");
        }
        other => panic!("expected ImageUnavailable, got {}", compute::error_chain(other)),
    }
    assert!(!err.is_transient());
    // The DELETE before the run, one PUT, the DELETE after it.
    assert_eq!(stack.emulator.arm_requests() - before, 3);
    assert_nothing_left(&stack, "inaccessible").await;
}

/// Waits until the run has reported a started container.
async fn until_started(events: &Events) {
    let mut waited = 0;
    while !events.started() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 2400, "the container never started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stopped_from_outside_ends_the_job() {
    // No time limit, a container that would run for long, and a stop that keeps no
    // container state, as ACI documents: only the group's state says it is over.
    let faults = ArmFaults { stops_forgetting_containers: 1, ..ArmFaults::default() };
    let stack = Arc::new(stack(faults, |_| {}).await);
    let mut c = shell("long", "sleep 3000");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "stopped", vec![c]);
    assert_eq!(spec.time_limit, None);
    let (events, run) = run_in_background(&stack, spec);
    until_started(&events).await;
    stack.backend.arm().stop_group("stopped").await.unwrap();
    let err = run.await.unwrap().unwrap_err();
    let text = compute::error_chain(&err);
    assert!(text.contains("stopped from outside the worker before long reported"), "{text}");
    assert!(!err.is_transient(), "{text}");
    let events = events.0.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(e, Event::Exited { exit_code: None, .. })),
        "{events:?}"
    );
    assert_eq!(stack.emulator.arm_faults().stops_forgetting_containers, 0);
    assert_nothing_left(&stack, "stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_job_with_a_gpu_runs_as_regular() {
    // An eviction waits for the next Spot group: there is none.
    let faults = ArmFaults { spot_evictions: 1, ..ArmFaults::default() };
    let stack = stack(faults, |c| c.priority = Priority::Spot).await;
    let mut c = shell("one", "echo ran");
    c.resources.gpu = Some(Gpu { count: 1, sku: None });
    let spec = job(&stack, "gpu-spot", vec![c]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(read(stack.workspace.path(), "logs/one.stdout"), "ran\n");
    assert_eq!(stack.emulator.arm_faults().spot_evictions, 1, "the group was Spot");
    assert_nothing_left(&stack, "gpu-spot").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_capacity_errors_then_success() {
    let faults = ArmFaults { quota_exceeded: 2, capacity_unavailable: 2, ..ArmFaults::default() };
    let stack = stack(faults, |_| {}).await;
    let mut c = shell("one", "true");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "quota", vec![c]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let left = stack.emulator.arm_faults();
    assert_eq!((left.quota_exceeded, left.capacity_unavailable), (0, 0));
    assert_nothing_left(&stack, "quota").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_that_stays_exhausted_says_what_to_do() {
    let faults = ArmFaults { quota_exceeded: 1000, ..ArmFaults::default() };
    let stack = stack(faults, |c| c.capacity_retry_for = Duration::from_secs(1)).await;
    let spec = job(&stack, "no-quota", vec![shell("one", "true")]);
    let err = stack.backend.run(&spec, &|_| {}).await.unwrap_err();
    let text = compute::error_chain(&err);
    assert!(!err.is_transient(), "{text}");
    // ARM's code and words, then the worker's advice.
    assert!(text.contains("ContainerGroupQuotaReached"), "{text}");
    assert!(text.contains("container group quota 'StandardCores' exceeded"), "{text}");
    assert!(text.contains("request a higher quota for this region"), "{text}");
    assert!(text.contains("lower WORKER_CONCURRENCY"), "{text}");
    assert!(!text.contains("capacity"), "{text}");
    assert_nothing_left(&stack, "no-quota").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_eviction_is_run_again_as_regular() {
    // Two evictions are ready, for the next two Spot groups the emulator accepts:
    // the first group is one, and a rerun as Spot would be the second.
    let faults = ArmFaults { spot_evictions: 2, ..ArmFaults::default() };
    let stack = stack(faults, |c| c.priority = Priority::Spot).await;
    // A deleted share's name stays taken: the rerun works only if the shares were
    // kept between the attempts (and emptied by the rerun's publish).
    stack.emulator.set_faults(keep_deleted_share_names());
    let mut c = shell("one", "sleep 2; echo done >> /out/runs.txt");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "evicted", vec![c]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    // The first group was Spot and evicted; the group run again was not Spot, so it
    // was Regular (the only other priority), and the second eviction is still there.
    assert_eq!(stack.emulator.arm_faults().spot_evictions, 1, "evictions left");
    // The rerun started from the workspace, not from the evicted run's leftovers.
    assert_eq!(read(stack.workspace.path(), "out/runs.txt"), "done\n");
    assert_nothing_left(&stack, "evicted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_with_acis_words() {
    let faults = ArmFaults { pull_failures: vec!["busybox".into()], ..ArmFaults::default() };
    let stack = stack(faults, |_| {}).await;
    let spec = job(&stack, "pull", vec![shell("one", "true")]);
    let err = stack.backend.run(&spec, &|_| {}).await.unwrap_err();
    match &err {
        compute::Error::ImageUnavailable { image, reason } => {
            assert!(image.contains("busybox"), "{image}");
            assert!(reason.to_lowercase().contains("pull"), "{reason}");
        }
        other => panic!("expected ImageUnavailable, got {}", compute::error_chain(other)),
    }
    assert_nothing_left(&stack, "pull").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_image_runs_with_the_jobs_credentials() {
    let env = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name}: run scripts/dev-services up"))
    };
    let image = ImageRef::parse(&env("ACI_TEST_AUTH_BUSYBOX")).unwrap();
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let private = |name: &str| {
        let mut c = shell(name, "echo from the private registry");
        c.image = image.clone();
        c
    };

    let mut spec = job(&stack, "private", vec![private("one")]);
    spec.registry = Some(compute::RegistryCredentials {
        server: env("ACI_TEST_AUTH_REGISTRY"),
        username: env("ACI_TEST_REGISTRY_USER"),
        password: env("ACI_TEST_REGISTRY_PASS").into(),
    });
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert_eq!(outcome.container("one").unwrap().exit_code, Some(0));
    assert_eq!(read(stack.workspace.path(), "logs/one.stdout"), "from the private registry\n");
    assert_nothing_left(&stack, "private").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_in_the_middle_leaves_no_group_and_no_share() {
    let stack = Arc::new(stack(ArmFaults::default(), |_| {}).await);
    let mut c = shell("long", "sleep 300");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "cancelled", vec![c]);
    let (events, run) = run_in_background(&stack, spec);
    let mut waited = 0;
    while !events.started() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
        assert!(waited < 600, "the container never started");
    }
    run.abort();
    let _ = run.await;
    let mut waited = 0;
    loop {
        let shares = stack.files.list_shares("cancelled").await.unwrap();
        if stack.emulator.container_groups().is_empty() && shares.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
        assert!(waited < 600, "cleanup after cancel did not happen");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_right_after_a_cancel_keeps_its_group_and_shares() {
    let stack = Arc::new(stack(ArmFaults::default(), |_| {}).await);
    let mut c = shell("long", "sleep 300");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "rerun", vec![c]);
    let (events, run) = run_in_background(&stack, spec);
    until_started(&events).await;
    // Deletes take a while, as on ACI: the cleanup after the cancel is slow.
    let slow = ArmFaults { deletion_delay: Duration::from_secs(2), ..ArmFaults::default() };
    stack.emulator.set_arm_faults(slow);
    run.abort();
    let _ = run.await;
    // At once the same job again: the cancelled run's cleanup is still going on,
    // and must not take the new run's group or shares with it.
    let mut again = shell("long", "echo again > /out/again.txt; echo said again");
    again.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "rerun", vec![again]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(read(stack.workspace.path(), "out/again.txt"), "again\n");
    assert_eq!(read(stack.workspace.path(), "logs/long.stdout"), "said again\n");
    assert_nothing_left(&stack, "rerun").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_cannot_read_another_containers_captured_output() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    // The first prints (as ingestion may, from hidden data) and stays until the
    // second has looked; the second looks where its own output goes.
    let mut first = shell(
        "first",
        "cat /hidden/truth.txt; echo to-stderr >&2; touch /out/first-printed; \
         i=0; while [ ! -e /out/second-looked ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done",
    );
    first.mounts = vec![Mount::rw(ws("out"), cp("/out")), Mount::ro(ws("hidden"), cp("/hidden"))];
    let mut second = shell(
        "second",
        "i=0; while [ ! -e /out/first-printed ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; \
         ls -A /aci-worker-io > /out/second-listed.txt; \
         cat /aci-worker-io/first.stdout > /out/second-read.txt 2>/dev/null; \
         echo overwritten > /aci-worker-io/first.stdout; \
         touch /out/second-looked; echo from-second",
    );
    second.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "isolated-output", vec![first, second]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let root = stack.workspace.path();
    assert!(root.join("out/first-printed").exists() && root.join("out/second-looked").exists());
    // The second saw its own files only, and nothing of the first's.
    assert_eq!(read(root, "out/second-listed.txt"), "second.stderr\nsecond.stdout\n");
    assert_eq!(read(root, "out/second-read.txt"), "");
    // Each output came back whole, to where the spec says.
    assert_eq!(read(root, "logs/first.stdout"), "the answers\n");
    assert_eq!(read(root, "logs/first.stderr"), "to-stderr\n");
    assert_eq!(read(root, "logs/second.stdout"), "from-second\n");
    assert_eq!(read(root, "logs/second.stderr"), "");
    assert_nothing_left(&stack, "isolated-output").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_the_jobs_group_and_shares_and_nothing_else() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    // What a crashed worker leaves: groups built by the backend's own body, and
    // their shares. The second job's name starts with the first's.
    for name in ["crashed", "crashed-too"] {
        let mut c = shell("main", "sleep 300");
        c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
        let spec = job(&stack, name, vec![c]);
        let volumes = [
            afs_staging::VolumeName::new("v0").unwrap(),
            afs_staging::VolumeName::new("logs0").unwrap(),
        ];
        stack.backend.stager().publish(&spec.id, &spec.workspace, &volumes, &[]).await.unwrap();
        let group = stack.backend.container_group(&spec).unwrap();
        stack.backend.arm().put_group(name, &group).await.unwrap();
    }
    let shares = || async {
        let mut names: Vec<String> =
            stack.files.list_shares("").await.unwrap().into_iter().map(|s| s.name).collect();
        names.sort();
        names
    };
    assert_eq!(shares().await.len(), 4);

    let job = JobId::new("crashed").unwrap();
    stack.backend.cleanup(&job).await.unwrap();
    assert_eq!(stack.emulator.container_groups(), vec!["crashed-too".to_string()]);
    assert_eq!(shares().await, ["crashed-too-logs0", "crashed-too-v0"]);
    // Again: nothing left to do, and no error.
    stack.backend.cleanup(&job).await.unwrap();
    assert_eq!(stack.emulator.container_groups(), vec!["crashed-too".to_string()]);

    stack.backend.cleanup(&JobId::new("crashed-too").unwrap()).await.unwrap();
    assert_nothing_left(&stack, "crashed").await;
    assert!(shares().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_sweep_removes_this_workers_old_leftovers_only() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    // A run that leaves its group and shares behind, as a crash would: a container
    // group created by the backend's own body and shares staged for it.
    let mut c = shell("orphan", "sleep 300");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "orphaned", vec![c]);
    let mut group = stack.backend.container_group(&spec).unwrap();
    group.tags.as_mut().unwrap().insert(backend_aci::TAG_CREATED.into(), "1000".into());
    let volumes = [
        afs_staging::VolumeName::new("v0").unwrap(),
        afs_staging::VolumeName::new("logs0").unwrap(),
    ];
    stack.backend.stager().publish(&spec.id, &spec.workspace, &volumes, &[]).await.unwrap();
    stack.backend.arm().put_group("orphaned", &group).await.unwrap();
    // Another worker's group, just as old.
    let mut foreign = group.clone();
    foreign.tags.as_mut().unwrap().insert(backend_aci::TAG_WORKER.into(), "other-worker".into());
    foreign.tags.as_mut().unwrap().insert(backend_aci::TAG_JOB.into(), "foreign".into());
    stack.backend.arm().put_group("foreign", &foreign).await.unwrap();

    // Too young for a sweep with a long age.
    let report = stack.backend.sweep_orphans(Duration::from_secs(u64::MAX / 4)).await.unwrap();
    assert!(report.groups.is_empty(), "{report:?}");

    let report = stack.backend.sweep_orphans(Duration::from_secs(60)).await.unwrap();
    assert_eq!(report.groups, vec!["orphaned".to_string()]);
    assert_eq!(stack.emulator.container_groups(), vec!["foreign".to_string()]);
    assert!(stack.files.list_shares("orphaned").await.unwrap().is_empty());
    stack.backend.arm().delete_group("foreign").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_sweep_removes_shares_left_without_a_group() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    // A crash between staging and the group's creation leaves shares alone.
    let spec = job(&stack, "lonely", vec![shell("x", "true")]);
    let volumes = [afs_staging::VolumeName::new("v0").unwrap()];
    stack.backend.stager().publish(&spec.id, &spec.workspace, &volumes, &[]).await.unwrap();
    assert_eq!(stack.files.list_shares("lonely").await.unwrap().len(), 1);

    let report = stack.backend.sweep_orphans(Duration::from_secs(3600)).await.unwrap();
    assert!(report.shares.is_empty(), "young shares stay: {report:?}");
    assert_eq!(stack.files.list_shares("lonely").await.unwrap().len(), 1);

    let report = stack.backend.sweep_orphans(Duration::ZERO).await.unwrap();
    assert!(report.groups.is_empty(), "{report:?}");
    assert_eq!(report.shares.len(), 1, "{report:?}");
    assert!(stack.files.list_shares("lonely").await.unwrap().is_empty());

    // An old share whose job's group is still there (a run longer than the sweep's
    // age) stays; an old one whose group is gone goes.
    let old = |job: &'static str| [("worker", "test-worker"), ("job", job), ("created", "1000")];
    let spec = job(&stack, "longrun", vec![shell("x", "sleep 300")]);
    let volumes = [afs_staging::VolumeName::new("logs0").unwrap()];
    stack.backend.stager().publish(&spec.id, &spec.workspace, &volumes, &[]).await.unwrap();
    let group = stack.backend.container_group(&spec).unwrap();
    stack.backend.arm().put_group("longrun", &group).await.unwrap();
    stack.files.create_share("longrun-old", 1, &old("longrun")).await.unwrap();
    stack.files.create_share("gone-old", 1, &old("gone")).await.unwrap();
    let report = stack.backend.sweep_orphans(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.shares, vec!["gone-old".to_string()], "{report:?}");
    assert!(report.groups.is_empty(), "{report:?}");
    assert_eq!(stack.files.list_shares("longrun").await.unwrap().len(), 2);
    stack.backend.arm().delete_group("longrun").await.unwrap();
    stack.backend.stager().discard(&spec.id).await.unwrap();
    stack.files.delete_share("longrun-old").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_sweep_goes_on_past_a_failed_delete() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    for name in ["orphan-a", "orphan-b"] {
        let spec = job(&stack, name, vec![shell("x", "sleep 300")]);
        let volumes = [afs_staging::VolumeName::new("logs0").unwrap()];
        stack.backend.stager().publish(&spec.id, &spec.workspace, &volumes, &[]).await.unwrap();
        let mut group = stack.backend.container_group(&spec).unwrap();
        group.tags.as_mut().unwrap().insert(backend_aci::TAG_CREATED.into(), "1000".into());
        stack.backend.arm().put_group(name, &group).await.unwrap();
    }
    // A sweeper whose ARM client tries each call twice; the first DELETE (of
    // orphan-a: groups are listed in name order) fails both times.
    let arm = stack.backend.arm().clone().with_retry(2, Duration::from_millis(10));
    let mut config = AciConfig::new(azure_emulator::DEFAULT_LOCATION, "test-worker");
    config.poll_initial = Duration::from_millis(200);
    let sweeper = AciBackend::new(arm, stack.backend.stager().clone(), config);
    stack.emulator.set_arm_faults(ArmFaults {
        server_errors: 2,
        fault_methods: vec!["DELETE".into()],
        ..ArmFaults::default()
    });
    let report = sweeper.sweep_orphans(Duration::from_secs(60)).await.unwrap();
    assert_eq!(report.groups, vec!["orphan-b".to_string()], "{report:?}");
    assert_eq!((report.removed(), report.failed()), (1, 1), "{report:?}");
    assert_eq!(report.failures[0].name, "orphan-a");
    assert!(report.failures[0].error.contains("500 InternalServerError"), "{report:?}");
    // The group that stays keeps its share; the other's went with it.
    assert_eq!(stack.emulator.container_groups(), vec!["orphan-a".to_string()]);
    assert_eq!(stack.files.list_shares("orphan-a").await.unwrap().len(), 1);
    assert!(stack.files.list_shares("orphan-b").await.unwrap().is_empty());

    // Called again, it finishes the job.
    let report = sweeper.sweep_orphans(Duration::from_secs(60)).await.unwrap();
    assert_eq!(report.groups, vec!["orphan-a".to_string()], "{report:?}");
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(stack.emulator.container_groups().is_empty());
    assert!(stack.files.list_shares("orphan-a").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_sweep_never_removes_a_job_this_process_runs() {
    let stack = Arc::new(stack(ArmFaults::default(), |_| {}).await);
    let mut c = shell("long", "sleep 300");
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let spec = job(&stack, "running", vec![c]);
    let (events, run) = run_in_background(&stack, spec);
    until_started(&events).await;
    // Every group and share is old enough for a sweep of age zero.
    let report = stack.backend.sweep_orphans(Duration::ZERO).await.unwrap();
    assert_eq!(report.running, vec!["running".to_string()], "{report:?}");
    assert_eq!(report.removed(), 0, "{report:?}");
    assert_eq!(stack.emulator.container_groups(), vec!["running".to_string()]);
    assert_eq!(stack.files.list_shares("running").await.unwrap().len(), 2);
    run.abort();
    let _ = run.await;
    // The cancelled run's own cleanup removes its group and shares; meanwhile a
    // sweep never lists the job as running: a cleanup is no run.
    let mut waited = 0;
    while !stack.emulator.container_groups().is_empty() {
        let report = stack.backend.sweep_orphans(Duration::ZERO).await.unwrap();
        assert!(report.running.is_empty(), "{report:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
        assert!(waited < 600, "the group stayed");
    }
}

/// Files faults under which a deleted share's name is refused (`409
/// ShareBeingDeleted`) for the rest of a test, as Azure does for a while.
fn keep_deleted_share_names() -> Faults {
    Faults { share_deletion_lag: Duration::from_secs(3600), ..Faults::default() }
}

/// An image with a static busybox at `/busybox` and nothing else: no `/bin/sh`.
fn image_without_shell() -> ImageRef {
    import_image("noshell", &["busybox"], None)
}

/// An image with busybox as `/bin/sh` whose entrypoint prints a line.
fn image_with_an_entrypoint() -> ImageRef {
    let entrypoint = r#"ENTRYPOINT ["/bin/sh", "-c", "echo from the image entrypoint"]"#;
    import_image("entrypoint", &["bin/busybox", "bin/sh"], Some(entrypoint))
}

/// Imports an image of a static busybox at each of `paths` (in the registry as
/// `aci-worker-test/NAME`), with a Dockerfile `change`.
fn import_image(name: &str, paths: &[&str], change: Option<&str>) -> ImageRef {
    let registry = std::env::var("ACI_TEST_REGISTRY").expect("ACI_TEST_REGISTRY");
    let reference = format!("{registry}/aci-worker-test/{name}:latest");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for path in paths {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::copy("/bin/busybox", file).expect("busybox-static installed by dev-services");
    }
    let tar = dir.path().join("root.tar");
    let status = std::process::Command::new("tar")
        .args(["-cf"])
        .arg(&tar)
        .args(["-C"])
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let mut import = std::process::Command::new("docker");
    import.arg("import");
    if let Some(change) = change {
        import.args(["--change", change]);
    }
    let status = import
        .args([tar.to_str().unwrap(), &reference])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker import");
    let status = std::process::Command::new("docker")
        .args(["push", &reference])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker push");
    ImageRef::parse(&reference).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_a_shell_runs_and_its_output_comes_from_the_logs_api() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let mut c = ContainerSpec::new(
        ContainerName::new("bare").unwrap(),
        image_without_shell(),
        vec!["/busybox".into(), "echo".into(), "hello from a bare image".into()],
    );
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    c.stdout = Some(ws("logs/bare.stdout"));
    c.stderr = Some(ws("logs/bare.stderr"));
    let spec = job(&stack, "no-shell", vec![c]);
    // The rerun without the wrapper keeps the first attempt's shares.
    stack.emulator.set_faults(keep_deleted_share_names());
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert_eq!(outcome.containers[0].exit_code, Some(0), "{outcome:?}");
    let stdout = read(stack.workspace.path(), "logs/bare.stdout");
    assert!(stdout.contains("hello from a bare image"), "{stdout:?}");
    assert!(stack.workspace.path().join("logs/bare.stderr").exists());
    assert_nothing_left(&stack, "no-shell").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_argv_runs_the_images_own_entrypoint() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    // The image has a shell, so nothing but the empty argv keeps the wrapper away.
    let mut c =
        ContainerSpec::new(ContainerName::new("own").unwrap(), image_with_an_entrypoint(), vec![]);
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    c.stdout = Some(ws("logs/own.stdout"));
    c.stderr = Some(ws("logs/own.stderr"));
    let spec = job(&stack, "own-entrypoint", vec![c]);
    let outcome = stack.backend.run(&spec, &|_| {}).await.unwrap();
    assert_eq!(outcome.containers[0].exit_code, Some(0), "{outcome:?}");
    // The output came through the logs API.
    assert_eq!(read(stack.workspace.path(), "logs/own.stdout"), "from the image entrypoint\n");
    assert!(stack.workspace.path().join("logs/own.stderr").exists());
    assert_nothing_left(&stack, "own-entrypoint").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_files_are_followed_while_the_group_runs() {
    let stack = stack(ArmFaults::default(), |_| {}).await;
    let mut c = shell(
        "writer",
        "for i in 1 2 3; do echo \"<p>version $i</p>\" > /out/detail.tmp; mv /out/detail.tmp /out/detail.html; sleep 2; done",
    );
    c.mounts = vec![Mount::rw(ws("out"), cp("/out"))];
    let mut spec = job(&stack, "watched", vec![c]);
    spec.watch.push(ws("out/detail.html"));
    let events = Arc::new(Events::default());
    let outcome = stack.backend.run(&spec, &sink(&events)).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let changes = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::FileChanged { path } if path.as_str() == "out/detail.html"))
        .count();
    assert!(changes >= 1, "no change reported while running");
    assert_eq!(read(stack.workspace.path(), "out/detail.html"), "<p>version 3</p>\n");
    assert_nothing_left(&stack, "watched").await;
}

/// The environment a child test process reads the emulator from.
const MI_ARM: &str = "ACI_TEST_MI_ARM_ENDPOINT";
const MI_CA: &str = "ACI_TEST_MI_CA";

/// Runs [`managed_identity_child`] in a child process whose environment points
/// azure_identity's managed identity (App Service protocol) at the emulator, with
/// `header` as `IDENTITY_HEADER`. The process environment is the only way to reach
/// azure_identity's endpoint choice, and it is never changed in this process.
async fn run_managed_identity_child(emulator: &Emulator, header: &str) -> std::process::Output {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["managed_identity_child", "--exact", "--ignored", "--nocapture"])
        .env("IDENTITY_ENDPOINT", format!("{}/msi/token", emulator.arm_endpoint()))
        .env("IDENTITY_HEADER", header)
        .env(MI_ARM, emulator.arm_endpoint())
        .env(MI_CA, emulator.ca_cert_pem_path());
    for other in ["IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"] {
        command.env_remove(other);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_token_is_taken_by_arm() {
    let data = tempfile::tempdir().unwrap();
    let mut arm = ArmConfig::new(data.path().join("tls"));
    arm.instant = true;
    arm.docker = None;
    let emulator = Emulator::start_with(
        FilesConfig::new(data.path().join("files")),
        "127.0.0.1:0".parse().unwrap(),
        Some((arm, "127.0.0.1:0".parse().unwrap())),
    )
    .await
    .unwrap();
    // A group for the child to find, created with the service principal.
    let auth = SdkAuth::parse(&emulator.azure_creds_json(), "emulator").unwrap();
    let http = http_client(Some(&emulator.ca_cert_pem_path())).unwrap();
    let principal = ArmClient::new(
        http.clone(),
        auth.credential(&http).unwrap(),
        ArmTarget {
            endpoint: emulator.arm_endpoint(),
            subscription_id: azure_emulator::DEFAULT_SUBSCRIPTION_ID.into(),
            resource_group: azure_emulator::DEFAULT_RESOURCE_GROUP.into(),
            api_version: backend_aci::API_VERSION.into(),
        },
    );
    let group = ContainerGroup {
        location: Some(azure_emulator::DEFAULT_LOCATION.into()),
        properties: GroupProperties {
            containers: vec![Container {
                name: "main".into(),
                properties: ContainerProperties {
                    image: "busybox".into(),
                    resources: ResourceRequirements {
                        requests: ResourceRequests { memory_in_gb: 0.5, cpu: 0.5, gpu: None },
                    },
                    ..ContainerProperties::default()
                },
            }],
            os_type: "Linux".into(),
            restart_policy: Some("Never".into()),
            ..GroupProperties::default()
        },
        ..ContainerGroup::default()
    };
    principal.put_group("seen-by-the-identity", &group).await.unwrap();

    let tokens = emulator.token_requests();
    let output =
        run_managed_identity_child(&emulator, azure_emulator::DEFAULT_IDENTITY_HEADER).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("groups: seen-by-the-identity"), "{stdout}\n{stderr}");
    assert!(emulator.token_requests() > tokens, "no token came from the emulator");

    // The endpoint's secret matters: a wrong one gets no token, and no ARM call.
    let output = run_managed_identity_child(&emulator, "not-the-header").await;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("X-IDENTITY-HEADER"), "{all}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_managed_identity_token_is_taken_by_arm in a child process"]
async fn managed_identity_child() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is unset: a_managed_identity_token_is_taken_by_arm runs this test")
        })
    };
    let http = http_client(Some(Path::new(&var(MI_CA)))).unwrap();
    let credential = backend_aci::credentials::managed_identity(None, &http).unwrap();
    let arm = ArmClient::new(
        http,
        credential,
        ArmTarget {
            endpoint: var(MI_ARM),
            subscription_id: azure_emulator::DEFAULT_SUBSCRIPTION_ID.into(),
            resource_group: azure_emulator::DEFAULT_RESOURCE_GROUP.into(),
            api_version: backend_aci::API_VERSION.into(),
        },
    )
    .with_retry(1, Duration::from_millis(10));
    arm.check_resource_group().await.unwrap();
    let names: Vec<String> =
        arm.list_groups().await.unwrap().into_iter().filter_map(|g| g.name).collect();
    println!("groups: {}", names.join(","));
}
