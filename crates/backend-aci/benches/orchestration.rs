//! 200 jobs at once through one `AciBackend` against the emulator's instant mode:
//! jobs per second, added latency per job (p50, p99) and peak memory, beside the
//! Python ACI worker's approach (one job at a time, a fixed 30 s sleep between
//! status polls and 1 s polls while provisioning), computed from the same
//! emulator's timings.
//!
//! The emulator runs in this process; the backend runs in a child process so that
//! its peak memory is its own.
//!
//! ```text
//! cargo bench -p backend-aci --bench orchestration [-- --jobs N]
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use afs_staging::auth::SharedKey;
use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
use azure_emulator::{ArmConfig, Emulator, FilesConfig};
use backend_aci::credentials::{SdkAuth, http_client};
use backend_aci::{AciBackend, AciConfig, ArmClient, ArmTarget};
use compute::{
    ComputeBackend, ContainerName, ContainerPath, ContainerSpec, ImageRef, JobId, JobSpec, Mount,
    WorkspacePath,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2], &args[i + 3], args[i + 4].parse().unwrap());
        return;
    }
    let jobs: usize = args
        .iter()
        .position(|a| a == "--jobs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let data = tempfile::tempdir().unwrap();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let emulator = runtime.block_on(async {
        let mut arm = ArmConfig::new(data.path().join("tls"));
        arm.instant = true;
        arm.docker = None;
        Emulator::start_with(
            FilesConfig::new(data.path().join("files")),
            "127.0.0.1:0".parse().unwrap(),
            Some((arm, "127.0.0.1:0".parse().unwrap())),
        )
        .await
        .unwrap()
    });
    let creds = data.path().join("azure_creds");
    std::fs::write(&creds, emulator.azure_creds_json()).unwrap();
    let me = std::env::current_exe().unwrap();
    let output = std::process::Command::new(me)
        .args(["--child", creds.to_str().unwrap(), emulator.ca_cert_pem_path().to_str().unwrap()])
        .arg(emulator.files_endpoint())
        .arg(jobs.to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!("ARM requests served: {}", emulator.arm_requests());
    println!("Files requests served: {}", emulator.requests_served());
    runtime.block_on(emulator.shutdown());
}

fn backend(creds: &str, ca: &str, files_endpoint: &str) -> AciBackend {
    let auth = SdkAuth::from_file(Path::new(creds)).unwrap();
    let http = http_client(Some(Path::new(ca))).unwrap();
    let arm = ArmClient::new(
        http.clone(),
        auth.credential(&http).unwrap(),
        ArmTarget {
            endpoint: auth.resource_manager_endpoint_url.clone(),
            subscription_id: auth.subscription_id.clone(),
            resource_group: azure_emulator::DEFAULT_RESOURCE_GROUP.into(),
            api_version: backend_aci::API_VERSION.into(),
        },
    );
    let key = SharedKey::new(azure_emulator::DEFAULT_ACCOUNT, azure_emulator::DEFAULT_KEY).unwrap();
    let files =
        FileClient::new(ClientConfig::new(files_endpoint, Credential::SharedKey(key))).unwrap();
    let stager = Stager::shares(files, StagingConfig::default());
    // Default polling (1 s first, growing to 15 s): what a deployment runs with.
    AciBackend::new(arm, stager, AciConfig::new(azure_emulator::DEFAULT_LOCATION, "bench"))
}

fn spec(root: &Path, n: usize) -> JobSpec {
    let workspace = root.join(format!("job-{n}"));
    std::fs::create_dir_all(workspace.join("out")).unwrap();
    std::fs::write(workspace.join("out/input.txt"), format!("job {n}\n")).unwrap();
    let mut spec = JobSpec::new(JobId::new(format!("bench-job-{n}")).unwrap(), workspace);
    let mut c = ContainerSpec::new(
        ContainerName::new("program").unwrap(),
        ImageRef::parse("127.0.0.1:5000/aci-worker-test/busybox:latest").unwrap(),
        vec!["true".into()],
    );
    c.mounts =
        vec![Mount::rw(WorkspacePath::new("out").unwrap(), ContainerPath::new("/out").unwrap())];
    c.stdout = Some(WorkspacePath::new("logs/stdout.txt").unwrap());
    c.stderr = Some(WorkspacePath::new("logs/stderr.txt").unwrap());
    spec.containers = vec![c];
    spec
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn child(creds: &str, ca: &str, files_endpoint: &str, jobs: usize) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let root = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let backend = Arc::new(backend(creds, ca, files_endpoint));

        // One job at a time, to time the emulator's part of a job (and warm up).
        let mut sequential = Vec::new();
        for n in 0..5 {
            let spec = spec(root.path(), 10_000 + n);
            let started = Instant::now();
            let outcome = backend.run(&spec, &|_| {}).await.unwrap();
            assert!(outcome.succeeded());
            sequential.push(started.elapsed().as_secs_f64());
        }
        sequential.sort_by(f64::total_cmp);
        let one = percentile(&sequential, 0.5);

        let specs: Vec<JobSpec> = (0..jobs).map(|n| spec(root.path(), n)).collect();
        let started = Instant::now();
        let runs = specs.iter().map(|spec| {
            let backend = backend.clone();
            async move {
                let begun = Instant::now();
                let outcome = backend.run(spec, &|_| {}).await.unwrap();
                assert!(outcome.succeeded());
                begun.elapsed().as_secs_f64()
            }
        });
        let mut latencies = futures_util::future::join_all(runs).await;
        let wall = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let peak_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
            })
            .unwrap_or(0);

        // The Python ACI worker's approach on the same emulator: jobs one after the
        // other; each is this backend's own staging and ARM work for one job, minus
        // the first 1 s poll it includes, plus a 1 s provisioning poll and a 30 s
        // sleep before the status poll that sees the group done.
        let ops = (one - 1.0).max(0.0);
        let python_job = ops + 1.0 + 30.0;
        println!("jobs: {jobs} at once through one AciBackend, emulator instant mode");
        println!(
            "aci-worker: {:.1} s wall, {:.1} jobs/s, latency p50 {:.2} s p99 {:.2} s (of which the first poll is 1 s), peak memory {:.1} MiB",
            wall,
            jobs as f64 / wall,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            peak_kib as f64 / 1024.0
        );
        println!("one job alone: {one:.2} s (staging, PUT, polls, collect, DELETE, share cleanup)");
        println!(
            "Python ACI worker approach (computed): {:.1} s per job, {:.3} jobs/s, {:.0} s for {jobs} jobs",
            python_job,
            1.0 / python_job,
            python_job * jobs as f64
        );
        println!("speed-up in jobs/s: {:.0}x", (jobs as f64 / wall) / (1.0 / python_job));
    });
}
