//! Failures of the platform that runs jobs.

/// A boxed error from the layer below a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a backend could not run a job. A container's own failure is not an error but
/// an [`Outcome`](crate::Outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec asks for something impossible; retrying will not help.
    #[error("invalid job: {0}")]
    InvalidSpec(String),
    /// The image could not be pulled. `reason` is the registry's or engine's own
    /// words, meant for the participant.
    #[error("image {image} could not be pulled: {reason}")]
    ImageUnavailable {
        /// The reference as given.
        image: String,
        /// What the registry or engine said.
        reason: String,
    },
    /// A step of the backend failed: the engine, the cloud API, storage or network.
    #[error("{operation} failed")]
    Platform {
        /// What the backend was doing, e.g. `create container`.
        operation: &'static str,
        /// Whether the same job may succeed if tried again later.
        transient: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A platform failure of `operation`.
    pub fn platform(operation: &'static str, transient: bool, source: impl Into<BoxError>) -> Self {
        Error::Platform { operation, transient, source: source.into() }
    }

    /// Whether trying the same job again later may succeed. Callers decide between
    /// requeue and failure with this, not by matching variants.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Platform { transient: true, .. })
    }
}

/// An error and its sources on one line, `outer: inner: innermost`, for logs and for
/// the text a participant reads.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
