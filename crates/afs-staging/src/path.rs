//! Paths inside a share.

use std::fmt;

use crate::error::Error;

/// A path inside a file share: `/`-separated names, none empty, `.` or `..`, and none
/// holding a character Azure Files refuses (`" \ : | < > * ?` and control
/// characters). The empty path is the share's root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RemotePath(String);

/// Longest path Azure Files accepts, in UTF-8 bytes (2048 characters, and 255 per name).
const MAX_PATH: usize = 2048;
const MAX_NAME: usize = 255;

impl RemotePath {
    /// The root of the share.
    pub fn root() -> Self {
        RemotePath(String::new())
    }

    /// Checks a `/`-separated path (leading and trailing `/` ignored).
    pub fn new(path: &str) -> Result<Self, Error> {
        let trimmed = path.trim_matches('/');
        let mut out = RemotePath::root();
        if trimmed.is_empty() {
            return Ok(out);
        }
        for name in trimmed.split('/') {
            out = out.join(name)?;
        }
        Ok(out)
    }

    /// This path with one more name.
    pub fn join(&self, name: &str) -> Result<Self, Error> {
        check_name(name)?;
        let joined = if self.0.is_empty() { name.to_owned() } else { format!("{}/{name}", self.0) };
        if joined.chars().count() > MAX_PATH {
            return Err(Error::InvalidPath(format!(
                "{joined:?} is longer than the {MAX_PATH} characters Azure Files allows"
            )));
        }
        Ok(RemotePath(joined))
    }

    /// The names, root first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The path as `a/b/c` (empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent path (the root's parent is the root).
    pub fn parent(&self) -> RemotePath {
        match self.0.rfind('/') {
            Some(i) => RemotePath(self.0[..i].to_owned()),
            None => RemotePath::root(),
        }
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// Whether `name` can be one name of a share path (and of a local path).
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > MAX_NAME
        || name.chars().any(|c| c.is_control() || "\"\\/:|<>*?".contains(c));
    if bad {
        return Err(Error::InvalidPath(format!(
            "{name:?} cannot be a file or folder name on Azure Files \
             (names may not be empty, '.', '..', or contain \" \\ / : | < > * ? or control characters)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(RemotePath::new("/a/b c/ü+%/").unwrap().as_str(), "a/b c/ü+%");
        assert!(RemotePath::new("").unwrap().is_root());
        for bad in ["a/../b", "a//b", "./a", "a:b", "a\\b", "a\u{0}b", "x*"] {
            assert!(RemotePath::new(bad).is_err(), "{bad}");
        }
        assert_eq!(RemotePath::new("a/b/c").unwrap().parent().as_str(), "a/b");
        assert!(RemotePath::new(&"a".repeat(256)).is_err());
    }
}
