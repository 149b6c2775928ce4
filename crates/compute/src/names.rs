//! Names and paths that travel from untrusted input to a backend, each checked once
//! when it is made.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a name or a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidName {
    what: &'static str,
    value: String,
    reason: &'static str,
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidName {
    InvalidName { what, value: value.to_owned(), reason }
}

/// Checks the DNS-label-like rule shared by ACI container groups and containers,
/// Docker container names and Azure file shares: lowercase letters, digits and single
/// hyphens, starting and ending with a letter or digit.
fn check_label(what: &'static str, s: &str, min: usize, max: usize) -> Result<(), InvalidName> {
    if s.len() < min || s.len() > max {
        return Err(InvalidName {
            what,
            value: s.to_owned(),
            reason: if s.len() < min { "too short" } else { "too long" },
        });
    }
    let b = s.as_bytes();
    let ok = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.iter().all(|&x| ok(x) || x == b'-') {
        return Err(invalid(what, s, "only lowercase letters, digits and '-' are allowed"));
    }
    if !ok(b[0]) || !ok(b[b.len() - 1]) {
        return Err(invalid(what, s, "must start and end with a letter or digit"));
    }
    if s.contains("--") {
        return Err(invalid(what, s, "must not contain '--'"));
    }
    Ok(())
}

/// The identity of one job, stable across worker restarts, and safe to use as (part
/// of) a container name, an ACI container group name and an Azure file share name.
///
/// 3 to 50 lowercase letters, digits and single hyphens, starting and ending with a
/// letter or digit. The length leaves room for a backend's suffixes within the 63
/// characters Azure allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 50;

    /// Accepts an id that already follows the rules.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidName> {
        let id = id.into();
        check_label("job id", &id, 3, Self::MAX_LEN)?;
        Ok(JobId(id))
    }

    /// Derives an id from arbitrary parts, typically a Celery task id and a step
    /// name. The same parts always give the same id. Characters outside the allowed
    /// set become hyphens; when the result is too long, it is cut and a hash of the
    /// whole input keeps it unique.
    pub fn derive(parts: &[&str]) -> Self {
        let joined = parts.join("-");
        let mut id = String::with_capacity(joined.len());
        for c in joined.chars() {
            let c = c.to_ascii_lowercase();
            let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
            if !(c == '-' && (id.is_empty() || id.ends_with('-'))) {
                id.push(c);
            }
        }
        while id.ends_with('-') {
            id.pop();
        }
        if id.len() < 3 || id.len() > Self::MAX_LEN || id != joined {
            let hash = format!("{:08x}", fnv1a(joined.as_bytes()));
            // Keep what fits before the hash; a changed input also gets the hash, so
            // that "a_b" and "a-b" stay distinct.
            id.truncate(Self::MAX_LEN - hash.len() - 1);
            while id.ends_with('-') {
                id.pop();
            }
            id = if id.is_empty() { format!("job-{hash}") } else { format!("{id}-{hash}") };
        }
        JobId(id)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        JobId::new(value)
    }
}

impl From<JobId> for String {
    fn from(value: JobId) -> Self {
        value.0
    }
}

/// The name of one container within a job: 1 to 40 lowercase letters, digits and
/// single hyphens, starting and ending with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// Accepts a name that follows the rules.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        check_label("container name", &name, 1, 40)?;
        Ok(ContainerName(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ContainerName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ContainerName::new(value)
    }
}

impl From<ContainerName> for String {
    fn from(value: ContainerName) -> Self {
        value.0
    }
}

/// A path inside a job's workspace, relative to its root: no root, no `..`, no
/// empty or `.` components. Joined to the workspace root it cannot name anything
/// outside it lexically; backends still resolve symbolic links before they use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// Accepts a relative path such as `output/stdout.txt`.
    pub fn new(path: impl Into<String>) -> Result<Self, InvalidName> {
        let path = path.into();
        let what = "workspace path";
        if path.is_empty() {
            return Err(invalid(what, &path, "it is empty"));
        }
        if path.contains('\0') {
            return Err(invalid(what, &path, "it contains a NUL byte"));
        }
        for component in Path::new(&path).components() {
            match component {
                Component::Normal(_) => {}
                Component::ParentDir => return Err(invalid(what, &path, "'..' is not allowed")),
                Component::CurDir => return Err(invalid(what, &path, "'.' is not allowed")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid(what, &path, "it must be relative"));
                }
            }
        }
        let normalized = path.trim_end_matches('/').to_owned();
        if normalized.contains("//") {
            return Err(invalid(what, &path, "empty components are not allowed"));
        }
        Ok(WorkspacePath(normalized))
    }

    /// The path as a string, with `/` separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This path under a workspace root.
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for WorkspacePath {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        WorkspacePath::new(value)
    }
}

impl TryFrom<&str> for WorkspacePath {
    type Error = InvalidName;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        WorkspacePath::new(value)
    }
}

impl From<WorkspacePath> for String {
    fn from(value: WorkspacePath) -> Self {
        value.0
    }
}

/// An absolute path inside a container, without `..`, such as `/codalab/run/input`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerPath(String);

impl ContainerPath {
    /// Accepts an absolute path.
    pub fn new(path: impl Into<String>) -> Result<Self, InvalidName> {
        let path = path.into();
        let what = "container path";
        if !path.starts_with('/') {
            return Err(invalid(what, &path, "it must be absolute"));
        }
        if path.contains('\0') || path.contains(':') || path.contains(',') {
            return Err(invalid(what, &path, "':', ',' and NUL are not allowed"));
        }
        if path.split('/').any(|c| c == ".." || c == ".") {
            return Err(invalid(what, &path, "'.' and '..' are not allowed"));
        }
        if path == "/" {
            return Err(invalid(what, &path, "the root cannot be a mount point"));
        }
        Ok(ContainerPath(path.trim_end_matches('/').to_owned()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ContainerPath {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ContainerPath::new(value)
    }
}

impl From<ContainerPath> for String {
    fn from(value: ContainerPath) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_follow_the_azure_label_rules() {
        assert!(JobId::new("abc").is_ok());
        assert!(JobId::new("0f1e-predict").is_ok());
        for bad in ["ab", "-abc", "abc-", "a--b", "ABC", "a_b", &"a".repeat(51)] {
            assert!(JobId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_are_valid_stable_and_distinct() {
        let task = "1C0B7F7A-3E48-4B43-A3C5-6AF0E4D5E0B1";
        let a = JobId::derive(&[task, "predict"]);
        assert_eq!(a, JobId::derive(&[task, "predict"]));
        assert_ne!(a, JobId::derive(&[task, "score"]));
        assert!(JobId::new(a.as_str()).is_ok(), "{a}");
        let inputs: [&[&str]; 6] =
            [&["a_b"], &["a-b"], &["x"], &[""], &["--!!--"], &[&"Z".repeat(200), "score"]];
        let mut seen = std::collections::HashSet::new();
        for parts in inputs {
            let id = JobId::derive(parts);
            assert!(JobId::new(id.as_str()).is_ok(), "{parts:?} gave {id}");
            assert!(seen.insert(id.clone()), "{parts:?} collided as {id}");
        }
        assert_eq!(JobId::derive(&["abc", "score"]).as_str(), "abc-score");
    }

    #[test]
    fn workspace_paths_cannot_leave_the_workspace() {
        assert_eq!(WorkspacePath::new("output/stdout.txt").unwrap().as_str(), "output/stdout.txt");
        assert_eq!(WorkspacePath::new("input/").unwrap().as_str(), "input");
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a", "a//b", "a\0b"] {
            assert!(WorkspacePath::new(bad).is_err(), "{bad:?}");
        }
        let root = Path::new("/tmp/ws");
        assert_eq!(WorkspacePath::new("a/b").unwrap().under(root), Path::new("/tmp/ws/a/b"));
    }

    #[test]
    fn container_paths_are_absolute_and_plain() {
        assert_eq!(ContainerPath::new("/codalab/run/").unwrap().as_str(), "/codalab/run");
        for bad in ["relative", "/", "/a/../b", "/a:ro", "/a,b"] {
            assert!(ContainerPath::new(bad).is_err(), "{bad}");
        }
    }
}
