//! Azure Files for aci-worker: a REST client and per-run staging of workspaces.
//!
//! Publish a folder, let something run, bring its output back, delete the shares:
//!
//! ```no_run
//! use afs_staging::auth::SharedKey;
//! use afs_staging::*;
//! use compute::{JobId, WorkspacePath};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SharedKey::new("mystorageaccount", &std::env::var("AZURE_STORAGE_KEY")?)?;
//! let endpoint = ClientConfig::azure_endpoint("mystorageaccount");
//! let client = FileClient::new(ClientConfig::new(endpoint, Credential::SharedKey(key)))?;
//! let stager = Stager::shares(client, StagingConfig::default());
//!
//! let (job, run) = (JobId::new("job-1")?, VolumeName::new("run")?);
//! let workspace = std::path::Path::new("/var/lib/aci-worker/jobs/job-1");
//! let (remote, local) = (RemotePath::root(), WorkspacePath::new("run")?);
//! let input = Upload { local, volume: run.clone(), remote };
//! let output = WorkspacePath::new("run/output")?;
//! let result = async {
//!     stager.publish(&job, workspace, &[], &[input]).await?;
//!     // ... containers mount the share `stager.location(&job, &run).share` and run ...
//!     let remote = RemotePath::new("output")?;
//!     let back = Download { volume: run.clone(), remote, local: output };
//!     stager.collect(&job, workspace, &[back]).await
//! }
//! .await;
//! stager.discard(&job).await?; // also after a failure
//! result?;
//! # Ok(())
//! # }
//! ```
//!
//! Azure Container Instances containers see files only through Azure File shares.
//! This crate moves a run's workspace onto shares before the containers start and
//! the results back afterwards:
//!
//! - [`auth`] signs requests with SharedKey (HMAC-SHA256 over the canonical request)
//!   or carries a SAS token, and verifies both (the emulator uses the same code);
//! - [`FileClient`] speaks the Azure Files REST API (pinned
//!   [`API_VERSION`](client::API_VERSION)): shares, directories, files, 4 MiB ranges,
//!   listings with continuation (names Azure sends percent-encoded, `Encoded="true"`,
//!   are decoded), properties; it retries timeouts, 408, 429 and 5xx with backoff
//!   and waits at least as long as `Retry-After` says. Errors and `Debug` output
//!   carry the storage error code and request id and never a key, signature or
//!   token (an endpoint is shown as `scheme://host[:port]/path` only);
//! - [`Stager`] publishes chosen workspace folders to fresh shares per run, one per
//!   volume (so that hidden data sits in a share that only the containers allowed to
//!   see it mount), collects results, follows a file while the run goes on
//!   ([`Watch`]) and deletes the shares. A publish starts from empty volumes: a share
//!   left from an earlier publish of the same job is emptied first, so nothing of an
//!   earlier attempt is collected later. Names that come from a share are checked
//!   before they become local paths (no `..`, `/`, `\`, absolute or empty names), and
//!   local links are replaced, never written through. A download (a collected file
//!   or a watched one) is of one version of the file, whole, even when the file grows
//!   or changes meanwhile. All transfers run with bounded parallelism: at most
//!   [`StagingConfig::parallel_requests`] requests, each holding at most one 4 MiB
//!   range in memory. A mounted mode does the same with file copies on a share
//!   mounted on the host, and never follows a link in that share.

pub mod auth;
pub mod client;
pub mod error;
pub mod path;
pub mod staging;
mod xml;

pub use client::{ClientConfig, Credential, DirEntry, FileClient, FileVersion, ShareItem};
pub use error::Error;
pub use path::RemotePath;
pub use staging::{
    Download, ShareLocation, Stager, StagingConfig, StaleShare, TransferStats, Upload, VolumeName,
    Watch,
};
