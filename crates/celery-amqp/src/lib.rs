//! How aci-worker hears the CodaLab site and answers it: Celery task messages
//! (protocol 1 and 2, JSON only) over AMQP 0-9-1, on [`lapin`].
//!
//! - [`TaskMessage::decode`] reads a message as Celery sends it; other serializers
//!   (pickle, YAML, msgpack) are refused, never deserialized.
//! - [`TaskConsumer`] consumes one queue: it attaches to an existing queue without
//!   redeclaring it (so a queue the site declared with `x-max-priority` works),
//!   prefetches as many tasks as the worker runs, rejects bad messages without
//!   requeue, and reconnects with backoff when the broker goes away.
//! - [`Publisher`] publishes tasks with publisher confirms, retrying until they are
//!   confirmed or a deadline passes; refusals and unroutable messages are errors.
//! - [`codalab`] has the two CodaLab tasks.
//!
//! # Example
//!
//! Consume `compute_worker_run` tasks and answer each with a `running` update:
//!
//! ```no_run
//! use celery_amqp::codalab::{self, SubmissionStatus};
//! use celery_amqp::{BrokerOptions, BrokerUrl, ConsumerConfig, Publisher, PublisherConfig, TaskConsumer};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let site = BrokerOptions::new(BrokerUrl::parse("pyamqp://guest:guest@127.0.0.1:5672//")?, "worker-1");
//! let config = ConsumerConfig::new(site.clone(), codalab::COMPUTE_WORKER_QUEUE)
//!     .accept(codalab::COMPUTE_WORKER_RUN, codalab::check_compute_worker_run);
//! let mut tasks = TaskConsumer::connect(config).await?;
//! let updates = Publisher::connect(PublisherConfig::to_queue(site, codalab::SUBMISSION_UPDATES)).await?;
//!
//! loop {
//!     let delivery = tasks.next().await;
//!     let (job_id, task_args) = codalab::compute_worker_run_args(&delivery.task).unwrap();
//!     let secret = task_args["secret"].as_str().unwrap_or_default();
//!     let update = codalab::update_submission(job_id, SubmissionStatus::Running, Default::default(), secret);
//!     updates.publish(&update, &[secret]).await?;
//!     delivery.ack().await?;
//! }
//! # }
//! ```

mod amqp;
pub mod codalab;
mod connect;
mod consumer;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod publisher;
mod uri;

pub use connect::BrokerOptions;
pub use consumer::{ArgsCheck, ConsumerConfig, Delivery, QueueStatus, TaskConsumer, queue_status};
pub use error::{Error, Result};
pub use message::{
    DEFAULT_MAX_BODY, DecodeError, Encoded, JSON, Properties, TaskMessage, new_task_id,
};
pub use publisher::{Publisher, PublisherConfig};
pub use uri::{BrokerUrl, InvalidBrokerUrl};

pub use compute::error_chain;
