//! Safe handling of CodaLab bundle zips.
//!
//! Bundles (submissions, reference data, scoring programs) are zip files written by untrusted
//! participants and organizers. This module extracts them without letting any entry land outside
//! the destination folder, caps how much they may expand to, applies the CodaLab folder rules
//! ([`hoist_single_folder`], [`extract_nested`]) and writes output zips ([`create_zip`]).
//!
//! Entry names are checked by this module itself (no `..` component, no absolute path, no
//! drive letter, no NUL byte; `\` counts as a folder separator, as zips made on Windows use it)
//! and by the zip crate's [`enclosed_name`](zip::read::ZipFile::enclosed_name). Symbolic links
//! are created only when their target stays inside the destination, and no file is ever
//! written through a symbolic link. Sizes declared in zip headers are never trusted: the byte
//! limit is enforced on the bytes actually written.
//!
//! Unix only: permission bits and symbolic links use `std::os::unix`.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, warn};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipArchive, ZipWriter};

/// File-type bits of a unix mode.
const S_IFMT: u32 = 0o170_000;
/// File type of a directory.
const S_IFDIR: u32 = 0o040_000;
/// File type of a symbolic link.
const S_IFLNK: u32 = 0o120_000;
/// Permission bits kept from an archive (setuid, setgid and sticky are dropped).
const PERMISSION_BITS: u32 = 0o777;
/// Mode of extracted files that carry no unix mode.
const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of extracted folders that carry no unix mode.
const DEFAULT_DIR_MODE: u32 = 0o755;
/// Always added to an extracted file's mode, so the worker can read and replace it.
const OWNER_FILE_BITS: u32 = 0o600;
/// Always added to an extracted folder's mode, so the worker can fill and delete it.
const OWNER_DIR_BITS: u32 = 0o700;
/// Longest symbolic link target accepted from an archive (Linux `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;
/// Size of the buffer file contents are streamed through.
const COPY_BUFFER: usize = 128 * 1024;
/// Folder that macOS adds to the zips it makes; never part of a bundle.
const MACOSX: &str = "__MACOSX";
/// File that marks the root of a CodaLab bundle.
const METADATA: &str = "metadata";

/// Caps against zip bombs; configurable by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes all extracted files may add up to (counted as they are written).
    pub max_total_bytes: u64,
    /// Most entries (files, folders and symbolic links) the archives may hold together.
    pub max_entries: u64,
}

impl Default for Limits {
    /// 16 GiB of uncompressed data in at most 100,000 entries.
    fn default() -> Self {
        Self { max_total_bytes: 16 << 30, max_entries: 100_000 }
    }
}

impl Limits {
    /// What is left of these limits once `used` has been extracted, to share one budget between
    /// a bundle and the zips nested in it: `extract_nested(dir, &limits.remaining_after(outer))`.
    ///
    /// Only files are known from `used`, so the folders and links of the first archive are not
    /// taken off `max_entries`.
    #[must_use]
    pub fn remaining_after(&self, used: Extracted) -> Self {
        Self {
            max_total_bytes: self.max_total_bytes.saturating_sub(used.bytes),
            max_entries: self.max_entries.saturating_sub(used.files),
        }
    }
}

/// What an extraction or [`create_zip`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Regular files written (folders and symbolic links are not counted).
    pub files: u64,
    /// Bytes of file contents written (uncompressed).
    pub bytes: u64,
}

impl Extracted {
    /// Adds the counts of `other` to these.
    fn add(&mut self, other: Self) {
        self.files += other.files;
        self.bytes += other.bytes;
    }
}

/// Why an archive could not be extracted or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// An entry would land outside the destination: a name with a `..` component, an absolute
    /// or drive-letter path, a symbolic link whose target leaves the destination, or a write
    /// through a symbolic link.
    #[error("unsafe archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's name as stored in the archive.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The files written would add up to more than the byte limit.
    #[error("archive expands to more than {limit} bytes")]
    TooLarge {
        /// The byte limit that was hit.
        limit: u64,
    },
    /// The archives hold more entries than allowed.
    #[error("archive has more than {limit} entries")]
    TooManyEntries {
        /// The entry limit that was hit.
        limit: u64,
    },
    /// Not a zip archive, or a damaged one (truncated, bad checksum); the zip library's text.
    #[error("corrupt zip archive: {0}")]
    Corrupt(String),
    /// A zip feature this worker does not read: a compression method other than stored,
    /// deflate and deflate64, or encryption.
    #[error("unsupported zip archive: {0}")]
    Unsupported(String),
    /// Reading or writing a file on disk failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Builds a closure that wraps an I/O error with the path it concerns.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

/// An [`ArchiveError::UnsafeEntry`] for `entry`.
fn unsafe_entry(entry: &str, reason: &'static str) -> ArchiveError {
    ArchiveError::UnsafeEntry { entry: entry.to_owned(), reason }
}

/// Sorts an error of the zip library, met while reading `zip_path`, into our kinds.
fn read_error(error: ZipError, zip_path: &Path) -> ArchiveError {
    match error {
        ZipError::Io(source) => content_error(source, zip_path),
        ZipError::UnsupportedArchive(_)
        | ZipError::CompressionMethodNotSupported(_)
        | ZipError::InvalidPassword => ArchiveError::Unsupported(error.to_string()),
        other => ArchiveError::Corrupt(other.to_string()),
    }
}

/// Sorts an I/O error met while reading from an archive: damaged data is [`ArchiveError::Corrupt`],
/// an unknown method [`ArchiveError::Unsupported`], anything else a failure of the disk.
fn content_error(source: io::Error, zip_path: &Path) -> ArchiveError {
    match source.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            ArchiveError::Corrupt(source.to_string())
        }
        io::ErrorKind::Unsupported => ArchiveError::Unsupported(source.to_string()),
        _ => ArchiveError::Io { path: zip_path.to_path_buf(), source },
    }
}

/// Whether the file starts like a zip archive (local header `PK\x03\x04`, or an empty
/// archive's `PK\x05\x06`).
pub fn is_zip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path)?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"PK\x03\x04" || &magic == b"PK\x05\x06"),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

/// Extracts every entry under `dest` (created if missing).
///
/// On any error the extraction stops and returns the error; files already written stay inside
/// `dest` (never outside). Unix permission bits from the archive are kept (mask `0o777`:
/// executables stay executable, setuid, setgid and sticky bits are dropped), with owner read
/// and write always added to files and owner `rwx` to folders so the worker can still read,
/// replace and delete what it extracted; files without a unix mode get `0o644`, folders
/// `0o755`.
///
/// Symbolic link entries are created only when their target, resolved relative to the link's
/// folder, stays inside `dest`: no absolute target, and `..` components only at the start of
/// the target and no more of them than the link's depth. No file, folder or link is ever
/// created through a path component that is a symbolic link (an archive may create
/// `a -> /etc` and then write `a/passwd`): such an entry is [`ArchiveError::UnsafeEntry`]. An
/// entry whose path already holds a regular file overwrites it; one that holds a symbolic
/// link is refused.
///
/// All entries count against `limits.max_entries` (checked before anything is written); the
/// bytes written count against `limits.max_total_bytes` as they are written.
pub fn extract(zip_path: &Path, dest: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    extract_with_budget(zip_path, dest, &mut Budget::new(*limits))
}

/// What is left of the [`Limits`] while extracting one archive or several.
#[derive(Debug)]
struct Budget {
    /// The limits this budget started from, reported in errors.
    limits: Limits,
    /// Bytes that may still be written.
    bytes_left: u64,
    /// Entries that may still be extracted.
    entries_left: u64,
}

impl Budget {
    /// A full budget for `limits`.
    fn new(limits: Limits) -> Self {
        Self { limits, bytes_left: limits.max_total_bytes, entries_left: limits.max_entries }
    }

    /// Takes `count` entries off the budget, or fails when fewer are left.
    fn take_entries(&mut self, count: u64) -> Result<(), ArchiveError> {
        self.entries_left = self
            .entries_left
            .checked_sub(count)
            .ok_or(ArchiveError::TooManyEntries { limit: self.limits.max_entries })?;
        Ok(())
    }

    /// Takes `count` bytes off the budget, or fails when fewer are left.
    fn take_bytes(&mut self, count: u64) -> Result<(), ArchiveError> {
        self.bytes_left = self
            .bytes_left
            .checked_sub(count)
            .ok_or(ArchiveError::TooLarge { limit: self.limits.max_total_bytes })?;
        Ok(())
    }
}

/// [`extract`] against a budget that may be shared with other archives.
fn extract_with_budget(
    zip_path: &Path,
    dest: &Path,
    budget: &mut Budget,
) -> Result<Extracted, ArchiveError> {
    let file = File::open(zip_path).map_err(io_at(zip_path))?;
    let archive_meta = file.metadata().map_err(io_at(zip_path))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).map_err(|error| read_error(error, zip_path))?;
    budget.take_entries(u64::try_from(archive.len()).unwrap_or(u64::MAX))?;
    fs::create_dir_all(dest).map_err(io_at(dest))?;

    let mut extractor = Extractor {
        zip_path,
        dest,
        archive_id: (archive_meta.dev(), archive_meta.ino()),
        real_dirs: HashSet::new(),
        dir_modes: HashMap::new(),
        buffer: vec![0; COPY_BUFFER],
        done: Extracted::default(),
    };
    for index in 0..archive.len() {
        extractor.entry(&mut archive, index, budget)?;
    }
    extractor.apply_dir_modes()?;
    Ok(extractor.done)
}

/// What one entry of an archive is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, whose target is the entry's contents.
    Symlink,
}

/// The state of one archive's extraction.
struct Extractor<'a> {
    /// The archive, for error messages.
    zip_path: &'a Path,
    /// Where the entries go.
    dest: &'a Path,
    /// Device and inode of the archive, so that no entry overwrites it.
    archive_id: (u64, u64),
    /// Folders under `dest` (relative) known to be real folders, not symbolic links.
    real_dirs: HashSet<PathBuf>,
    /// Modes to give the folders (relative) once every entry is written.
    dir_modes: HashMap<PathBuf, u32>,
    /// Reused buffer for file contents.
    buffer: Vec<u8>,
    /// Counts so far.
    done: Extracted,
}

impl Extractor<'_> {
    /// Extracts the entry at `index`.
    fn entry(
        &mut self,
        archive: &mut ZipArchive<BufReader<File>>,
        index: usize,
        budget: &mut Budget,
    ) -> Result<(), ArchiveError> {
        let meta = archive.by_index_data(index).map_err(|e| read_error(e, self.zip_path))?;
        let name = match meta.name() {
            Ok(name) => name.into_owned(),
            Err(_) => {
                let raw = String::from_utf8_lossy(meta.name_raw()).into_owned();
                return Err(unsafe_entry(&raw, "name is not valid text"));
            }
        };
        let rel = entry_path(&name).map_err(|reason| unsafe_entry(&name, reason))?;
        if meta.enclosed_name().is_none() {
            return Err(unsafe_entry(&name, "rejected by the zip library's path check"));
        }
        let mode = unix_mode(meta.system(), meta.external_attributes());
        let kind = match mode.map(|mode| mode & S_IFMT) {
            Some(S_IFLNK) => EntryKind::Symlink,
            Some(S_IFDIR) => EntryKind::Dir,
            _ if meta.is_dir() => EntryKind::Dir,
            _ => EntryKind::File,
        };
        if kind != EntryKind::Dir {
            if meta.encrypted() {
                return Err(ArchiveError::Unsupported(format!("entry {name:?} is encrypted")));
            }
            let method = meta.compression();
            if !matches!(
                method,
                CompressionMethod::Stored
                    | CompressionMethod::Deflated
                    | CompressionMethod::Deflate64
            ) {
                return Err(ArchiveError::Unsupported(format!(
                    "entry {name:?} uses compression method {method:?}"
                )));
            }
        }
        if rel.as_os_str().is_empty() {
            // A name such as `./`: the destination itself.
            return match kind {
                EntryKind::Dir => Ok(()),
                _ => Err(unsafe_entry(&name, "name has no file part")),
            };
        }

        match kind {
            EntryKind::Dir => {
                self.ensure_dir(&rel, &name)?;
                let mode = mode.map_or(DEFAULT_DIR_MODE, |mode| mode & PERMISSION_BITS);
                self.dir_modes.insert(rel, mode | OWNER_DIR_BITS);
                Ok(())
            }
            EntryKind::File => {
                let mode = mode.map_or(DEFAULT_FILE_MODE, |mode| mode & PERMISSION_BITS);
                self.write_file(archive, index, &rel, &name, mode | OWNER_FILE_BITS, budget)
            }
            EntryKind::Symlink => self.write_symlink(archive, index, &rel, &name),
        }
    }

    /// Makes sure the folder `rel` and all its parents exist as real folders under `dest`.
    fn ensure_dir(&mut self, rel: &Path, name: &str) -> Result<(), ArchiveError> {
        // The folders not yet known to be real, outermost first (no recursion: names may have
        // thousands of components).
        let mut unknown: Vec<PathBuf> = rel
            .ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && !self.real_dirs.contains(*dir))
            .map(Path::to_path_buf)
            .collect();
        while let Some(dir) = unknown.pop() {
            let path = self.dest.join(&dir);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(unsafe_entry(name, "path goes through a symbolic link"));
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    let source = io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("a file is in the way of the folder for entry {name:?}"),
                    );
                    return Err(ArchiveError::Io { path, source });
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new().mode(DEFAULT_DIR_MODE).create(&path).map_err(io_at(&path))?;
                    self.dir_modes.insert(dir.clone(), DEFAULT_DIR_MODE);
                }
                Err(error) => return Err(ArchiveError::Io { path, source: error }),
            }
            self.real_dirs.insert(dir);
        }
        Ok(())
    }

    /// Makes sure the folder that will hold `rel` exists as a real folder.
    fn ensure_parent(&mut self, rel: &Path, name: &str) -> Result<(), ArchiveError> {
        match rel.parent() {
            Some(parent) => self.ensure_dir(parent, name),
            None => Ok(()),
        }
    }

    /// Opens the file at `path` for writing: creates it, or truncates it when it is an
    /// existing regular file (never when it is a symbolic link or the archive itself).
    fn open_output(&self, path: &Path, name: &str, mode: u32) -> Result<File, ArchiveError> {
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
            Ok(file) => return Ok(file),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(ArchiveError::Io { path: path.to_path_buf(), source: error }),
        }
        let meta = fs::symlink_metadata(path).map_err(io_at(path))?;
        if meta.file_type().is_symlink() {
            return Err(unsafe_entry(name, "path is a symbolic link"));
        }
        if !meta.is_file() {
            let source = io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a folder or special file is in the way of entry {name:?}"),
            );
            return Err(ArchiveError::Io { path: path.to_path_buf(), source });
        }
        if (meta.dev(), meta.ino()) == self.archive_id {
            return Err(unsafe_entry(name, "entry would overwrite the archive being extracted"));
        }
        OpenOptions::new().write(true).truncate(true).open(path).map_err(io_at(path))
    }

    /// Writes the regular file entry at `index` to `rel`.
    fn write_file(
        &mut self,
        archive: &mut ZipArchive<BufReader<File>>,
        index: usize,
        rel: &Path,
        name: &str,
        mode: u32,
        budget: &mut Budget,
    ) -> Result<(), ArchiveError> {
        self.ensure_parent(rel, name)?;
        let mut reader = archive.by_index(index).map_err(|e| read_error(e, self.zip_path))?;
        let path = self.dest.join(rel);
        let mut out = self.open_output(&path, name, mode)?;
        let written = match copy_chunks(&mut reader, &mut out, &mut self.buffer, Some(budget)) {
            Ok(written) => written,
            Err(CopyError::Read(source)) => return Err(content_error(source, self.zip_path)),
            Err(CopyError::Write(source)) => return Err(ArchiveError::Io { path, source }),
            Err(CopyError::Limit(error)) => return Err(error),
        };
        // The mode given at creation is narrowed by the umask: set it exactly.
        out.set_permissions(Permissions::from_mode(mode)).map_err(io_at(&path))?;
        self.done.files += 1;
        self.done.bytes += written;
        Ok(())
    }

    /// Creates the symbolic link entry at `index` as `rel`, when its target stays inside.
    fn write_symlink(
        &mut self,
        archive: &mut ZipArchive<BufReader<File>>,
        index: usize,
        rel: &Path,
        name: &str,
    ) -> Result<(), ArchiveError> {
        self.ensure_parent(rel, name)?;
        let mut reader = archive.by_index(index).map_err(|e| read_error(e, self.zip_path))?;
        let mut target = Vec::new();
        (&mut reader)
            .take(MAX_LINK_TARGET + 1)
            .read_to_end(&mut target)
            .map_err(|source| content_error(source, self.zip_path))?;
        if u64::try_from(target.len()).unwrap_or(u64::MAX) > MAX_LINK_TARGET {
            return Err(unsafe_entry(name, "symbolic link target is too long"));
        }
        let depth = rel.components().count() - 1;
        check_link_target(depth, &target).map_err(|reason| unsafe_entry(name, reason))?;
        let path = self.dest.join(rel);
        std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).map_err(io_at(&path))
    }

    /// Gives the folders their final modes, once nothing more is written into them.
    fn apply_dir_modes(&self) -> Result<(), ArchiveError> {
        for (rel, mode) in &self.dir_modes {
            let path = self.dest.join(rel);
            fs::set_permissions(&path, Permissions::from_mode(*mode)).map_err(io_at(&path))?;
        }
        Ok(())
    }
}

/// The unix mode stored in an entry, when it was made on unix and carries one.
fn unix_mode(system: System, external_attributes: u32) -> Option<u32> {
    let mode = external_attributes >> 16;
    (system == System::Unix && mode != 0).then_some(mode)
}

/// The path relative to the destination that entry `name` is written to, or why it is unsafe.
///
/// Both `/` and `\` separate folders; empty and `.` components are skipped.
fn entry_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\0') {
        return Err("name contains a NUL byte");
    }
    if name.starts_with(['/', '\\']) {
        return Err("absolute path");
    }
    let mut path = PathBuf::new();
    for (position, part) in name.split(['/', '\\']).enumerate() {
        if position == 0 && has_drive_prefix(part.as_bytes()) {
            return Err("path starts with a drive letter");
        }
        match part {
            "" | "." => {}
            ".." => return Err("path has a `..` component"),
            part => path.push(part),
        }
    }
    Ok(path)
}

/// Whether a first path component starts like a Windows drive (`C:`).
fn has_drive_prefix(part: &[u8]) -> bool {
    matches!(part, [letter, b':', ..] if letter.is_ascii_alphabetic())
}

/// Checks that a symbolic link target, resolved from a folder `depth` levels below the
/// destination, stays inside it.
///
/// Beyond the lexical check, `..` may only lead the target: after a folder name it would
/// climb from wherever that name points, which may itself be a symbolic link.
fn check_link_target(depth: usize, target: &[u8]) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("symbolic link target is empty");
    }
    if target.contains(&0) {
        return Err("symbolic link target contains a NUL byte");
    }
    if target.starts_with(b"/") || target.starts_with(b"\\") || has_drive_prefix(target) {
        return Err("symbolic link target is absolute");
    }
    let mut depth = depth;
    let mut seen_name = false;
    for part in target.split(|&byte| byte == b'/' || byte == b'\\') {
        match part {
            b"" | b"." => {}
            b".." if seen_name => return Err("symbolic link target has `..` after a folder name"),
            b".." => {
                depth =
                    depth.checked_sub(1).ok_or("symbolic link target leaves the destination")?;
            }
            _ => seen_name = true,
        }
    }
    Ok(())
}

/// Whether `target`, resolved lexically from a folder `depth` levels below some root, ends up
/// outside that root.
fn link_escapes(depth: usize, target: &Path) -> bool {
    let mut depth = depth;
    for component in target.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return true,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            Component::Normal(_) => depth += 1,
        }
    }
    false
}

/// Why [`copy_chunks`] stopped.
enum CopyError {
    /// Reading the source failed.
    Read(io::Error),
    /// Writing the destination failed.
    Write(io::Error),
    /// The byte budget ran out.
    Limit(ArchiveError),
}

/// Streams `reader` into `writer` through `buffer`, taking every chunk off `budget` before it
/// is written. Returns the number of bytes copied.
fn copy_chunks(
    reader: &mut impl Read,
    writer: &mut impl Write,
    buffer: &mut [u8],
    mut budget: Option<&mut Budget>,
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let count = match reader.read(buffer) {
            Ok(0) => return Ok(total),
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(CopyError::Read(error)),
        };
        let count64 = u64::try_from(count).unwrap_or(u64::MAX);
        if let Some(budget) = budget.as_deref_mut() {
            budget.take_bytes(count64).map_err(CopyError::Limit)?;
        }
        writer.write_all(&buffer[..count]).map_err(CopyError::Write)?;
        total += count64;
    }
}

/// CodaLab rule: when `dir` has no `metadata` file but exactly one entry, a folder that has a
/// `metadata` file, that folder's contents move up into `dir` (and the emptied folder is
/// removed). Returns whether it hoisted.
///
/// A `__MACOSX` folder in `dir` is not counted as an entry, and is removed when hoisting.
/// Symbolic links in the hoisted folder whose target leaves that folder are removed (with a
/// warning): one level up, they would point outside `dir`.
pub fn hoist_single_folder(dir: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(dir.join(METADATA)) {
        Ok(_) => return Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut entries = Vec::new();
    let mut macosx = None;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == MACOSX {
            macosx = Some(entry);
        } else {
            entries.push(entry);
        }
    }
    let [only] = entries.as_slice() else { return Ok(false) };
    if !only.file_type()?.is_dir() {
        return Ok(false);
    }
    let folder = only.path();
    match fs::symlink_metadata(folder.join(METADATA)) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    }

    if let Some(macosx) = macosx {
        if macosx.file_type()?.is_dir() {
            fs::remove_dir_all(macosx.path())?;
        } else {
            fs::remove_file(macosx.path())?;
        }
    }
    remove_escaping_links(&folder)?;
    // Move the folder aside first: one of its children may have the folder's own name.
    let staging = staging_name(dir, &folder);
    fs::rename(&folder, &staging)?;
    for entry in fs::read_dir(&staging)? {
        let entry = entry?;
        fs::rename(entry.path(), dir.join(entry.file_name()))?;
    }
    fs::remove_dir(&staging)?;
    debug!(dir = %dir.display(), folder = %folder.display(), "hoisted single bundle folder");
    Ok(true)
}

/// A path in `dir` for moving `folder` aside, free both in `dir` and among `folder`'s children.
fn staging_name(dir: &Path, folder: &Path) -> PathBuf {
    let mut attempt = 0u64;
    loop {
        let name = format!(".hoist-{}-{attempt}", std::process::id());
        let taken = |base: &Path| fs::symlink_metadata(base.join(&name)).is_ok();
        if !taken(dir) && !taken(folder) {
            return dir.join(name);
        }
        attempt += 1;
    }
}

/// Removes the symbolic links under `root` whose target leaves `root`.
fn remove_escaping_links(root: &Path) -> io::Result<()> {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        for entry in fs::read_dir(&folder)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                stack.push((entry.path(), depth + 1));
            } else if file_type.is_symlink() {
                let path = entry.path();
                let target = fs::read_link(&path)?;
                if link_escapes(depth, &target) {
                    warn!(
                        link = %path.display(),
                        target = %target.display(),
                        "removing a symbolic link that would point outside the bundle once hoisted"
                    );
                    fs::remove_file(&path)?;
                }
            }
        }
    }
    Ok(())
}

/// CodaLab rule: every `*.zip` file found anywhere under `dir` is extracted next to itself
/// (into the folder that contains it), one level deep: zips that come out of those are not
/// extracted again. The zips are kept.
///
/// The walk does not follow symbolic links, skips `__MACOSX` folders, and matches `.zip`
/// without regard to case. The zips are found before any is extracted and extracted in
/// path order. `limits` caps all of them together and the totals are returned; to share one
/// budget with the bundle they came in, pass [`Limits::remaining_after`] of its extraction.
/// Errors from an inner zip name it in [`ArchiveError::Corrupt`] and
/// [`ArchiveError::Unsupported`] messages.
pub fn extract_nested(dir: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    let zips = find_zips(dir)?;
    let mut budget = Budget::new(*limits);
    let mut total = Extracted::default();
    for zip in zips {
        let folder = zip.parent().unwrap_or(dir);
        match extract_with_budget(&zip, folder, &mut budget) {
            Ok(done) => total.add(done),
            Err(ArchiveError::Corrupt(text)) => {
                return Err(ArchiveError::Corrupt(format!("{}: {text}", zip.display())));
            }
            Err(ArchiveError::Unsupported(text)) => {
                return Err(ArchiveError::Unsupported(format!("{}: {text}", zip.display())));
            }
            Err(error) => {
                warn!(zip = %zip.display(), %error, "nested zip could not be extracted");
                return Err(error);
            }
        }
    }
    Ok(total)
}

/// The regular files named `*.zip` under `dir`, in path order.
fn find_zips(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut zips = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).map_err(io_at(&folder))? {
            let entry = entry.map_err(io_at(&folder))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_at(&path))?;
            let name = entry.file_name();
            if file_type.is_dir() {
                if name != MACOSX {
                    stack.push(path);
                }
            } else if file_type.is_file() && has_zip_extension(&name) {
                zips.push(path);
            }
        }
    }
    zips.sort();
    Ok(zips)
}

/// Whether a file name ends in `.zip`, in any case, with something before it.
fn has_zip_extension(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 4 && bytes[bytes.len() - 4..].eq_ignore_ascii_case(b".zip")
}

/// Writes `src` (a folder) into a new zip at `dest`.
///
/// Entries are deflated and named relative to `src` with `/` separators; folders get their own
/// entries (so empty folders survive); unix permission bits and modification times are kept.
/// Symbolic links are skipped (not followed), and so are special files such as FIFOs; `dest`
/// itself is skipped when it lies inside `src`. Top-level names listed in `exclude` are left
/// out (used to keep `private/` out of `output.zip`). File contents are streamed (bounded
/// memory for big files). Names that are not valid UTF-8 are stored lossily converted.
/// On error the unfinished zip is removed. Returns the files and bytes written.
pub fn create_zip(src: &Path, dest: &Path, exclude: &[&str]) -> Result<Extracted, ArchiveError> {
    let out = File::create(dest).map_err(io_at(dest))?;
    let result = write_tree(src, dest, out, exclude);
    if result.is_err() {
        // Best effort: a half-written zip is of no use to anyone.
        if let Err(error) = fs::remove_file(dest) {
            warn!(path = %dest.display(), %error, "could not remove an unfinished zip");
        }
    }
    result
}

/// The body of [`create_zip`], writing into `out`, the file just created at `dest`.
fn write_tree(
    src: &Path,
    dest: &Path,
    out: File,
    exclude: &[&str],
) -> Result<Extracted, ArchiveError> {
    let dest_meta = out.metadata().map_err(io_at(dest))?;
    let dest_id = (dest_meta.dev(), dest_meta.ino());
    let excluded: Vec<&OsStr> =
        exclude.iter().map(|name| OsStr::new(name.trim_end_matches('/'))).collect();
    let mut writer = ZipWriter::new(BufWriter::with_capacity(COPY_BUFFER, out));
    let zip_error =
        |error: ZipError| ArchiveError::Io { path: dest.to_path_buf(), source: error.into() };
    let mut buffer = vec![0; COPY_BUFFER];
    let mut done = Extracted::default();

    let mut stack = vec![(src.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = stack.pop() {
        let mut entries: Vec<(OsString, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&folder).map_err(io_at(&folder))? {
            let entry = entry.map_err(io_at(&folder))?;
            entries.push((entry.file_name(), entry.path()));
        }
        entries.sort();
        let mut subfolders = Vec::new();
        for (file_name, path) in entries {
            if prefix.is_empty() && excluded.contains(&file_name.as_os_str()) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            if (meta.dev(), meta.ino()) == dest_id {
                continue;
            }
            let file_type = meta.file_type();
            if file_type.is_symlink() {
                debug!(path = %path.display(), "not adding a symbolic link to the zip");
                continue;
            }
            let text = file_name.to_string_lossy();
            if file_name.to_str().is_none() {
                warn!(path = %path.display(), "file name is not UTF-8; storing it as {text:?}");
            }
            let name = format!("{prefix}{text}");
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .unix_permissions(meta.mode())
                .last_modified_time(zip_time(meta.modified().ok()));
            if file_type.is_dir() {
                writer.add_directory(name.clone(), options).map_err(zip_error)?;
                subfolders.push((path, format!("{name}/")));
            } else if file_type.is_file() {
                let options = options.large_file(meta.len() >= zip::ZIP64_BYTES_THR);
                let mut input = File::open(&path).map_err(io_at(&path))?;
                writer.start_file(name, options).map_err(zip_error)?;
                let written = match copy_chunks(&mut input, &mut writer, &mut buffer, None) {
                    Ok(written) => written,
                    Err(CopyError::Read(source)) => return Err(ArchiveError::Io { path, source }),
                    Err(CopyError::Write(source)) => {
                        return Err(ArchiveError::Io { path: dest.to_path_buf(), source });
                    }
                    Err(CopyError::Limit(error)) => return Err(error),
                };
                done.files += 1;
                done.bytes += written;
            } else {
                warn!(path = %path.display(), "not adding a special file to the zip");
            }
        }
        stack.extend(subfolders.into_iter().rev());
    }

    let buffered = writer.finish().map_err(zip_error)?;
    buffered.into_inner().map_err(|error| io_at(dest)(error.into_error()))?;
    Ok(done)
}

/// The zip timestamp (UTC) for a modification time; 1980-01-01 when it has none or it does
/// not fit the zip format (1980 to 2107).
fn zip_time(time: Option<SystemTime>) -> DateTime {
    let Some(since_epoch) = time.and_then(|time| time.duration_since(UNIX_EPOCH).ok()) else {
        return DateTime::default();
    };
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let (Ok(year), Ok(hour), Ok(minute), Ok(second)) = (
        u16::try_from(year),
        u8::try_from(of_day / 3600),
        u8::try_from(of_day % 3600 / 60),
        u8::try_from(of_day % 60),
    ) else {
        return DateTime::default();
    };
    DateTime::from_date_and_time(year, month, day, hour, minute, second).unwrap_or_default()
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, u8::try_from(month).unwrap_or(1), u8::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    use tempfile::TempDir;

    /// One entry of a test archive.
    enum Item<'a> {
        /// A file with contents and an optional unix mode.
        File(&'a str, &'a [u8], Option<u32>),
        /// A folder.
        Dir(&'a str),
        /// A symbolic link and its target.
        Link(&'a str, &'a str),
    }

    /// Writes a zip of `items` (names stored exactly as given) at `path`.
    fn write_zip(path: &Path, items: &[Item<'_>]) {
        let mut writer = ZipWriter::new(File::create(path).unwrap());
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for item in items {
            match item {
                Item::File(name, contents, mode) => {
                    let options = match mode {
                        Some(mode) => deflated.unix_permissions(*mode),
                        None => deflated,
                    };
                    writer.start_file(*name, options).unwrap();
                    writer.write_all(contents).unwrap();
                }
                Item::Dir(name) => writer.add_directory(*name, deflated).unwrap(),
                Item::Link(name, target) => writer.add_symlink(*name, *target, deflated).unwrap(),
            }
        }
        writer.finish().unwrap();
    }

    /// A scratch folder holding `bundle.zip` made of `items`, an empty `dest/` and an empty
    /// sibling `outside/`.
    fn setup(items: &[Item<'_>]) -> (TempDir, PathBuf, PathBuf, PathBuf) {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("bundle.zip");
        write_zip(&zip, items);
        let dest = root.path().join("dest");
        let outside = root.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        (root, zip, dest, outside)
    }

    /// The names in a folder, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The permission bits of a path (not following symbolic links).
    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// Every path under `root` with its kind, permission bits and contents, sorted.
    fn snapshot(root: &Path) -> Vec<(String, u32, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    stack.push(path.clone());
                    out.push((rel, mode_of(&path), None));
                } else {
                    out.push((rel, mode_of(&path), Some(fs::read(&path).unwrap())));
                }
            }
        }
        out.sort();
        out
    }

    fn assert_unsafe(result: Result<Extracted, ArchiveError>, expected_entry: &str) {
        match result {
            Err(ArchiveError::UnsafeEntry { entry, .. }) => assert_eq!(entry, expected_entry),
            other => panic!("expected UnsafeEntry for {expected_entry:?}, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_keeps_contents_modes_and_empty_folders() {
        let root = TempDir::new().unwrap();
        let src = root.path().join("src");
        fs::create_dir_all(src.join("a/b/c")).unwrap();
        fs::create_dir_all(src.join("empty")).unwrap();
        fs::create_dir_all(src.join("dossier été")).unwrap();
        fs::write(src.join("a/b/c/deep.txt"), b"deep").unwrap();
        fs::write(src.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(src.join("run.sh"), Permissions::from_mode(0o755)).unwrap();
        fs::write(src.join("dossier été/naïve file ✓.txt"), "unicodé".as_bytes()).unwrap();
        fs::write(src.join("empty.txt"), b"").unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(src.join("a/big.bin"), &big).unwrap();
        for dir in ["a", "a/b", "a/b/c", "empty", "dossier été"] {
            fs::set_permissions(src.join(dir), Permissions::from_mode(0o755)).unwrap();
        }
        for file in ["a/b/c/deep.txt", "dossier été/naïve file ✓.txt", "empty.txt", "a/big.bin"]
        {
            fs::set_permissions(src.join(file), Permissions::from_mode(0o644)).unwrap();
        }

        let zip = root.path().join("out.zip");
        let written = create_zip(&src, &zip, &[]).unwrap();
        assert_eq!(written, Extracted { files: 5, bytes: 4 + 18 + 8 + 300_000 });
        assert!(is_zip(&zip).unwrap());

        let dest = root.path().join("dest");
        let extracted = extract(&zip, &dest, &Limits::default()).unwrap();
        assert_eq!(extracted, written);
        assert_eq!(snapshot(&dest), snapshot(&src));
        assert_eq!(mode_of(&dest.join("run.sh")), 0o755);
    }

    #[test]
    fn create_zip_leaves_out_excluded_names_symlinks_and_itself() {
        let root = TempDir::new().unwrap();
        let src = root.path().join("src");
        fs::create_dir_all(src.join("private")).unwrap();
        fs::create_dir_all(src.join("public/private")).unwrap();
        fs::write(src.join("private/secret.txt"), b"secret").unwrap();
        fs::write(src.join("public/private/kept.txt"), b"kept").unwrap();
        fs::write(src.join("scores.txt"), b"1").unwrap();
        symlink("/etc/passwd", src.join("link")).unwrap();

        let zip = src.join("output.zip");
        create_zip(&src, &zip, &["private"]).unwrap();
        let archive = ZipArchive::new(File::open(&zip).unwrap()).unwrap();
        let mut stored: Vec<String> =
            archive.file_names().map(|name| name.unwrap().into_owned()).collect();
        stored.sort_unstable();
        assert_eq!(stored, ["public/", "public/private/", "public/private/kept.txt", "scores.txt"]);
    }

    #[test]
    fn rejects_zip_slip_names_and_writes_nothing_outside() {
        let unsafe_names = [
            "../evil.txt",
            "a/../../evil.txt",
            "a/../b.txt",
            "/abs.txt",
            "..\\evil.txt",
            "a\\..\\..\\evil.txt",
            "\\abs.txt",
            "C:/evil.txt",
            "C:\\evil.txt",
            "c:evil.txt",
            "nul\0byte.txt",
        ];
        for name in unsafe_names {
            let (_root, zip, dest, outside) =
                setup(&[Item::File("good.txt", b"ok", None), Item::File(name, b"evil", None)]);
            assert_unsafe(extract(&zip, &dest, &Limits::default()), name);
            assert_eq!(names(&dest), ["good.txt"], "{name}");
            assert!(names(&outside).is_empty(), "{name}");
            assert_eq!(names(dest.parent().unwrap()), ["bundle.zip", "dest", "outside"]);
            assert!(!Path::new("/abs.txt").exists());
        }
    }

    #[test]
    fn rejects_symlinks_whose_target_leaves_the_destination() {
        let cases = [
            ("link", "../../etc"),
            ("link", "/etc"),
            ("link", ".."),
            ("sub/link", "../.."),
            ("sub/link", "x/../../.."),
            ("sub/link", "x/../y"),
            ("link", "..\\..\\etc"),
            ("link", "C:\\Windows"),
            ("link", ""),
        ];
        for (name, target) in cases {
            let (_root, zip, dest, outside) = setup(&[Item::Link(name, target)]);
            assert_unsafe(extract(&zip, &dest, &Limits::default()), name);
            assert!(names(&outside).is_empty());
            assert!(fs::symlink_metadata(dest.join(name)).is_err(), "{name} -> {target}");
        }
    }

    #[test]
    fn creates_symlinks_that_stay_inside() {
        let (_root, zip, dest, _outside) = setup(&[
            Item::File("sub/file", b"inside", None),
            Item::Link("link", "sub/file"),
            Item::Link("sub/up", "../link"),
            Item::Link("sub/self", "."),
        ]);
        let done = extract(&zip, &dest, &Limits::default()).unwrap();
        assert_eq!(done, Extracted { files: 1, bytes: 6 });
        assert_eq!(fs::read_link(dest.join("link")).unwrap(), Path::new("sub/file"));
        assert_eq!(fs::read(dest.join("link")).unwrap(), b"inside");
        assert_eq!(fs::read(dest.join("sub/up")).unwrap(), b"inside");
    }

    #[test]
    fn refuses_to_write_through_a_symlink_from_the_archive() {
        // `d -> ..` at the top would leave the destination: refused as a link.
        let (_root, zip, dest, outside) =
            setup(&[Item::Link("d", ".."), Item::File("d/x", b"evil", None)]);
        assert_unsafe(extract(&zip, &dest, &Limits::default()), "d");
        assert!(names(&outside).is_empty());

        // `sub/d -> ..` stays inside, but nothing is written through it.
        let (_root, zip, dest, outside) =
            setup(&[Item::Link("sub/d", ".."), Item::File("sub/d/x", b"evil", None)]);
        assert_unsafe(extract(&zip, &dest, &Limits::default()), "sub/d/x");
        assert!(names(&outside).is_empty());
        assert_eq!(names(&dest), ["sub"]);

        // Nor is a link replaced by a later file entry of the same name.
        let (_root, zip, dest, _outside) =
            setup(&[Item::Link("l", "target"), Item::File("./l", b"evil", None)]);
        assert_unsafe(extract(&zip, &dest, &Limits::default()), "./l");
        assert!(!dest.join("target").exists());
    }

    #[test]
    fn refuses_to_write_through_a_symlink_already_in_the_destination() {
        let (_root, zip, dest, outside) =
            setup(&[Item::File("a/passwd", b"evil", None), Item::File("f", b"evil", None)]);
        symlink(&outside, dest.join("a")).unwrap();
        assert_unsafe(extract(&zip, &dest, &Limits::default()), "a/passwd");
        assert!(names(&outside).is_empty());

        let (_root, zip, dest, outside) = setup(&[Item::File("f", b"evil", None)]);
        fs::write(outside.join("target"), b"original").unwrap();
        symlink(outside.join("target"), dest.join("f")).unwrap();
        assert_unsafe(extract(&zip, &dest, &Limits::default()), "f");
        assert_eq!(fs::read(outside.join("target")).unwrap(), b"original");
    }

    #[test]
    fn later_entry_overwrites_an_earlier_regular_file() {
        let (_root, zip, dest, _outside) =
            setup(&[Item::File("f", b"first version", None), Item::File("./f", b"second", None)]);
        fs::write(dest.join("f"), b"a much longer original file").unwrap();
        extract(&zip, &dest, &Limits::default()).unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), b"second");
    }

    #[test]
    fn stops_when_written_bytes_exceed_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let (_root, zip, dest, _outside) = setup(&[Item::File("bomb", &zeros, None)]);
        assert!(fs::metadata(&zip).unwrap().len() < 100_000);
        let limits = Limits { max_total_bytes: 1 << 20, ..Limits::default() };
        match extract(&zip, &dest, &limits) {
            Err(ArchiveError::TooLarge { limit }) => assert_eq!(limit, 1 << 20),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(fs::metadata(dest.join("bomb")).unwrap().len() <= 1 << 20);
    }

    #[test]
    fn byte_limit_counts_all_entries_together_and_allows_exact_fit() {
        let chunk = vec![7u8; 400_000];
        let items = [
            Item::File("a", &chunk, None),
            Item::File("b", &chunk, None),
            Item::File("c", &chunk, None),
        ];
        let (_root, zip, dest, _outside) = setup(&items);
        let limits = Limits { max_total_bytes: 1_000_000, ..Limits::default() };
        assert!(matches!(extract(&zip, &dest, &limits), Err(ArchiveError::TooLarge { .. })));

        let exact = Limits { max_total_bytes: 1_200_000, ..Limits::default() };
        let done = extract(&zip, &dest, &exact).unwrap();
        assert_eq!(done, Extracted { files: 3, bytes: 1_200_000 });
    }

    #[test]
    fn rejects_too_many_entries_before_writing() {
        let (_root, zip, dest, _outside) =
            setup(&[Item::Dir("d"), Item::File("d/1", b"1", None), Item::File("d/2", b"2", None)]);
        let limits = Limits { max_entries: 2, ..Limits::default() };
        match extract(&zip, &dest, &limits) {
            Err(ArchiveError::TooManyEntries { limit }) => assert_eq!(limit, 2),
            other => panic!("expected TooManyEntries, got {other:?}"),
        }
        assert!(names(&dest).is_empty());
        let limits = Limits { max_entries: 3, ..Limits::default() };
        assert_eq!(extract(&zip, &dest, &limits).unwrap().files, 2);
    }

    #[test]
    fn reports_corrupt_for_random_bytes_and_truncated_zip() {
        let root = TempDir::new().unwrap();
        let dest = root.path().join("dest");
        let random = root.path().join("random.zip");
        let noise: Vec<u8> =
            (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        fs::write(&random, &noise).unwrap();
        assert!(!is_zip(&random).unwrap());
        assert!(matches!(
            extract(&random, &dest, &Limits::default()),
            Err(ArchiveError::Corrupt(_))
        ));

        let good = root.path().join("good.zip");
        let contents: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
        write_zip(&good, &[Item::File("data.bin", &contents, None)]);
        let bytes = fs::read(&good).unwrap();
        let truncated = root.path().join("truncated.zip");
        fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(is_zip(&truncated).unwrap());
        assert!(matches!(
            extract(&truncated, &dest, &Limits::default()),
            Err(ArchiveError::Corrupt(_))
        ));

        let short = root.path().join("short");
        fs::write(&short, b"PK").unwrap();
        assert!(!is_zip(&short).unwrap());
    }

    #[test]
    fn reports_corrupt_on_bad_checksum() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("bad.zip");
        let mut writer = ZipWriter::new(File::create(&zip).unwrap());
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        writer.start_file("f.txt", stored).unwrap();
        writer.write_all(b"hello world, this is stored").unwrap();
        writer.finish().unwrap();
        let mut bytes = fs::read(&zip).unwrap();
        let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[at] = b'j';
        fs::write(&zip, &bytes).unwrap();
        match extract(&zip, &root.path().join("dest"), &Limits::default()) {
            Err(ArchiveError::Corrupt(text)) => assert!(text.contains("checksum"), "{text}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    /// Rewrites the 16-bit field at `local_offset` of the first local header and at
    /// `central_offset` of the first central header.
    fn patch_headers(bytes: &mut [u8], local_offset: usize, central_offset: usize, value: u16) {
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[local_offset..local_offset + 2].copy_from_slice(&value.to_le_bytes());
        let at = central + central_offset;
        bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn reports_unsupported_compression_and_encryption() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("odd.zip");
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        let mut writer = ZipWriter::new(File::create(&zip).unwrap());
        writer.start_file("f.txt", stored).unwrap();
        writer.write_all(b"contents").unwrap();
        writer.finish().unwrap();
        let original = fs::read(&zip).unwrap();

        // Compression method 12 is bzip2.
        let mut bytes = original.clone();
        patch_headers(&mut bytes, 8, 10, 12);
        fs::write(&zip, &bytes).unwrap();
        let dest = root.path().join("dest");
        match extract(&zip, &dest, &Limits::default()) {
            Err(ArchiveError::Unsupported(text)) => assert!(text.contains("f.txt"), "{text}"),
            other => panic!("expected Unsupported, got {other:?}"),
        }

        // General purpose flag bit 0 marks the entry encrypted.
        let mut bytes = original;
        patch_headers(&mut bytes, 6, 8, 1);
        fs::write(&zip, &bytes).unwrap();
        assert!(matches!(
            extract(&zip, &dest, &Limits::default()),
            Err(ArchiveError::Unsupported(_))
        ));
        assert!(!dest.join("f.txt").exists());
    }

    #[test]
    fn drops_setuid_and_keeps_exec_bits() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("modes.zip");
        let mut writer = ZipWriter::new(File::create(&zip).unwrap());
        let with_mode = |mode: u32| {
            SimpleFileOptions::default().system(System::Unix).external_attributes(mode << 16)
        };
        for (name, mode) in
            [("suid", 0o104_755), ("sticky", 0o101_777), ("exec", 0o100_750), ("ro", 0o100_444)]
        {
            writer.start_file(name, with_mode(mode)).unwrap();
            writer.write_all(b"x").unwrap();
        }
        writer.add_directory("locked", with_mode(0o042_555)).unwrap();
        writer.start_file("locked/inside", with_mode(0o100_644)).unwrap();
        writer.finish().unwrap();

        let dest = root.path().join("dest");
        extract(&zip, &dest, &Limits::default()).unwrap();
        assert_eq!(mode_of(&dest.join("suid")), 0o755);
        assert_eq!(mode_of(&dest.join("sticky")), 0o777);
        assert_eq!(mode_of(&dest.join("exec")), 0o750);
        // Owner read and write are always kept, so the worker can manage what it extracted.
        assert_eq!(mode_of(&dest.join("ro")), 0o644);
        assert_eq!(mode_of(&dest.join("locked")), 0o755);
        assert!(dest.join("locked/inside").is_file());
    }

    #[test]
    fn entries_without_unix_mode_get_default_modes() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("dos.zip");
        let mut writer = ZipWriter::new(File::create(&zip).unwrap());
        let dos = SimpleFileOptions::default().system(System::Dos);
        writer.add_directory("folder", dos.external_attributes(0x10)).unwrap();
        writer.start_file("folder\\file.txt", dos.external_attributes(0x01)).unwrap();
        writer.write_all(b"windows").unwrap();
        writer.finish().unwrap();

        let dest = root.path().join("dest");
        extract(&zip, &dest, &Limits::default()).unwrap();
        assert_eq!(mode_of(&dest.join("folder")), 0o755);
        // A backslash separates folders, as in zips made on Windows.
        assert_eq!(fs::read(dest.join("folder/file.txt")).unwrap(), b"windows");
        assert_eq!(mode_of(&dest.join("folder/file.txt")), 0o644);
    }

    #[test]
    fn hoists_single_folder_holding_metadata() {
        let root = TempDir::new().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("bundle/sub")).unwrap();
        fs::create_dir_all(dir.join("bundle/bundle")).unwrap();
        fs::write(dir.join("bundle/metadata"), b"command: python run.py").unwrap();
        fs::write(dir.join("bundle/sub/x"), b"x").unwrap();
        fs::write(dir.join("bundle/bundle/y"), b"y").unwrap();
        fs::create_dir_all(dir.join("__MACOSX/bundle")).unwrap();
        fs::write(dir.join("__MACOSX/bundle/._metadata"), b"junk").unwrap();

        assert!(hoist_single_folder(dir).unwrap());
        assert_eq!(names(dir), ["bundle", "metadata", "sub"]);
        assert_eq!(fs::read(dir.join("sub/x")).unwrap(), b"x");
        assert_eq!(fs::read(dir.join("bundle/y")).unwrap(), b"y");
        assert!(!hoist_single_folder(dir).unwrap());
    }

    #[test]
    fn does_not_hoist_two_entries_or_a_folder_without_metadata() {
        let root = TempDir::new().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("bundle")).unwrap();
        fs::write(dir.join("bundle/metadata"), b"").unwrap();
        fs::write(dir.join("readme.txt"), b"").unwrap();
        assert!(!hoist_single_folder(dir).unwrap());
        assert_eq!(names(dir), ["bundle", "readme.txt"]);

        let root = TempDir::new().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("bundle")).unwrap();
        fs::write(dir.join("bundle/data.csv"), b"").unwrap();
        fs::create_dir(dir.join(MACOSX)).unwrap();
        assert!(!hoist_single_folder(dir).unwrap());
        assert_eq!(names(dir), ["__MACOSX", "bundle"]);

        let root = TempDir::new().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("bundle")).unwrap();
        fs::write(dir.join("bundle/metadata"), b"").unwrap();
        fs::write(dir.join("metadata"), b"").unwrap();
        assert!(!hoist_single_folder(dir).unwrap());

        let root = TempDir::new().unwrap();
        let dir = root.path();
        let elsewhere = TempDir::new().unwrap();
        fs::write(elsewhere.path().join("metadata"), b"").unwrap();
        symlink(elsewhere.path(), dir.join("bundle")).unwrap();
        assert!(!hoist_single_folder(dir).unwrap());
    }

    #[test]
    fn hoisting_removes_links_that_would_point_outside() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("dir");
        fs::create_dir_all(dir.join("bundle/sub")).unwrap();
        fs::write(dir.join("bundle/metadata"), b"").unwrap();
        symlink("../bundle/metadata", dir.join("bundle/escaping")).unwrap();
        symlink("../metadata", dir.join("bundle/sub/inside")).unwrap();
        assert!(hoist_single_folder(&dir).unwrap());
        assert_eq!(names(&dir), ["metadata", "sub"]);
        assert!(dir.join("sub/inside").exists());
    }

    #[test]
    fn extracts_nested_zips_next_to_themselves_once() {
        let root = TempDir::new().unwrap();
        let innermost = root.path().join("innermost.zip");
        write_zip(&innermost, &[Item::File("deepest.txt", b"deep", None)]);
        let inner = root.path().join("inner.zip");
        write_zip(
            &inner,
            &[
                Item::File("train.csv", b"1,2", None),
                Item::File("more.zip", &fs::read(&innermost).unwrap(), None),
            ],
        );
        let bundle = root.path().join("bundle");
        fs::create_dir_all(bundle.join("data")).unwrap();
        fs::create_dir_all(bundle.join("__MACOSX/data")).unwrap();
        fs::copy(&inner, bundle.join("data/inner.zip")).unwrap();
        fs::write(bundle.join("__MACOSX/data/._inner.zip"), b"not a zip").unwrap();

        let done = extract_nested(&bundle, &Limits::default()).unwrap();
        assert_eq!(done.files, 2);
        assert_eq!(names(&bundle.join("data")), ["inner.zip", "more.zip", "train.csv"]);
        assert_eq!(fs::read(bundle.join("data/train.csv")).unwrap(), b"1,2");
        assert!(!bundle.join("data/deepest.txt").exists());
    }

    #[test]
    fn nested_zips_share_one_budget() {
        let root = TempDir::new().unwrap();
        let bundle = root.path().join("bundle");
        fs::create_dir_all(bundle.join("a")).unwrap();
        fs::create_dir_all(bundle.join("b")).unwrap();
        let chunk = vec![1u8; 600_000];
        write_zip(&bundle.join("a/one.zip"), &[Item::File("one", &chunk, None)]);
        write_zip(&bundle.join("b/two.ZIP"), &[Item::File("two", &chunk, None)]);
        let limits = Limits { max_total_bytes: 1_000_000, ..Limits::default() };
        assert!(matches!(extract_nested(&bundle, &limits), Err(ArchiveError::TooLarge { .. })));

        let used = Extracted { files: 1, bytes: 500_000 };
        let remaining = Limits::default().remaining_after(used);
        assert_eq!(remaining.max_total_bytes, (16 << 30) - 500_000);
        assert_eq!(remaining.max_entries, 99_999);
    }

    #[test]
    fn nested_corrupt_zip_is_named_in_the_error() {
        let root = TempDir::new().unwrap();
        fs::write(root.path().join("fake.zip"), b"not a zip at all").unwrap();
        match extract_nested(root.path(), &Limits::default()) {
            Err(ArchiveError::Corrupt(text)) => assert!(text.contains("fake.zip"), "{text}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn entry_may_not_overwrite_the_archive_being_extracted() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("self.zip");
        write_zip(&zip, &[Item::File("self.zip", b"overwrite", None)]);
        assert_unsafe(extract(&zip, root.path(), &Limits::default()), "self.zip");
        assert!(is_zip(&zip).unwrap());
    }

    #[test]
    fn empty_archive_is_a_zip_and_extracts_nothing() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("empty.zip");
        write_zip(&zip, &[]);
        assert!(is_zip(&zip).unwrap());
        let dest = root.path().join("new/dest");
        assert_eq!(extract(&zip, &dest, &Limits::default()).unwrap(), Extracted::default());
        assert!(dest.is_dir());
    }

    #[test]
    fn very_deep_names_fail_cleanly() {
        let deep = format!("{}f.txt", "a/".repeat(20_000));
        let (_root, zip, dest, outside) = setup(&[Item::File(&deep, b"deep", None)]);
        assert!(matches!(extract(&zip, &dest, &Limits::default()), Err(ArchiveError::Io { .. })));
        assert!(names(&outside).is_empty());
    }

    #[test]
    fn create_zip_removes_the_unfinished_zip_on_error() {
        let root = TempDir::new().unwrap();
        let dest = root.path().join("out.zip");
        let result = create_zip(&root.path().join("missing"), &dest, &[]);
        assert!(matches!(result, Err(ArchiveError::Io { .. })));
        assert!(!dest.exists());
    }

    #[test]
    fn zip_time_converts_utc_dates() {
        let leap_day = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        let time = zip_time(Some(leap_day));
        assert_eq!(
            (time.year(), time.month(), time.day(), time.hour(), time.minute(), time.second()),
            (2024, 2, 29, 12, 34, 56)
        );
        assert_eq!(zip_time(Some(UNIX_EPOCH)), DateTime::default());
        assert_eq!(zip_time(None), DateTime::default());
    }

    #[test]
    fn extracts_many_small_files() {
        let root = TempDir::new().unwrap();
        let zip = root.path().join("many.zip");
        let mut writer = ZipWriter::new(BufWriter::new(File::create(&zip).unwrap()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for index in 0..2_000 {
            writer.start_file(format!("d{}/f{index}.txt", index % 20), options).unwrap();
            writer.write_all(format!("file {index}\n").as_bytes()).unwrap();
        }
        writer.finish().unwrap();
        let started = Instant::now();
        let done = extract(&zip, &root.path().join("dest"), &Limits::default()).unwrap();
        assert_eq!(done.files, 2_000);
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
