//! Publishing Celery tasks with publisher confirms, retried until confirmed.

use std::time::Duration;

use backoff::Backoff;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, ExchangeKind};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use crate::amqp;
use crate::connect::BrokerOptions;
use crate::error::{Error, Result, reply_code, reply_text};
use crate::link::{Link, LinkTx, Watcher};
use crate::message::TaskMessage;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// The broker (for CodaLab status updates: the main vhost `/`, with the main
    /// broker's credentials).
    pub broker: BrokerOptions,
    /// A direct exchange; `""` is the default exchange.
    pub exchange: String,
    /// Routing key, usually the queue name.
    pub routing_key: String,
    /// A queue to declare and bind to the exchange with the routing key, when the
    /// user may; without configure permission publishing goes on regardless.
    pub queue: Option<String>,
    /// Celery message protocol of published tasks, 1 or 2.
    pub protocol: u8,
    /// How long one publish may keep retrying before the caller hears of it.
    pub deadline: Duration,
    /// `origin` header: who sent the task.
    pub origin: String,
}

impl PublisherConfig {
    /// Publishes to the direct exchange named like `queue`, bound to `queue`, as
    /// CodaLab's restricted custom-queue users must; protocol 2; 60 s deadline.
    pub fn to_queue(broker: BrokerOptions, queue: &str) -> Self {
        let origin = format!("{}@{}", std::process::id(), broker.connection_name);
        PublisherConfig {
            broker,
            exchange: queue.to_owned(),
            routing_key: queue.to_owned(),
            queue: Some(queue.to_owned()),
            protocol: 2,
            deadline: Duration::from_secs(60),
            origin,
        }
    }
}

/// Publishes tasks on one connection, opened on first use and reopened after a
/// failure. Every publish waits for the broker's confirmation.
pub struct Publisher {
    config: PublisherConfig,
    session: Mutex<Option<Session>>,
    link: LinkTx,
}

struct Session {
    connection: Connection,
    channel: Channel,
    /// Marks the link down when the connection goes, or when dropped.
    _watcher: Watcher,
}

impl Publisher {
    /// A publisher that connects on first use.
    pub fn new(config: PublisherConfig) -> Self {
        Publisher { config, session: Mutex::new(None), link: LinkTx::default() }
    }

    /// The connection's state, updated as it changes: up once the first publish
    /// (or [`Publisher::connect`]) opened it, down within about a second of a
    /// loss, up again (one more reconnect) when a publish opens a new one.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// Connects now, declaring what it may, so that configuration errors show
    /// early.
    pub async fn connect(config: PublisherConfig) -> Result<Self> {
        let publisher = Publisher::new(config);
        *publisher.session.lock().await = Some(publisher.open().await?);
        Ok(publisher)
    }

    /// Publishes a task and waits for the broker to confirm it, retrying
    /// transient failures with backoff until the deadline. `secrets` are elided
    /// from the task's `argsrepr`.
    ///
    /// A refusal (no permission, unknown exchange) or a message that reaches no
    /// queue is returned at once: retrying cannot help.
    pub async fn publish(&self, task: &TaskMessage, secrets: &[&str]) -> Result<()> {
        let encoded = task.encode(self.config.protocol, &self.config.origin, secrets);
        let properties = amqp::basic_properties(&encoded.properties);
        let deadline = Instant::now() + self.config.deadline;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let error = match self.publish_once(&encoded.body, properties.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(Error::PublishTimeout {
                    seconds: self.config.deadline.as_secs(),
                    last: Some(Box::new(error)),
                });
            }
            tracing::debug!(task.id = %task.id, error = %crate::error_chain(&error), "publish failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let session = self.session.lock().await.take();
        if let Some(Session { connection, _watcher: watcher, .. }) = session {
            // Down at once, not when the broker has confirmed.
            drop(watcher);
            let _ = connection.close(200, "worker stopping".into()).await;
        }
    }

    async fn publish_once(&self, body: &[u8], properties: lapin::BasicProperties) -> Result<()> {
        let mut session = self.session.lock().await;
        let usable = session
            .as_ref()
            .is_some_and(|s| s.connection.status().connected() && s.channel.status().connected());
        if !usable {
            // Dropping the old session marks the link down.
            *session = None;
            *session = Some(self.open().await?);
        }
        let channel = &session.as_ref().expect("session was just opened").channel;
        let exchange = &self.config.exchange;
        let result = async {
            let options = BasicPublishOptions { mandatory: true, ..Default::default() };
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    self.config.routing_key.as_str().into(),
                    options,
                    body,
                    properties,
                )
                .await?;
            confirm.await
        }
        .await;
        let refused = |e: &lapin::Error| Error::PublishRefused {
            exchange: exchange.clone(),
            code: reply_code(e),
            reason: reply_text(e),
        };
        match result {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(_))) | Ok(Confirmation::Nack(Some(_))) => {
                Err(Error::Unroutable {
                    exchange: exchange.clone(),
                    routing_key: self.config.routing_key.clone(),
                })
            }
            Ok(Confirmation::Nack(None)) => Err(Error::Nack),
            Ok(Confirmation::NotRequested) => {
                unreachable!("confirms are selected on every channel")
            }
            Err(e) if matches!(reply_code(&e), Some(403 | 404)) => {
                // The channel is closed by the refusal: start afresh next time.
                *session = None;
                Err(refused(&e))
            }
            Err(e) => {
                *session = None;
                Err(Error::Broker { operation: "publish", source: e })
            }
        }
    }

    /// Opens a connection and a confirming channel, declaring the exchange, queue
    /// and binding where the user is allowed to.
    async fn open(&self) -> Result<Session> {
        let connection = self.config.broker.connect().await?;
        let new_channel = || async {
            connection
                .create_channel()
                .await
                .map_err(|source| Error::Broker { operation: "open channel", source })
        };
        let mut channel = new_channel().await?;
        for step in [Declare::Exchange, Declare::Queue, Declare::Binding] {
            if let Err(e) = self.declare(&channel, step).await {
                // A refusal (no configure permission, as for CodaLab's custom-queue
                // users) or an existing queue with other arguments: what the site
                // declared is used as it is. It closed the channel; open another.
                let Some(code) = reply_code(&e) else {
                    return Err(Error::Broker { operation: "declare", source: e });
                };
                tracing::debug!(?step, code, reason = %reply_text(&e), "not declared; carrying on");
                channel = new_channel().await?;
            }
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|source| Error::Broker { operation: "enable publisher confirms", source })?;
        let watcher = self.link.up(&connection);
        Ok(Session { connection, channel, _watcher: watcher })
    }

    async fn declare(&self, channel: &Channel, step: Declare) -> lapin::Result<()> {
        let exchange = self.config.exchange.as_str();
        let (Some(queue), false) = (&self.config.queue, exchange.is_empty()) else {
            return Ok(());
        };
        match step {
            Declare::Exchange => {
                let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
                let kind = ExchangeKind::Direct;
                channel
                    .exchange_declare(exchange.into(), kind, durable, FieldTable::default())
                    .await
            }
            Declare::Queue => {
                let durable = QueueDeclareOptions { durable: true, ..Default::default() };
                channel
                    .queue_declare(queue.as_str().into(), durable, FieldTable::default())
                    .await
                    .map(drop)
            }
            Declare::Binding => {
                let key = self.config.routing_key.as_str();
                let options = QueueBindOptions::default();
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        exchange.into(),
                        key.into(),
                        options,
                        FieldTable::default(),
                    )
                    .await
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Declare {
    Exchange,
    Queue,
    Binding,
}
