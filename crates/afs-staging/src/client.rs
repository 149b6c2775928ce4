//! The Azure Files REST client: shares, directories, files and ranges.

use std::fmt;
use std::time::{Duration, SystemTime};

use backoff::Backoff;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::auth::SharedKey;
use crate::error::Error;
use crate::path::RemotePath;

/// The `x-ms-version` every request carries.
pub const API_VERSION: &str = "2025-05-05";

/// The largest range one `Put Range` may write.
pub const MAX_RANGE: u64 = 4 * 1024 * 1024;

/// Path characters sent as they are; everything else is percent-encoded.
const PATH_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credential {
    /// The account key: requests are signed with SharedKey.
    SharedKey(SharedKey),
    /// A SAS token (the query string, without `?`), appended to every request.
    Sas(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::SharedKey(key) => f.debug_tuple("SharedKey").field(key).finish(),
            Credential::Sas(_) => f.write_str("Sas([redacted])"),
        }
    }
}

/// Where the file service is and how to talk to it.
#[derive(Clone)]
pub struct ClientConfig {
    /// The file service endpoint: `https://ACCOUNT.file.core.windows.net`, or a
    /// path-style endpoint such as `http://127.0.0.1:10004/devstoreaccount1`.
    pub endpoint: String,
    /// The credential.
    pub credential: Credential,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// Attempts for one request, transient failures included.
    pub attempts: u32,
    /// First pause between attempts (doubling, with jitter).
    pub initial_backoff: Duration,
    /// Longest pause between attempts.
    pub max_backoff: Duration,
    /// Entries asked for per page of a listing (`maxresults`); `None` leaves it to
    /// the service (5000 on Azure). Listings follow continuation markers either way.
    pub list_page_size: Option<u32>,
    /// How long creating a share waits while a share of the same name is still being
    /// deleted (`409 ShareBeingDeleted`: Azure removes a deleted share in the
    /// background, for seconds to minutes), trying again with backoff.
    pub share_deletion_wait: Duration,
}

/// The endpoint shown without what may be secret in it (see [`shown_endpoint`]).
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field(
                "endpoint",
                &shown_endpoint(&self.endpoint).unwrap_or_else(|| "[redacted]".into()),
            )
            .field("credential", &self.credential)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("attempts", &self.attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("list_page_size", &self.list_page_size)
            .field("share_deletion_wait", &self.share_deletion_wait)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults for `endpoint` and `credential`.
    pub fn new(endpoint: impl Into<String>, credential: Credential) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            credential,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            list_page_size: None,
            share_deletion_wait: Duration::from_secs(300),
        }
    }

    /// The endpoint of an account on Azure's public cloud.
    pub fn azure_endpoint(account: &str) -> String {
        format!("https://{account}.file.core.windows.net")
    }
}

/// A share as listed by the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareItem {
    /// The share name.
    pub name: String,
    /// Its metadata (`x-ms-meta-*`), names lowercased.
    pub metadata: Vec<(String, String)>,
}

/// An entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name within its directory.
    pub name: String,
    /// `Some(length)` for a file, `None` for a directory.
    pub file_len: Option<u64>,
}

/// What identifies one version of a file, for change detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    /// The length in bytes.
    pub len: u64,
    /// The entity tag.
    pub etag: String,
    /// `Last-Modified` as sent.
    pub last_modified: String,
}

impl FileVersion {
    /// The version an answer about a file names: its ETag and Last-Modified (empty
    /// when absent), and the file's whole length, from `Content-Range`'s total for
    /// an answer to a ranged request (`ranged`), else from `Content-Length`. `None`
    /// when that length is missing or not a number.
    pub(crate) fn from_headers(headers: &HeaderMap, ranged: bool) -> Option<FileVersion> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let len = if ranged {
            header("content-range")?.rsplit_once('/')?.1.trim().parse().ok()?
        } else {
            header("content-length")?.trim().parse().ok()?
        };
        Some(FileVersion {
            len,
            etag: header("etag").unwrap_or("").to_owned(),
            last_modified: header("last-modified").unwrap_or("").to_owned(),
        })
    }
}

/// An Azure Files client for one storage account. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FileClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// The scheme and authority of the endpoint: `https://host:port`.
    origin: String,
    /// The path of the endpoint (empty, or `/account` for path-style).
    base_path: String,
    account: Option<String>,
}

/// One request, rebuilt for every attempt.
struct Request<'a> {
    operation: &'static str,
    method: Method,
    /// Percent-encoded path below the endpoint, starting with `/`.
    path: String,
    /// Query parameters (already safe: fixed names and plain values).
    query: Vec<(&'a str, String)>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    /// Statuses that are an answer, not an error.
    accept: &'a [StatusCode],
}

impl FileClient {
    /// A client for the configured endpoint.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let endpoint = config.endpoint.trim_end_matches('/').to_owned();
        // Messages show the endpoint without what may be secret in it.
        let shown = || shown_endpoint(&endpoint).map_or_else(String::new, |e| format!(" {e:?}"));
        let (scheme, rest) = endpoint
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| Error::Config(format!("endpoint{} is not an http(s) URL", shown())))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || rest.contains(['?', '#']) {
            return Err(Error::Config(format!(
                "endpoint{} is not a service URL (scheme, host, port and path only; a SAS \
                 token is a credential)",
                shown()
            )));
        }
        if config.list_page_size == Some(0) {
            return Err(Error::Config("list page size must be at least 1".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))?;
        let account = match &config.credential {
            Credential::SharedKey(key) => Some(key.account().to_owned()),
            Credential::Sas(_) => None,
        };
        Ok(FileClient {
            http,
            origin: format!("{scheme}://{authority}"),
            base_path: path.to_owned(),
            config: ClientConfig { endpoint, ..config },
            account,
        })
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// The account key, when the client signs with one.
    pub fn shared_key(&self) -> Option<&SharedKey> {
        match &self.config.credential {
            Credential::SharedKey(key) => Some(key),
            Credential::Sas(_) => None,
        }
    }

    /// The account name, when the credential names it.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    fn share_path(share: &str) -> String {
        format!("/{}", utf8_percent_encode(share, PATH_SET))
    }

    fn item_path(share: &str, path: &RemotePath) -> String {
        let mut out = Self::share_path(share);
        for segment in path.segments() {
            out.push('/');
            out.extend(utf8_percent_encode(segment, PATH_SET));
        }
        out
    }

    /// Creates a share of `quota_gib` GiB with metadata. `Ok(false)` when it exists.
    /// While a share of that name is still being deleted, waits for it to go, for at
    /// most [`ClientConfig::share_deletion_wait`].
    pub async fn create_share(
        &self,
        share: &str,
        quota_gib: u32,
        metadata: &[(&str, &str)],
    ) -> Result<bool, Error> {
        let mut headers = vec![(h("x-ms-share-quota"), quota_gib.to_string())];
        for (name, value) in metadata {
            headers.push((meta_header(name)?, (*value).to_owned()));
        }
        let started = std::time::Instant::now();
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        loop {
            let response = self
                .send(Request {
                    operation: "create share",
                    method: Method::PUT,
                    path: Self::share_path(share),
                    query: vec![("restype", "share".into())],
                    headers: headers.clone(),
                    body: None,
                    accept: &[StatusCode::CONFLICT],
                })
                .await?;
            if response.status() != StatusCode::CONFLICT {
                return Ok(true);
            }
            let code = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok());
            let waited = started.elapsed();
            match code {
                Some("ShareAlreadyExists") => return Ok(false),
                Some("ShareBeingDeleted") if waited < self.config.share_deletion_wait => {
                    let delay = backoff.next_delay().min(self.config.share_deletion_wait - waited);
                    tracing::debug!(
                        share,
                        delay_ms = delay.as_millis() as u64,
                        "share still being deleted; waiting to create it again"
                    );
                    tokio::time::sleep(delay).await;
                }
                // Still being deleted after the wait, or a conflict of another kind.
                _ => {
                    let resource = decode_for_display(&Self::share_path(share));
                    return Err(Error::from_response("create share", &resource, response).await);
                }
            }
        }
    }

    /// Deletes a share with its snapshots. `Ok(false)` when there was none.
    pub async fn delete_share(&self, share: &str) -> Result<bool, Error> {
        let response = self
            .send(Request {
                operation: "delete share",
                method: Method::DELETE,
                path: Self::share_path(share),
                query: vec![("restype", "share".into())],
                headers: vec![(h("x-ms-delete-snapshots"), "include".into())],
                body: None,
                accept: &[StatusCode::NOT_FOUND],
            })
            .await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// Whether a share exists.
    pub async fn share_exists(&self, share: &str) -> Result<bool, Error> {
        let response = self
            .send(Request {
                operation: "get share properties",
                method: Method::HEAD,
                path: Self::share_path(share),
                query: vec![("restype", "share".into())],
                headers: vec![],
                body: None,
                accept: &[StatusCode::NOT_FOUND],
            })
            .await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// Every share whose name starts with `prefix`, with metadata.
    pub async fn list_shares(&self, prefix: &str) -> Result<Vec<ShareItem>, Error> {
        let mut shares = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![
                ("comp", "list".to_owned()),
                ("include", "metadata".to_owned()),
                ("prefix", prefix.to_owned()),
            ];
            if let Some(size) = self.config.list_page_size {
                query.push(("maxresults", size.to_string()));
            }
            if let Some(marker) = marker.take() {
                query.push(("marker", marker));
            }
            let response = self
                .send(Request {
                    operation: "list shares",
                    method: Method::GET,
                    path: String::new(),
                    query,
                    headers: vec![],
                    body: None,
                    accept: &[],
                })
                .await?;
            let body = self.text(response, "list shares", "").await?;
            let page = crate::xml::parse_share_list(&body)
                .map_err(|e| Error::malformed("list shares", "", e))?;
            shares.extend(page.items);
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(shares),
            }
        }
    }

    /// Creates one directory whose parent exists. `Ok(false)` when it exists.
    pub async fn create_directory(&self, share: &str, path: &RemotePath) -> Result<bool, Error> {
        let response = self
            .send(Request {
                operation: "create directory",
                method: Method::PUT,
                path: Self::item_path(share, path),
                query: vec![("restype", "directory".into())],
                headers: vec![],
                body: None,
                accept: &[StatusCode::CONFLICT],
            })
            .await?;
        Ok(response.status() != StatusCode::CONFLICT)
    }

    /// Creates a directory and any missing parents.
    pub async fn create_directory_all(&self, share: &str, path: &RemotePath) -> Result<(), Error> {
        let mut prefix = RemotePath::root();
        for segment in path.segments() {
            prefix = prefix.join(segment)?;
            self.create_directory(share, &prefix).await?;
        }
        Ok(())
    }

    /// Deletes an empty directory. `Ok(false)` when there was none.
    pub async fn delete_directory(&self, share: &str, path: &RemotePath) -> Result<bool, Error> {
        let response = self
            .send(Request {
                operation: "delete directory",
                method: Method::DELETE,
                path: Self::item_path(share, path),
                query: vec![("restype", "directory".into())],
                headers: vec![],
                body: None,
                accept: &[StatusCode::NOT_FOUND],
            })
            .await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// The entries of a directory, all pages.
    pub async fn list_directory(
        &self,
        share: &str,
        path: &RemotePath,
    ) -> Result<Vec<DirEntry>, Error> {
        let mut entries = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("comp", "list".to_owned()), ("restype", "directory".to_owned())];
            if let Some(size) = self.config.list_page_size {
                query.push(("maxresults", size.to_string()));
            }
            if let Some(marker) = marker.take() {
                query.push(("marker", marker));
            }
            let response = self
                .send(Request {
                    operation: "list directory",
                    method: Method::GET,
                    path: Self::item_path(share, path),
                    query,
                    headers: vec![],
                    body: None,
                    accept: &[],
                })
                .await?;
            let body = self.text(response, "list directory", path.as_str()).await?;
            let page = crate::xml::parse_dir_list(&body)
                .map_err(|e| Error::malformed("list directory", path.as_str(), e))?;
            entries.extend(page.items);
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(entries),
            }
        }
    }

    /// Creates (or truncates) a file of `len` bytes, all zero until ranges are put.
    pub async fn create_file(&self, share: &str, path: &RemotePath, len: u64) -> Result<(), Error> {
        self.send(Request {
            operation: "create file",
            method: Method::PUT,
            path: Self::item_path(share, path),
            query: vec![],
            headers: vec![
                (h("x-ms-type"), "file".into()),
                (h("x-ms-content-length"), len.to_string()),
                (h("x-ms-file-attributes"), "None".into()),
                (h("x-ms-file-creation-time"), "now".into()),
                (h("x-ms-file-last-write-time"), "now".into()),
                (h("x-ms-file-permission"), "inherit".into()),
            ],
            body: None,
            accept: &[],
        })
        .await?;
        Ok(())
    }

    /// Writes `data` (at most [`MAX_RANGE`] bytes) at `offset`.
    pub async fn put_range(
        &self,
        share: &str,
        path: &RemotePath,
        offset: u64,
        data: Bytes,
    ) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        debug_assert!(data.len() as u64 <= MAX_RANGE);
        let end = offset + data.len() as u64 - 1;
        self.send(Request {
            operation: "put range",
            method: Method::PUT,
            path: Self::item_path(share, path),
            query: vec![("comp", "range".into())],
            headers: vec![
                (h("x-ms-range"), format!("bytes={offset}-{end}")),
                (h("x-ms-write"), "update".into()),
            ],
            body: Some(data),
            accept: &[],
        })
        .await?;
        Ok(())
    }

    /// The file's version, or `None` when there is no such file.
    pub async fn file_version(
        &self,
        share: &str,
        path: &RemotePath,
    ) -> Result<Option<FileVersion>, Error> {
        let response = self
            .send(Request {
                operation: "get file properties",
                method: Method::HEAD,
                path: Self::item_path(share, path),
                query: vec![],
                headers: vec![],
                body: None,
                accept: &[StatusCode::NOT_FOUND],
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        FileVersion::from_headers(response.headers(), false).map(Some).ok_or_else(|| {
            Error::malformed("get file properties", path.as_str(), "no Content-Length")
        })
    }

    /// Starts reading a file, or the bytes `range` of it. The response body streams.
    pub async fn get_file(
        &self,
        share: &str,
        path: &RemotePath,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response, Error> {
        let mut headers = vec![];
        if let Some((start, end)) = range {
            headers.push((h("x-ms-range"), format!("bytes={start}-{end}")));
        }
        self.send(Request {
            operation: "get file",
            method: Method::GET,
            path: Self::item_path(share, path),
            query: vec![],
            headers,
            body: None,
            accept: &[],
        })
        .await
    }

    /// Deletes a file. `Ok(false)` when there was none.
    pub async fn delete_file(&self, share: &str, path: &RemotePath) -> Result<bool, Error> {
        let response = self
            .send(Request {
                operation: "delete file",
                method: Method::DELETE,
                path: Self::item_path(share, path),
                query: vec![],
                headers: vec![],
                body: None,
                accept: &[StatusCode::NOT_FOUND],
            })
            .await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// Reads a whole response body as text, retrying nothing (the caller's request
    /// already succeeded).
    async fn text(
        &self,
        response: reqwest::Response,
        operation: &'static str,
        resource: &str,
    ) -> Result<String, Error> {
        response.text().await.map_err(|e| Error::network(operation, resource, e))
    }

    /// Sends a request, retrying transient failures with backoff and honouring
    /// `Retry-After`; returns the response when its status is a success or in
    /// `accept`, else the service's error.
    async fn send(&self, request: Request<'_>) -> Result<reqwest::Response, Error> {
        let resource = decode_for_display(&request.path);
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(&request).await;
            let error = match result {
                Ok(response)
                    if response.status().is_success()
                        || request.accept.contains(&response.status()) =>
                {
                    return Ok(response);
                }
                Ok(response) => {
                    let retry_after = retry_after(response.headers());
                    let error = Error::from_response(request.operation, &resource, response).await;
                    (error, retry_after)
                }
                // Nothing was sent, and sending again would not help.
                Err(SendError::Header(header)) => {
                    return Err(Error::InvalidHeader {
                        operation: request.operation,
                        resource,
                        header,
                    });
                }
                Err(SendError::Network(source)) => {
                    (Error::network(request.operation, &resource, source), None)
                }
            };
            let (error, retry_after) = error;
            metrics::counter!("aci_worker_storage_errors_total", "operation" => request.operation)
                .increment(1);
            if !error.is_transient() || attempt >= self.config.attempts {
                return Err(error);
            }
            let delay = match retry_after {
                Some(after) => after.max(backoff.next_delay()),
                None => backoff.next_delay(),
            };
            tracing::debug!(
                operation = request.operation,
                resource = %resource,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying Azure Files request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(&self, request: &Request<'_>) -> Result<reqwest::Response, SendError> {
        let path = format!("{}{}", self.base_path, request.path);
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let mut query = String::new();
        for (name, value) in &request.query {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            query.extend(utf8_percent_encode(value, PATH_SET));
        }
        if let Credential::Sas(token) = &self.config.credential {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(token.trim_start_matches('?'));
        }
        let mut headers: Vec<(&str, String)> = Vec::with_capacity(request.headers.len() + 4);
        headers.push(("x-ms-version", API_VERSION.to_owned()));
        headers.push(("x-ms-date", httpdate::fmt_http_date(SystemTime::now())));
        for (name, value) in &request.headers {
            headers.push((name.as_str(), value.clone()));
        }
        let body_len = request.body.as_ref().map_or(0, Bytes::len);
        if request.method == Method::PUT || body_len > 0 {
            headers.push(("content-length", body_len.to_string()));
        }
        if let Credential::SharedKey(key) = &self.config.credential {
            let query = (!query.is_empty()).then_some(query.as_str());
            let authorization = key.authorization(
                request.method.as_str(),
                &path,
                query,
                headers.iter().map(|(n, v)| (*n, v.as_str())),
            );
            headers.push(("authorization", authorization));
        }
        let url = if query.is_empty() {
            format!("{}{path}", self.origin)
        } else {
            format!("{}{path}?{query}", self.origin)
        };
        let mut map = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            // Names are fixed or checked metadata names; values may be anything the
            // caller gave (metadata). One that is not printable ASCII fails the
            // request rather than being signed and then left out or mangled (HTTP
            // would carry other bytes as opaque, Azure refuses them).
            let printable = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            let value = HeaderValue::from_str(&value)
                .ok()
                .filter(|_| printable)
                .ok_or_else(|| SendError::Header(name.to_owned()))?;
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header names are valid");
            map.insert(name, value);
        }
        let mut builder = self.http.request(request.method.clone(), url).headers(map);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| SendError::Network(e.without_url()))
    }
}

/// Why one attempt got no answer.
enum SendError {
    /// The header of this name has a value that is not printable ASCII.
    Header(String),
    /// The connection failed or timed out.
    Network(reqwest::Error),
}

/// Metadata names become `x-ms-meta-NAME` headers; only simple names are accepted.
fn meta_header(name: &str) -> Result<String, Error> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(Error::Config(format!("metadata name {name:?} is not a C# identifier")));
    }
    Ok(format!("x-ms-meta-{name}"))
}

/// `x-ms-retry-after-ms`, else `Retry-After` (seconds or an HTTP date), capped at a minute.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = value("x-ms-retry-after-ms").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_millis(ms.min(60_000)));
    }
    value("retry-after")
        .and_then(|v| backoff::retry_after(v, SystemTime::now(), Duration::from_secs(60)))
}

/// An endpoint as messages and `Debug` show it: `scheme://host[:port]/path`, without
/// user information, query (which may hold a SAS signature) or fragment. `None` when
/// it is not a URL at all (it could be anything, a key pasted in the wrong place).
fn shown_endpoint(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    Some(format!("{scheme}://{host}{path}"))
}

fn h(name: &str) -> String {
    name.to_owned()
}

fn decode_for_display(path: &str) -> String {
    percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

    fn config() -> ClientConfig {
        // Nothing listens on port 9: a request that were sent would fail as Network.
        let key = SharedKey::new("devstoreaccount1", KEY).unwrap();
        let mut config =
            ClientConfig::new("http://127.0.0.1:9/devstoreaccount1", Credential::SharedKey(key));
        config.attempts = 1;
        config
    }

    #[tokio::test]
    async fn a_header_value_that_cannot_be_sent_is_an_error() {
        let client = FileClient::new(config()).unwrap();
        for value in ["caf\u{e9}", "two\nlines", "del\u{7f}"] {
            let err = client.create_share("share", 1, &[("owner", value)]).await.unwrap_err();
            match &err {
                Error::InvalidHeader { operation, resource, header } => {
                    assert_eq!(*operation, "create share");
                    assert_eq!(resource, "/share");
                    assert_eq!(header, "x-ms-meta-owner");
                }
                other => panic!("{value:?}: expected InvalidHeader, got {other:?}"),
            }
            assert!(!err.is_transient());
            assert!(err.to_string().contains("x-ms-meta-owner"), "{err}");
            assert!(!err.to_string().contains(value), "{err}");
        }
        // A value that can be sent goes out (and meets nobody on port 9).
        let err = client.create_share("share", 1, &[("owner", "plain")]).await.unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
    }

    #[test]
    fn endpoints_are_shown_without_secrets() {
        let secret = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D";
        let cases = [
            (
                format!("https://acct.file.core.windows.net/?sv=2025-05-05&sp=rl&sig={secret}"),
                Some("https://acct.file.core.windows.net/"),
            ),
            (
                format!("https://user:{secret}@acct.file.core.windows.net:443/path"),
                Some("https://acct.file.core.windows.net:443/path"),
            ),
            (
                format!("http://127.0.0.1:10004/devstoreaccount1#{secret}"),
                Some("http://127.0.0.1:10004/devstoreaccount1"),
            ),
            (format!("ftp://u:{secret}@host/x?sig={secret}"), Some("ftp://host/x")),
            (format!("sv=2025-05-05&sig={secret}"), None),
            (secret.to_owned(), None),
        ];
        for (endpoint, shown) in cases {
            assert_eq!(shown_endpoint(&endpoint).as_deref(), shown, "{endpoint}");
            let config = ClientConfig { endpoint: endpoint.clone(), ..config() };
            let debug = format!("{config:?}");
            assert!(!debug.contains(secret), "{debug}");
            let err = FileClient::new(config).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(matches!(err, Error::Config(_)), "{text}");
            assert!(!text.contains(secret), "{text}");
            if let Some(shown) = shown {
                assert!(text.contains(shown), "{text}");
            }
        }
        // A usable endpoint is shown whole.
        let client = FileClient::new(config()).unwrap();
        assert!(format!("{client:?}").contains("http://127.0.0.1:9/devstoreaccount1"));
    }

    #[test]
    fn a_page_size_of_zero_is_refused() {
        let err = FileClient::new(ClientConfig { list_page_size: Some(0), ..config() });
        assert!(matches!(err, Err(Error::Config(_))), "{err:?}");
        assert!(FileClient::new(ClientConfig { list_page_size: Some(1), ..config() }).is_ok());
    }
}
