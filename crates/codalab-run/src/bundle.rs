//! Fetching a run bundle and, recursively, every bundle its metadata names.
//!
//! The rules are the CodaLab ones: the run bundle (`run.txt`) is a metadata file
//! of `key: value`; a value that is a URL under a key that names a folder is
//! another bundle, fetched into that folder; a zip is extracted there (a zip
//! holding a single folder with a `metadata` file is hoisted one level, and zips
//! inside are extracted next to themselves); anything else becomes the folder's
//! `metadata` file and may name more bundles.

use std::path::{Path, PathBuf};

use futures_util::future::join_all;

use crate::archive::{self, ArchiveError, Limits};
use crate::metadata::{Metadata, MetadataError};
use crate::task::SignedUrl;
use crate::transfer::{Transfer, TransferError};

/// Keys whose values are never fetched: descriptions, commands, results, and the
/// upload targets the site may list.
pub const NOT_BUNDLES: &[&str] = &[
    "description",
    "command",
    "exitCode",
    "elapsedTime",
    "stdout",
    "stderr",
    "submitted-by",
    "submitted-at",
    "output",
    "private_output",
    "detailed_results",
    "ingestion_program_output",
    "ingestion_program_stderr",
    "scores",
];

/// How deep bundles may name bundles.
const MAX_DEPTH: usize = 6;
/// How many bundles one run may fetch.
const MAX_BUNDLES: usize = 64;

/// Why the bundles could not be staged. Messages name the bundle by its key and
/// are meant for the participant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Download failed.
    #[error("bundle '{key}' could not be fetched")]
    Fetch {
        /// Which bundle.
        key: String,
        /// Why.
        #[source]
        source: TransferError,
    },
    /// The archive is unusable or unsafe.
    #[error("bundle '{key}' could not be unpacked")]
    Archive {
        /// Which bundle.
        key: String,
        /// Why.
        #[source]
        source: ArchiveError,
    },
    /// Its metadata file is unusable.
    #[error("the metadata of bundle '{key}' is unusable")]
    Metadata {
        /// Which bundle.
        key: String,
        /// Why.
        #[source]
        source: MetadataError,
    },
    /// A key cannot be a folder name.
    #[error(
        "bundle '{parent}' names a bundle under the key {key:?}, which is not a plain folder name"
    )]
    BadKey {
        /// The bundle whose metadata has the key.
        parent: String,
        /// The key.
        key: String,
    },
    /// Too many bundles, or nested too deep.
    #[error(
        "bundles name each other too deeply or too often (at most {MAX_BUNDLES} bundles, {MAX_DEPTH} levels)"
    )]
    TooMany,
    /// Local file trouble.
    #[error("staging bundle '{key}' failed: {source}")]
    Io {
        /// Which bundle.
        key: String,
        /// Why.
        source: std::io::Error,
    },
}

impl BundleError {
    /// Whether fetching again later may work (network trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(self, BundleError::Fetch { source, .. } if source.is_transient())
    }
}

/// One staged bundle: where it is, relative to the root, and its metadata.
#[derive(Clone, Debug)]
pub struct Staged {
    /// Folder relative to the root, e.g. `run/program`.
    pub path: String,
    /// Its metadata file, when it has one.
    pub metadata: Option<Metadata>,
}

/// Fetches `url` into `root/rel` and every bundle it names, independent bundles in
/// parallel. Returns every staged bundle.
pub async fn fetch(
    transfer: &Transfer,
    root: &Path,
    rel: &str,
    url: &SignedUrl,
    limits: &Limits,
) -> Result<Vec<Staged>, BundleError> {
    let downloads = root.join(".downloads");
    tokio::fs::create_dir_all(&downloads)
        .await
        .map_err(|source| BundleError::Io { key: display_key(rel), source })?;
    let mut staged = Vec::new();
    let mut level = vec![(rel.to_owned(), url.clone())];
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        if depth > MAX_DEPTH || staged.len() + level.len() > MAX_BUNDLES {
            return Err(BundleError::TooMany);
        }
        let results = join_all(level.iter().enumerate().map(|(i, (rel, url))| {
            let part = downloads.join(format!("{depth}-{i}.part"));
            fetch_one(transfer, root, rel, url, part, limits)
        }))
        .await;
        let mut next = Vec::new();
        for result in results {
            let (bundle, children) = result?;
            staged.push(bundle);
            next.extend(children);
        }
        level = next;
    }
    let _ = tokio::fs::remove_dir_all(&downloads).await;
    Ok(staged)
}

/// A bundle's name for messages: its key, or `run` for the run bundle.
pub fn display_key(rel: &str) -> String {
    rel.strip_prefix("run/").unwrap_or(rel).to_owned()
}

async fn fetch_one(
    transfer: &Transfer,
    root: &Path,
    rel: &str,
    url: &SignedUrl,
    part: PathBuf,
    limits: &Limits,
) -> Result<(Staged, Vec<(String, SignedUrl)>), BundleError> {
    let key = display_key(rel);
    tracing::debug!(bundle = %key, %url, "fetching bundle");
    transfer
        .download(url, &part)
        .await
        .map_err(|source| BundleError::Fetch { key: key.clone(), source })?;
    let dest = root.join(rel);
    let io = |source| BundleError::Io { key: key.clone(), source };
    let is_zip = archive::is_zip(&part).map_err(io)?;
    if is_zip {
        let (part2, dest2, limits) = (part.clone(), dest.clone(), *limits);
        let unpacked = tokio::task::spawn_blocking(move || -> Result<(), ArchiveError> {
            let outer = archive::extract(&part2, &dest2, &limits)?;
            archive::hoist_single_folder(&dest2)
                .map_err(|source| ArchiveError::Io { path: dest2.clone(), source })?;
            archive::extract_nested(&dest2, &limits.remaining_after(outer))?;
            Ok(())
        })
        .await
        .map_err(|e| io(std::io::Error::other(e)))?;
        unpacked.map_err(|source| BundleError::Archive { key: key.clone(), source })?;
        tokio::fs::remove_file(&part).await.map_err(io)?;
    } else {
        tokio::fs::create_dir_all(&dest).await.map_err(io)?;
        tokio::fs::rename(&part, dest.join("metadata")).await.map_err(io)?;
    }
    let metadata_path = dest.join("metadata");
    let metadata = match tokio::fs::read(&metadata_path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Some(
                Metadata::parse(&text)
                    .map_err(|source| BundleError::Metadata { key: key.clone(), source })?,
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let mut children = Vec::new();
    for (child, value) in metadata.iter().flat_map(Metadata::iter) {
        let Some(url) = value.as_str().filter(|v| is_url(v)) else { continue };
        if NOT_BUNDLES.contains(&child) {
            continue;
        }
        if !is_folder_name(child) {
            return Err(BundleError::BadKey { parent: key.clone(), key: child.to_owned() });
        }
        children.push((format!("{rel}/{child}"), SignedUrl::new(url)));
    }
    Ok((Staged { path: rel.to_owned(), metadata }, children))
}

fn is_url(v: &str) -> bool {
    let lower = v.trim_start().to_ascii_lowercase();
    ["http://", "https://", "file://"].iter().any(|p| lower.starts_with(p))
}

fn is_folder_name(key: &str) -> bool {
    !key.is_empty()
        && key != "."
        && key != ".."
        && key.len() <= 128
        && !key.contains(['/', '\\', '\0'])
        && !key.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_folders() {
        for ok in ["program", "input", "hidden_ref", "ref", "res", "coopetition", "my data"] {
            assert!(is_folder_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x\0"] {
            assert!(!is_folder_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_told_from_plain_values() {
        assert!(is_url("https://a.blob.core.windows.net/x?sig=1"));
        assert!(is_url("HTTP://x"));
        assert!(!is_url("alice"));
        assert!(!is_url("s3://bucket/key"));
    }
}
