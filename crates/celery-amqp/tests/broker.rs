//! The client against a real RabbitMQ, with real Python Celery on the other side.

mod common;

use std::collections::BTreeSet;

use celery_amqp::codalab::{self, SubmissionStatus};
use celery_amqp::{Error, Publisher, PublisherConfig, TaskMessage};
use common::*;
use lapin::BasicProperties;
use lapin::types::AMQPValue;
use serde_json::{Map, json};

#[tokio::test]
async fn celery_tasks_decode_the_same_in_both_protocols() {
    let queue = unique("protocols");
    let mut consumer = consumer(&queue).await;
    let task_args =
        json!({"submission_id": 7, "secret": "s", "bundle_url": "http://x/run.txt?sig=a%2Bb"});
    let mut ids = Vec::new();
    for protocol in ["1", "2"] {
        let sent = run_python(
            "send_task.py",
            &[
                "--broker",
                &kombu_url(),
                "--queue",
                &queue,
                "--protocol",
                protocol,
                "--job-id",
                "99",
                "--priority",
                "1",
                "--task-args-json",
                &task_args.to_string(),
            ],
        );
        ids.push(sent["task_ids"][0].as_str().unwrap().to_owned());
    }
    let mut decoded = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut consumer).await;
        decoded.push(delivery.task.clone());
        delivery.ack().await.unwrap();
    }
    decoded.sort_by_key(|t| t.protocol);
    let (v1, v2) = (&decoded[0], &decoded[1]);
    assert_eq!((v1.protocol, v2.protocol), (1, 2));
    assert_eq!([v1.id.as_str(), v2.id.as_str()], [ids[0].as_str(), ids[1].as_str()]);
    for task in [v1, v2] {
        assert_eq!(task.name, codalab::COMPUTE_WORKER_RUN);
        assert_eq!(task.args, vec![json!(99), task_args.clone()]);
        assert!(task.kwargs.is_empty());
        assert_eq!(task.soft_time_limit, Some(3900.0));
        assert_eq!(task.priority, Some(1));
        assert_eq!(task.retries, 0);
    }
    consumer.close().await;
    delete_queue(&raw_connection().await, &queue).await;
}

#[tokio::test]
async fn celery_runs_our_update_submission() {
    let queue = unique("updates");
    let site = SiteWorker::start(&kombu_url(), &queue).await;
    let publisher = Publisher::connect(PublisherConfig::to_queue(broker(), &queue)).await.unwrap();
    let mut extra = Map::new();
    extra.insert("traceback".into(), json!("Traceback:\n  boom ünïcode\n"));
    extra.insert(
        "metadata".into(),
        json!({"hostname": "worker-1", "ingestion_program_duration": 1.5}),
    );
    let secret = "0f0e0d0c-secret";
    for protocol in [1, 2] {
        let mut config = PublisherConfig::to_queue(broker(), &queue);
        config.protocol = protocol;
        let publisher = Publisher::new(config);
        let update = codalab::update_submission(
            &json!(protocol * 100),
            SubmissionStatus::Failed,
            extra.clone(),
            secret,
        );
        publisher.publish(&update, &[secret]).await.unwrap();
        let call = site.wait_for(|v| v["job_id"] == json!(protocol * 100)).await;
        assert_eq!(call["args"], json!({"status": "failed", "extra": extra}));
        assert_eq!(call["secret"], json!(secret));
        assert_eq!(call["task_id"], json!(update.id));
        publisher.close().await;
    }
    publisher.close().await;
    drop(site);
    delete_queue(&raw_connection().await, &queue).await;
}

#[tokio::test]
async fn codalabs_restricted_users_publish_through_the_exchange() {
    // CodaLab's custom-queue users on `/`: configure .*, write and read only what
    // matches .*submission-updates.*.
    let queue = format!("{}-submission-updates", unique("restricted"));
    let user = unique("codalab-user");
    rabbitmqctl(&["add_user", &user, "restricted-pass"]);
    rabbitmqctl(&[
        "set_permissions",
        "-p",
        "/",
        &user,
        ".*",
        ".*submission-updates.*",
        ".*submission-updates.*",
    ]);
    let site = SiteWorker::start(&kombu_url(), &queue).await;

    let url = format!("amqp://{user}:restricted-pass@127.0.0.1:5672/%2f");
    let restricted =
        celery_amqp::BrokerOptions::new(celery_amqp::BrokerUrl::parse(&url).unwrap(), "restricted");
    let publisher = Publisher::new(PublisherConfig::to_queue(restricted.clone(), &queue));
    let update = codalab::update_submission(&json!(5), SubmissionStatus::Running, Map::new(), "s");
    publisher.publish(&update, &["s"]).await.unwrap();
    site.wait_for(|v| v["job_id"] == json!(5)).await;

    // The default exchange is refused to them, and the refusal is an error.
    let mut default_exchange = PublisherConfig::to_queue(restricted, &queue);
    default_exchange.exchange = String::new();
    let refused = Publisher::new(default_exchange).publish(&update, &["s"]).await.unwrap_err();
    assert!(matches!(refused, Error::PublishRefused { .. }), "{refused:?}");
    assert!(!refused.is_transient());
    assert!(refused.to_string().contains("amq.default"), "{refused}");

    publisher.close().await;
    drop(site);
    rabbitmqctl(&["delete_user", &user]);
    delete_queue(&raw_connection().await, &queue).await;
}

#[tokio::test]
async fn publishing_nowhere_is_an_error_not_a_loss() {
    let mut unroutable = PublisherConfig::to_queue(broker(), "unused");
    unroutable.exchange = "amq.direct".into();
    unroutable.routing_key = unique("no-queue-bound");
    unroutable.queue = None;
    let task = TaskMessage::new("t", vec![]);
    let err = Publisher::new(unroutable).publish(&task, &[]).await.unwrap_err();
    assert!(matches!(err, Error::Unroutable { .. }), "{err:?}");

    let mut missing = PublisherConfig::to_queue(broker(), "unused");
    missing.exchange = unique("no-such-exchange");
    missing.queue = None;
    let err = Publisher::new(missing).publish(&task, &[]).await.unwrap_err();
    assert!(matches!(err, Error::PublishRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn a_queue_declared_with_priorities_is_consumed_and_priorities_are_honoured() {
    let queue = unique("priority");
    let conn = raw_connection().await;
    declare_queue(&conn, &queue, &[("x-max-priority", AMQPValue::LongInt(2))]).await;
    for (job, priority) in [(1, "0"), (2, "0"), (3, "0"), (4, "2")] {
        run_python(
            "send_task.py",
            &[
                "--broker",
                &kombu_url(),
                "--queue",
                &queue,
                "--queue-max-priority",
                "2",
                "--priority",
                priority,
                "--job-id",
                &job.to_string(),
            ],
        );
    }
    let mut consumer = consumer(&queue).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        let delivery = next(&mut consumer).await;
        order.push(delivery.task.args[0].clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(order, vec![json!(4), json!(1), json!(2), json!(3)]);
    consumer.close().await;
    delete_queue(&conn, &queue).await;
}

#[tokio::test]
async fn a_paused_consumer_holds_no_delivery_and_next_resumes() {
    let queue = unique("pause");
    for job in 1..=3 {
        run_python(
            "send_task.py",
            &["--broker", &kombu_url(), "--queue", &queue, "--job-id", &job.to_string()],
        );
    }
    let mut busy = consumer(&queue).await;
    let first = next(&mut busy).await;
    // No room for another task: pause before the ack makes room for a delivery.
    busy.pause().await;
    first.ack().await.unwrap();
    let status = celery_amqp::queue_status(&broker(), &queue).await.unwrap();
    assert_eq!((status.messages, status.consumers), (2, 0), "the paused worker holds nothing");

    // Another worker gets the next task; the paused one gets the last when it asks.
    let mut other = consumer(&queue).await;
    let second = next(&mut other).await;
    assert_eq!(second.task.args[0], json!(2));
    other.pause().await;
    second.ack().await.unwrap();
    let third = next(&mut busy).await;
    assert_eq!(third.task.args[0], json!(3));
    assert!(!third.redelivered, "handed out once");
    third.ack().await.unwrap();
    assert_eq!(queue_length(&raw_connection().await, &queue).await, 0);
    busy.close().await;
    other.close().await;
    delete_queue(&raw_connection().await, &queue).await;
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_and_consuming_goes_on() {
    let queue = unique("bad-input");
    let dead = format!("{queue}-dead");
    let conn = raw_connection().await;
    declare_queue(&conn, &dead, &[]).await;
    declare_queue(
        &conn,
        &queue,
        &[
            ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
            ("x-dead-letter-routing-key", AMQPValue::LongString(dead.as_str().into())),
        ],
    )
    .await;
    let json = || BasicProperties::default().with_content_type("application/json".into());
    let v2 = |task: &str| {
        let mut headers = lapin::types::FieldTable::default();
        headers.insert("task".into(), AMQPValue::LongString(task.into()));
        headers.insert("id".into(), AMQPValue::LongString(format!("id-{task}").as_str().into()));
        json().with_headers(headers)
    };
    publish_raw(&conn, &queue, b"{not json", v2(codalab::COMPUTE_WORKER_RUN)).await;
    publish_raw(&conn, &queue, b"{\"shape\": \"wrong\"}", v2(codalab::COMPUTE_WORKER_RUN)).await;
    publish_raw(&conn, &queue, b"[[1, {}], {}, {}]", v2("apps.other.task")).await;
    publish_raw(
        &conn,
        &queue,
        b"[[\"job\", [\"not a mapping\"]], {}, {}]",
        v2(codalab::COMPUTE_WORKER_RUN),
    )
    .await;
    let huge = format!("[[1, {{\"pad\": \"{}\"}}], {{}}, {{}}]", "x".repeat(64 * 1024));
    publish_raw(&conn, &queue, huge.as_bytes(), v2(codalab::COMPUTE_WORKER_RUN)).await;
    run_python(
        "send_task.py",
        &["--broker", &kombu_url(), "--queue", &queue, "--serializer", "pickle", "--job-id", "6"],
    );
    run_python("send_task.py", &["--broker", &kombu_url(), "--queue", &queue, "--job-id", "7"]);

    let mut config = consumer_config(&queue);
    config.max_body = 16 * 1024;
    let mut consumer = celery_amqp::TaskConsumer::connect(config).await.unwrap();
    let good = next(&mut consumer).await;
    assert_eq!(good.task.args[0], json!(7), "the one good task comes through");
    good.ack().await.unwrap();
    for _ in 0..100 {
        if queue_length(&conn, &dead).await == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(queue_length(&conn, &dead).await, 6, "every bad message is dead-lettered");
    assert_eq!(queue_length(&conn, &queue).await, 0);
    consumer.close().await;
    delete_queue(&conn, &queue).await;
    delete_queue(&conn, &dead).await;
}

#[tokio::test]
async fn a_broker_restart_loses_nothing_and_acks_nothing_twice() {
    let queue = unique("restart");
    let mut consumer = consumer(&queue).await;
    let publisher = Publisher::new(PublisherConfig::to_queue(broker(), &queue));
    let mut sent = BTreeSet::new();
    for job in 0..10 {
        let task = TaskMessage::new(codalab::COMPUTE_WORKER_RUN, vec![json!(job), json!({})]);
        publisher.publish(&task, &[]).await.unwrap();
        sent.insert(task.id);
    }
    publisher.close().await;

    let mut acked = Vec::new();
    for _ in 0..3 {
        let delivery = next(&mut consumer).await;
        acked.push(delivery.task.id.clone());
        delivery.ack().await.unwrap();
    }
    let in_flight = next(&mut consumer).await;
    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let lost = in_flight.task.id.clone();
    assert!(matches!(in_flight.ack().await, Err(Error::DeliveryLost)));

    let mut redelivered = false;
    while acked.len() < 10 {
        let delivery = next(&mut consumer).await;
        if delivery.task.id == lost {
            redelivered = delivery.redelivered;
        }
        acked.push(delivery.task.id.clone());
        delivery.ack().await.unwrap();
    }
    assert!(redelivered, "the unacknowledged task came back, marked redelivered");
    let unique_acked: BTreeSet<String> = acked.iter().cloned().collect();
    assert_eq!(unique_acked.len(), acked.len(), "no task acknowledged twice");
    assert_eq!(unique_acked, sent, "every task arrived");
    assert!(consumer.reconnects() >= 1);
    consumer.close().await;
    delete_queue(&raw_connection().await, &queue).await;
}

#[tokio::test]
async fn the_link_follows_the_connection_also_while_paused_and_idle() {
    let queue = unique("link");
    let mut consumer = consumer(&queue).await;
    let mut link = consumer.link();
    assert_eq!((link.borrow().connected, link.borrow().reconnects), (true, 0));
    let publisher = Publisher::new(PublisherConfig::to_queue(broker(), &queue));
    let mut published = publisher.link();
    assert!(!published.borrow().connected, "a publisher connects on first use");
    let task =
        |job: i32| TaskMessage::new(codalab::COMPUTE_WORKER_RUN, vec![json!(job), json!({})]);
    publisher.publish(&task(1), &[]).await.unwrap();
    assert_eq!((published.borrow().connected, published.borrow().reconnects), (true, 0));
    // Busy: nobody calls `next`, nothing is published.
    consumer.pause().await;

    rabbitmqctl(&["stop_app"]);
    let patience = std::time::Duration::from_secs(120);
    let down = async {
        link.wait_for(|l| !l.connected).await.unwrap();
        published.wait_for(|l| !l.connected).await.unwrap();
    };
    let seen = tokio::time::timeout(patience, down).await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    assert!(seen.is_ok(), "both links went down while idle");

    // Connected again without consuming: the task stays in the queue.
    consumer.recover().await;
    assert_eq!((link.borrow().connected, link.borrow().reconnects), (true, 1));
    assert!(consumer.connected());
    let status = celery_amqp::queue_status(&broker(), &queue).await.unwrap();
    assert_eq!((status.messages, status.consumers), (1, 0), "recovering does not consume");
    publisher.publish(&task(2), &[]).await.unwrap();
    assert_eq!((published.borrow().connected, published.borrow().reconnects), (true, 1));
    for job in 1..=2 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.task.args[0], json!(job));
        delivery.ack().await.unwrap();
    }
    assert_eq!(consumer.reconnects(), 1, "next consumed on the recovered connection");
    publisher.close().await;
    consumer.close().await;
    assert!(!link.borrow().connected && !published.borrow().connected);
    delete_queue(&raw_connection().await, &queue).await;
}
