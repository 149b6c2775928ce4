//! Errors of the broker client.

use crate::message::DecodeError;

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Could not open a connection or channel.
    #[error("connecting to {broker} failed")]
    Connect {
        /// The broker, password hidden.
        broker: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// The TLS settings cannot be used.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The queue could not be attached to or declared.
    #[error("attaching to queue {queue} failed")]
    Attach {
        /// The queue.
        queue: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// Acknowledging a delivery failed.
    #[error("acknowledging delivery failed")]
    Ack(#[source] lapin::Error),
    /// The delivery belongs to a connection that was lost; the broker hands the
    /// message out again, so it must not be acknowledged now.
    #[error("the delivery's connection was lost; the broker will redeliver it")]
    DeliveryLost,
    /// The broker refused the publish (no permission, no such exchange).
    #[error("the broker refused the publish to exchange {exchange:?}: {reason}")]
    PublishRefused {
        /// The exchange.
        exchange: String,
        /// The AMQP reply code (403 access refused, 404 no such exchange), when
        /// the broker gave one.
        code: Option<u16>,
        /// The broker's reply text.
        reason: String,
    },
    /// The message could not be routed to any queue.
    #[error(
        "the message to exchange {exchange:?} with routing key {routing_key:?} reached no queue"
    )]
    Unroutable {
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
    },
    /// Publishing was retried until the deadline without a confirmation.
    #[error("no publisher confirmation within {seconds} s")]
    PublishTimeout {
        /// The deadline that passed.
        seconds: u64,
        /// The last failure seen.
        #[source]
        last: Option<Box<Error>>,
    },
    /// The broker did not confirm the publish (nack).
    #[error("the broker did not accept the message (nack)")]
    Nack,
    /// Another broker operation failed.
    #[error("{operation} failed")]
    Broker {
        /// What was being done.
        operation: &'static str,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Error {
    /// Whether the same operation may succeed later: connection trouble, timeouts
    /// and nacks are; refusals and unroutable messages are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. } | Error::Broker { source, .. } => {
                !matches!(reply_code(source), Some(403 | 404 | 406 | 530))
                    && !is_tls_refusal(source)
            }
            Error::Attach { source, .. } => !matches!(reply_code(source), Some(403 | 406)),
            Error::Ack(_) | Error::DeliveryLost | Error::Nack | Error::PublishTimeout { .. } => {
                true
            }
            Error::Tls(_)
            | Error::PublishRefused { .. }
            | Error::Unroutable { .. }
            | Error::Decode(_) => false,
        }
    }
}

impl Error {
    /// Whether the broker answered that the queue or exchange does not exist
    /// (404 NOT_FOUND), as opposed to refusing access or being unreachable.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Connect { source, .. }
            | Error::Broker { source, .. }
            | Error::Attach { source, .. } => reply_code(source) == Some(404),
            Error::PublishRefused { code, .. } => *code == Some(404),
            _ => false,
        }
    }
}

/// A TLS handshake that failed on the certificate: the same broker will refuse
/// again until someone changes the configuration.
fn is_tls_refusal(e: &lapin::Error) -> bool {
    match e.kind() {
        lapin::ErrorKind::IOError(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// The AMQP reply code of a broker error (403 access refused, 404 not found, ...).
pub(crate) fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// The broker's reply text of a broker error.
pub(crate) fn reply_text(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().as_str().to_owned(),
        _ => e.to_string(),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
