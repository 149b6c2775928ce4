//! The messages Celery 5.4 really sent, captured from RabbitMQ
//! (`../shared/fixtures/celery/`), decode to the fields Celery meant, and what we
//! encode has the shape Celery gives its own messages.

use celery_amqp::codalab::{self, SubmissionStatus};
use celery_amqp::{DEFAULT_MAX_BODY, Properties, TaskMessage};
use serde_json::{Map, Value, json};

fn fixture(protocol: u8) -> Value {
    // `$ACI_FIXTURES`, else `shared/fixtures` beside the checkout.
    let root =
        std::env::var_os("ACI_FIXTURES").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let path = root.join(format!("celery/celery-5.4.0-protocol{protocol}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set ACI_FIXTURES)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn decode(message: &Value) -> TaskMessage {
    let p = &message["properties"];
    let props = Properties {
        content_type: p["content_type"].as_str().map(str::to_owned),
        content_encoding: p["content_encoding"].as_str().map(str::to_owned),
        priority: p["priority"].as_u64().map(|n| n as u8),
        correlation_id: p["correlation_id"].as_str().map(str::to_owned),
        headers: message["headers"].as_object().cloned().unwrap_or_default(),
    };
    let body = message["body_text"].as_str().unwrap().as_bytes();
    TaskMessage::decode(&props, body, DEFAULT_MAX_BODY).unwrap()
}

#[test]
fn every_captured_message_decodes() {
    for protocol in [1, 2] {
        let messages = fixture(protocol)["messages"].as_array().unwrap().clone();
        assert_eq!(messages.len(), 4);
        let tasks: Vec<TaskMessage> = messages.iter().map(decode).collect();

        let run = &tasks[0];
        assert_eq!(run.protocol, protocol);
        assert_eq!(run.name, codalab::COMPUTE_WORKER_RUN);
        assert_eq!(run.id, messages[0]["properties"]["correlation_id"].as_str().unwrap());
        assert_eq!(run.priority, Some(2));
        assert_eq!(run.soft_time_limit, Some(3900.0));
        assert_eq!(run.time_limit, None);
        assert_eq!(run.retries, 0);
        assert_eq!((run.eta.as_deref(), run.expires.as_deref()), (None, None));
        assert_eq!(run.root_id.as_deref(), Some(run.id.as_str()));
        assert!(run.kwargs.is_empty());
        codalab::check_compute_worker_run(run).unwrap();
        let (job_id, args) = codalab::compute_worker_run_args(run).unwrap();
        assert_eq!(job_id, &json!(1234));
        assert_eq!(args["submission_id"], json!(42));
        assert_eq!(args["execution_time_limit"], json!(300));
        assert_eq!(args["predict"], json!(true));
        assert!(args["bundle_url"].as_str().unwrap().contains("sig=abc%2Bdef"));

        for (task, status) in tasks[1..].iter().zip(["running", "failed", "finished"]) {
            assert_eq!(task.name, codalab::UPDATE_SUBMISSION);
            assert_eq!(task.args[0], json!(1234));
            assert_eq!(task.args[1]["status"], json!(status));
            assert_eq!(task.args[2], json!("6f1c2a9e-2f7b-4a55-9d3e-0c8f5b7a1d22"));
        }
        assert_eq!(
            tasks[2].args[1]["extra"]["traceback"],
            json!("Traceback (most recent call last):\n  boom\n")
        );
    }
}

#[test]
fn our_update_has_the_shape_of_celerys() {
    let captured = &fixture(2)["messages"][2];
    let mut extra = Map::new();
    extra.insert("traceback".into(), json!("Traceback (most recent call last):\n  boom\n"));
    extra.insert("metadata".into(), json!({"hostname": "worker-1"}));
    let secret = "6f1c2a9e-2f7b-4a55-9d3e-0c8f5b7a1d22";
    let ours = codalab::update_submission(&json!(1234), SubmissionStatus::Failed, extra, secret);
    let encoded = ours.encode(2, "4242@worker-1", &[secret]);

    let their_keys: Vec<&String> = captured["headers"].as_object().unwrap().keys().collect();
    let our_keys: Vec<&String> = encoded.properties.headers.keys().collect();
    assert_eq!(our_keys, their_keys, "the same headers as Celery sets");
    assert_eq!(encoded.properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(encoded.properties.content_encoding.as_deref(), Some("utf-8"));
    assert_eq!(encoded.properties.correlation_id.as_deref(), Some(ours.id.as_str()));

    let their_body: Value = serde_json::from_str(captured["body_text"].as_str().unwrap()).unwrap();
    let our_body: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(our_body, their_body, "the same body for the same update");

    // Celery's own argsrepr shows the secret; ours does not.
    assert!(captured["headers"]["argsrepr"].as_str().unwrap().contains(secret));
    let argsrepr = encoded.properties.headers["argsrepr"].as_str().unwrap();
    assert!(!argsrepr.contains(secret), "{argsrepr}");
    assert!(argsrepr.starts_with("(1234, {") && argsrepr.ends_with("}, '***')"), "{argsrepr}");
    assert!(argsrepr.contains("'status': 'failed'"), "{argsrepr}");

    let v1 = ours.encode(1, "4242@worker-1", &[secret]);
    let captured_v1 = &fixture(1)["messages"][2];
    let their_v1: Value = serde_json::from_str(captured_v1["body_text"].as_str().unwrap()).unwrap();
    let mut our_v1: Value = serde_json::from_slice(&v1.body).unwrap();
    our_v1["id"] = their_v1["id"].clone();
    assert_eq!(our_v1, their_v1, "protocol 1 bodies match too, but for the id");
}
