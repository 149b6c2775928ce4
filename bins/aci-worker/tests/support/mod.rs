//! Helpers for the end-to-end tests: the real `aci-worker` binary as a child
//! process, one RabbitMQ virtual host per test, the CodaLab site simulator
//! (`tests/python/site.py`, real Celery and the official Azure SDK against
//! Azurite), and bundles written as folders.
//!
//! Nothing here waits for a fixed time and then asserts: every wait polls for
//! what it expects and gives up only after [`PATIENCE`], a guard against hangs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
pub const WORKER: &str = env!("CARGO_BIN_EXE_aci-worker");

/// How long a wait may take before the test fails as hung.
pub const PATIENCE: Duration = Duration::from_secs(240);

const POLL: Duration = Duration::from_millis(200);

pub fn python() -> PathBuf {
    std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".into())
        .into()
}

pub fn busybox() -> String {
    std::env::var("ACI_TEST_BUSYBOX")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/busybox:latest".into())
}

pub fn python_image() -> String {
    std::env::var("ACI_TEST_PYTHON")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/python:bookworm".into())
}

fn site_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/site.py")
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("e2e-{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`].
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Runs `rabbitmqctl`; its stdout. Fails the test when it fails.
pub fn rabbitmqctl(args: &[&str]) -> String {
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Percent-encodes a vhost name for an AMQP URL.
fn encode_vhost(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An AMQP URL on the local broker.
pub fn amqp_url(user: &str, password: &str, vhost: &str) -> String {
    format!("amqp://{user}:{password}@127.0.0.1:5672/{}", encode_vhost(vhost))
}

/// A virtual host of this test, where guest may do anything; deleted on drop
/// (with its queues and whatever they hold).
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
    }

    /// guest's URL for this vhost.
    pub fn url(&self) -> String {
        amqp_url("guest", "guest", &self.name)
    }

    /// Messages ready and unacknowledged in a queue of this vhost (`None`: no
    /// such queue).
    pub fn queue_counts(&self, queue: &str) -> Option<(u64, u64)> {
        queue_counts(&self.name, queue)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// Messages ready and unacknowledged in a queue (`None`: no such queue).
pub fn queue_counts(vhost: &str, queue: &str) -> Option<(u64, u64)> {
    let out = rabbitmqctl(&[
        "list_queues",
        "-q",
        "-p",
        vhost,
        "--formatter",
        "json",
        "name",
        "messages_ready",
        "messages_unacknowledged",
    ]);
    let queues: Vec<Value> = serde_json::from_str(out.trim()).unwrap_or_default();
    queues.iter().find(|q| q["name"] == queue).map(|q| {
        (
            q["messages_ready"].as_u64().unwrap_or(0),
            q["messages_unacknowledged"].as_u64().unwrap_or(0),
        )
    })
}

/// A broker user of this test; deleted on drop.
pub struct User {
    pub name: String,
    pub password: String,
}

impl User {
    pub fn new(prefix: &str, password: &str) -> Self {
        let name = unique(prefix);
        rabbitmqctl(&["add_user", &name, password]);
        User { name, password: password.to_owned() }
    }

    pub fn permit(&self, vhost: &str, configure: &str, write: &str, read: &str) {
        rabbitmqctl(&["set_permissions", "-p", vhost, &self.name, configure, write, read]);
    }

    pub fn url(&self, vhost: &str) -> String {
        amqp_url(&self.name, &self.password, vhost)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_user", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// A free TCP address on loopback for `HTTP_ADDR`.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET path` over plain HTTP/1.0: status and body, or `None` when nothing
/// answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((status, body))
}

/// The value of a Prometheus sample whose name and labels all match, summed
/// over the samples that match.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric_name != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

// ------------------------------------------------------------------ worker

/// Folders that outlive one worker process: a restart reuses them.
pub struct Dirs {
    root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Dirs { root: tempfile::Builder::new().prefix("aci-worker-e2e-").tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }
}

/// Settings every test worker gets: its own state and work folders, health
/// endpoint on a free port, a unique worker name.
pub fn settings(dirs: &Dirs, broker_url: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("BROKER_URL".into(), broker_url.to_owned());
    env.insert("STATE_DIR".into(), dirs.state().display().to_string());
    env.insert("SUBMISSION_TEMP_DIR".into(), dirs.work().display().to_string());
    env.insert("HTTP_ADDR".into(), free_addr());
    env.insert("WORKER_NAME".into(), unique("worker"));
    env.insert("CODALAB_HOSTNAME".into(), "e2e-host".into());
    env.insert("LOG_LEVEL".into(), "info,aci_worker=debug".into());
    env
}

/// A variable that `scripts/dev-services env` exports.
pub fn service_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: source <(scripts/dev-services env)"))
}

/// [`settings`] plus both steps on Azure Container Instances: the project's
/// emulator that `scripts/dev-services up` runs (Entra ID and ARM over TLS with
/// its own CA, Azure Files on disk; its groups run on the local Docker engine).
pub fn aci_settings(dirs: &Dirs, broker_url: &str) -> BTreeMap<String, String> {
    let mut env = settings(dirs, broker_url);
    for (key, value) in [
        ("ACI_PRED", "true".to_owned()),
        ("ACI_SCORE", "true".to_owned()),
        ("AZURE_AUTH_LOCATION", service_env("ACI_TEST_AZURE_AUTH_LOCATION")),
        ("AZURE_CA_FILE", service_env("ACI_TEST_ARM_CA")),
        ("AZURE_RESOURCE_GROUP", service_env("ACI_TEST_RESOURCE_GROUP")),
        ("AZURE_LOCATION", "westeurope".to_owned()),
        ("AFS_NAME", service_env("ACI_TEST_AFS_ACCOUNT")),
        ("AFS_KEY", service_env("ACI_TEST_AFS_KEY")),
        ("AFS_ENDPOINT", service_env("ACI_TEST_AFS_ENDPOINT")),
    ] {
        env.insert(key.into(), value);
    }
    env
}

/// The worker binary running as a child process; its stderr goes to a log file.
/// Killed on drop; its log is printed when the test is failing.
pub struct Worker {
    child: Option<Child>,
    pub log: PathBuf,
    pub addr: String,
    pub name: String,
}

impl Worker {
    /// Starts `aci-worker serve` with exactly these settings (and PATH, HOME and
    /// DOCKER_HOST from the test's environment).
    pub fn start(settings: &BTreeMap<String, String>, log: &Path) -> Worker {
        Worker::command(&["serve"], settings, log)
    }

    /// Starts `aci-worker ARGS` with these settings.
    pub fn command(args: &[&str], settings: &BTreeMap<String, String>, log: &Path) -> Worker {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut command = Command::new(WORKER);
        command.args(args).env_clear();
        for key in ["PATH", "HOME", "DOCKER_HOST"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(settings);
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Worker {
            child: Some(child),
            log: log.to_owned(),
            addr: settings.get("HTTP_ADDR").cloned().unwrap_or_default(),
            name: settings.get("WORKER_NAME").cloned().unwrap_or_default(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` says ready (connected to its queue).
    pub fn wait_ready(&self) {
        wait_until("the worker to be ready", || {
            matches!(http_get(&self.addr, "/readyz"), Some((200, _))).then_some(())
        });
    }

    /// `GET path` on the worker's health and metrics address.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path).unwrap_or_else(|| panic!("nothing answers on {}", self.addr))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Kills it with SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self) -> i32 {
        let child = self.child.as_mut().expect("running");
        let status = wait_until("the worker to exit", || child.try_wait().unwrap());
        self.child = None;
        status.code().unwrap_or(-1)
    }

    /// SIGTERM, then the exit code.
    pub fn stop(&mut self) -> i32 {
        self.terminate();
        self.wait()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(80).collect();
            eprintln!("--- worker log {} (last lines) ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Containers a worker left on the Docker engine (by its label).
pub fn docker_containers_of(worker_name: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.codalab.aci-worker.worker={worker_name}"),
        ])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// Removes (forcibly) the containers a worker left on the Docker engine.
pub fn remove_containers_of(worker_name: &str) {
    let containers = docker_containers_of(worker_name);
    if !containers.is_empty() {
        let _ = Command::new("docker").args(["rm", "-f"]).args(&containers).output();
    }
}

// ------------------------------------------------------------------ bundles

/// Writes a bundle folder of `(name, contents)` files under `root`.
pub fn bundle(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    for (file, contents) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    dir
}

/// The scoring program of the busybox competition: `correct: 1.0` when the
/// submission's `answer.txt` equals the reference's.
const SCORE_SH: &str = r#"set -e
ref=$(cat "$1/ref/answer.txt")
res=$(cat "$1/res/answer.txt" 2>/dev/null || echo missing)
if [ "$res" = "$ref" ]; then score=1.0; else score=0.0; fi
echo "correct: $score" > "$2/scores.txt"
echo "<p>answer $res, expected $ref</p>" > "$2/detailed_results.html"
echo "scored $res against $ref"
"#;

/// A competition whose programs run on busybox: input `question.txt`, reference
/// `answer.txt` (42), a scoring program comparing answers. The JSON of the plan's
/// `competition`.
pub fn busybox_competition(root: &Path, time_limit: u64) -> Value {
    let scoring = bundle(
        root,
        "scoring_program",
        &[("metadata", "command: sh $program/score.sh $input $output\n"), ("score.sh", SCORE_SH)],
    );
    let reference = bundle(root, "reference_data", &[("answer.txt", "42\n")]);
    let input = bundle(root, "input_data", &[("question.txt", "6 x 7\n")]);
    json!({
        "scoring_program": scoring,
        "reference_data": reference,
        "input_data": input,
        "docker_image": busybox(),
        "execution_time_limit": time_limit,
    })
}

/// A code submission for the busybox competition: runs `script` (sh), then
/// answers 42.
pub fn code_submission(root: &Path, name: &str, script: &str) -> Value {
    let run = format!("{script}\necho 42 > \"$2/answer.txt\"\necho \"answered\"\n");
    let dir = bundle(
        root,
        name,
        &[("metadata", "command: sh $program/run.sh $input $output\n"), ("run.sh", &run)],
    );
    json!({"name": name, "bundle": dir})
}

/// A code submission that starts, writes `started` in its temp folder, and
/// waits until the test puts a `go` file there ([`release`]); then answers 42.
pub fn gated_submission(root: &Path, name: &str) -> Value {
    let run = "touch \"$3/started\"\nwhile [ ! -e \"$3/go\" ]; do sleep 1; done\n\
               echo 42 > \"$2/answer.txt\"\necho released\n";
    let dir = bundle(
        root,
        name,
        &[("metadata", "command: sh $program/run.sh $input $output $tmp\n"), ("run.sh", run)],
    );
    json!({"name": name, "bundle": dir})
}

/// The temp folders of the runs in a work folder (`jobs/<job>/run/temp`).
fn run_temps(dirs: &Dirs) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dirs.work().join("jobs")) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("run/temp"))
        .filter(|p| p.is_dir())
        .collect()
}

/// How many gated programs have started and wait for [`release`].
pub fn started(dirs: &Dirs) -> usize {
    run_temps(dirs).iter().filter(|t| t.join("started").exists() && !t.join("go").exists()).count()
}

/// Waits until `count` gated programs wait.
pub fn wait_started(dirs: &Dirs, count: usize) {
    wait_until(&format!("{count} gated programs to start"), || {
        (started(dirs) >= count).then_some(())
    });
}

/// Lets every gated program that has started go on.
pub fn release(dirs: &Dirs) {
    for temp in run_temps(dirs) {
        if temp.join("started").exists() {
            let _ = std::fs::write(temp.join("go"), b"go");
        }
    }
}

/// Files waiting in the worker's outbox.
pub fn outbox_len(dirs: &Dirs) -> usize {
    std::fs::read_dir(dirs.state().join("outbox")).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// A result submission: its `answer.txt`.
pub fn result_submission(root: &Path, name: &str, answer: &str) -> Value {
    let dir = bundle(root, name, &[("answer.txt", &format!("{answer}\n"))]);
    json!({"name": name, "bundle": dir})
}

// ------------------------------------------------------------------ site

/// Where the site simulator sends and reads.
pub struct SiteOptions {
    /// The main vhost's URL: update_submission is consumed there.
    pub broker: String,
    /// Where compute_worker_run goes, when not the main vhost.
    pub task_broker: Option<String>,
    pub updates_queue: Option<String>,
    /// Delete the updates queue and exchange when the site stops (a test's own
    /// queue on the shared vhost `/`).
    pub delete_updates_queue: bool,
    pub plan: Value,
}

impl SiteOptions {
    pub fn new(broker: &str, plan: Value) -> Self {
        SiteOptions {
            broker: broker.to_owned(),
            task_broker: None,
            updates_queue: None,
            delete_updates_queue: false,
            plan,
        }
    }
}

/// The CodaLab site simulator (`tests/python/site.py`) as a child process.
pub struct Site {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Site {
    /// Starts the site, which stages the bundles and dispatches every
    /// submission once its Celery worker consumes.
    pub fn start(options: SiteOptions) -> Site {
        let dir = tempfile::Builder::new().prefix("aci-worker-site-").tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        std::fs::write(&plan, serde_json::to_vec_pretty(&options.plan).unwrap()).unwrap();
        let mut command = Command::new(python());
        command
            .arg(site_script())
            .args(["--broker", &options.broker, "--plan"])
            .arg(&plan)
            .arg("--records")
            .arg(dir.path().join("records.jsonl"))
            .args(["--summary-json", "--name", &unique("site").replace("e2e-", "")]);
        if let Some(task_broker) = &options.task_broker {
            command.args(["--task-broker", task_broker]);
        }
        if let Some(queue) = &options.updates_queue {
            command.args(["--updates-queue", queue]);
        }
        if options.delete_updates_queue {
            command.arg("--delete-updates-queue");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/dev-services up)", python().display()));
        let mut site = Site { child: Some(child), dir };
        let count = options.plan["submissions"].as_array().map_or(0, Vec::len);
        site.wait_for("the site to dispatch every submission", |records| {
            records.iter().filter(|r| r.get("dispatched").is_some()).count() >= count
        });
        site.check_alive();
        site
    }

    fn check_alive(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("the site simulator exited ({status}):\n{}", self.stderr());
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every line recorded so far.
    pub fn records(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("records.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Waits until the records satisfy `check`; the records then.
    pub fn wait_for(&mut self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let records = self.records();
            if check(&records) {
                return records;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("the site simulator exited ({status}) before {what}:\n{}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; the site recorded:\n{}",
                records.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until every submission has ended (scored, or its prediction failed).
    pub fn wait_done(&mut self) -> Vec<Value> {
        self.wait_for("every submission to end", |r| r.iter().any(|r| r["done"] == true))
    }

    /// Waits until `job_id`'s step reports `status`.
    pub fn wait_status(&mut self, submission: &str, status: &str) -> Value {
        let records = self.wait_for(&format!("{submission} to be {status}"), |records| {
            records.iter().any(|r| r["submission"] == submission && r["status"] == status)
        });
        records
            .into_iter()
            .find(|r| r["submission"] == submission && r["status"] == status)
            .unwrap()
    }

    /// Stops the site (SIGTERM, Celery's warm shutdown); its summary.
    pub fn stop(mut self) -> Value {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let status = wait_until("the site simulator to stop", || child.try_wait().unwrap());
        let stdout = std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default();
        assert!(status.success(), "site simulator: {status}\n{stdout}\n{}", self.stderr());
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a summary line");
        serde_json::from_str::<Value>(line).unwrap()["summary"].clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ records

/// Status updates (records with a `status`).
pub fn statuses(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r.get("status").is_some()).collect()
}

/// Dispatched jobs: job id to (submission, step).
pub fn dispatched(records: &[Value]) -> BTreeMap<u64, (String, String)> {
    records
        .iter()
        .filter_map(|r| r.get("dispatched"))
        .map(|d| {
            (
                d["job_id"].as_u64().unwrap(),
                (
                    d["submission"].as_str().unwrap().to_owned(),
                    d["step"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// The statuses a job reported, in order.
pub fn job_statuses(records: &[Value], job_id: u64) -> Vec<String> {
    statuses(records)
        .into_iter()
        .filter(|r| r["job_id"] == job_id)
        .map(|r| r["status"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Every dispatched job reported exactly one final status (and nothing after
/// it), with the right secret; every submission ended exactly once; no update
/// named an unknown job.
pub fn assert_exactly_once(records: &[Value]) {
    let all = statuses(records);
    assert!(all.iter().all(|r| r.get("unknown_job").is_none()), "unknown job ids: {all:?}");
    assert!(all.iter().all(|r| r["secret_ok"] == true), "a wrong secret: {all:?}");
    for (job, (submission, step)) in dispatched(records) {
        let seen = job_statuses(records, job);
        let finals: Vec<&String> =
            seen.iter().filter(|s| *s == "finished" || *s == "failed").collect();
        assert_eq!(finals.len(), 1, "job {job} ({submission} {step}): statuses {seen:?}");
        assert!(
            matches!(seen.last().map(String::as_str), Some("finished" | "failed")),
            "job {job} ({submission} {step}): a status after the final one: {seen:?}"
        );
    }
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for r in all.iter().filter(|r| r["final"] == true) {
        *ends.entry(r["submission"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let submissions: std::collections::BTreeSet<String> =
        dispatched(records).into_values().map(|(s, _)| s).collect();
    for submission in submissions {
        assert_eq!(ends.get(&submission), Some(&1), "{submission} ended {ends:?}");
    }
}

/// The one final record of a submission.
pub fn final_of<'a>(records: &'a [Value], submission: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["submission"] == submission && r["final"] == true)
        .unwrap_or_else(|| panic!("{submission} has no final status"))
}

// ------------------------------------------------------------------ broker

/// The broker's application stopped (`rabbitmqctl stop_app`); started again by
/// [`BrokerStopped::start`] or on drop, so that a failing test leaves it running.
pub struct BrokerStopped {
    running: bool,
}

impl BrokerStopped {
    pub fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped { running: false }
    }

    pub fn start(&mut self) {
        if !self.running {
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
            self.running = true;
        }
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        if !self.running {
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
            let _ = Command::new("rabbitmqctl").arg("await_startup").status();
        }
    }
}

/// Settings of the running broker's `rabbit` application changed with
/// `rabbitmqctl eval`; the previous values come back on drop.
pub struct BrokerSettings {
    previous: Vec<(String, String)>,
}

impl BrokerSettings {
    /// Sets `key` to an Erlang term (an integer here) for new channels.
    pub fn set(values: &[(&str, &str)]) -> Self {
        let mut previous = Vec::new();
        for (key, value) in values {
            let old = rabbitmqctl(&["eval", &format!("application:get_env(rabbit, {key}).")]);
            previous.push(((*key).to_owned(), old.trim().to_owned()));
            rabbitmqctl(&["eval", &format!("application:set_env(rabbit, {key}, {value}).")]);
        }
        BrokerSettings { previous }
    }
}

impl Drop for BrokerSettings {
    fn drop(&mut self) {
        for (key, old) in &self.previous {
            let restore = match old.strip_prefix("{ok,").and_then(|v| v.strip_suffix('}')) {
                Some(value) => format!("application:set_env(rabbit, {key}, {value})."),
                None => format!("application:unset_env(rabbit, {key})."),
            };
            let _ = Command::new("rabbitmqctl").args(["eval", &restore]).output();
        }
    }
}

// ------------------------------------------------------------------ secrets

/// The client secret of an `azure_creds` file.
pub fn azure_client_secret(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let creds: Value = serde_json::from_str(&text).unwrap();
    creds["clientSecret"].as_str().unwrap().to_owned()
}

/// The `sig` values of a SAS URL, percent-decoded.
pub fn sas_signatures(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else { return Vec::new() };
    query.split('&').filter_map(|pair| pair.strip_prefix("sig=")).map(percent_decode).collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The form a value takes in a URL query (unreserved characters kept).
pub fn percent_encode(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}
