//! `amqps` against the TLS listener of the RabbitMQ that `scripts/dev-services up`
//! starts (127.0.0.1:5671, with a certificate for `localhost` and `127.0.0.1`
//! issued by a test CA the script makes).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use celery_amqp::{
    BrokerOptions, BrokerUrl, ConsumerConfig, Error, Publisher, PublisherConfig, TaskConsumer,
    TaskMessage, codalab, error_chain,
};
use common::{next, raw_connection, unique};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use serde_json::json;

fn amqps_url() -> String {
    std::env::var("ACI_TEST_AMQPS_URL")
        .unwrap_or_else(|_| "amqps://guest:guest@localhost:5671/%2f".into())
}

fn test_ca() -> PathBuf {
    std::env::var("ACI_TEST_AMQPS_CA")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/tls/ca.pem".into())
        .into()
}

fn tls_broker(ca_file: Option<PathBuf>) -> BrokerOptions {
    let url = BrokerUrl::parse(&amqps_url()).unwrap();
    assert!(url.tls, "{} is not an amqps URL", amqps_url());
    BrokerOptions { url, ca_file, connection_name: "celery-amqp-tls-tests".into() }
}

fn consumer_config(broker: BrokerOptions, queue: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(broker, queue)
        .accept(codalab::COMPUTE_WORKER_RUN, codalab::check_compute_worker_run);
    // A queue left behind by a failed run goes away on its own.
    config.declare_arguments.insert("x-expires".into(), json!(600_000));
    config.reconnect_initial = Duration::from_millis(200);
    config.reconnect_max = Duration::from_secs(2);
    config
}

/// The error of a connection attempt that must fail.
fn refused<T>(result: celery_amqp::Result<T>) -> Error {
    match result {
        Ok(_) => panic!("connecting to {} succeeded", amqps_url()),
        Err(e) => e,
    }
}

/// Deletes the queue and the exchange named like it (as `PublisherConfig::to_queue`
/// declares them), over the plain listener.
async fn delete_queue_and_exchange(queue: &str) {
    let conn = raw_connection().await;
    let channel = conn.create_channel().await.unwrap();
    channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await.unwrap();
    channel.exchange_delete(queue.into(), ExchangeDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test]
async fn amqps_with_the_test_ca_publishes_and_consumes() {
    let queue = unique("tls");
    let broker = tls_broker(Some(test_ca()));
    let mut consumer =
        TaskConsumer::connect(consumer_config(broker.clone(), &queue)).await.unwrap_or_else(|e| {
            panic!("consumer over amqps: {} (run scripts/dev-services up)", error_chain(&e))
        });
    let publisher = Publisher::connect(PublisherConfig::to_queue(broker, &queue))
        .await
        .unwrap_or_else(|e| panic!("publisher over amqps: {}", error_chain(&e)));

    let task = TaskMessage::new(codalab::COMPUTE_WORKER_RUN, vec![json!(1), json!({})]);
    publisher.publish(&task, &[]).await.unwrap_or_else(|e| panic!("publish: {}", error_chain(&e)));
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.task.id, task.id);
    assert_eq!(delivery.task.name, codalab::COMPUTE_WORKER_RUN);
    assert_eq!(delivery.task.args, vec![json!(1), json!({})]);
    delivery.ack().await.unwrap();

    publisher.close().await;
    consumer.close().await;
    delete_queue_and_exchange(&queue).await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    // Without the test CA only the system's roots count, and none of them
    // issued the broker's certificate. Nothing is declared: the handshake fails.
    let queue = unique("tls-untrusted");
    let consumer_error =
        refused(TaskConsumer::connect(consumer_config(tls_broker(None), &queue)).await);
    let publisher_error =
        refused(Publisher::connect(PublisherConfig::to_queue(tls_broker(None), &queue)).await);
    for error in [consumer_error, publisher_error] {
        let chain = error_chain(&error);
        eprintln!("{chain}");
        assert!(matches!(error, Error::Connect { .. }), "not a connection error: {chain}");
        assert!(
            chain.contains("invalid peer certificate") && chain.contains("UnknownIssuer"),
            "not a certificate error: {chain}"
        );
        assert!(!error.is_transient(), "retrying cannot fix a certificate: {chain}");
    }
}

#[tokio::test]
async fn a_missing_ca_file_is_a_clear_error() {
    let missing = std::env::temp_dir().join(format!("{}-ca.pem", unique("tls-missing")));
    let broker = tls_broker(Some(missing.clone()));
    let error =
        refused(TaskConsumer::connect(consumer_config(broker, &unique("tls-missing"))).await);
    let chain = error_chain(&error);
    eprintln!("{chain}");
    let Error::Tls(message) = &error else { panic!("not a TLS configuration error: {chain}") };
    assert!(message.contains(&missing.display().to_string()), "the path is not named: {chain}");
    assert!(!error.is_transient());
}
