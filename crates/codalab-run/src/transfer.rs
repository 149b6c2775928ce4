//! Moving files to and from signed URLs: Azure SAS and S3 presigned URLs over
//! HTTP(S), and `file://` URLs when allowed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use backoff::Backoff;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};
use tokio::io::AsyncWriteExt;

use crate::task::SignedUrl;

/// How transfers behave.
#[derive(Clone, Debug)]
pub struct TransferConfig {
    /// Accept `file://` URLs (for running tasks locally); off for tasks from a site.
    pub allow_file_urls: bool,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// Attempts for one transfer, transient failures included.
    pub attempts: u32,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            allow_file_urls: false,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            attempts: 5,
        }
    }
}

/// A failed transfer. URLs in messages never show their query string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The server answered with an error status.
    #[error("{url} answered {status}")]
    Status {
        /// The URL, query hidden.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// The connection failed or timed out.
    #[error("request to {url} failed")]
    Network {
        /// The URL, query hidden.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A URL this worker does not fetch.
    #[error("unsupported URL {0}: only https://, http:// and (for local runs) file:// are fetched")]
    Unsupported(String),
}

impl TransferError {
    /// Timeouts, dropped connections, 408, 429 and 5xx may pass; the rest will not.
    pub fn is_transient(&self) -> bool {
        match self {
            TransferError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            TransferError::Network { .. } => true,
            TransferError::Io { .. } | TransferError::Unsupported(_) => false,
        }
    }
}

/// Downloads and uploads with retries.
#[derive(Clone, Debug)]
pub struct Transfer {
    client: reqwest::Client,
    config: TransferConfig,
}

impl Transfer {
    /// A transfer client with its own connection pool.
    pub fn new(config: TransferConfig) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("aci-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initializes");
        Transfer { client, config }
    }

    /// Streams `url` into the file `dest` (created or truncated); returns its size.
    pub async fn download(&self, url: &SignedUrl, dest: &Path) -> Result<u64, TransferError> {
        if let Some(path) = self.local_path(url)? {
            return tokio::fs::copy(&path, dest).await.map_err(|e| io(&path, e));
        }
        self.retrying(url, || self.download_once(url, dest)).await
    }

    /// Uploads the file `src` to `url` with `PUT` and `x-ms-blob-type: BlockBlob`
    /// (which S3 ignores); returns the bytes sent.
    pub async fn upload(&self, url: &SignedUrl, src: &Path) -> Result<u64, TransferError> {
        if let Some(path) = self.local_path(url)? {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| io(parent, e))?;
            }
            return tokio::fs::copy(src, &path).await.map_err(|e| io(&path, e));
        }
        self.retrying(url, || self.upload_once(url, src)).await
    }

    async fn retrying<F, Fut>(&self, url: &SignedUrl, attempt: F) -> Result<u64, TransferError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<u64, TransferError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(20));
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Ok(n) => return Ok(n),
                Err(e) if e.is_transient() && tries < self.config.attempts => {
                    let delay = backoff.next_delay();
                    tracing::debug!(%url, error = %e, attempt = tries, "transfer failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn download_once(&self, url: &SignedUrl, dest: &Path) -> Result<u64, TransferError> {
        let network = |source| TransferError::Network { url: url.to_string(), source };
        let response = self.client.get(url.expose()).send().await.map_err(network)?;
        if !response.status().is_success() {
            return Err(TransferError::Status { url: url.to_string(), status: response.status() });
        }
        let file = tokio::fs::File::create(dest).await.map_err(|e| io(dest, e))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut stream = response.bytes_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(network)?;
            file.write_all(&chunk).await.map_err(|e| io(dest, e))?;
            total += chunk.len() as u64;
        }
        file.flush().await.map_err(|e| io(dest, e))?;
        Ok(total)
    }

    async fn upload_once(&self, url: &SignedUrl, src: &Path) -> Result<u64, TransferError> {
        let file = tokio::fs::File::open(src).await.map_err(|e| io(src, e))?;
        let size = file.metadata().await.map_err(|e| io(src, e))?.len();
        let response = self
            .client
            .put(url.expose())
            .header("x-ms-blob-type", "BlockBlob")
            // Azure refuses chunked uploads: the length goes first.
            .header(CONTENT_LENGTH, HeaderValue::from(size))
            .body(reqwest::Body::from(file))
            .send()
            .await
            .map_err(|source| TransferError::Network { url: url.to_string(), source })?;
        if !response.status().is_success() {
            return Err(TransferError::Status { url: url.to_string(), status: response.status() });
        }
        Ok(size)
    }

    fn local_path(&self, url: &SignedUrl) -> Result<Option<PathBuf>, TransferError> {
        let raw = url.expose();
        let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => Ok(None),
            Some("file") if self.config.allow_file_urls => {
                Ok(Some(PathBuf::from(&raw["file://".len()..])))
            }
            _ => Err(TransferError::Unsupported(url.to_string())),
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> TransferError {
    TransferError::Io { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_urls_only_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.txt");
        std::fs::write(&src, "hello").unwrap();
        let url = SignedUrl::new(format!("file://{}", src.display()));
        let strict = Transfer::new(TransferConfig::default());
        let err = strict.download(&url, &dir.path().join("b")).await.unwrap_err();
        assert!(matches!(err, TransferError::Unsupported(_)) && !err.is_transient());

        let local = Transfer::new(TransferConfig { allow_file_urls: true, ..Default::default() });
        assert_eq!(local.download(&url, &dir.path().join("b.txt")).await.unwrap(), 5);
        let up = SignedUrl::new(format!("file://{}/up/c.txt", dir.path().display()));
        local.upload(&up, &src).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("up/c.txt")).unwrap(), "hello");
        let ftp = SignedUrl::new("ftp://x/y");
        assert!(matches!(
            local.download(&ftp, &dir.path().join("z")).await,
            Err(TransferError::Unsupported(_))
        ));
    }
}
