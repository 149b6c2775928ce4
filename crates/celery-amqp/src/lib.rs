//! How aci-worker hears the CodaLab site and answers it: Celery task messages
//! (protocol 1 and 2, JSON only) over AMQP 0-9-1, on [`lapin`].
//!
//! Consume `compute_worker_run` tasks and answer each with a `running` update:
//!
//! ```no_run
//! use celery_amqp::codalab::{self, SubmissionStatus};
//! use celery_amqp::{BrokerOptions, BrokerUrl, ConsumerConfig, Publisher, PublisherConfig};
//! use celery_amqp::TaskConsumer;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let url = BrokerUrl::parse("pyamqp://guest:guest@127.0.0.1:5672//")?;
//! let site = BrokerOptions::new(url, "worker-1");
//! let config = ConsumerConfig::new(site.clone(), codalab::COMPUTE_WORKER_QUEUE)
//!     .accept(codalab::COMPUTE_WORKER_RUN, codalab::check_compute_worker_run);
//! let mut tasks = TaskConsumer::connect(config).await?;
//! let to_site = PublisherConfig::to_queue(site, codalab::SUBMISSION_UPDATES);
//! let updates = Publisher::connect(to_site).await?;
//!
//! loop {
//!     let delivery = tasks.next().await;
//!     // Checked by `check_compute_worker_run`: tasks with other arguments never arrive.
//!     let (job_id, task_args) = codalab::compute_worker_run_args(&delivery.task).unwrap();
//!     let secret = task_args["secret"].as_str().unwrap_or_default();
//!     let running = SubmissionStatus::Running;
//!     let update = codalab::update_submission(job_id, running, Default::default(), secret);
//!     updates.publish(&update, &[secret]).await?; // elided from `argsrepr`
//!     delivery.ack().await?;
//! }
//! # }
//! ```
//!
//! - [`TaskMessage::decode`] reads a message as Celery sends it; other serializers
//!   (pickle, YAML, msgpack) are refused, never deserialized.
//! - [`TaskConsumer`] consumes one queue: it attaches to an existing queue without
//!   redeclaring it (so a queue the site declared with `x-max-priority` works),
//!   rejects bad messages without requeue, reconnects with backoff when the broker
//!   goes away, and [pauses](TaskConsumer::pause) while the worker has no room, so
//!   that it never holds a delivery it does not run.
//! - [`Publisher`] publishes tasks with publisher confirms, retrying until they are
//!   confirmed or a deadline passes; refusals and unroutable messages are errors.
//! - Both tell the state of their connection as a [`Link`] watch channel
//!   ([`TaskConsumer::link`], [`Publisher::link`]), updated when a connection is
//!   lost or re-established, for readiness checks and metrics.
//! - [`codalab`] has the two CodaLab tasks.

mod amqp;
pub mod codalab;
mod connect;
mod consumer;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod link;
mod message;
mod publisher;
mod uri;

pub use connect::BrokerOptions;
pub use consumer::{ArgsCheck, ConsumerConfig, Delivery, QueueStatus, TaskConsumer, queue_status};
pub use error::{Error, Result};
pub use link::Link;
pub use message::{
    DEFAULT_MAX_BODY, DecodeError, Encoded, JSON, Properties, TaskMessage, new_task_id,
};
pub use publisher::{Publisher, PublisherConfig};
pub use uri::{BrokerUrl, InvalidBrokerUrl};

pub use compute::error_chain;
