//! The worker binary end to end: `aci-worker serve` as a child process, both steps
//! on ACI against the project's emulator in instant mode (a container group is done
//! as soon as it is created), tasks from a fresh RabbitMQ vhost, bundles served and
//! outputs accepted over plain HTTP by a small server in this process.
//!
//! Measures the worker's memory idle and with N runs in flight (default 200), tasks
//! per second from the first publish to the last final status, and per-task latency;
//! beside it the Python ACI worker's approach: its throughput computed from its
//! per-task costs (one task at a time, a fixed 30 s sleep per status poll) on this
//! stack's single-task time, and the idle memory of a Python Celery worker that
//! imports what it imports (`benches/python_worker.py`), measured on the same vhost.
//!
//! ```text
//! source <(scripts/dev-services env)
//! cargo bench -p aci-worker --bench worker [-- --tasks N] [--run-secs S]
//! ```
//!
//! `--run-secs S` keeps each container group running for S seconds in the
//! emulator's instant mode (default 0: done as soon as created), so that all N
//! tasks are in flight at once for the memory reading.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use azure_emulator::{ArmConfig, Emulator, FilesConfig};
use celery_amqp::codalab::{COMPUTE_WORKER_QUEUE, SUBMISSION_UPDATES, UPDATE_SUBMISSION};
use celery_amqp::{
    BrokerOptions, BrokerUrl, ConsumerConfig, Publisher, PublisherConfig, TaskConsumer, TaskMessage,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

/// How long the bench waits for anything before it fails as hung.
const PATIENCE: Duration = Duration::from_secs(600);
/// Settling time before an idle memory reading.
const SETTLE: Duration = Duration::from_secs(3);
/// Tasks run alone before the batch, for the single-task time.
const ALONE: usize = 3;
/// The Python ACI worker's sleep between status polls.
const PYTHON_POLL_SLEEP: f64 = 30.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks: usize = args
        .iter()
        .position(|a| a == "--tasks")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let run_secs: u64 = args
        .iter()
        .position(|a| a == "--run-secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(bench(tasks, Duration::from_secs(run_secs)));
}

// ------------------------------------------------------------------ processes

/// `VmRSS`, `VmHWM`, ... of a process, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The process and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for task in tasks.flatten() {
                let children = std::fs::read_to_string(task.path().join("children"));
                for child in children.unwrap_or_default().split_whitespace() {
                    if let Ok(c) = child.parse() {
                        all.push(c);
                    }
                }
            }
        }
        i += 1;
    }
    all
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / ticks
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What a [`Sampler`] saw.
struct Samples {
    /// Largest `VmRSS`, KiB.
    rss_kib: u64,
    /// Most threads at once.
    threads: u64,
    /// Most tasks running at once (`aci_worker_tasks_in_flight`).
    in_flight: f64,
    /// Most status updates waiting in the outbox (`aci_worker_outbox_pending`).
    outbox: f64,
    /// When the worker had taken `taken` tasks (in flight plus ended).
    all_taken: Option<Instant>,
    count: usize,
}

/// Samples a process's `VmRSS` and thread count, and the worker's task and outbox
/// gauges, every 100 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Samples>,
}

impl Sampler {
    fn start(pid: u32, addr: String, taken: f64) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Samples {
                rss_kib: 0,
                threads: 0,
                in_flight: 0.0,
                outbox: 0.0,
                all_taken: None,
                count: 0,
            };
            while !flag.load(Ordering::Relaxed) {
                if let Some(rss) = status_kib(pid, "VmRSS") {
                    seen.rss_kib = seen.rss_kib.max(rss);
                    seen.threads = seen.threads.max(status_kib(pid, "Threads").unwrap_or(0));
                    seen.count += 1;
                }
                if let Some((200, text)) = http_get(&addr, "/metrics") {
                    let in_flight = metric(&text, "aci_worker_tasks_in_flight", &[]);
                    let ended = metric(&text, "aci_worker_tasks_total", &[]);
                    seen.in_flight = seen.in_flight.max(in_flight);
                    seen.outbox = seen.outbox.max(metric(&text, "aci_worker_outbox_pending", &[]));
                    if seen.all_taken.is_none() && in_flight + ended >= taken {
                        seen.all_taken = Some(Instant::now());
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
}

/// Waits for a child to exit after SIGTERM; SIGKILL after `patience`.
fn terminate(child: &mut Child, patience: Duration) -> Option<i32> {
    signal(child.id(), "TERM");
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed on drop.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ broker

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("rabbitmqctl (scripts/dev-services up)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A vhost of this run where guest may do anything; deleted on drop.
struct Vhost(String);

impl Vhost {
    fn new() -> Vhost {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("bench-worker-{}-{nanos}", std::process::id());
        rabbitmqctl(&["add_vhost", &name]);
        let vhost = Vhost(name);
        rabbitmqctl(&["set_permissions", "-p", &vhost.0, "guest", ".*", ".*", ".*"]);
        vhost
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.0)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .stdin(Stdio::null())
            .output();
    }
}

fn check_update(task: &TaskMessage) -> Result<(), String> {
    match task.args.as_slice() {
        [_, Value::Object(_), ..] => Ok(()),
        _ => Err("expected [job_id, {status, extra}, secret]".into()),
    }
}

/// One `update_submission` as the site receives it.
struct Update {
    job: u64,
    status: String,
    traceback: Option<String>,
    at: Instant,
}

// ------------------------------------------------------------------ site

/// Bundles and uploads over plain HTTP, as signed blob URLs would serve them.
#[derive(Clone)]
struct Site {
    base: Arc<String>,
    scoring: Bytes,
    reference: Bytes,
    results: Bytes,
    gets: Arc<AtomicU64>,
    puts: Arc<AtomicU64>,
    put_bytes: Arc<AtomicU64>,
}

fn zip_of(entries: &[(&str, &str)]) -> Bytes {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, contents) in entries {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
            w.start_file(*name, options).unwrap();
            w.write_all(contents.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    Bytes::from(buf.into_inner())
}

const SCORE_SH: &str = "set -e\nref=$(cat \"$1/ref/answer.txt\")\nres=$(cat \"$1/res/answer.txt\")\n\
    [ \"$res\" = \"$ref\" ] && s=1.0 || s=0.0\necho \"correct: $s\" > \"$2/scores.txt\"\n";

impl Site {
    fn new(base: String) -> Site {
        Site {
            base: Arc::new(base),
            scoring: zip_of(&[
                ("metadata", "command: sh $program/score.sh $input $output\n"),
                ("score.sh", SCORE_SH),
            ]),
            reference: zip_of(&[("answer.txt", "42\n")]),
            results: zip_of(&[("answer.txt", "42\n")]),
            gets: Arc::default(),
            puts: Arc::default(),
            put_bytes: Arc::default(),
        }
    }

    /// `task_args` of job `job`'s scoring step, as the site sends them.
    fn task_args(&self, job: u64, secret: &str) -> Map<String, Value> {
        let base = &self.base;
        let out = |name: &str| json!(format!("{base}/out/{job}/{name}?sv=bench&sig=unsigned"));
        let Value::Object(args) = json!({
            "submission_id": job,
            "docker_image": "127.0.0.1:5000/aci-worker-test/busybox:latest",
            "ingestion_program_docker_image": "127.0.0.1:5000/aci-worker-test/busybox:latest",
            "bundle_url": format!("{base}/run/{job}?sv=bench&sig=unsigned"),
            "stdout_url": out("stdout.txt"),
            "stderr_url": out("stderr.txt"),
            "output_url": out("output.zip"),
            "private_output_url": out("private_output.zip"),
            "ingestion_program_output_url": out("ingestion_stdout.txt"),
            "ingestion_program_stderr_url": out("ingestion_stderr.txt"),
            "detailed_results_url": out("detailed_results.html"),
            "secret": secret,
            "execution_time_limit": 300,
            "predict": false,
        }) else {
            unreachable!()
        };
        args
    }

    fn router(self) -> Router {
        Router::new()
            .route("/run/{job}", get(run_txt))
            .route("/input/{job}", get(input_txt))
            .route("/bundles/{name}", get(bundle))
            .route("/out/{job}/{name}", put(upload))
            .layer(DefaultBodyLimit::disable())
            .with_state(self)
    }
}

/// `run.txt` of a scoring step, as the site writes it.
async fn run_txt(
    State(site): State<Site>,
    axum::extract::Path(job): axum::extract::Path<u64>,
) -> String {
    site.gets.fetch_add(1, Ordering::Relaxed);
    let base = &site.base;
    format!(
        "program: {base}/bundles/scoring_program.zip?sig=x\ninput: {base}/input/{job}?sig=x\n\
         stdout: {base}/out/{job}/stdout.txt?sig=x\nstderr: {base}/out/{job}/stderr.txt?sig=x\n\
         submitted-by: bench-{job}\nsubmitted-at: 2026-12-04T00:00:00+00:00\n\
         competition-submission: {job}\n"
    )
}

/// `input.txt`: the reference data and the prediction step's output.
async fn input_txt(
    State(site): State<Site>,
    axum::extract::Path(_job): axum::extract::Path<u64>,
) -> String {
    site.gets.fetch_add(1, Ordering::Relaxed);
    let base = &site.base;
    format!("ref: {base}/bundles/reference_data.zip?sig=x\nres: {base}/bundles/res.zip?sig=x\n")
}

async fn bundle(
    State(site): State<Site>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Bytes, StatusCode> {
    site.gets.fetch_add(1, Ordering::Relaxed);
    match name.as_str() {
        "scoring_program.zip" => Ok(site.scoring.clone()),
        "reference_data.zip" => Ok(site.reference.clone()),
        "res.zip" => Ok(site.results.clone()),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

async fn upload(State(site): State<Site>, body: Bytes) -> StatusCode {
    site.puts.fetch_add(1, Ordering::Relaxed);
    site.put_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    StatusCode::CREATED
}

// ------------------------------------------------------------------ worker

fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// `GET path` over HTTP/1.0: status and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((status, body))
}

/// The sum of a Prometheus metric's samples whose labels all match.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, rest) = series.split_once('{').unwrap_or((series, ""));
            let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (metric_name == name && all).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

// ------------------------------------------------------------------ the run

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Publishes one task; the instant just before publishing.
async fn publish(publisher: &Publisher, site: &Site, job: u64) -> Instant {
    let secret = format!("bench-secret-{job}");
    let args = site.task_args(job, &secret);
    let mut task = TaskMessage::new("compute_worker_run", vec![json!(job), Value::Object(args)]);
    task.priority = Some(2);
    let at = Instant::now();
    publisher.publish(&task, &[&secret]).await.expect("publishing a task");
    at
}

/// Waits until every job in `jobs` has a final status; job to (status, time), and
/// job to the time of its `running` status.
async fn finals(
    updates: &mut mpsc::UnboundedReceiver<Update>,
    jobs: &[u64],
    log: &Path,
) -> (HashMap<u64, (String, Instant)>, HashMap<u64, Instant>) {
    let mut done: HashMap<u64, (String, Instant)> = HashMap::new();
    let mut running = HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while jobs.iter().any(|j| !done.contains_key(j)) {
        let update = match tokio::time::timeout_at(deadline, updates.recv()).await {
            Ok(Some(update)) => update,
            _ => panic!(
                "gave up waiting: {} of {} tasks ended; worker log:\n{}",
                done.len(),
                jobs.len(),
                log_tail(log)
            ),
        };
        if update.status == "running" {
            running.entry(update.job).or_insert(update.at);
        }
        if update.status == "finished" || update.status == "failed" {
            if update.status == "failed" {
                eprintln!(
                    "job {} failed: {}",
                    update.job,
                    update.traceback.as_deref().unwrap_or("(no traceback)")
                );
            }
            let previous = done.insert(update.job, (update.status, update.at));
            assert!(previous.is_none(), "job {} got two final statuses", update.job);
        }
    }
    (done, running)
}

/// The idle memory of the Python Celery worker: (KiB of the process tree, processes).
fn python_idle(broker: &str, creds: &Path, files_endpoint: &str) -> (u64, usize) {
    let python = std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_worker.py");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(&python)
        .arg(&script)
        .args([broker, "bench-python-idle"])
        .arg(creds)
        .args([files_endpoint, azure_emulator::DEFAULT_ACCOUNT, azure_emulator::DEFAULT_KEY])
        .env_clear()
        .envs(["PATH", "HOME"].iter().filter_map(|k| Some((k, std::env::var_os(k)?))))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/dev-services up)"));
    let stdout = child.stdout.take().unwrap();
    let mut guard = Guard(Some(child));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(pid) = line.strip_prefix("READY ") {
                let _ = tx.send(pid.trim().parse::<u32>().ok());
            }
        }
    });
    let pid = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Some(pid)) => pid,
        _ => panic!("the Python worker did not start consuming:\n{}", log_tail(log.path())),
    };
    std::thread::sleep(SETTLE);
    let tree = process_tree(pid);
    let rss = tree.iter().filter_map(|p| status_kib(*p, "VmRSS")).sum();
    let mut child = guard.0.take().unwrap();
    terminate(&mut child, Duration::from_secs(30));
    (rss, tree.len())
}

async fn bench(tasks: usize, run: Duration) {
    let data = tempfile::Builder::new().prefix("aci-worker-bench-").tempdir().unwrap();
    let ticks = clock_ticks();

    // The emulator, instant mode, in this process.
    let mut arm = ArmConfig::new(data.path().join("tls"));
    arm.instant = true;
    arm.instant_run = run;
    arm.docker = None;
    let emulator = Emulator::start_with(
        FilesConfig::new(data.path().join("files")),
        "127.0.0.1:0".parse().unwrap(),
        Some((arm, "127.0.0.1:0".parse().unwrap())),
    )
    .await
    .unwrap();
    let creds = data.path().join("azure_creds");
    std::fs::write(&creds, emulator.azure_creds_json()).unwrap();

    // The site: bundles and uploads over HTTP, tasks and updates on a fresh vhost.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = Site::new(format!("http://{}", listener.local_addr().unwrap()));
    let router = site.clone().router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let vhost = Vhost::new();
    let broker = BrokerUrl::parse(&vhost.url()).unwrap();
    let mut updates_config =
        ConsumerConfig::new(BrokerOptions::new(broker.clone(), "bench site"), SUBMISSION_UPDATES)
            .accept(UPDATE_SUBMISSION, check_update);
    updates_config.prefetch = 500;
    updates_config.declare_arguments = Map::new();
    let mut consumer = TaskConsumer::connect(updates_config).await.expect("consuming updates");
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let delivery = consumer.next().await;
            let at = Instant::now();
            let args = &delivery.task.args;
            let update = Update {
                job: args[0].as_u64().unwrap_or(0),
                status: args[1]["status"].as_str().unwrap_or("?").to_owned(),
                traceback: args[1]["extra"]["traceback"].as_str().map(str::to_owned),
                at,
            };
            let _ = delivery.ack().await;
            if updates_tx.send(update).is_err() {
                return;
            }
        }
    });

    // The worker.
    let addr = free_addr();
    let log = data.path().join("worker.log");
    let mut settings = BTreeMap::new();
    for (key, value) in [
        ("BROKER_URL", vhost.url()),
        ("ACI_PRED", "true".into()),
        ("ACI_SCORE", "true".into()),
        ("AZURE_AUTH_LOCATION", creds.display().to_string()),
        ("AZURE_CA_FILE", emulator.ca_cert_pem_path().display().to_string()),
        ("AZURE_RESOURCE_GROUP", azure_emulator::DEFAULT_RESOURCE_GROUP.into()),
        ("AZURE_LOCATION", azure_emulator::DEFAULT_LOCATION.into()),
        ("AFS_NAME", azure_emulator::DEFAULT_ACCOUNT.into()),
        ("AFS_KEY", azure_emulator::DEFAULT_KEY.into()),
        ("AFS_ENDPOINT", emulator.files_endpoint()),
        ("WORKER_CONCURRENCY", tasks.max(1).to_string()),
        ("STATE_DIR", data.path().join("state").display().to_string()),
        ("SUBMISSION_TEMP_DIR", data.path().join("work").display().to_string()),
        ("HTTP_ADDR", addr.clone()),
        ("LOG_LEVEL", "warn".into()),
        ("WORKER_NAME", format!("bench-{}", std::process::id())),
        ("CODALAB_HOSTNAME", "bench".into()),
    ] {
        settings.insert(key, value);
    }
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aci-worker"))
        .arg("serve")
        .env_clear()
        .envs(["PATH", "HOME"].iter().filter_map(|k| Some((k, std::env::var_os(k)?))))
        .envs(&settings)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut worker = Guard(Some(child));
    let started = Instant::now();
    loop {
        let probe = addr.clone();
        let ready = tokio::task::spawn_blocking(move || http_get(&probe, "/readyz")).await.unwrap();
        if matches!(ready, Some((200, _))) {
            break;
        }
        if let Some(status) = worker.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("the worker exited ({status}):\n{}", log_tail(&log));
        }
        assert!(started.elapsed() < PATIENCE, "the worker never got ready:\n{}", log_tail(&log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let idle_kib = status_kib(pid, "VmRSS").unwrap();

    let mut tasks_config = PublisherConfig::to_queue(
        BrokerOptions::new(broker.clone(), "bench site tasks"),
        COMPUTE_WORKER_QUEUE,
    );
    tasks_config.exchange = String::new();
    tasks_config.queue = None;
    let publisher = Publisher::connect(tasks_config).await.expect("publishing tasks");

    // One task at a time, for the single-task time (the first also warms up).
    let mut alone = Vec::new();
    for job in 1..=ALONE as u64 {
        let at = publish(&publisher, &site, job).await;
        let (ended, _) = finals(&mut updates, &[job], &log).await;
        let (status, end) = &ended[&job];
        assert_eq!(status, "finished", "job {job}:\n{}", log_tail(&log));
        alone.push(end.duration_since(at).as_secs_f64());
    }
    let mut sorted_alone = alone.clone();
    sorted_alone.sort_by(f64::total_cmp);
    let one = percentile(&sorted_alone, 0.5);
    let after_alone_kib = status_kib(pid, "VmRSS").unwrap();

    // N at once.
    let jobs: Vec<u64> = (1000..1000 + tasks as u64).collect();
    let sampler = Sampler::start(pid, addr.clone(), (tasks + ALONE) as f64);
    let cpu_before = cpu_seconds(pid, ticks);
    let mut published = HashMap::new();
    for &job in &jobs {
        published.insert(job, publish(&publisher, &site, job).await);
    }
    let publish_s = published.values().max().unwrap().duration_since(published[&jobs[0]]);
    let (ended, running) = finals(&mut updates, &jobs, &log).await;
    let cpu = cpu_seconds(pid, ticks) - cpu_before;
    let seen = sampler.stop();
    let peak_sampled_kib = seen.rss_kib;
    let hwm_kib = status_kib(pid, "VmHWM").unwrap();
    let first = published.values().min().copied().unwrap();
    let last = ended.values().map(|(_, at)| *at).max().unwrap();
    let wall = last.duration_since(first).as_secs_f64();
    let since = |at: &Instant| at.duration_since(first).as_secs_f64();
    let last_running = running.values().map(since).fold(0.0, f64::max);
    let first_final = ended.values().map(|(_, at)| since(at)).fold(f64::INFINITY, f64::min);
    let all_taken = seen.all_taken.map_or(f64::NAN, |at| since(&at));
    let finished = ended.values().filter(|(s, _)| s == "finished").count();
    let failed = ended.len() - finished;
    let mut latencies: Vec<f64> =
        jobs.iter().map(|j| ended[j].1.duration_since(published[j]).as_secs_f64()).collect();
    latencies.sort_by(f64::total_cmp);
    tokio::time::sleep(SETTLE).await;
    let after_kib = status_kib(pid, "VmRSS").unwrap();
    let metrics = {
        let probe = addr.clone();
        tokio::task::spawn_blocking(move || http_get(&probe, "/metrics")).await.unwrap()
    };
    let metrics = metrics.map(|(_, body)| body).unwrap_or_default();
    let counted = |outcome: &str| {
        metric(&metrics, "aci_worker_tasks_total", &[("backend", "aci"), ("outcome", outcome)])
    };
    let (counted_finished, counted_failed) = (counted("finished") + 0.0, counted("failed") + 0.0);
    let mut child = worker.0.take().unwrap();
    let exit = terminate(&mut child, Duration::from_secs(60));
    let groups_left = emulator.container_groups().len();

    // The peer: the Python worker's idle memory on the same vhost.
    let files_endpoint = emulator.files_endpoint();
    let (python_kib, python_processes) = {
        let (url, creds) = (vhost.url(), creds.clone());
        tokio::task::spawn_blocking(move || python_idle(&url, &creds, &files_endpoint))
            .await
            .unwrap()
    };
    let arm_requests = emulator.arm_requests();
    let files_requests = emulator.requests_served();
    drop(vhost);
    emulator.shutdown().await;

    let python_task = one + PYTHON_POLL_SLEEP;
    println!();
    println!(
        "aci-worker serve (release), ACI_PRED/ACI_SCORE on the emulator's instant mode, \
         WORKER_CONCURRENCY={tasks}, each group running {} s",
        run.as_secs()
    );
    println!(
        "ready after {ready_after:.2} s; idle RSS {:.1} MiB ({} s after ready)",
        mib(idle_kib),
        SETTLE.as_secs()
    );
    println!(
        "one task alone (scoring step, publish to final status): {} s; median {one:.2} s; \
         RSS after them {:.1} MiB",
        alone.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(" / "),
        mib(after_alone_kib)
    );
    println!(
        "{tasks} at once: published in {:.2} s; first publish to last final status {wall:.2} s \
         = {:.1} tasks/s; latency p50 {:.2} s p99 {:.2} s max {:.2} s",
        publish_s.as_secs_f64(),
        tasks as f64 / wall,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    println!(
        "after the first publish: all {tasks} taken by the worker (/metrics) at {all_taken:.2} s, \
         last running status at {last_running:.2} s, first final status at {first_final:.2} s; \
         at most {} in flight, {} updates in the outbox",
        seen.in_flight, seen.outbox
    );
    println!(
        "memory: peak RSS sampled {:.1} MiB ({} samples, 100 ms; at most {} threads), \
         VmHWM {:.1} MiB, RSS {} s after the last task {:.1} MiB",
        mib(peak_sampled_kib),
        seen.count,
        seen.threads,
        mib(hwm_kib),
        SETTLE.as_secs(),
        mib(after_kib)
    );
    println!(
        "CPU: {cpu:.2} s user+system over the batch, {:.1} ms per task",
        cpu * 1000.0 / tasks as f64
    );
    println!(
        "statuses: {finished} finished, {failed} failed; /metrics: {counted_finished} finished, \
         {counted_failed} failed (the {ALONE} alone included); worker exit code {exit:?}; \
         container groups left {groups_left}"
    );
    println!(
        "site: {} GETs, {} PUTs ({} bytes); emulator: {arm_requests} ARM requests, \
         {files_requests} Files requests",
        site.gets.load(Ordering::Relaxed),
        site.puts.load(Ordering::Relaxed),
        site.put_bytes.load(Ordering::Relaxed),
    );
    println!(
        "Python Celery worker (solo pool, celery + azure-identity + azure-mgmt-containerinstance \
         + azure-storage-fileshare imported, clients built), idle: {:.1} MiB RSS over \
         {python_processes} process(es)",
        mib(python_kib)
    );
    println!();
    println!("| | tasks/s | per-task latency p50 / p99 | {tasks} tasks | idle RSS | peak RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| aci-worker, {tasks} in flight | {:.1} | {:.2} s / {:.2} s | {wall:.1} s | {:.1} MiB | {:.1} MiB |",
        tasks as f64 / wall,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        mib(idle_kib),
        mib(hwm_kib.max(peak_sampled_kib)),
    );
    println!(
        "| Python ACI worker approach (computed; idle memory measured) | {:.3} | {python_task:.1} s | {:.0} s | {:.1} MiB | (not run) |",
        1.0 / python_task,
        python_task * tasks as f64,
        mib(python_kib),
    );
    println!();
    println!("speed-up in tasks/s: {:.0}x", (tasks as f64 / wall) * python_task);

    assert_eq!(failed, 0, "every task must finish");
    assert_eq!(finished, tasks);
    assert_eq!(exit, Some(0), "the worker stops cleanly:\n{}", log_tail(&log));
}
