//! A local stand-in for Azure services, for tests and development without a cloud
//! account. This version emulates **Azure Files**: the REST API of a storage
//! account's file service, on plain directories, with faults on demand.
//!
//! [`Emulator::start`] runs it in-process (tests start one per test on port 0); the
//! `azure-emulator` binary runs it as a service (`scripts/dev-services up` starts
//! one on `127.0.0.1:10004`).
//!
//! ```
//! use afs_staging::auth::SharedKey;
//! use azure_emulator::{Emulator, Faults, FilesConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let data = tempfile::tempdir().unwrap();
//! let config = FilesConfig::new(data.path());
//! let key = SharedKey::new(&config.account, &config.key).unwrap();
//! let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
//!
//! // Create Share, signed like any Azure Storage request.
//! let url = reqwest::Url::parse(&format!("{}/runs?restype=share", emulator.files_endpoint()))
//!     .unwrap();
//! let date = httpdate::fmt_http_date(std::time::SystemTime::now());
//! let headers = [("x-ms-date", date.as_str()), ("x-ms-version", "2025-05-05")];
//! let authorization = key.authorization("PUT", url.path(), url.query(), headers);
//! let created = reqwest::Client::new()
//!     .put(url)
//!     .header("x-ms-date", &date)
//!     .header("x-ms-version", "2025-05-05")
//!     .header("authorization", authorization)
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(created.status(), 201);
//! assert!(emulator.share_dir("runs").is_dir());
//!
//! // From now on, every request fails with 500 or 503.
//! emulator.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
//! emulator.shutdown().await;
//! # });
//! ```
//!
//! # Azure Files
//!
//! Path-style URLs as in Azurite: `http://127.0.0.1:PORT/<account>/<share>/<dir>/<file>`,
//! one account whose name and key are configurable ([`FilesConfig`]; the defaults are
//! Azurite's well-known [`DEFAULT_ACCOUNT`] and [`DEFAULT_KEY`]). Every request must
//! carry a valid SharedKey `Authorization` header or SAS token (a service SAS for a
//! share or a file, or an account SAS), checked by `afs_staging::auth`; any
//! `x-ms-version` is accepted and echoed.
//!
//! Operations: List Shares; Create Share, Get Share Properties, Delete Share; Create
//! Directory, Get Directory Properties, Delete Directory, List Directories and Files
//! (with `prefix`, `marker`, `maxresults`, `include` and `x-ms-file-extended-info`);
//! Create File, Put Range (`update` and `clear`), Get File (whole or a range), Get File
//! Properties, Delete File. Answers carry Azure's status codes, error codes
//! (`x-ms-error-code` and an XML `Error` body), `x-ms-request-id`, `ETag` and
//! `Last-Modified`.
//!
//! Storage: share `s` is the directory `<data_dir>/shares/s/`, holding exactly the
//! share's files and directories (a file's size is its length on disk; Create File
//! makes a sparse file), so that it can be bind-mounted into a container; its
//! properties live in `<data_dir>/meta/s.json`. Nothing outside `data_dir` is ever
//! written: path segments are decoded and `.`, `..`, empty names, backslashes and
//! control characters are refused, and links are never followed — a link that a
//! container left in a share is neither listed, read, written nor walked through.
//!
//! Not covered (requests for other `comp` values are answered `501 NotImplemented`):
//! share snapshots, leases, setting share or file properties and metadata after
//! creation, file metadata and content headers (`x-ms-content-type`, `Content-MD5`:
//! neither kept nor checked), copy, range lists, handles, SMB permissions and
//! attributes (reported as `Archive` or `Directory`, with times from the inode), quota
//! enforcement, conditional headers, the `Date` skew check, HTTPS. SAS tokens are
//! checked for signature, time, permissions, service and resource types, but not for
//! `sip` and `spr` (the emulator speaks plain HTTP on loopback); stored access
//! policies (`si`) are unknown, and the response header overrides (`rscd`, `rsct`,
//! ...) are signed but not applied. Names are case-sensitive, as on Linux (Azure Files
//! is case-insensitive), and metadata names come back lowercased.
//!
//! The checks against links look at each directory before use and open files with
//! `O_NOFOLLOW`; a process that swaps a directory for a link in between could still
//! redirect one request: the emulator is a test tool, not a sandbox.
//!
//! # Faults
//!
//! [`Faults`] makes a share of requests fail (`500 InternalError`, `503 ServerBusy`),
//! be throttled (`503` with `Retry-After`), fail after their effect took place, or
//! wait; drawn from a seeded generator, set at start or any time with
//! [`Emulator::set_faults`].

mod emulator;
mod faults;
mod files;

pub use emulator::Emulator;
pub use faults::Faults;
pub use files::{DEFAULT_ACCOUNT, DEFAULT_KEY, FilesConfig};
