//! Consuming Celery tasks from a queue, across broker restarts.

use std::time::Duration;

use backoff::Backoff;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Connection, ConnectionStatus};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::amqp;
use crate::connect::BrokerOptions;
use crate::error::{Error, Result, reply_code};
use crate::link::{Link, LinkTx, Watcher};
use crate::message::{DEFAULT_MAX_BODY, DecodeError, TaskMessage};

/// Checks a task's arguments; the error says what is wrong.
pub type ArgsCheck = fn(&TaskMessage) -> std::result::Result<(), String>;

/// What to consume and how.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The broker.
    pub broker: BrokerOptions,
    /// The queue, e.g. `compute-worker`.
    pub queue: String,
    /// Unacknowledged deliveries the broker may hand out at once. A worker that
    /// acknowledges each task as soon as it has taken it keeps this at 1 and
    /// [`TaskConsumer::pause`]s while it has no room, so that it never holds a
    /// delivery it does not run; one that acknowledges tasks when they are done
    /// sets it to the number of tasks it runs at once.
    pub prefetch: u16,
    /// Largest body accepted; larger ones are rejected.
    pub max_body: usize,
    /// Arguments to declare the queue with when it does not exist yet. An existing
    /// queue is used as it is, whatever its arguments. Default: `x-max-priority: 2`,
    /// as the CodaLab site declares `compute-worker`.
    pub declare_arguments: Map<String, Value>,
    /// Task names this consumer runs, each with a check of its arguments. Anything
    /// else is rejected.
    pub accept: Vec<(String, ArgsCheck)>,
    /// First pause before reconnecting; it doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    /// Longest pause between reconnection attempts.
    pub reconnect_max: Duration,
}

impl ConsumerConfig {
    /// Defaults for consuming `queue`: prefetch 1, 4 MiB bodies, reconnecting
    /// after 0.5 s up to every 30 s, accepting no task yet.
    pub fn new(broker: BrokerOptions, queue: impl Into<String>) -> Self {
        let Value::Object(declare_arguments) = json!({"x-max-priority": 2}) else { unreachable!() };
        ConsumerConfig {
            broker,
            queue: queue.into(),
            prefetch: 1,
            max_body: DEFAULT_MAX_BODY,
            declare_arguments,
            accept: Vec::new(),
            reconnect_initial: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
        }
    }

    /// Accepts tasks called `name` whose arguments pass `check`.
    pub fn accept(mut self, name: impl Into<String>, check: ArgsCheck) -> Self {
        self.accept.push((name.into(), check));
        self
    }
}

/// One task handed out by the broker, to be acknowledged once it is done.
#[derive(Debug)]
pub struct Delivery {
    /// The decoded task.
    pub task: TaskMessage,
    /// The broker handed it out before (to this or another consumer).
    pub redelivered: bool,
    /// The delivery tag on its channel.
    pub delivery_tag: u64,
    acker: Acker,
    connection: ConnectionStatus,
}

impl Delivery {
    /// Acknowledges the task: the broker forgets it.
    pub async fn ack(self) -> Result<()> {
        self.settle(|a| async move { a.ack(BasicAckOptions::default()).await }).await
    }

    /// Hands the task back to the broker for another consumer (`requeue`), or
    /// drops it (dead-lettered where the queue has a dead-letter exchange).
    pub async fn nack(self, requeue: bool) -> Result<()> {
        let options = BasicNackOptions { requeue, multiple: false };
        self.settle(|a| async move { a.nack(options).await }).await
    }

    /// Rejects the task without handing it to anyone else.
    pub async fn reject(self) -> Result<()> {
        let options = BasicRejectOptions { requeue: false };
        self.settle(|a| async move { a.reject(options).await }).await
    }

    async fn settle<F, Fut>(self, f: F) -> Result<()>
    where
        F: FnOnce(Acker) -> Fut,
        Fut: std::future::Future<Output = lapin::Result<bool>>,
    {
        // A tag is only meaningful on the channel that delivered it; after a
        // reconnect the broker redelivers the message instead.
        if !self.connection.connected() || !self.acker.usable() {
            return Err(Error::DeliveryLost);
        }
        match f(self.acker).await {
            Ok(_) => Ok(()),
            Err(_) if !self.connection.connected() => Err(Error::DeliveryLost),
            Err(e) => Err(Error::Ack(e)),
        }
    }
}

struct Session {
    connection: Connection,
    channel: Channel,
    /// `None` while paused.
    consumer: Option<lapin::Consumer>,
    /// Marks the link down when the connection goes, or when dropped.
    _watcher: Watcher,
}

/// Consumes Celery tasks from one queue, reconnecting with backoff whenever the
/// connection is lost, and rejecting (without requeue) every message that is not
/// an accepted task.
pub struct TaskConsumer {
    config: ConsumerConfig,
    session: Option<Session>,
    backoff: Backoff,
    link: LinkTx,
}

impl TaskConsumer {
    /// Connects and attaches to the queue. Fails when the first attempt fails, so
    /// that a wrong URL or password shows at start-up.
    pub async fn connect(config: ConsumerConfig) -> Result<Self> {
        let backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
        let mut consumer = TaskConsumer { config, session: None, backoff, link: LinkTx::default() };
        consumer.session = Some(consumer.open(true).await?);
        Ok(consumer)
    }

    /// How often the connection was re-established since start.
    pub fn reconnects(&self) -> u64 {
        self.link.get().reconnects
    }

    /// The connection's state, updated as it changes: it goes down within about a
    /// second of a loss, also while the consumer is paused or nobody calls
    /// [`TaskConsumer::next`], and up again (one more reconnect) once a new
    /// connection is open, by `next` or [`TaskConsumer::recover`].
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// Whether the connection is up, as [`TaskConsumer::link`] last said.
    pub fn connected(&self) -> bool {
        self.link.get().connected
    }

    /// Re-establishes a lost connection (with backoff, until it succeeds) without
    /// consuming: for a [paused](TaskConsumer::pause) consumer, so that it is
    /// connected again before it has room for a task. Returns at once when the
    /// connection is up. Cancel-safe: dropped half-way, nothing is consumed.
    pub async fn recover(&mut self) {
        if self.connected() && self.session.is_some() {
            return;
        }
        let consuming = self.session.as_ref().is_some_and(|s| s.consumer.is_some());
        self.lose();
        self.reconnect(consuming).await;
    }

    /// Forgets the session (its connection is gone or unusable), which marks
    /// the link down.
    fn lose(&mut self) {
        self.session = None;
    }

    /// The next accepted task. Waits across connection losses; bad messages are
    /// rejected and logged on the way. After [`TaskConsumer::pause`], it first
    /// starts consuming again.
    pub async fn next(&mut self) -> Delivery {
        loop {
            let Some(session) = self.session.as_mut() else {
                self.reconnect(true).await;
                continue;
            };
            if session.consumer.is_none() {
                match self.config.start(&session.channel).await {
                    Ok(consumer) => session.consumer = Some(consumer),
                    Err(e) => {
                        tracing::warn!(queue = %self.config.queue, error = %crate::error_chain(&e), "cannot consume again; reconnecting");
                        self.lose();
                        continue;
                    }
                }
            }
            let consumer = session.consumer.as_mut().expect("started above");
            match consumer.next().await {
                Some(Ok(delivery)) => {
                    let connection = session.connection.status().clone();
                    if let Some(d) = self.accept(delivery, connection).await {
                        return d;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %self.config.queue, error = %e, "lost the broker connection");
                    self.lose();
                }
                None => {
                    tracing::warn!(queue = %self.config.queue, "the broker ended the consumer");
                    self.lose();
                }
            }
        }
    }

    /// Stops the broker from handing this consumer more tasks until the next call
    /// to [`TaskConsumer::next`], for a worker that has no room for another task:
    /// deliveries it held would wait unacknowledged, out of every other worker's
    /// reach, and run into the broker's consumer timeout. Returns once the broker
    /// has confirmed; anything it had already sent goes back to the queue.
    /// Deliveries taken before stay valid: they can be acknowledged as usual.
    pub async fn pause(&mut self) {
        let Some(session) = self.session.as_mut() else { return };
        let Some(mut consumer) = session.consumer.take() else { return };
        if let Err(e) =
            session.channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await
        {
            tracing::warn!(queue = %self.config.queue, error = %e, "cannot pause consuming; reconnecting");
            self.lose();
            return;
        }
        // The broker may have sent more before it saw the cancel: hand those back.
        let drain = async {
            while let Some(Ok(delivery)) = consumer.next().await {
                let options = BasicNackOptions { requeue: true, multiple: false };
                let _ = delivery.acker.nack(options).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
            tracing::warn!(queue = %self.config.queue, "a paused consumer did not end; reconnecting");
            self.lose();
        }
    }

    /// Closes the connection. Unacknowledged deliveries go back to the queue.
    pub async fn close(mut self) {
        if let Some(Session { connection, _watcher: watcher, .. }) = self.session.take() {
            // Down at once, not when the broker has confirmed.
            drop(watcher);
            let _ = connection.close(200, "worker stopping".into()).await;
        }
    }

    /// Opens a new session, consuming (`consume`) or paused.
    async fn reconnect(&mut self, consume: bool) {
        loop {
            let delay = self.backoff.next_delay();
            tokio::time::sleep(delay).await;
            match self.open(consume).await {
                Ok(session) => {
                    self.session = Some(session);
                    self.backoff.reset();
                    tracing::info!(queue = %self.config.queue, "reconnected to the broker");
                    return;
                }
                Err(e) => tracing::warn!(
                    queue = %self.config.queue,
                    error = %crate::error_chain(&e),
                    attempt = self.backoff.attempts(),
                    "reconnecting to the broker failed; retrying"
                ),
            }
        }
    }

    /// Opens a connection and attaches to the queue; starts consuming when
    /// `consume`. The link goes up with it.
    async fn open(&self, consume: bool) -> Result<Session> {
        let connection = self.config.broker.connect().await?;
        let channel = attach(&connection, &self.config).await?;
        let attach_error = |source| Error::Attach { queue: self.config.queue.clone(), source };
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(attach_error)?;
        let consumer = if consume {
            let consumer = self.config.start(&channel).await?;
            tracing::info!(queue = %self.config.queue, broker = %self.config.broker.url, "consuming");
            Some(consumer)
        } else {
            tracing::info!(queue = %self.config.queue, broker = %self.config.broker.url, "connected; paused");
            None
        };
        let watcher = self.link.up(&connection);
        Ok(Session { connection, channel, consumer, _watcher: watcher })
    }

    /// Decodes and checks a delivery; rejects it when it is not an accepted task.
    async fn accept(
        &self,
        delivery: lapin::message::Delivery,
        connection: ConnectionStatus,
    ) -> Option<Delivery> {
        let props = amqp::properties(&delivery.properties);
        let checked =
            TaskMessage::decode(&props, &delivery.data, self.config.max_body).and_then(|task| {
                match self.config.accept.iter().find(|(name, _)| *name == task.name) {
                    None => Err(DecodeError::UnknownTask(task.name)),
                    Some((_, check)) => match check(&task) {
                        Ok(()) => Ok(task),
                        Err(reason) => Err(DecodeError::InvalidArgs { task: task.name, reason }),
                    },
                }
            });
        match checked {
            Ok(task) => Some(Delivery {
                task,
                redelivered: delivery.redelivered,
                delivery_tag: delivery.delivery_tag,
                acker: delivery.acker,
                connection,
            }),
            Err(reason) => {
                let id = props
                    .headers
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or(props.correlation_id)
                    .unwrap_or_else(|| format!("delivery-tag {}", delivery.delivery_tag));
                tracing::warn!(queue = %self.config.queue, message.id = %id, %reason, "rejecting message");
                if let Err(e) = delivery.acker.reject(BasicRejectOptions { requeue: false }).await {
                    tracing::debug!(error = %e, "rejecting failed; the broker will redeliver it");
                }
                None
            }
        }
    }
}

impl ConsumerConfig {
    /// Starts a consumer of the queue on `channel`.
    async fn start(&self, channel: &Channel) -> Result<lapin::Consumer> {
        let tag = format!("{}-{}", self.broker.connection_name, crate::message::new_task_id());
        channel
            .basic_consume(
                self.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| Error::Attach { queue: self.queue.clone(), source })
    }
}

/// Opens a channel on which the queue exists: used as it is when it exists
/// (whatever its arguments, so never PRECONDITION_FAILED), declared with the
/// configured arguments when it does not.
async fn attach(connection: &Connection, config: &ConsumerConfig) -> Result<Channel> {
    let attach_error = |source| Error::Attach { queue: config.queue.clone(), source };
    let channel = connection.create_channel().await.map_err(attach_error)?;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    match channel.queue_declare(config.queue.as_str().into(), passive, FieldTable::default()).await
    {
        Ok(_) => return Ok(channel),
        // 404 closes the channel: declare on a fresh one.
        Err(e) if reply_code(&e) == Some(404) => {}
        Err(e) => return Err(attach_error(e)),
    }
    let channel = connection.create_channel().await.map_err(attach_error)?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let arguments = amqp::table_from_json(&config.declare_arguments);
    channel
        .queue_declare(config.queue.as_str().into(), durable, arguments)
        .await
        .map_err(attach_error)?;
    tracing::info!(queue = %config.queue, "declared the queue, which did not exist");
    Ok(channel)
}

/// What a passive look at a queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStatus {
    /// Messages ready in it.
    pub messages: u32,
    /// Consumers attached to it.
    pub consumers: u32,
}

/// Looks at a queue without changing anything (a passive declare): for health
/// checks. An absent queue or a missing permission is an error.
pub async fn queue_status(broker: &BrokerOptions, queue: &str) -> Result<QueueStatus> {
    let connection = broker.connect().await?;
    let result = async {
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| Error::Broker { operation: "open channel", source })?;
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let found = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .map_err(|source| Error::Attach { queue: queue.to_owned(), source })?;
        Ok(QueueStatus { messages: found.message_count(), consumers: found.consumer_count() })
    }
    .await;
    let _ = connection.close(200, "done".into()).await;
    result
}
