//! Moving a run's workspace to Azure Files and back.
//!
//! A run's files live in *volumes*: one share per volume, named `<job>-<volume>`
//! (an ACI volume mounts a whole share, so a container that may see only some of a
//! run's data, or must see a folder at a path of its own, gets a volume of its own).
//! [`Stager::publish`] creates the volumes and uploads chosen workspace folders and
//! files into them, [`Stager::collect`] brings chosen paths back, [`Watch`] follows
//! one file while the run goes on, and [`Stager::discard`] deletes every share of the
//! job. The names depend only on the job id and the volume name, and each share
//! carries its job, worker and creation time as metadata, so a worker that restarts,
//! or a cleanup that knows only the id, finds them all.
//!
//! A publish starts each of its volumes empty: a share that already exists (left by
//! an earlier publish of the job, an attempt that failed, say) is emptied before the
//! upload, so that a collect finds only what this publish and the run put there.
//!
//! In mounted mode ([`Stager::mounted`]) the same operations copy files into and
//! out of one share that is mounted on the worker's host (CIFS), each run's volumes
//! as folders `aci-worker-runs/<job>/<volume>/` in it. Every run on that share can
//! read every other run's files, hidden data included, since the containers mount the
//! whole share. It exists for deployments that already work that way. Since any
//! container can leave a link in that share, mounted mode never follows one: a link
//! on the way to a run's folder or to a watched or collected file is refused (an
//! `InvalidPath` error), links inside a collected folder are left out, and files are
//! created so that a link put in their place makes the copy fail instead of writing
//! through it. Folders are checked one by one before use, so a container that swaps
//! a folder for a link at the very moment of a copy could still redirect it; the
//! per-run shares of the default mode have no such weakness.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use compute::{JobId, WorkspacePath};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::auth::SharedKey;
use crate::client::{DirEntry, FileClient, FileVersion, MAX_RANGE};
use crate::error::Error;
use crate::path::{RemotePath, check_name};

/// The name of one of a run's volumes: 1 to 12 lowercase letters and digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeName(String);

impl VolumeName {
    /// Checks a volume name.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let valid = (1..=12).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(Error::InvalidPath(format!(
                "volume name {name:?} is not 1 to 12 lowercase letters and digits"
            )));
        }
        Ok(VolumeName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VolumeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one volume of a run is: a share and a folder in it (the root for per-run
/// shares; the volume's own folder in mounted mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareLocation {
    /// The share's name.
    pub share: String,
    /// The folder in the share that holds the volume's files.
    pub prefix: RemotePath,
}

/// A share found by [`Stager::stale_shares`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleShare {
    /// The share's name.
    pub name: String,
    /// The job it was made for (its `job` metadata), when it says.
    pub job: Option<String>,
}

/// One workspace folder or file to upload.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The folder or file, relative to the workspace root.
    pub local: WorkspacePath,
    /// The volume it goes to.
    pub volume: VolumeName,
    /// Where in that volume.
    pub remote: RemotePath,
}

/// One share folder or file to bring back.
#[derive(Clone, Debug)]
pub struct Download {
    /// The volume it is in.
    pub volume: VolumeName,
    /// Where in that volume.
    pub remote: RemotePath,
    /// Where it goes, relative to the workspace root.
    pub local: WorkspacePath,
}

/// What a transfer moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Files moved.
    pub files: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Folders created.
    pub folders: u64,
}

/// How staging behaves.
#[derive(Clone, Debug)]
pub struct StagingConfig {
    /// Requests in flight at once for one run (each holds at most one 4 MiB range in
    /// memory).
    pub parallel_requests: usize,
    /// Quota of each per-run share, in GiB.
    pub quota_gib: u32,
    /// This worker's name, written into each share's metadata (`worker`) so that
    /// an orphan sweep removes only its own shares.
    pub worker: String,
}

impl Default for StagingConfig {
    fn default() -> Self {
        StagingConfig { parallel_requests: 16, quota_gib: 100, worker: "aci-worker".to_owned() }
    }
}

/// Stages runs through Azure Files; see the module documentation.
#[derive(Clone, Debug)]
pub struct Stager {
    mode: Mode,
    config: StagingConfig,
}

#[derive(Clone, Debug)]
enum Mode {
    Shares(FileClient),
    Mounted { mount: PathBuf, share: String, key: Option<SharedKey> },
}

/// The folder of mounted-mode runs in the shared share.
const MOUNTED_RUNS: &str = "aci-worker-runs";

impl Stager {
    /// Per-run shares created through the REST API.
    pub fn shares(client: FileClient, config: StagingConfig) -> Self {
        Stager { mode: Mode::Shares(client), config }
    }

    /// Mounted mode: `share` is mounted at `mount` on this host; runs live in
    /// folders of it. `key` is the storage account's, for backends that must name it
    /// when they mount the share (ACI).
    pub fn mounted(
        mount: PathBuf,
        share: String,
        key: Option<SharedKey>,
        config: StagingConfig,
    ) -> Self {
        Stager { mode: Mode::Mounted { mount, share, key }, config }
    }

    /// The storage account key that mounts this stager's shares, when known.
    pub fn account_key(&self) -> Option<&SharedKey> {
        match &self.mode {
            Mode::Shares(client) => client.shared_key(),
            Mode::Mounted { key, .. } => key.as_ref(),
        }
    }

    /// Whether this stager is in mounted mode.
    pub fn is_mounted(&self) -> bool {
        matches!(self.mode, Mode::Mounted { .. })
    }

    /// Where a volume of a job lives; the same job and volume always give the same
    /// place.
    pub fn location(&self, job: &JobId, volume: &VolumeName) -> ShareLocation {
        match &self.mode {
            Mode::Shares(_) => {
                ShareLocation { share: format!("{job}-{volume}"), prefix: RemotePath::root() }
            }
            Mode::Mounted { share, .. } => ShareLocation {
                share: share.clone(),
                prefix: RemotePath::new(&format!("{MOUNTED_RUNS}/{job}/{volume}"))
                    .expect("job ids and volume names are valid names"),
            },
        }
    }

    /// Creates the job's `volumes` (and any other volume named in `uploads`) and
    /// uploads `uploads` from `workspace` into them. Each of these volumes starts
    /// empty: when its share (its folder, in mounted mode) is left from an earlier
    /// publish of the job, its contents are deleted first, so that nothing of an
    /// earlier attempt is collected later.
    pub async fn publish(
        &self,
        job: &JobId,
        workspace: &Path,
        volumes: &[VolumeName],
        uploads: &[Upload],
    ) -> Result<TransferStats, Error> {
        let plan = plan_uploads(workspace, uploads).await?;
        let mut all: Vec<&VolumeName> =
            volumes.iter().chain(uploads.iter().map(|u| &u.volume)).collect();
        all.sort();
        all.dedup();
        let locations: Vec<(VolumeName, ShareLocation)> =
            all.into_iter().map(|v| (v.clone(), self.location(job, v))).collect();
        match &self.mode {
            Mode::Shares(client) => {
                let created = unix_now().to_string();
                let metadata = [
                    ("job", job.as_str()),
                    ("worker", self.config.worker.as_str()),
                    ("created", created.as_str()),
                ];
                for (_, location) in &locations {
                    let share = &location.share;
                    if !client.create_share(share, self.config.quota_gib, &metadata).await? {
                        self.empty_share(client, share).await?;
                    }
                }
                self.upload(client, job, plan).await
            }
            Mode::Mounted { mount, .. } => mounted::publish(mount, &locations, plan).await,
        }
        .inspect(|stats| {
            metrics::counter!("aci_worker_staging_bytes_total", "direction" => "up")
                .increment(stats.bytes);
        })
    }

    /// Brings `downloads` back into `workspace`. A remote path that does not exist
    /// is skipped; files already in the workspace are overwritten.
    pub async fn collect(
        &self,
        job: &JobId,
        workspace: &Path,
        downloads: &[Download],
    ) -> Result<TransferStats, Error> {
        let mut total = TransferStats::default();
        for download in downloads {
            let location = self.location(job, &download.volume);
            let remote = join_remote(&location.prefix, &download.remote)?;
            let local = download.local.under(workspace);
            let stats = match &self.mode {
                Mode::Shares(client) => {
                    self.download(client, &location.share, &remote, workspace, &local).await?
                }
                Mode::Mounted { mount, .. } => {
                    mounted::collect(mount, &remote, workspace, &local).await?
                }
            };
            total.files += stats.files;
            total.bytes += stats.bytes;
            total.folders += stats.folders;
        }
        metrics::counter!("aci_worker_staging_bytes_total", "direction" => "down")
            .increment(total.bytes);
        Ok(total)
    }

    /// Deletes every share of the job (or its folder in mounted mode). Safe to call
    /// for a job that was never published, or twice.
    pub async fn discard(&self, job: &JobId) -> Result<(), Error> {
        match &self.mode {
            Mode::Shares(client) => {
                let shares = client.list_shares(&format!("{job}-")).await?;
                for share in shares {
                    let owner = share.metadata.iter().find(|(n, _)| n == "job").map(|(_, v)| v);
                    if owner.map(String::as_str) == Some(job.as_str()) {
                        client.delete_share(&share.name).await?;
                    }
                }
                Ok(())
            }
            Mode::Mounted { mount, .. } => mounted::discard(mount, job).await,
        }
    }

    /// Shares made by `worker` (per the metadata written at publish) that were
    /// created more than `min_age_secs` ago: leftovers for an orphan sweep, with the
    /// job each was made for. Empty in mounted mode.
    pub async fn stale_shares(
        &self,
        worker: &str,
        min_age_secs: u64,
    ) -> Result<Vec<StaleShare>, Error> {
        let Mode::Shares(client) = &self.mode else { return Ok(Vec::new()) };
        let now = unix_now();
        let shares = client.list_shares("").await?;
        Ok(shares
            .into_iter()
            .filter(|share| {
                let meta = |name: &str| {
                    share.metadata.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
                };
                let created = meta("created").and_then(|c| c.parse::<u64>().ok());
                meta("worker") == Some(worker)
                    && created.is_some_and(|c| now.saturating_sub(c) >= min_age_secs)
            })
            .map(|share| {
                let job = share.metadata.iter().find(|(n, _)| n == "job").map(|(_, v)| v.clone());
                StaleShare { name: share.name, job }
            })
            .collect())
    }

    /// Deletes one share by name (for the orphan sweep).
    pub async fn delete_share(&self, share: &str) -> Result<bool, Error> {
        match &self.mode {
            Mode::Shares(client) => client.delete_share(share).await,
            Mode::Mounted { .. } => Ok(false),
        }
    }

    /// Follows one file of a run: see [`Watch`].
    pub fn watch(
        &self,
        job: &JobId,
        volume: &VolumeName,
        remote: &RemotePath,
        local: PathBuf,
    ) -> Result<Watch, Error> {
        let location = self.location(job, volume);
        Ok(Watch {
            stager: self.clone(),
            share: location.share.clone(),
            remote: join_remote(&location.prefix, remote)?,
            local,
            last: None,
        })
    }

    /// Deletes everything in a share: files in parallel, then folders, deepest first
    /// and each depth in parallel.
    async fn empty_share(&self, client: &FileClient, share: &str) -> Result<(), Error> {
        let parallel = self.config.parallel_requests.max(1);
        let mut files = Vec::new();
        // The folders of each level, the root's level first.
        let mut levels: Vec<Vec<RemotePath>> = Vec::new();
        let mut walk = TreeWalk::new(client, share, RemotePath::root(), parallel);
        while let Some(level) = walk.next_level().await? {
            for (dir, entries) in level {
                for entry in entries.iter().filter(|e| e.file_len.is_some()) {
                    files.push(dir.join(&entry.name)?);
                }
            }
            levels.push(level.iter().map(|(dir, _)| dir.clone()).collect());
        }
        let folders: usize = levels.iter().skip(1).map(Vec::len).sum();
        tracing::debug!(share, files = files.len(), folders, "emptying a share");
        stream::iter(files)
            .map(|file| async move { client.delete_file(share, &file).await })
            .buffer_unordered(parallel)
            .try_collect::<Vec<bool>>()
            .await?;
        // Every level but the root's, deepest first: each folder is empty by then.
        for level in levels.into_iter().skip(1).rev() {
            stream::iter(level)
                .map(|dir| async move { client.delete_directory(share, &dir).await })
                .buffer_unordered(parallel)
                .try_collect::<Vec<bool>>()
                .await?;
        }
        Ok(())
    }

    async fn upload(
        &self,
        client: &FileClient,
        job: &JobId,
        plan: Vec<PlannedItem>,
    ) -> Result<TransferStats, Error> {
        let mut dirs: Vec<(String, RemotePath)> = Vec::new();
        let mut files: Vec<(String, RemotePath, PathBuf, u64)> = Vec::new();
        for item in plan {
            let location = self.location(job, &item.volume);
            let remote = join_remote(&location.prefix, &item.remote)?;
            match item.file {
                Some((local, len)) => files.push((location.share.clone(), remote, local, len)),
                None => dirs.push((location.share.clone(), remote)),
            }
        }
        // Every parent of every item, created parents first, each depth in parallel.
        let mut all_dirs: Vec<(String, RemotePath)> = Vec::new();
        let mut add = |share: &String, path: &RemotePath| {
            let mut prefix = RemotePath::root();
            for segment in path.segments() {
                prefix = prefix.join(segment).expect("segments of a valid path");
                all_dirs.push((share.clone(), prefix.clone()));
            }
        };
        for (share, path) in &dirs {
            add(share, path);
        }
        for (share, path, _, _) in &files {
            add(share, &path.parent());
        }
        all_dirs.sort_by(|a, b| {
            let depth = |p: &RemotePath| p.segments().count();
            depth(&a.1).cmp(&depth(&b.1)).then_with(|| a.cmp(b))
        });
        all_dirs.dedup();
        let parallel = self.config.parallel_requests.max(1);
        let mut stats = TransferStats::default();
        let mut start = 0;
        while start < all_dirs.len() {
            let depth = all_dirs[start].1.segments().count();
            let end = all_dirs[start..]
                .iter()
                .position(|(_, p)| p.segments().count() != depth)
                .map_or(all_dirs.len(), |i| start + i);
            // Owned items: a closure over borrowed items makes the future not `Send`
            // (rustc cannot prove the borrow general enough).
            let created: Vec<bool> = stream::iter(all_dirs[start..end].to_vec())
                .map(|(share, path)| async move { client.create_directory(&share, &path).await })
                .buffer_unordered(parallel)
                .try_collect()
                .await?;
            stats.folders += created.into_iter().filter(|c| *c).count() as u64;
            start = end;
        }

        // Files: every request takes a permit, so at most `parallel` requests (and
        // range buffers) are in flight, whether the tree holds one big file or many
        // small ones.
        let permits = Arc::new(Semaphore::new(parallel));
        let bytes = AtomicU64::new(0);
        let file_count = files.len() as u64;
        stream::iter(files)
            .map(|(share, remote, local, len)| {
                let permits = permits.clone();
                let bytes = &bytes;
                async move {
                    upload_file(client, &permits, parallel, &share, &remote, &local, len).await?;
                    bytes.fetch_add(len, Ordering::Relaxed);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(parallel)
            .try_collect::<()>()
            .await?;
        stats.files = file_count;
        stats.bytes = bytes.into_inner();
        Ok(stats)
    }

    async fn download(
        &self,
        client: &FileClient,
        share: &str,
        remote: &RemotePath,
        workspace: &Path,
        local: &Path,
    ) -> Result<TransferStats, Error> {
        let parallel = self.config.parallel_requests.max(1);
        let mut stats = TransferStats::default();
        if !remote.is_root()
            && let Some(version) = client.file_version(share, remote).await?
        {
            local_parent_dirs(workspace, local).await?;
            let permits = Semaphore::new(parallel);
            let got = download_whole(client, &permits, parallel, share, remote, local, version.len)
                .await?;
            stats.files = 1;
            stats.bytes = got.len;
            return Ok(stats);
        }
        // A folder: walk it level by level, listing in parallel.
        let mut files: Vec<(RemotePath, PathBuf, u64)> = Vec::new();
        let depth = remote.segments().count();
        let mut walk = TreeWalk::new(client, share, remote.clone(), parallel);
        let mut first = true;
        loop {
            let level = match walk.next_level().await {
                Ok(Some(level)) => level,
                Ok(None) => break,
                // No such folder: nothing to collect.
                Err(e)
                    if first && matches!(e.code(), Some("ResourceNotFound" | "ParentNotFound")) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            };
            first = false;
            for (dir, entries) in level {
                // `dir` below `remote` is the same folder below `local`.
                let local_dir =
                    dir.segments().skip(depth).fold(local.to_path_buf(), |p, name| p.join(name));
                local_dir_fresh(workspace, &local_dir).await?;
                stats.folders += 1;
                for entry in entries {
                    check_name(&entry.name).map_err(|_| {
                        Error::InvalidPath(format!(
                            "the share holds {:?} in {dir}, which is not a safe local name",
                            entry.name
                        ))
                    })?;
                    if let Some(len) = entry.file_len {
                        files.push((dir.join(&entry.name)?, local_dir.join(&entry.name), len));
                    }
                }
            }
        }
        let permits = Arc::new(Semaphore::new(parallel));
        let bytes = AtomicU64::new(0);
        stats.files = files.len() as u64;
        stream::iter(files)
            .map(|(remote, local, len)| {
                let permits = permits.clone();
                let bytes = &bytes;
                async move {
                    let got =
                        download_whole(client, &permits, parallel, share, &remote, &local, len)
                            .await?;
                    bytes.fetch_add(got.len, Ordering::Relaxed);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(parallel)
            .try_collect::<()>()
            .await?;
        stats.bytes = bytes.into_inner();
        Ok(stats)
    }
}

/// A walk down a share folder's tree, level by level: each call of
/// [`TreeWalk::next_level`] lists one level's folders, in parallel, starting with the
/// root, and the next call lists the folders found in them. Their names are joined
/// only then, so a caller that checks a level's names first reports its own error
/// for a bad one.
struct TreeWalk<'a> {
    client: &'a FileClient,
    share: &'a str,
    parallel: usize,
    /// The root, until it is listed.
    root: Option<RemotePath>,
    /// The level listed last, each folder with its entries.
    level: Vec<(RemotePath, Vec<DirEntry>)>,
}

impl<'a> TreeWalk<'a> {
    fn new(client: &'a FileClient, share: &'a str, root: RemotePath, parallel: usize) -> Self {
        TreeWalk { client, share, parallel, root: Some(root), level: Vec::new() }
    }

    /// Lists the next level: each of its folders, in order, with its entries;
    /// `None` when the last level held no folder.
    async fn next_level(&mut self) -> Result<Option<&[(RemotePath, Vec<DirEntry>)]>, Error> {
        let mut dirs: Vec<RemotePath> = self.root.take().into_iter().collect();
        for (dir, entries) in &self.level {
            for entry in entries.iter().filter(|e| e.file_len.is_none()) {
                dirs.push(dir.join(&entry.name)?);
            }
        }
        self.level.clear();
        if dirs.is_empty() {
            return Ok(None);
        }
        let (client, share) = (self.client, self.share);
        let listings: Vec<Vec<DirEntry>> = stream::iter(dirs.clone())
            .map(|dir| async move { client.list_directory(share, &dir).await })
            .buffered(self.parallel)
            .try_collect()
            .await?;
        self.level = dirs.into_iter().zip(listings).collect();
        Ok(Some(&self.level))
    }
}

/// Follows one file during a run. [`Watch::poll`] asks for the file's version
/// (length, ETag and Last-Modified: a change that keeps the length is seen too) and,
/// when it changed since the last poll, downloads the new contents to the local
/// path (written beside it and renamed into place, so readers never see half a
/// file). What is downloaded is one version of the file whole, even when the file
/// grows or changes between the look and the download.
#[derive(Debug)]
pub struct Watch {
    stager: Stager,
    share: String,
    remote: RemotePath,
    local: PathBuf,
    last: Option<FileVersion>,
}

impl Watch {
    /// `Ok(true)` when new contents were written to the local path.
    pub async fn poll(&mut self) -> Result<bool, Error> {
        let version = match &self.stager.mode {
            Mode::Shares(client) => client.file_version(&self.share, &self.remote).await?,
            Mode::Mounted { mount, .. } => mounted::version(mount, &self.remote).await?,
        };
        let Some(version) = version else { return Ok(false) };
        if self.last.as_ref() == Some(&version) {
            return Ok(false);
        }
        let partial = partial_path(&self.local);
        let got = match &self.stager.mode {
            Mode::Shares(client) => {
                let parallel = self.stager.config.parallel_requests.max(1);
                let permits = Semaphore::new(parallel);
                let (share, remote) = (&self.share, &self.remote);
                download_whole(client, &permits, parallel, share, remote, &partial, version.len)
                    .await?
            }
            Mode::Mounted { mount, .. } => {
                match mounted::fetch(mount, &self.remote, &partial).await? {
                    Some(got) => got,
                    None => return Ok(false),
                }
            }
        };
        tokio::fs::rename(&partial, &self.local).await.map_err(|e| Error::io(&self.local, e))?;
        // The version downloaded, which may be newer than the one looked at.
        self.last = Some(got);
        Ok(true)
    }
}

fn partial_path(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    local.with_file_name(name)
}

/// One entry of an upload plan: a folder (`file` is `None`) or a file with length.
#[derive(Debug)]
struct PlannedItem {
    volume: VolumeName,
    remote: RemotePath,
    file: Option<(PathBuf, u64)>,
}

/// Walks the uploads. Symbolic links to files inside the workspace are uploaded as
/// copies; other links, and sockets or devices, are left out with a warning.
async fn plan_uploads(workspace: &Path, uploads: &[Upload]) -> Result<Vec<PlannedItem>, Error> {
    let workspace = workspace.to_path_buf();
    let uploads = uploads.to_vec();
    blocking("the upload planner", move || {
        let root = std::fs::canonicalize(&workspace).map_err(|e| Error::io(&workspace, e))?;
        let mut plan = Vec::new();
        for upload in &uploads {
            let local = upload.local.under(&root);
            walk(&root, &local, &upload.volume, &upload.remote, &mut plan)?;
        }
        Ok(plan)
    })
    .await
}

fn walk(
    root: &Path,
    local: &Path,
    volume: &VolumeName,
    remote: &RemotePath,
    plan: &mut Vec<PlannedItem>,
) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(local).map_err(|e| Error::io(local, e))?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        plan.push(PlannedItem { volume: volume.clone(), remote: remote.clone(), file: None });
        let mut entries: Vec<_> = std::fs::read_dir(local)
            .map_err(|e| Error::io(local, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::io(local, e))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Error::InvalidPath(format!(
                    "{} has a name that is not UTF-8, which Azure Files cannot hold",
                    entry.path().display()
                )));
            };
            walk(root, &entry.path(), volume, &remote.join(name)?, plan)?;
        }
    } else if file_type.is_file() {
        plan.push(PlannedItem {
            volume: volume.clone(),
            remote: remote.clone(),
            file: Some((local.into(), meta.len())),
        });
    } else if file_type.is_symlink() {
        match std::fs::canonicalize(local) {
            Ok(target) if target.starts_with(root) && target.is_file() => {
                let len = std::fs::metadata(&target).map_err(|e| Error::io(&target, e))?.len();
                plan.push(PlannedItem {
                    volume: volume.clone(),
                    remote: remote.clone(),
                    file: Some((target, len)),
                });
            }
            _ => tracing::warn!(
                path = %local.display(),
                "left out of the upload: a link to a folder or to something outside the workspace"
            ),
        }
    } else {
        tracing::warn!(path = %local.display(), "left out of the upload: not a file or folder");
    }
    Ok(())
}

fn join_remote(prefix: &RemotePath, path: &RemotePath) -> Result<RemotePath, Error> {
    let mut out = prefix.clone();
    for segment in path.segments() {
        out = out.join(segment)?;
    }
    Ok(out)
}

async fn upload_file(
    client: &FileClient,
    permits: &Semaphore,
    parallel: usize,
    share: &str,
    remote: &RemotePath,
    local: &Path,
    len: u64,
) -> Result<(), Error> {
    {
        let _permit = permits.acquire().await.expect("never closed");
        client.create_file(share, remote, len).await?;
    }
    if len == 0 {
        return Ok(());
    }
    let file = Arc::new(std::fs::File::open(local).map_err(|e| Error::io(local, e))?);
    let ranges =
        (0..len).step_by(MAX_RANGE as usize).map(|offset| (offset, MAX_RANGE.min(len - offset)));
    stream::iter(ranges)
        .map(|(offset, size)| {
            let file = file.clone();
            async move {
                let _permit = permits.acquire().await.expect("never closed");
                let data = read_at(file, local, offset, size).await?;
                client.put_range(share, remote, offset, data).await
            }
        })
        .buffer_unordered(parallel)
        .try_collect::<()>()
        .await
}

async fn read_at(
    file: Arc<std::fs::File>,
    path: &Path,
    offset: u64,
    size: u64,
) -> Result<Bytes, Error> {
    use std::os::unix::fs::FileExt;
    let path = path.to_path_buf();
    blocking("a file reader", move || {
        let mut buffer = BytesMut::zeroed(size as usize);
        file.read_exact_at(&mut buffer, offset).map_err(|e| {
            let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::other("the file shrank while it was being uploaded")
            } else {
                e
            };
            Error::io(&path, e)
        })?;
        Ok(buffer.freeze())
    })
    .await
}

/// Files up to this size come in one request; larger ones in parallel ranges.
const SINGLE_GET: u64 = 2 * MAX_RANGE;

/// How often a file that changes while its ranges are read is downloaded again.
const CHANGED_ATTEMPTS: u32 = 3;

/// Downloads a file into `local`, whole and of one version: when it changed while
/// its ranges were read, it is looked at again and downloaded again. `len` is its
/// length as last seen (in a listing or its properties). Gives the version
/// downloaded.
async fn download_whole(
    client: &FileClient,
    permits: &Semaphore,
    parallel: usize,
    share: &str,
    remote: &RemotePath,
    local: &Path,
    len: u64,
) -> Result<FileVersion, Error> {
    let mut len = len;
    for _ in 0..CHANGED_ATTEMPTS {
        if let Some(got) =
            download_file(client, permits, parallel, share, remote, local, len).await?
        {
            return Ok(got);
        }
        tracing::debug!(share, path = %remote, "the file changed while it was read; reading it again");
        let _permit = permits.acquire().await.expect("never closed");
        match client.file_version(share, remote).await? {
            Some(version) => len = version.len,
            None => {
                return Err(Error::malformed("get file", remote.as_str(), "the file is gone"));
            }
        }
    }
    Err(Error::malformed("get file", remote.as_str(), "the file kept changing while it was read"))
}

/// Downloads a file into `local`: in one request when `len` (its length as last
/// seen) is small, else in parallel ranges. Gives the version the bytes belong to:
/// for one request the answer's own (so a file that grew since it was seen comes
/// whole), for ranges the one they all came from; `None` when the ranges came from
/// different versions (the file changed meanwhile, `local` is a mix).
async fn download_file(
    client: &FileClient,
    permits: &Semaphore,
    parallel: usize,
    share: &str,
    remote: &RemotePath,
    local: &Path,
    len: u64,
) -> Result<Option<FileVersion>, Error> {
    replace_local(local).await?;
    let file = tokio::fs::File::create(local).await.map_err(|e| Error::io(local, e))?;
    if len <= SINGLE_GET {
        drop(file);
        let _permit = permits.acquire().await.expect("never closed");
        return download_range(client, share, remote, local, None).await.map(Some);
    }
    file.set_len(len).await.map_err(|e| Error::io(local, e))?;
    drop(file);
    let ranges =
        (0..len).step_by(MAX_RANGE as usize).map(|offset| (offset, MAX_RANGE.min(len - offset)));
    let versions: Vec<Option<FileVersion>> = stream::iter(ranges)
        .map(|range| async move {
            let _permit = permits.acquire().await.expect("never closed");
            match download_range(client, share, remote, local, Some(range)).await {
                Ok(version) => Ok(Some(version)),
                // The file shrank below this range meanwhile.
                Err(e) if e.code() == Some("InvalidRange") => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let first = versions.first().cloned().flatten();
    let same = first.as_ref().is_some_and(|first| {
        first.len == len && versions.iter().all(|v| v.as_ref() == Some(first))
    });
    Ok(if same { first } else { None })
}

/// Streams the file, or `size` bytes of it at `offset` when `range` is
/// `Some((offset, size))`, into the local file at the same offset, trying again
/// when the body breaks off. Gives the version the answer came from.
async fn download_range(
    client: &FileClient,
    share: &str,
    remote: &RemotePath,
    local: &Path,
    range: Option<(u64, u64)>,
) -> Result<FileVersion, Error> {
    use tokio::io::AsyncSeekExt;
    let offset = range.map_or(0, |(offset, _)| offset);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let asked = range.map(|(offset, size)| (offset, offset + size - 1));
        let mut response = client.get_file(share, remote, asked).await?;
        let version =
            FileVersion::from_headers(response.headers(), range.is_some()).ok_or_else(|| {
                Error::malformed("get file", remote.as_str(), "no Content-Length or Content-Range")
            })?;
        let size = range.map_or(version.len, |(_, size)| size);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(local)
            .await
            .map_err(|e| Error::io(local, e))?;
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| Error::io(local, e))?;
        let mut written = 0u64;
        let broken = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    written += chunk.len() as u64;
                    if written > size {
                        break Some(Error::malformed(
                            "get file",
                            remote.as_str(),
                            "more bytes than asked for",
                        ));
                    }
                    file.write_all(&chunk).await.map_err(|e| Error::io(local, e))?;
                }
                Ok(None) if written == size => break None,
                Ok(None) => {
                    break Some(Error::malformed(
                        "get file",
                        remote.as_str(),
                        format!("{written} of {size} bytes arrived"),
                    ));
                }
                Err(e) => break Some(Error::network("get file", remote.as_str(), e)),
            }
        };
        if range.is_none() {
            // A whole file that is shorter now than in an earlier attempt.
            file.set_len(written).await.map_err(|e| Error::io(local, e))?;
        }
        file.flush().await.map_err(|e| Error::io(local, e))?;
        match broken {
            None => return Ok(version),
            Some(error) if attempt >= 3 => return Err(error),
            Some(error) => tracing::debug!(%error, "retrying a broken download"),
        }
    }
}

/// Makes sure nothing but a plain file (or nothing) is at `local`: a link left
/// there is removed rather than written through.
async fn replace_local(local: &Path) -> Result<(), Error> {
    match tokio::fs::symlink_metadata(local).await {
        Ok(meta) if meta.file_type().is_symlink() => {
            tokio::fs::remove_file(local).await.map_err(|e| Error::io(local, e))
        }
        Ok(meta) if meta.is_dir() => Err(Error::InvalidPath(format!(
            "{} is a folder locally but a file on the share",
            local.display()
        ))),
        _ => Ok(()),
    }
}

/// Creates `local_dir` (under `workspace`) as a real folder, never through a link.
async fn local_dir_fresh(workspace: &Path, local_dir: &Path) -> Result<(), Error> {
    local_parent_dirs(workspace, &local_dir.join("x")).await
}

/// Creates the folders between `workspace` and `local`'s parent, replacing links.
async fn local_parent_dirs(workspace: &Path, local: &Path) -> Result<(), Error> {
    let (workspace, local) = (workspace.to_path_buf(), local.to_path_buf());
    blocking("a folder maker", move || real_parent_dirs(&workspace, &local)).await
}

/// Runs `f` on the blocking pool; `task` names it in the error when it panics or is
/// cancelled.
async fn blocking<T: Send + 'static>(
    task: &str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Config(format!("{task} stopped: {e}")))?
}

/// Makes every folder between `workspace` and `local`'s parent a real folder: a link
/// or a file standing there is removed, a missing folder created. Whatever a
/// container left in the workspace, what is written at `local` afterwards lands
/// inside it.
fn real_parent_dirs(workspace: &Path, local: &Path) -> Result<(), Error> {
    let relative = local
        .strip_prefix(workspace)
        .map_err(|_| Error::InvalidPath(format!("{} is outside the workspace", local.display())))?;
    let mut current = workspace.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for component in &components[..components.len().saturating_sub(1)] {
        let std::path::Component::Normal(name) = component else {
            return Err(Error::InvalidPath(format!(
                "{} is not a plain path under the workspace",
                local.display()
            )));
        };
        current.push(name);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => std::fs::remove_file(&current).map_err(|e| Error::io(&current, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&current, e)),
        }
        match std::fs::create_dir(&current) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(&current, e));
            }
            _ => {}
        }
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Mounted mode: plain file operations on the host's mount of the share.
///
/// Every container of every run mounts that whole share, so any of them can leave a
/// link in it, say `aci-worker-runs/<job> -> /etc`. Nothing here follows one: each
/// folder on the way down from the mount is looked at with `symlink_metadata` and
/// must be a real folder, files are created with `O_EXCL` (which never follows a link)
/// and a file opened for reading must be the very file that `symlink_metadata` saw.
/// The mount itself is the operator's choice and may be reached through a link.
mod mounted {
    use std::fs::{File, OpenOptions};
    use std::io::ErrorKind;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// The error for a link (or a file where a folder belongs) in the mount.
    fn not_followed(path: &Path) -> Error {
        Error::InvalidPath(format!(
            "{} in the mounted share is a link or not what was expected there; \
             mounted mode never follows links in the share",
            path.display()
        ))
    }

    fn missing(e: &std::io::Error) -> bool {
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
    }

    /// The folder `path` below `mount`, every step of it a real folder; with
    /// `create`, missing steps are made. `Ok(None)` when a step is missing and
    /// `create` is false.
    fn real_dir(mount: &Path, path: &RemotePath, create: bool) -> Result<Option<PathBuf>, Error> {
        let mut current = mount.to_path_buf();
        for name in path.segments() {
            current.push(name);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => return Err(not_followed(&current)),
                Err(e) if missing(&e) && !create => return Ok(None),
                Err(e) if missing(&e) => {}
                Err(e) => return Err(Error::io(&current, e)),
            }
            match std::fs::create_dir(&current) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                    return Err(Error::io(&current, e));
                }
                // Made here or, meanwhile, by someone else: look again.
                _ => match std::fs::symlink_metadata(&current) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(not_followed(&current)),
                    Err(e) => return Err(Error::io(&current, e)),
                },
            }
        }
        Ok(Some(current))
    }

    /// Where `path` (not the root) is in the mount: its real parent folder joined with
    /// its name. `Ok(None)` when a folder on the way is missing.
    fn locate(mount: &Path, path: &RemotePath, create: bool) -> Result<Option<PathBuf>, Error> {
        let name = path.segments().last().unwrap_or_default();
        Ok(real_dir(mount, &path.parent(), create)?.map(|parent| parent.join(name)))
    }

    /// Opens the file `path` of the mount (whose folders were checked) for reading.
    /// `Ok(None)` when nothing or a folder is there; a link is refused, and so is a
    /// file that is not the one `symlink_metadata` saw (swapped for a link since).
    fn open_file(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, Error> {
        let seen = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        if seen.is_dir() {
            return Ok(None);
        }
        if !seen.is_file() {
            return Err(not_followed(path));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() || (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
            return Err(not_followed(path));
        }
        Ok(Some((file, meta)))
    }

    /// Creates the file `path` of the mount (whose folders were checked) afresh: a
    /// file there is replaced; a link, folder or anything else is refused.
    fn create_file(path: &Path) -> Result<File, Error> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => match std::fs::remove_file(path) {
                Err(e) if !missing(&e) => return Err(Error::io(path, e)),
                _ => {}
            },
            Ok(_) => return Err(not_followed(path)),
            Err(e) if missing(&e) => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        // O_EXCL: a link put there since the look above fails the open.
        OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                not_followed(path)
            } else {
                Error::io(path, e)
            }
        })
    }

    /// Removes everything in the real folder `dir` (links are removed, never followed).
    fn empty_dir(dir: &Path) -> Result<(), Error> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
            let removed =
                if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Err(e) if !missing(&e) => return Err(Error::io(&path, e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// What `blocking` calls the copies here.
    const COPIER: &str = "the mounted-mode copier";

    pub(super) async fn publish(
        mount: &Path,
        locations: &[(VolumeName, ShareLocation)],
        plan: Vec<PlannedItem>,
    ) -> Result<TransferStats, Error> {
        let mount = mount.to_path_buf();
        let locations = locations.to_vec();
        blocking(COPIER, move || {
            let mut stats = TransferStats::default();
            let prefix = |volume: &VolumeName| {
                locations.iter().find(|(v, _)| v == volume).map(|(_, l)| l.prefix.clone())
            };
            // Each volume starts empty: nothing of an earlier attempt stays behind.
            for (_, location) in &locations {
                let dir = real_dir(&mount, &location.prefix, true)?
                    .expect("real_dir creates what is missing");
                empty_dir(&dir)?;
            }
            for item in plan {
                let base = prefix(&item.volume).expect("every planned volume has a location");
                let remote = join_remote(&base, &item.remote)?;
                match item.file {
                    None => {
                        real_dir(&mount, &remote, true)?;
                        stats.folders += 1;
                    }
                    Some((source, _)) => {
                        let target =
                            locate(&mount, &remote, true)?.expect("locate creates what is missing");
                        let mut input = File::open(&source).map_err(|e| Error::io(&source, e))?;
                        let mut output = create_file(&target)?;
                        stats.bytes += std::io::copy(&mut input, &mut output)
                            .map_err(|e| Error::io(&target, e))?;
                        stats.files += 1;
                    }
                }
            }
            Ok(stats)
        })
        .await
    }

    pub(super) async fn collect(
        mount: &Path,
        remote: &RemotePath,
        workspace: &Path,
        local: &Path,
    ) -> Result<TransferStats, Error> {
        let mount = mount.to_path_buf();
        let remote = remote.clone();
        let workspace = workspace.to_path_buf();
        let local = local.to_path_buf();
        blocking(COPIER, move || {
            let mut stats = TransferStats::default();
            let Some(source) = locate(&mount, &remote, false)? else { return Ok(stats) };
            match std::fs::symlink_metadata(&source) {
                Err(e) if missing(&e) => return Ok(stats),
                Err(e) => return Err(Error::io(&source, e)),
                Ok(_) => {}
            }
            super::real_parent_dirs(&workspace, &local)?;
            copy_back(&source, &workspace, &local, &mut stats)?;
            Ok(stats)
        })
        .await
    }

    /// Copies a share folder or file back, never following a link on either side:
    /// links in the share are left out with a warning, links in the workspace are
    /// replaced. The folders above `local` are real folders (`real_parent_dirs`), and
    /// each folder this makes is one too, so nothing lands outside the workspace.
    fn copy_back(
        source: &Path,
        workspace: &Path,
        local: &Path,
        stats: &mut TransferStats,
    ) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(source).map_err(|e| Error::io(source, e))?;
        if !local.starts_with(workspace) {
            return Err(Error::InvalidPath(format!(
                "{} is outside the workspace",
                local.display()
            )));
        }
        if !meta.is_dir() && !meta.is_file() {
            tracing::warn!(path = %source.display(), "not collected: not a file or folder");
            return Ok(());
        }
        if meta.is_dir() {
            let existing = std::fs::symlink_metadata(local).ok();
            if !existing.as_ref().is_some_and(std::fs::Metadata::is_dir) {
                if existing.is_some() {
                    // A link, or a file in the way: removed, never followed.
                    std::fs::remove_file(local).map_err(|e| Error::io(local, e))?;
                }
                std::fs::create_dir(local).map_err(|e| Error::io(local, e))?;
            }
            stats.folders += 1;
            for entry in std::fs::read_dir(source).map_err(|e| Error::io(source, e))? {
                let entry = entry.map_err(|e| Error::io(source, e))?;
                let name = entry.file_name();
                let name_text = name.to_string_lossy();
                check_name(&name_text)?;
                copy_back(&entry.path(), workspace, &local.join(&name), stats)?;
            }
        } else {
            let Some((mut input, _)) = open_file(source)? else { return Ok(()) };
            stats.bytes += write_local(&mut input, local)?;
            stats.files += 1;
        }
        Ok(())
    }

    /// Copies `input` into a new file at the workspace path `local` (whose folders
    /// are real folders) and gives the bytes copied. A file or link at `local` is
    /// removed first, so the copy never goes through what stood there; a folder
    /// there is refused.
    fn write_local(input: &mut File, local: &Path) -> Result<u64, Error> {
        match std::fs::symlink_metadata(local) {
            Ok(existing) if existing.is_dir() => {
                return Err(Error::InvalidPath(format!(
                    "{} is a folder locally but a file on the share",
                    local.display()
                )));
            }
            Ok(_) => std::fs::remove_file(local).map_err(|e| Error::io(local, e))?,
            Err(_) => {}
        }
        // O_EXCL: never through a link that appeared since the look above.
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(local)
            .map_err(|e| Error::io(local, e))?;
        std::io::copy(input, &mut output).map_err(|e| Error::io(local, e))
    }

    fn version_of(meta: &std::fs::Metadata) -> FileVersion {
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        FileVersion {
            len: meta.len(),
            etag: format!("{modified:x}-{:x}", meta.len()),
            last_modified: modified.to_string(),
        }
    }

    /// The version of the file `remote`, `None` when there is none (or a folder).
    pub(super) async fn version(
        mount: &Path,
        remote: &RemotePath,
    ) -> Result<Option<FileVersion>, Error> {
        let mount = mount.to_path_buf();
        let remote = remote.clone();
        blocking(COPIER, move || {
            let Some(path) = locate(&mount, &remote, false)? else { return Ok(None) };
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => Ok(Some(version_of(&meta))),
                Ok(meta) if meta.is_dir() => Ok(None),
                Ok(_) => Err(not_followed(&path)),
                Err(e) if missing(&e) => Ok(None),
                Err(e) => Err(Error::io(&path, e)),
            }
        })
        .await
    }

    /// Copies the file `remote` to `local` (a link there is replaced, not written
    /// through, and a folder refused) and gives the version copied; `None` when the
    /// file is gone.
    pub(super) async fn fetch(
        mount: &Path,
        remote: &RemotePath,
        local: &Path,
    ) -> Result<Option<FileVersion>, Error> {
        let mount = mount.to_path_buf();
        let remote = remote.clone();
        let local = local.to_path_buf();
        blocking(COPIER, move || {
            let Some(path) = locate(&mount, &remote, false)? else { return Ok(None) };
            let Some((mut input, meta)) = open_file(&path)? else { return Ok(None) };
            write_local(&mut input, &local)?;
            Ok(Some(version_of(&meta)))
        })
        .await
    }

    /// Removes the job's folder; a link on the way there is refused, and a link in
    /// its place is removed (never what it points to).
    pub(super) async fn discard(mount: &Path, job: &JobId) -> Result<(), Error> {
        let mount = mount.to_path_buf();
        let runs = RemotePath::new(MOUNTED_RUNS).expect("a valid name");
        let job = job.as_str().to_owned();
        blocking(COPIER, move || {
            let Some(runs) = real_dir(&mount, &runs, false)? else { return Ok(()) };
            let folder = runs.join(job);
            let removed = match std::fs::symlink_metadata(&folder) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&folder),
                Ok(_) => std::fs::remove_file(&folder),
                Err(e) => Err(e),
            };
            match removed {
                Err(e) if !missing(&e) => Err(Error::io(folder, e)),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod send_check {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The futures must be `Send` so that backends can box them for any runtime.
    #[allow(dead_code)]
    fn futures_are_send(stager: &Stager, job: &JobId, workspace: &Path, watch: &mut Watch) {
        assert_send(&stager.publish(job, workspace, &[], &[]));
        assert_send(&stager.collect(job, workspace, &[]));
        assert_send(&stager.discard(job));
        assert_send(&stager.stale_shares("w", 0));
        assert_send(&watch.poll());
    }
}
