//! The Azure Files part: the REST API of one storage account's file service, with
//! path-style URLs (`http://127.0.0.1:PORT/<account>/<share>/<dir>/<file>`), on
//! plain directories.
//!
//! Every request is authenticated (SharedKey or SAS), may meet an injected fault,
//! and is answered with the status codes, headers and XML bodies that Azure Files
//! uses; see the crate documentation for what is covered.

mod auth;
mod error;
mod names;
mod ops;
mod store;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use afs_staging::auth::SharedKey;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::StreamExt as _;

use crate::faults::{Fault, FaultInjector, Faults};
use error::StorageError;
use store::Store;

/// The storage account name that Azurite and the Azure SDKs' emulator settings use.
pub const DEFAULT_ACCOUNT: &str = "devstoreaccount1";

/// The key of [`DEFAULT_ACCOUNT`], the same in every Azurite; it is public and
/// protects nothing.
pub const DEFAULT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The `x-ms-version` answered when a request names none.
const DEFAULT_VERSION: &str = "2025-05-05";

/// The most of an unread request body read (and dropped) before an error answer, so
/// that a client still sending a range gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 8 << 20;

/// Settings of the Files part.
#[derive(Clone)]
pub struct FilesConfig {
    /// The storage account name, the first segment of every path.
    pub account: String,
    /// The account key, base64, as Azure shows it.
    pub key: String,
    /// Where shares live: `<data_dir>/shares/<share>/` holds a share's files and
    /// directories, `<data_dir>/meta/` their properties. Created if missing.
    pub data_dir: PathBuf,
    /// Faults injected from the start (none by default).
    pub faults: Faults,
}

impl FilesConfig {
    /// The default account and key ([`DEFAULT_ACCOUNT`], [`DEFAULT_KEY`]), no faults.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        FilesConfig {
            account: DEFAULT_ACCOUNT.to_owned(),
            key: DEFAULT_KEY.to_owned(),
            data_dir: data_dir.into(),
            faults: Faults::default(),
        }
    }
}

impl fmt::Debug for FilesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesConfig")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .field("faults", &self.faults)
            .finish()
    }
}

/// The state shared by all requests of the Files part.
pub(crate) struct FilesService {
    account: String,
    /// The key as configured (base64), for ARM's checks of `azureFile` volumes.
    account_key: String,
    key: SharedKey,
    store: Arc<Store>,
    faults: FaultInjector,
    /// When each share was last deleted, for `Faults::share_deletion_lag`.
    deleted: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
    requests: AtomicU64,
    /// `http://host:port/<account>`.
    endpoint: String,
}

impl FilesService {
    /// Opens the data directory; `endpoint` is the account's URL as clients reach it.
    pub(crate) fn new(config: FilesConfig, endpoint: String) -> std::io::Result<Self> {
        let key = SharedKey::new(&config.account, &config.key)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let store = Store::open(&config.data_dir)?;
        Ok(FilesService {
            account: config.account,
            account_key: config.key,
            key,
            store: Arc::new(store),
            faults: FaultInjector::new(config.faults),
            deleted: Default::default(),
            requests: AtomicU64::new(0),
            endpoint,
        })
    }

    /// Notes that `share` was deleted just now.
    fn deleted(&self, share: String) {
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        deleted.retain(|_, at| at.elapsed() < self.faults.share_deletion_lag());
        if !self.faults.share_deletion_lag().is_zero() {
            deleted.insert(share, Instant::now());
        }
    }

    /// `409 ShareBeingDeleted` while `share` was deleted less than the configured lag
    /// ago.
    fn refuse_while_deleting(&self, share: &str) -> Result<(), StorageError> {
        let deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        match deleted.get(share) {
            Some(at) if at.elapsed() < self.faults.share_deletion_lag() => Err(StorageError::new(
                axum::http::StatusCode::CONFLICT,
                "ShareBeingDeleted",
                "The specified share is being deleted. Try operation later.",
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn share_dir(&self, share: &str) -> PathBuf {
        self.store.share_dir(share)
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// The storage account's name.
    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    /// Whether `key` is the account key, as an `azureFile` volume must carry it.
    pub(crate) fn key_matches(&self, key: &str) -> bool {
        key.trim() == self.account_key.trim()
    }

    /// Whether share `share` exists (blocking: a look at its directory).
    pub(crate) fn share_exists(&self, share: &str) -> bool {
        names::check_share_name(share).is_ok() && self.store.share_info(share).is_ok()
    }

    /// The data directory, canonicalized.
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.store.root()
    }

    pub(crate) fn requests_served(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The HTTP routes of the Files part: every path is the account's.
    pub(crate) fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self)
    }
}

/// One request: latency and faults, then the operation, then the headers every
/// answer carries.
async fn handle(State(service): State<Arc<FilesService>>, request: Request) -> Response {
    let started = Instant::now();
    let plan = service.faults.plan();
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let (parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;
    let mut body = Some(body);

    // What the log calls the request: the operation, "fault" when a fault answered
    // in its place, "-" when it was refused before it was recognised.
    let (label, result) = match plan.before {
        Some(fault) => ("fault", Err(fault_error(fault))),
        None => {
            let (op, result) = ops::run(&service, &parts, &mut body).await;
            let result = match (result, plan.after) {
                (Ok(_), Some(fault)) => Err(fault_error(fault)),
                (result, _) => result,
            };
            (op.map_or("-", ops::Op::name), result)
        }
    };
    let mut response = match result {
        Ok(response) => response,
        Err(err) => err.into_response(head),
    };
    if let Some(body) = body.take() {
        drain(body).await;
    }

    let version = parts
        .headers
        .get("x-ms-version")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_VERSION));
    let headers = response.headers_mut();
    common_headers(headers, version);
    if let Some(id) = parts.headers.get("x-ms-client-request-id") {
        headers.insert(HeaderName::from_static("x-ms-client-request-id"), id.clone());
    }
    service.requests.fetch_add(1, Ordering::Relaxed);
    // The path only: a query may hold a SAS signature.
    tracing::debug!(
        op = label,
        method = %parts.method,
        path = parts.uri.path(),
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "files request",
    );
    response
}

fn common_headers(headers: &mut HeaderMap, version: HeaderValue) {
    let request_id = uuid::Uuid::new_v4().to_string();
    headers.insert(
        HeaderName::from_static("x-ms-request-id"),
        HeaderValue::from_str(&request_id).expect("a UUID is a valid header value"),
    );
    headers.insert(HeaderName::from_static("x-ms-version"), version);
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    headers.insert(header::DATE, HeaderValue::from_str(&date).expect("an HTTP date"));
    headers.insert(header::SERVER, HeaderValue::from_static("azure-emulator"));
}

fn fault_error(fault: Fault) -> StorageError {
    use axum::http::StatusCode;
    match fault {
        Fault::InternalError => StorageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
        ),
        Fault::ServerBusy => StorageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServerBusy",
            "The server is currently unable to receive requests. Please retry your request.",
        ),
        Fault::Throttled => StorageError {
            retry_after: Some(1),
            ..StorageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServerBusy",
                "Operations per second is over the account limit.",
            )
        },
    }
}

/// Reads what is left of a request body, up to [`DRAIN_LIMIT`].
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut read = 0;
    while read < DRAIN_LIMIT {
        match stream.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
}

/// Query parameters by lowercased name, values decoded.
fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    afs_staging::auth::query_map(query.unwrap_or(""))
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect()
}
