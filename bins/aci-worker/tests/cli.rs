//! The binary's other subcommands as an organizer runs them: `run-task` on the
//! example competition with `file://` URLs, `check` against the real services,
//! `--version`, and an invalid configuration refused before anything is contacted.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::*;

/// Runs the binary with exactly these settings (and PATH, HOME, DOCKER_HOST).
fn run(args: &[&str], settings: &[(&str, String)]) -> Output {
    let mut command = Command::new(WORKER);
    command.args(args).env_clear();
    for key in ["PATH", "HOME", "DOCKER_HOST"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(settings.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn version_names_the_package_version() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(text(&out).trim(), format!("aci-worker {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_invalid_configuration_lists_every_problem_exits_3_and_shows_no_secret() {
    let out = run(
        &["serve"],
        &[
            ("BROKER_URL", "nonsense".into()),
            ("WORKER_CONCURRENCY", "many".into()),
            ("ACI_PRED", "true".into()),
            ("MAIN_BROKER_PASS", "main-pass-not-to-show-4242".into()),
            ("IMAGE_REGISTRY_PWD", "registry-pass-not-to-show".into()),
            ("LOG_FORMAT", "xml".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    for setting in [
        "BROKER_URL",
        "WORKER_CONCURRENCY",
        "AZURE_AUTH_LOCATION",
        "AZURE_RESOURCE_GROUP",
        "LOG_FORMAT",
    ] {
        assert!(said.contains(setting), "{setting} not named:\n{said}");
    }
    assert!(!said.contains("main-pass-not-to-show"), "{said}");
    assert!(!said.contains("registry-pass-not-to-show"), "{said}");
}

#[test]
fn a_toml_syntax_error_says_where_and_never_shows_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(&file, "broker_url = \"amqp://127.0.0.1:1//\"\nmain_broker_pass = \"s3cret\n")
        .unwrap();
    let out = run(&["--config", file.to_str().unwrap(), "check"], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("worker.toml") && said.contains("line 2"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}

#[test]
fn a_bad_endpoint_and_certificate_file_are_configuration_problems() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        .unwrap();
    let out = run(
        &["serve"],
        &[
            ("BROKER_URL", "amqp://127.0.0.1:1//".into()),
            ("AFS_NAME", "acct".into()),
            ("AFS_KEY", "AAECAw==".into()),
            ("AFS_ENDPOINT", "files.example.org/share".into()),
            ("AZURE_CA_FILE", ca.display().to_string()),
        ],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("AFS_ENDPOINT") && said.contains("AZURE_CA_FILE"), "{said}");
}

#[test]
fn check_passes_on_the_local_stack_and_says_which_connection_fails() {
    let vhost = Vhost::new("check");
    let user = User::new("checker", "check-pass-1618");
    user.permit(&vhost.name, ".*", ".*", ".*");
    let dirs = Dirs::new();
    let mut env = aci_settings(&dirs, &user.url(&vhost.name));
    // Prediction on ACI, scoring on Docker: every kind of connection is checked.
    env.insert("ACI_SCORE".into(), "false".into());
    let settings: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();

    // A vhost the site has not used yet: no queue, no exchange; serve declares them.
    let out = run(&["check"], &settings);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for what in ["task broker", "main broker", "Azure Resource Manager", "Azure Files", "Docker"] {
        assert!(said.contains(&format!("ok    {what}:")), "{what} not checked:\n{said}");
    }
    assert!(said.contains("queue compute-worker does not exist yet"), "{said}");
    assert!(said.contains("exchange submission-updates does not exist yet"), "{said}");

    // As the site leaves it: the queue with its priorities, the updates exchange.
    declare_as_the_site(&vhost.url());
    let out = run(&["check"], &settings);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("ok    task broker: queue compute-worker on"), "{said}");
    assert!(
        said.contains("ok    main broker: may publish to exchange submission-updates"),
        "{said}"
    );

    // The updates go to `/`, where this user may not write: said plainly, with
    // what to change, and without the password.
    let mut wrong = settings.clone();
    wrong.push(("MAIN_BROKER_URL", user.url("/")));
    let out = run(&["check"], &wrong);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(said.contains("FAIL  main broker"), "{said}");
    assert!(said.contains("MAIN_BROKER_LOGIN"), "{said}");
    assert!(said.contains("ok    task broker"), "{said}");
    assert!(!said.contains(&user.password), "{said}");
}

#[test]
fn cleanup_removes_an_orphaned_share_of_its_worker_and_no_other() {
    use afs_staging::auth::SharedKey;
    use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig, VolumeName};

    let dirs = Dirs::new();
    // Nothing is consumed: the broker is not contacted by cleanup.
    let mut env = aci_settings(&dirs, "amqp://127.0.0.1:1//");
    env.insert("ORPHAN_AGE_SECS".into(), "0".into());
    let mine = env["WORKER_NAME"].clone();
    let other = unique("other-worker");
    let stager = |worker: &str| {
        let key =
            SharedKey::new(&service_env("ACI_TEST_AFS_ACCOUNT"), &service_env("ACI_TEST_AFS_KEY"))
                .unwrap();
        let client = FileClient::new(ClientConfig::new(
            service_env("ACI_TEST_AFS_ENDPOINT"),
            Credential::SharedKey(key),
        ))
        .unwrap();
        Stager::shares(client, StagingConfig { worker: worker.to_owned(), ..Default::default() })
    };
    let (my_stager, other_stager) = (stager(&mine), stager(&other));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // What a killed run leaves: a share published for its job, tagged with its worker.
    let volume = [VolumeName::new("input").unwrap()];
    for (stager, name) in [(&my_stager, &mine), (&other_stager, &other)] {
        let job = compute::JobId::derive(&["cleanup-test", name]);
        runtime.block_on(stager.publish(&job, dirs.path(), &volume, &[])).unwrap();
    }
    let stale = |stager: &Stager, worker: &str| {
        runtime.block_on(stager.stale_shares(worker, 0)).unwrap().len()
    };
    assert_eq!((stale(&my_stager, &mine), stale(&other_stager, &other)), (1, 1));

    let settings: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let out = run(&["cleanup"], &settings);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("removed 0 container group(s) and 1 share(s)"), "{said}");
    assert_eq!(stale(&my_stager, &mine), 0, "the orphan is gone");
    assert_eq!(stale(&other_stager, &other), 1, "another worker's share stays");
    let job = compute::JobId::derive(&["cleanup-test", &other]);
    runtime.block_on(other_stager.discard(&job)).unwrap();
}

/// Declares the compute queue (`x-max-priority: 2`) and the updates exchange and
/// queue as the CodaLab site's Celery does, with kombu.
fn declare_as_the_site(broker: &str) {
    let script = "import sys, kombu\n\
        with kombu.Connection(sys.argv[1]) as c:\n\
        \x20   ch = c.channel()\n\
        \x20   for name, args in (('compute-worker', {'x-max-priority': 2}), ('submission-updates', None)):\n\
        \x20       kombu.Queue(name, kombu.Exchange(name, 'direct'), name, queue_arguments=args)(ch).declare()\n";
    let out = Command::new(python()).args(["-c", script, broker]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The example competition of `examples/competition` with its `{{dir}}` and
/// `{{image}}` filled in and its bundles zipped, in `dir`.
fn example_competition(dir: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/competition");
    std::fs::create_dir_all(dir.join("bundles")).unwrap();
    for entry in std::fs::read_dir(source.join("bundles")).unwrap() {
        let entry = entry.unwrap();
        let zip = dir.join("bundles").join(format!("{}.zip", entry.file_name().to_string_lossy()));
        codalab_run::archive::create_zip(&entry.path(), &zip, &[]).unwrap();
    }
    for folder in ["runs", "tasks"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for entry in std::fs::read_dir(source.join(folder)).unwrap() {
            let entry = entry.unwrap();
            let filled = std::fs::read_to_string(entry.path())
                .unwrap()
                .replace("{{dir}}", dir.to_str().unwrap())
                .replace("{{image}}", &python_image());
            std::fs::write(dir.join(folder).join(entry.file_name()), filled).unwrap();
        }
    }
}

#[test]
fn run_task_scores_a_result_submission_from_file_urls() {
    let dirs = Dirs::new();
    let competition = dirs.path().join("competition");
    example_competition(&competition);
    let settings = [
        ("SUBMISSION_TEMP_DIR", dirs.work().display().to_string()),
        ("CODALAB_HOSTNAME", "laptop".into()),
    ];
    let task = competition.join("tasks/score-results.json");
    let out = run(&["run-task", task.to_str().unwrap()], &settings);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let statuses: Vec<&str> = lines.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["running", "finished"]);
    assert_eq!(lines[1]["extra"]["metadata"]["hostname"], "laptop");
    let outputs = competition.join("outputs/score-results");
    for file in ["stdout.txt", "stderr.txt", "output.zip"] {
        assert!(outputs.join(file).is_file(), "{file} was not uploaded");
    }
    // The example's result submission has one mistake in ten.
    let scores = dirs.path().join("scores");
    codalab_run::archive::extract(
        &outputs.join("output.zip"),
        &scores,
        &codalab_run::archive::Limits::default(),
    )
    .unwrap();
    let scores = std::fs::read_to_string(scores.join("scores.txt")).unwrap();
    assert!(scores.contains("accuracy: 0.9"), "{scores}");
    // The submission secret is a task argument, never a status line's content.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("example-secret-1"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("example-secret-1"));
}
