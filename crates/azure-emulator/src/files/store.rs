//! The shares on disk: `<data_dir>/shares/<share>/` holds exactly the files and
//! directories of a share, `<data_dir>/meta/<share>.json` its properties (quota,
//! metadata, creation time). Deleted shares are first renamed into
//! `<data_dir>/trash/`, so that they disappear at once, and then removed.
//!
//! Every function here is blocking; the handlers call them on tokio's blocking pool.
//!
//! Links are never followed: each directory on the way to a file or directory is
//! looked at with `symlink_metadata` and must be a real directory, and files are
//! opened with `O_NOFOLLOW`, so a link that a container left in a share (say
//! `output -> /`) is not a way out of it. A link, socket or device inside a share is
//! not a file to this service: it is not listed, read or written, but it can be
//! deleted (which removes the link itself).

use std::collections::BTreeMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use super::names;

/// The quota of a share created without `x-ms-share-quota`, in GiB (Azure's default
/// for standard shares).
pub(crate) const DEFAULT_QUOTA_GIB: u64 = 5120;

/// The shares of one account, on disk.
#[derive(Debug)]
pub(crate) struct Store {
    shares: PathBuf,
    meta: PathBuf,
    trash: PathBuf,
}

/// Properties of a share.
#[derive(Clone, Debug)]
pub(crate) struct ShareInfo {
    pub(crate) name: String,
    pub(crate) quota_gib: u64,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) last_modified: SystemTime,
}

impl ShareInfo {
    pub(crate) fn etag(&self) -> String {
        etag(self.last_modified, 0)
    }
}

/// The properties file of a share, `<data_dir>/meta/<share>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ShareMeta {
    quota_gib: u64,
    metadata: BTreeMap<String, String>,
    created_unix_nanos: u64,
}

/// Properties of a file or directory, from its inode.
#[derive(Clone, Debug)]
pub(crate) struct Props {
    pub(crate) is_dir: bool,
    pub(crate) len: u64,
    pub(crate) modified: SystemTime,
    pub(crate) created: SystemTime,
    pub(crate) changed: SystemTime,
    pub(crate) accessed: SystemTime,
    pub(crate) id: u64,
}

impl Props {
    pub(crate) fn from_metadata(meta: &Metadata) -> Props {
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let changed = unix_time(meta.ctime(), meta.ctime_nsec());
        Props {
            is_dir: meta.is_dir(),
            len: if meta.is_dir() { 0 } else { meta.len() },
            modified,
            // Not every file system records a birth time.
            created: meta.created().unwrap_or(modified),
            changed,
            accessed: meta.accessed().unwrap_or(modified),
            id: meta.ino(),
        }
    }

    /// The ETag: the modification time in nanoseconds and the length.
    pub(crate) fn etag(&self) -> String {
        etag(self.modified, self.len)
    }
}

/// One entry of a directory listing.
#[derive(Debug)]
pub(crate) struct ListEntry {
    pub(crate) name: String,
    pub(crate) props: Props,
}

/// A page of a directory listing.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) directory: Props,
    pub(crate) entries: Vec<ListEntry>,
    pub(crate) next_marker: Option<String>,
}

/// What a listing (of shares or of a directory) asks for.
#[derive(Debug)]
pub(crate) struct ListQuery<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) marker: &'a str,
    pub(crate) max_results: usize,
}

impl Store {
    /// Opens (and creates) the layout under `data_dir`, which must be usable as an
    /// absolute path for bind mounts: it is canonicalized.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(data_dir)?;
        let root = data_dir.canonicalize()?;
        let store = Store {
            shares: root.join("shares"),
            meta: root.join("meta"),
            trash: root.join("trash"),
        };
        for dir in [&store.shares, &store.meta, &store.trash] {
            fs::create_dir_all(dir)?;
        }
        // Leftovers of deletions that a previous run did not finish.
        for entry in fs::read_dir(&store.trash)? {
            let path = entry?.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
        Ok(store)
    }

    /// The data directory itself (canonical).
    pub(crate) fn root(&self) -> &Path {
        self.shares.parent().unwrap_or(&self.shares)
    }

    /// The directory that holds share `share` (whether or not it exists).
    pub(crate) fn share_dir(&self, share: &str) -> PathBuf {
        self.shares.join(share)
    }

    fn meta_path(&self, share: &str) -> PathBuf {
        self.meta.join(format!("{share}.json"))
    }

    // === shares ===

    pub(crate) fn create_share(
        &self,
        share: &str,
        quota_gib: Option<u64>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ShareInfo> {
        let dir = self.share_dir(share);
        if let Err(err) = fs::DirBuilder::new().mode(0o777).create(&dir) {
            return Err(match err.kind() {
                ErrorKind::AlreadyExists => StorageError::new(
                    StatusCode::CONFLICT,
                    "ShareAlreadyExists",
                    "The specified share already exists.",
                ),
                _ => StorageError::internal("creating a share directory", err),
            });
        }
        let meta = ShareMeta {
            quota_gib: quota_gib.unwrap_or(DEFAULT_QUOTA_GIB),
            metadata,
            created_unix_nanos: unix_nanos(SystemTime::now()),
        };
        if let Err(err) = self.write_meta(share, &meta) {
            let _ = fs::remove_dir(&dir);
            return Err(StorageError::internal("writing share properties", err));
        }
        Ok(self.info_from(share, meta))
    }

    fn write_meta(&self, share: &str, meta: &ShareMeta) -> io::Result<()> {
        let tmp = self.meta.join(format!(".{share}.{}.tmp", uuid::Uuid::new_v4()));
        fs::write(&tmp, serde_json::to_vec_pretty(meta)?)?;
        fs::rename(&tmp, self.meta_path(share)).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    fn info_from(&self, share: &str, meta: ShareMeta) -> ShareInfo {
        ShareInfo {
            name: share.to_owned(),
            quota_gib: meta.quota_gib,
            metadata: meta.metadata,
            last_modified: UNIX_EPOCH + Duration::from_nanos(meta.created_unix_nanos),
        }
    }

    /// The share's root directory, which must be a real directory.
    fn share_root(&self, share: &str) -> Result<PathBuf> {
        let dir = self.share_dir(share);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(StorageError::share_not_found()),
            Err(err) if err.kind() == ErrorKind::NotFound => Err(StorageError::share_not_found()),
            Err(err) => Err(StorageError::internal("looking up a share", err)),
        }
    }

    /// Properties of an existing share. A share directory made by other means than
    /// this service (a test, say) has default properties.
    pub(crate) fn share_info(&self, share: &str) -> Result<ShareInfo> {
        let dir = self.share_root(share)?;
        let meta = match fs::read(self.meta_path(share)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(share, error = %err, "unreadable share properties; using defaults");
                ShareMeta::default()
            }),
            Err(err) if err.kind() == ErrorKind::NotFound => ShareMeta::default(),
            Err(err) => return Err(StorageError::internal("reading share properties", err)),
        };
        let mut meta = meta;
        if meta.quota_gib == 0 {
            meta.quota_gib = DEFAULT_QUOTA_GIB;
        }
        if meta.created_unix_nanos == 0 {
            let modified = fs::symlink_metadata(&dir).and_then(|m| m.modified());
            meta.created_unix_nanos = modified.map(unix_nanos).unwrap_or(0);
        }
        Ok(self.info_from(share, meta))
    }

    pub(crate) fn delete_share(&self, share: &str) -> Result<()> {
        let dir = self.share_root(share)?;
        let doomed = self.trash.join(format!("{share}.{}", uuid::Uuid::new_v4()));
        fs::rename(&dir, &doomed).map_err(|e| StorageError::internal("deleting a share", e))?;
        if let Err(err) = fs::remove_file(self.meta_path(share))
            && err.kind() != ErrorKind::NotFound
        {
            tracing::warn!(share, error = %err, "could not remove a deleted share's properties");
        }
        // remove_dir_all removes links, never what they point to.
        fs::remove_dir_all(&doomed).map_err(|e| StorageError::internal("deleting a share", e))
    }

    /// A page of the shares whose names start with `prefix` and are not before
    /// `marker`, sorted by name, and the name that starts the next page.
    pub(crate) fn list_shares(
        &self,
        query: &ListQuery<'_>,
    ) -> Result<(Vec<ShareInfo>, Option<String>)> {
        let entries =
            fs::read_dir(&self.shares).map_err(|e| StorageError::internal("listing shares", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::internal("listing shares", e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if let Ok(name) = entry.file_name().into_string()
                && is_dir
                && name.starts_with(query.prefix)
                && name.as_str() >= query.marker
                && names::check_share_name(&name).is_ok()
            {
                names.push(name);
            }
        }
        names.sort_unstable();
        let next_marker = names.get(query.max_results).cloned();
        names.truncate(query.max_results);
        let mut shares = Vec::with_capacity(names.len());
        for name in names {
            match self.share_info(&name) {
                Ok(info) => shares.push(info),
                // Deleted since it was listed.
                Err(err) if err.status == StatusCode::NOT_FOUND => {}
                Err(err) => return Err(err),
            }
        }
        Ok((shares, next_marker))
    }

    // === directories and files ===

    /// Walks to the directory `dirs` of `share`: the share must exist and every
    /// step must be a real directory (`missing` is the error for a step that is not).
    fn walk(&self, share: &str, dirs: &[String], missing: fn() -> StorageError) -> Result<PathBuf> {
        let mut path = self.share_root(share)?;
        for name in dirs {
            path.push(name);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(missing()),
                Err(err) if is_missing(&err) => return Err(missing()),
                Err(err) => return Err(StorageError::internal("looking up a directory", err)),
            }
        }
        Ok(path)
    }

    /// The parent directory of `path` (which is not empty) and the last name.
    fn parent<'p>(&self, share: &str, path: &'p [String]) -> Result<(PathBuf, &'p str)> {
        let (name, dirs) = path.split_last().expect("a path in a share has a last name");
        Ok((self.walk(share, dirs, StorageError::parent_not_found)?, name))
    }

    /// Properties of the directory `path` (the share's root for an empty path).
    pub(crate) fn directory(&self, share: &str, path: &[String]) -> Result<Props> {
        let dir = match path.split_last() {
            None => self.share_root(share)?,
            Some((name, dirs)) => {
                self.walk(share, dirs, StorageError::parent_not_found)?.join(name)
            }
        };
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(Props::from_metadata(&meta)),
            Ok(_) => Err(StorageError::resource_not_found()),
            Err(err) if is_missing(&err) => Err(StorageError::resource_not_found()),
            Err(err) => Err(StorageError::internal("looking up a directory", err)),
        }
    }

    pub(crate) fn create_directory(&self, share: &str, path: &[String]) -> Result<Props> {
        let (parent, name) = self.parent(share, path)?;
        let dir = parent.join(name);
        match fs::DirBuilder::new().mode(0o777).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                return Err(StorageError::new(
                    StatusCode::CONFLICT,
                    "ResourceAlreadyExists",
                    "The specified resource already exists.",
                ));
            }
            Err(err) => return Err(map_io("creating a directory", err)),
        }
        let meta = fs::symlink_metadata(&dir).map_err(|e| map_io("creating a directory", e))?;
        Ok(Props::from_metadata(&meta))
    }

    pub(crate) fn delete_directory(&self, share: &str, path: &[String]) -> Result<()> {
        let (parent, name) = self.parent(share, path)?;
        let dir = parent.join(name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(StorageError::resource_not_found()),
            Err(err) if is_missing(&err) => return Err(StorageError::resource_not_found()),
            Err(err) => return Err(StorageError::internal("looking up a directory", err)),
        }
        fs::remove_dir(&dir).map_err(|err| match err.kind() {
            ErrorKind::DirectoryNotEmpty => StorageError::new(
                StatusCode::CONFLICT,
                "DirectoryNotEmpty",
                "The specified directory is not empty.",
            ),
            _ => map_io("deleting a directory", err),
        })
    }

    /// A page of the directory `path`, sorted by name: entries whose names start
    /// with `prefix` and are not before `marker`.
    pub(crate) fn list_directory(
        &self,
        share: &str,
        path: &[String],
        query: &ListQuery<'_>,
    ) -> Result<Listing> {
        let directory = self.directory(share, path)?;
        let mut dir = self.share_root(share)?;
        dir.extend(path);
        let entries = fs::read_dir(&dir).map_err(|e| map_io("listing a directory", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| map_io("listing a directory", e))?;
            // Neither links nor special files are part of the share's contents.
            let Ok(kind) = entry.file_type() else { continue };
            if !kind.is_dir() && !kind.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                tracing::debug!(?dir, "skipping a name that is not UTF-8");
                continue;
            };
            if name.starts_with(query.prefix)
                && name.as_str() >= query.marker
                && names::check_name(&name).is_ok()
            {
                names.push(name);
            }
        }
        names.sort_unstable();
        let next_marker = if names.len() > query.max_results {
            Some(names[query.max_results].clone())
        } else {
            None
        };
        names.truncate(query.max_results);
        let mut listed = Vec::with_capacity(names.len());
        for name in names {
            match fs::symlink_metadata(dir.join(&name)) {
                Ok(meta) if meta.is_dir() || meta.is_file() => {
                    listed.push(ListEntry { name, props: Props::from_metadata(&meta) });
                }
                // Removed or replaced since it was read.
                Ok(_) => {}
                Err(err) if is_missing(&err) => {}
                Err(err) => return Err(map_io("listing a directory", err)),
            }
        }
        Ok(Listing { directory, entries: listed, next_marker })
    }

    /// Creates (or replaces) a file of `len` bytes, all zeros (a sparse file).
    pub(crate) fn create_file(&self, share: &str, path: &[String], len: u64) -> Result<Props> {
        let (parent, name) = self.parent(share, path)?;
        let file_path = parent.join(name);
        match fs::symlink_metadata(&file_path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(type_mismatch()),
            Err(err) if is_missing(&err) => {}
            Err(err) => return Err(map_io("creating a file", err)),
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&file_path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ELOOP | libc::EISDIR | libc::ENXIO) => type_mismatch(),
                _ => map_io("creating a file", err),
            })?;
        file.set_len(len).map_err(|e| map_io("sizing a file", e))?;
        let meta = file.metadata().map_err(|e| map_io("creating a file", e))?;
        Ok(Props::from_metadata(&meta))
    }

    /// Opens an existing regular file for reading or writing.
    pub(crate) fn open_file(
        &self,
        share: &str,
        path: &[String],
        write: bool,
    ) -> Result<(File, Props)> {
        let (parent, name) = self.parent(share, path)?;
        let file_path = parent.join(name);
        match fs::symlink_metadata(&file_path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(StorageError::resource_not_found()),
            Err(err) if is_missing(&err) => return Err(StorageError::resource_not_found()),
            Err(err) => return Err(map_io("opening a file", err)),
        }
        // O_NONBLOCK: should the file have been swapped for a FIFO since the check,
        // opening it does not wait for a peer. It changes nothing for regular files.
        let file = OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&file_path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ELOOP | libc::EISDIR | libc::ENXIO) => {
                    StorageError::resource_not_found()
                }
                _ if is_missing(&err) => StorageError::resource_not_found(),
                _ => map_io("opening a file", err),
            })?;
        let meta = file.metadata().map_err(|e| map_io("opening a file", e))?;
        if !meta.is_file() {
            return Err(StorageError::resource_not_found());
        }
        Ok((file, Props::from_metadata(&meta)))
    }

    /// Deletes a file (or a link or special file, never what a link points to).
    pub(crate) fn delete_file(&self, share: &str, path: &[String]) -> Result<()> {
        let (parent, name) = self.parent(share, path)?;
        let file_path = parent.join(name);
        match fs::symlink_metadata(&file_path) {
            Ok(meta) if !meta.is_dir() => {}
            Ok(_) => return Err(StorageError::resource_not_found()),
            Err(err) if is_missing(&err) => return Err(StorageError::resource_not_found()),
            Err(err) => return Err(map_io("deleting a file", err)),
        }
        fs::remove_file(&file_path).map_err(|err| {
            if is_missing(&err) {
                StorageError::resource_not_found()
            } else {
                map_io("deleting a file", err)
            }
        })
    }
}

fn type_mismatch() -> StorageError {
    StorageError::new(
        StatusCode::CONFLICT,
        "ResourceTypeMismatch",
        "The specified resource type does not match the type of the existing resource.",
    )
}

/// A path that is not there, or whose parent is not a directory (any more).
fn is_missing(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// I/O errors that are the client's (a name too long for the file system) or
/// another request's doing (a parent removed meanwhile); the rest are internal.
fn map_io(context: &str, err: io::Error) -> StorageError {
    match err.kind() {
        ErrorKind::InvalidFilename => StorageError::bad_request(
            "InvalidFileOrDirectoryPathName",
            "The specified file or directory name is not valid.",
        ),
        _ if is_missing(&err) => StorageError::parent_not_found(),
        _ => StorageError::internal(context, err),
    }
}

fn unix_time(secs: i64, nanos: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nanos = u32::try_from(nanos).unwrap_or(0).min(999_999_999);
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn unix_nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

fn etag(modified: SystemTime, len: u64) -> String {
    format!("\"0x{:X}{len:016X}\"", unix_nanos(modified))
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ`, the form of Azure Files' SMB timestamps.
pub(crate) fn format_file_time(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = afs_staging::auth::format_iso8601(since.as_secs());
    let seconds = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{seconds}.{:07}Z", since.subsec_nanos() / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_times_have_seven_decimals() {
        let time = UNIX_EPOCH + Duration::new(1_796_313_721, 123_456_789);
        assert_eq!(format_file_time(time), "2026-12-03T16:02:01.1234567Z");
    }

    #[test]
    fn etag_changes_with_time_and_length() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_000);
        assert_ne!(etag(t, 1), etag(t, 2));
        assert_ne!(etag(t, 1), etag(t + Duration::from_nanos(1), 1));
    }

    #[test]
    fn links_in_a_share_are_neither_followed_nor_listed() {
        let data = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        let store = Store::open(data.path()).unwrap();
        store.create_share("share", None, BTreeMap::new()).unwrap();
        let root = store.share_dir("share");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("f")).unwrap();

        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let code = |r: Result<()>| r.unwrap_err().code;
        assert_eq!(
            code(store.open_file("share", &path(&["f"]), false).map(drop)),
            "ResourceNotFound"
        );
        assert_eq!(
            code(store.open_file("share", &path(&["out", "secret"]), false).map(drop)),
            "ParentNotFound"
        );
        assert_eq!(
            code(store.create_file("share", &path(&["f"]), 3).map(drop)),
            "ResourceTypeMismatch"
        );
        assert_eq!(
            code(store.create_directory("share", &path(&["out", "x"])).map(drop)),
            "ParentNotFound"
        );
        let query = ListQuery { prefix: "", marker: "", max_results: 10 };
        assert!(store.list_directory("share", &[], &query).unwrap().entries.is_empty());
        store.delete_file("share", &path(&["f"])).unwrap();
        store.delete_share("share").unwrap();
        assert_eq!(fs::read(outside.path().join("secret")).unwrap(), b"secret");
    }
}
