//! Validation of whole job specs.

use compute::*;

fn container(name: &str) -> ContainerSpec {
    ContainerSpec::new(
        ContainerName::new(name).unwrap(),
        ImageRef::parse("busybox").unwrap(),
        vec!["true".into()],
    )
}

fn path(p: &str) -> WorkspacePath {
    WorkspacePath::new(p).unwrap()
}

#[test]
fn a_well_formed_job_validates() {
    let mut job = JobSpec::new(JobId::new("abc-predict").unwrap(), "/tmp/ws");
    let mut a = container("program");
    a.stdout = Some(path("output/stdout.txt"));
    a.mounts.push(Mount::ro(path("input"), ContainerPath::new("/codalab/run/input").unwrap()));
    let mut b = container("ingestion");
    b.stdout = Some(path("output/ingestion_stdout.txt"));
    job.containers = vec![a, b];
    job.validate().unwrap();
}

#[test]
fn contradictions_are_refused_with_a_reason() {
    let base = JobSpec::new(JobId::new("abc-predict").unwrap(), "/tmp/ws");

    let mut relative = base.clone();
    relative.workspace = "ws".into();
    relative.containers.push(container("a"));

    let empty = base.clone();

    let mut twice = base.clone();
    twice.containers = vec![container("a"), container("a")];

    let mut shared_output = base.clone();
    let (mut a, mut b) = (container("a"), container("b"));
    a.stdout = Some(path("out.txt"));
    b.stderr = Some(path("out.txt"));
    shared_output.containers = vec![a, b];

    let mut cpus = base.clone();
    let mut c = container("a");
    c.resources.cpus = Some(f64::NAN);
    cpus.containers = vec![c];

    let mut env = base.clone();
    let mut c = container("a");
    c.env.push(EnvVar::plain("A=B", "x"));
    env.containers = vec![c];

    let cases = [
        (relative, "absolute"),
        (empty, "no container"),
        (twice, "used twice"),
        (shared_output, "two streams"),
        (cpus, "CPUs"),
        (env, "variable name"),
    ];
    for (job, expected) in cases {
        let err = job.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidSpec(_)));
        assert!(!err.is_transient());
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn secrets_in_a_spec_stay_hidden_when_it_is_logged() {
    let mut job = JobSpec::new(JobId::new("abc-score").unwrap(), "/tmp/ws");
    let mut c = container("a");
    c.env.push(EnvVar::secret("SUBMISSION_SECRET", "s3cr3t-value"));
    job.containers.push(c);
    job.registry = Some(RegistryCredentials {
        server: "127.0.0.1:5001".into(),
        username: "u".into(),
        password: Secret::new("registry-password"),
    });
    let shown = format!("{job:?}");
    assert!(!shown.contains("s3cr3t-value"));
    assert!(!shown.contains("registry-password"));
    // Serialization keeps the values: it feeds backends and durable state.
    let json = serde_json::to_string(&job).unwrap();
    let back: JobSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, job);
}

#[test]
fn a_deserialized_spec_is_checked_like_a_built_one() {
    let json = r#"{"id":"ok-id","workspace":"/w","time_limit":null,"registry":null,
        "network":false,"watch":["../etc/passwd"],"containers":[]}"#;
    let err = serde_json::from_str::<JobSpec>(json).unwrap_err();
    assert!(err.to_string().contains("'..' is not allowed"), "{err}");
}
