//! Helpers for the tests against the RabbitMQ that `scripts/dev-services up`
//! starts, with real Python Celery from its virtualenv as the peer.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use celery_amqp::{BrokerOptions, BrokerUrl, ConsumerConfig, Delivery, TaskConsumer, codalab};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

pub fn amqp_url() -> String {
    std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn broker() -> BrokerOptions {
    BrokerOptions::new(BrokerUrl::parse(&amqp_url()).unwrap(), "celery-amqp-tests")
}

pub fn python() -> PathBuf {
    std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".into())
        .into()
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test-{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Runs a Python peer script to completion and returns its JSON output line.
pub fn run_python(script_name: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(script(script_name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/dev-services up)", python().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script_name} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line");
    serde_json::from_str(line).unwrap()
}

pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub async fn raw_connection() -> Connection {
    Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap()
}

/// Declares a durable queue with arguments, as the site would.
pub async fn declare_queue(conn: &Connection, queue: &str, args: &[(&str, AMQPValue)]) {
    let channel = conn.create_channel().await.unwrap();
    let mut table = FieldTable::default();
    for (k, v) in args {
        table.insert((*k).into(), v.clone());
    }
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.into(), options, table).await.unwrap();
}

pub async fn queue_length(conn: &Connection, queue: &str) -> u32 {
    let channel = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

pub async fn delete_queue(conn: &Connection, queue: &str) {
    let channel = conn.create_channel().await.unwrap();
    let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
}

/// Publishes raw bytes to a queue through the default exchange.
pub async fn publish_raw(conn: &Connection, queue: &str, body: &[u8], props: BasicProperties) {
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, props)
        .await
        .unwrap()
        .await
        .unwrap();
}

pub fn consumer_config(queue: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(broker(), queue)
        .accept(codalab::COMPUTE_WORKER_RUN, codalab::check_compute_worker_run);
    config.reconnect_initial = Duration::from_millis(200);
    config.reconnect_max = Duration::from_secs(2);
    config
}

pub async fn consumer(queue: &str) -> TaskConsumer {
    TaskConsumer::connect(consumer_config(queue))
        .await
        .expect("RabbitMQ must run: scripts/dev-services up")
}

/// The next delivery, failing the test instead of waiting forever.
pub async fn next(consumer: &mut TaskConsumer) -> Delivery {
    tokio::time::timeout(Duration::from_secs(120), consumer.next())
        .await
        .expect("no delivery in time")
}

/// The broker URL as kombu writes the default virtual host.
pub fn kombu_url() -> String {
    amqp_url().replace("/%2f", "//").replace("/%2F", "//")
}

/// A Python Celery worker playing the CodaLab site: it runs
/// `apps.web.tasks.update_submission` and records each call in a file.
pub struct SiteWorker {
    child: std::process::Child,
    pub out: tempfile::NamedTempFile,
}

impl SiteWorker {
    pub async fn start(broker_url: &str, queue: &str) -> Self {
        let out = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(python())
            .arg(script("site_worker.py"))
            .args(["--broker", broker_url, "--queue", queue, "--exchange", queue, "--out"])
            .arg(out.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let worker = SiteWorker { child, out };
        worker.wait_for(|v| v["ready"] == Value::Bool(true)).await;
        worker
    }

    pub fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.out.path()).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Waits until a recorded line matches.
    pub async fn wait_for(&self, matches: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            if let Some(v) = self.records().into_iter().find(|v| matches(v)) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the site worker never recorded the expected line: {:?}", self.records());
    }
}

impl Drop for SiteWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
