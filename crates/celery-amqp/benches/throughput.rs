//! Decode-and-ack and confirmed-publish throughput of this crate, side by side with
//! Python kombu (the client under Celery) on the same broker, in the same run.
//!
//! `cargo bench -p celery-amqp --bench throughput` with the services of
//! `scripts/dev-services up`. Environment: `ACI_BENCH_CONSUME` (default 100000
//! messages), `ACI_BENCH_PUBLISH` (default 10000), `AMQP_ADDR`,
//! `ACI_TEST_VENV_PYTHON`.

use std::process::Command;
use std::time::{Duration, Instant};

use celery_amqp::codalab::{self, COMPUTE_WORKER_RUN};
use celery_amqp::{
    BrokerOptions, BrokerUrl, ConsumerConfig, Publisher, PublisherConfig, TaskConsumer, TaskMessage,
};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

struct Run {
    side: &'static str,
    op: &'static str,
    count: usize,
    wall: f64,
    cpu: f64,
}

impl Run {
    fn from_kombu(v: &Value) -> Self {
        Run {
            side: "kombu (Python)",
            op: if v["op"] == "publish" { "confirmed publish" } else { "decode + ack" },
            count: v["count"].as_u64().unwrap() as usize,
            wall: v["seconds"].as_f64().unwrap(),
            cpu: v["cpu_seconds"].as_f64().unwrap(),
        }
    }

    fn print(&self) {
        println!(
            "{:<18} {:<17} {:>7} msgs {:>9.0} msg/s {:>8.1} µs CPU/msg",
            self.op,
            self.side,
            self.count,
            self.count as f64 / self.wall,
            self.cpu * 1e6 / self.count as f64
        );
    }
}

fn kombu(args: &[&str]) -> Value {
    let python = env_or("ACI_TEST_VENV_PYTHON", "/var/lib/aci-worker-dev/venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kombu_bench.py");
    let out = Command::new(python).arg(script).args(args).output().expect("python");
    assert!(out.status.success(), "kombu_bench: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Fills a queue with `count` small `compute_worker_run` messages as Celery
/// encodes them (protocol 2), waiting for the confirmations only at the end.
async fn fill(conn: &Connection, queue: &str, count: usize) {
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::LongInt(2));
    channel.queue_declare(queue.into(), options, args).await.unwrap();
    for i in 0..count {
        let task =
            TaskMessage::new(COMPUTE_WORKER_RUN, vec![json!(i), json!({"submission_id": i})]);
        let encoded = task.encode(2, "bench", &[]);
        let props = encoded.basic_properties();
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &encoded.body,
                props,
            )
            .await
            .unwrap();
    }
    let returned = channel.wait_for_confirms().await.unwrap();
    assert!(returned.is_empty(), "every message was routed");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let declared =
        channel.queue_declare(queue.into(), passive, FieldTable::default()).await.unwrap();
    assert_eq!(declared.message_count() as usize, count);
}

async fn delete(conn: &Connection, queue: &str) {
    let channel = conn.create_channel().await.unwrap();
    let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
}

fn main() {
    let consume_n: usize = env_or("ACI_BENCH_CONSUME", "100000").parse().unwrap();
    let publish_n: usize = env_or("ACI_BENCH_PUBLISH", "10000").parse().unwrap();
    let url = env_or("AMQP_ADDR", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let kombu_url = url.replace("/%2f", "//");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let broker = BrokerOptions::new(BrokerUrl::parse(&url).unwrap(), "bench");
    let pid = std::process::id();
    let (ours_q, theirs_q) =
        (format!("bench-consume-rust-{pid}"), format!("bench-consume-kombu-{pid}"));
    let (ours_p, theirs_p) =
        (format!("bench-publish-rust-{pid}"), format!("bench-publish-kombu-{pid}"));
    let mut runs = Vec::new();

    rt.block_on(async {
        let conn = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
        fill(&conn, &ours_q, consume_n).await;
        fill(&conn, &theirs_q, consume_n).await;

        let mut config = ConsumerConfig::new(broker.clone(), ours_q.as_str())
            .accept(COMPUTE_WORKER_RUN, codalab::check_compute_worker_run);
        config.prefetch = 100;
        let mut consumer = TaskConsumer::connect(config).await.unwrap();
        let first = consumer.next().await;
        let (wall0, cpu0) = (Instant::now(), cpu_time());
        first.ack().await.unwrap();
        for _ in 1..consume_n {
            consumer.next().await.ack().await.unwrap();
        }
        runs.push(Run {
            side: "celery-amqp (Rust)",
            op: "decode + ack",
            count: consume_n,
            wall: wall0.elapsed().as_secs_f64(),
            cpu: (cpu_time() - cpu0).as_secs_f64(),
        });
        consumer.close().await;
        runs.push(Run::from_kombu(&kombu(&[
            "consume",
            "--broker",
            &kombu_url,
            "--queue",
            &theirs_q,
            "--count",
            &consume_n.to_string(),
            "--prefetch",
            "100",
        ])));

        let mut config = PublisherConfig::to_queue(broker.clone(), &ours_p);
        config.exchange = String::new();
        let publisher = Publisher::connect(config).await.unwrap();
        let tasks: Vec<TaskMessage> = (0..publish_n)
            .map(|i| {
                TaskMessage::new(COMPUTE_WORKER_RUN, vec![json!(i), json!({"submission_id": i})])
            })
            .collect();
        let channel = conn.create_channel().await.unwrap();
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        channel
            .queue_declare(ours_p.as_str().into(), durable, FieldTable::default())
            .await
            .unwrap();
        let (wall0, cpu0) = (Instant::now(), cpu_time());
        for task in &tasks {
            publisher.publish(task, &[]).await.unwrap();
        }
        runs.push(Run {
            side: "celery-amqp (Rust)",
            op: "confirmed publish",
            count: publish_n,
            wall: wall0.elapsed().as_secs_f64(),
            cpu: (cpu_time() - cpu0).as_secs_f64(),
        });
        publisher.close().await;
        runs.push(Run::from_kombu(&kombu(&[
            "publish",
            "--broker",
            &kombu_url,
            "--queue",
            &theirs_p,
            "--count",
            &publish_n.to_string(),
            "--size",
            "400",
        ])));
        for q in [&ours_q, &theirs_q, &ours_p, &theirs_p] {
            delete(&conn, q).await;
        }
    });
    println!("AMQP throughput, one broker on loopback, one connection each");
    for run in &runs {
        run.print();
    }
}
