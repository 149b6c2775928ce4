//! The backend's own overhead for a container that does nothing: from spec to
//! started to exited to removed, against `docker run --rm IMAGE true` through the
//! Docker CLI, in the same run and on the same engine.
//!
//! `cargo bench -p backend-docker --bench true_container` (engine and images from
//! `scripts/dev-services up`). Environment: `ACI_BENCH_RUNS` (default 20),
//! `ACI_TEST_BUSYBOX` (the image), `DOCKER_CLI` (default `docker`).

use std::process::Command;
use std::time::{Duration, Instant};

use backend_docker::{DockerBackend, DockerConfig};
use compute::{ComputeBackend, ContainerName, ContainerSpec, ImageRef, JobId, JobSpec, NoEvents};

fn main() {
    let runs: usize =
        std::env::var("ACI_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let image = std::env::var("ACI_TEST_BUSYBOX")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/busybox:latest".to_owned());
    let cli = std::env::var("DOCKER_CLI").unwrap_or_else(|_| "docker".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let backend = rt.block_on(DockerBackend::connect(DockerConfig::default())).expect("engine");
    let image = ImageRef::parse(&image).unwrap();
    rt.block_on(backend.ensure_image(&image, None)).expect("image");
    let workspace = tempfile::tempdir().unwrap();

    let backend_run = |i: usize| {
        let mut spec =
            JobSpec::new(JobId::derive(&["bench-true", &i.to_string()]), workspace.path());
        spec.containers.push(ContainerSpec::new(
            ContainerName::new("true").unwrap(),
            image.clone(),
            vec!["true".into()],
        ));
        let start = Instant::now();
        let outcome = rt.block_on(backend.run(&spec, &NoEvents)).expect("run");
        assert!(outcome.succeeded());
        start.elapsed()
    };
    let cli_run = || {
        let start = Instant::now();
        let status = Command::new(&cli)
            .args(["run", "--rm", "--network", "none", &image.to_string(), "true"])
            .status()
            .expect("docker CLI");
        assert!(status.success());
        start.elapsed()
    };

    // One of each first, unmeasured: the engine's caches warm up for both alike.
    backend_run(usize::MAX);
    cli_run();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate, so that drift in the engine's state affects both sides alike.
        ours.push(backend_run(i));
        theirs.push(cli_run());
    }
    println!("true container, {runs} runs each, image {image}");
    report("backend-docker (spec -> removed)", &mut ours);
    report("docker run --rm (CLI)", &mut theirs);
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(samples[samples.len() / 2]);
    let p90 = ms(samples[(samples.len() * 9 / 10).min(samples.len() - 1)]);
    println!(
        "{label:<36} median {median:>7.1} ms   p90 {p90:>7.1} ms   min {:>7.1} ms",
        ms(samples[0])
    );
}
