//! Errors of the Azure Files client and of staging.

use std::fmt;
use std::path::PathBuf;

/// A failed Azure Files operation. Messages name the operation and the share path,
/// never a key, a signature or a SAS token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status.
    #[error("{operation} {resource}: {status}{}{}{}",
        code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Service {
        /// What was attempted, e.g. `create file`.
        operation: &'static str,
        /// The share path it concerned.
        resource: String,
        /// The HTTP status.
        status: u16,
        /// The storage error code (`x-ms-error-code`), e.g. `ShareNotFound`.
        code: Option<String>,
        /// The first line of the service's message.
        message: Option<String>,
        /// The service's request id, for support cases.
        request_id: Option<String>,
    },
    /// No answer: connection refused, reset or timed out.
    #[error("{operation} {resource}: no answer from the file service")]
    Network {
        /// What was attempted.
        operation: &'static str,
        /// The share path it concerned.
        resource: String,
        /// The cause (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The service's answer could not be understood.
    #[error("{operation} {resource}: unexpected answer: {detail}")]
    Malformed {
        /// What was attempted.
        operation: &'static str,
        /// The share path it concerned.
        resource: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A name that Azure Files cannot hold, or a remote name that is not safe locally.
    #[error("{0}")]
    InvalidPath(String),
    /// The client or staging configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A request header whose value cannot be sent: not printable ASCII, e.g.
    /// metadata with non-ASCII characters or a line break. Nothing was sent.
    #[error("{operation} {resource}: header {header} has a value that cannot be sent")]
    InvalidHeader {
        /// What was attempted.
        operation: &'static str,
        /// The share path it concerned.
        resource: String,
        /// The header's name (its value is left out: it may be anything).
        header: String,
    },
}

impl Error {
    /// Whether trying again may succeed: no answer, 408, 429 and 5xx except 501 (Not
    /// Implemented) and 505 (HTTP Version Not Supported), which answer the same again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Service { status, .. } => {
                matches!(status, 408 | 429 | 500..=599) && !matches!(status, 501 | 505)
            }
            Error::Network { .. } => true,
            _ => false,
        }
    }

    /// The storage error code, when the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn network(operation: &'static str, resource: &str, source: reqwest::Error) -> Self {
        Error::Network { operation, resource: resource.to_owned(), source: source.without_url() }
    }

    pub(crate) fn malformed(
        operation: &'static str,
        resource: &str,
        detail: impl fmt::Display,
    ) -> Self {
        Error::Malformed { operation, resource: resource.to_owned(), detail: detail.to_string() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Builds the error from an error response, reading at most a few KiB of it.
    pub(crate) async fn from_response(
        operation: &'static str,
        resource: &str,
        mut response: reqwest::Response,
    ) -> Self {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let mut code = header("x-ms-error-code");
        let request_id = header("x-ms-request-id");
        let mut body = Vec::new();
        while body.len() < 16 * 1024 {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&body);
        let (body_code, message) = crate::xml::parse_error(&text);
        if code.is_none() {
            code = body_code;
        }
        // Only the first line: later lines repeat the request id and time, and an
        // authentication failure's detail would echo the signature that was sent.
        let message = message.and_then(|m| {
            let first = m.lines().next().unwrap_or("").trim();
            (!first.is_empty()).then(|| first.chars().take(300).collect())
        });
        Error::Service {
            operation,
            resource: resource.to_owned(),
            status,
            code,
            message,
            request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16) -> Error {
        Error::Service {
            operation: "get file",
            resource: "share/a.txt".into(),
            status,
            code: None,
            message: None,
            request_id: None,
        }
    }

    #[test]
    fn transient_statuses() {
        for status in [408, 429, 500, 502, 503, 504, 507, 599] {
            assert!(service(status).is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 412, 416, 501, 505] {
            assert!(!service(status).is_transient(), "{status}");
        }
        assert!(!Error::Config("x".into()).is_transient());
        let header = Error::InvalidHeader {
            operation: "create share",
            resource: "s".into(),
            header: "x-ms-meta-a".into(),
        };
        assert!(!header.is_transient());
    }

    #[test]
    fn service_errors_show_code_and_request_id() {
        let err = Error::Service {
            operation: "create share",
            resource: "s".into(),
            status: 409,
            code: Some("ShareAlreadyExists".into()),
            message: Some("The specified share already exists.".into()),
            request_id: Some("0f1e2d3c".into()),
        };
        assert_eq!(
            err.to_string(),
            "create share s: 409 ShareAlreadyExists: The specified share already exists. \
             (request id 0f1e2d3c)"
        );
        assert_eq!(err.code(), Some("ShareAlreadyExists"));
    }
}
