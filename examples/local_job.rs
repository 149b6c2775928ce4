//! Runs one two-container job on the local Docker engine, the way a CodaLab
//! prediction step with an ingestion program runs: the participant's program and
//! the organizer's ingestion program start together, share a folder, and only the
//! ingestion program sees the hidden reference data.
//!
//! `cargo run -p aci-worker-examples --bin local-job [IMAGE]`; IMAGE defaults to
//! `$ACI_TEST_BUSYBOX`, the busybox image that `scripts/dev-services up` serves.

use std::time::Duration;

use backend_docker::{DockerBackend, DockerConfig};
use compute::*;

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let image = std::env::args().nth(1).or_else(|| std::env::var("ACI_TEST_BUSYBOX").ok());
    let image = ImageRef::parse(
        image.as_deref().unwrap_or("127.0.0.1:5000/aci-worker-test/busybox:latest"),
    )?;
    let workspace = tempfile::tempdir()?;
    std::fs::create_dir_all(workspace.path().join("hidden"))?;
    std::fs::write(workspace.path().join("hidden/truth.txt"), "1\n0\n1\n1\n")?;

    let path = |p: &str| WorkspacePath::new(p);
    let at = |p: &str| ContainerPath::new(p);
    let mut program = ContainerSpec::new(
        ContainerName::new("program")?,
        image.clone(),
        vec![
            "sh".into(),
            "-c".into(),
            "printf '1\\n0\\n0\\n1\\n' > /codalab/shared/predictions.txt".into(),
        ],
    );
    program.mounts.push(Mount::rw(path("shared")?, at("/codalab/shared")?));
    program.stdout = Some(path("output/prediction_stdout_file.txt")?);
    program.stderr = Some(path("output/prediction_stderr_file.txt")?);

    let ingestion_script = "\
        while [ ! -s /codalab/shared/predictions.txt ]; do sleep 0.1; done; \
        paste /codalab/shared/predictions.txt /codalab/hidden/truth.txt \
          | awk '$1 == $2 { ok++ } END { printf \"accuracy: %.2f\\n\", ok / NR }' \
          > /codalab/output/scores.txt; \
        echo scored";
    let mut ingestion = ContainerSpec::new(
        ContainerName::new("ingestion")?,
        image,
        vec!["sh".into(), "-c".into(), ingestion_script.into()],
    );
    ingestion.mounts.push(Mount::ro(path("shared")?, at("/codalab/shared")?));
    ingestion.mounts.push(Mount::ro(path("hidden")?, at("/codalab/hidden")?));
    ingestion.mounts.push(Mount::rw(path("output")?, at("/codalab/output")?));
    ingestion.stdout = Some(path("output/ingestion_stdout_file.txt")?);

    let mut job = JobSpec::new(
        JobId::derive(&["local-job", &std::process::id().to_string()]),
        workspace.path(),
    );
    job.containers = vec![program, ingestion];
    job.time_limit = Some(Duration::from_secs(60));

    let backend = DockerBackend::connect(DockerConfig::default()).await?;
    let events = |event: Event| println!("event: {event:?}");
    let outcome = backend.run(&job, &events).await?;
    for c in &outcome.containers {
        let secs = c.duration().map_or(0.0, |d| d.as_secs_f64());
        println!("{}: exit code {:?} after {secs:.2} s", c.name, c.exit_code);
    }
    let scores = std::fs::read_to_string(workspace.path().join("output/scores.txt"))?;
    print!("scores.txt: {scores}");
    if !outcome.succeeded() {
        return Err("the job did not succeed".into());
    }
    Ok(())
}
