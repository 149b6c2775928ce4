//! Request paths: `/<account>[/<share>[/<dir>.../<name>]]`, decoded and checked so
//! that every segment is a plain name that stays inside its share's directory.

use axum::http::StatusCode;
use percent_encoding::percent_decode_str;

use super::error::{Result, StorageError};

/// The longest path in a share that Azure Files accepts, in characters.
const MAX_PATH_CHARS: usize = 2048;
/// The longest name of one file or directory, in bytes (also what Linux allows).
const MAX_NAME_BYTES: usize = 255;

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The share, if the path goes beyond the account.
    pub(crate) share: Option<String>,
    /// Directory and file names inside the share, outermost first.
    pub(crate) path: Vec<String>,
}

impl Target {
    /// The path inside the share, `/`-separated, without a leading slash.
    pub(crate) fn joined(&self) -> String {
        self.path.join("/")
    }
}

/// Decodes a request path (as sent, percent-encoded) for `account`.
///
/// The whole path is decoded before it is split, so an encoded slash (`%2F`, which
/// the Python SDK sends inside directory paths) separates segments like a plain one,
/// and `%2e%2e` is `..` and refused like it.
pub(crate) fn parse_path(raw_path: &str, account: &str) -> Result<Target> {
    let decoded = percent_decode_str(raw_path).decode_utf8().map_err(|_| {
        StorageError::bad_request("InvalidUri", "The request path is not valid UTF-8.")
    })?;
    let mut segments: Vec<&str> =
        decoded.strip_prefix('/').unwrap_or(&decoded).split('/').collect();
    // One trailing slash is allowed (the SDK sends `/<account>/?comp=list`).
    if segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    let mut segments = segments.into_iter();
    if segments.next() != Some(account) {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        ));
    }
    let Some(share) = segments.next() else { return Ok(Target { share: None, path: Vec::new() }) };
    check_share_name(share)?;
    let path: Vec<String> = segments.map(str::to_owned).collect();
    for name in &path {
        check_name(name)?;
    }
    if path.iter().map(|n| n.chars().count() + 1).sum::<usize>() > MAX_PATH_CHARS {
        return Err(StorageError::bad_request(
            "InvalidFileOrDirectoryPathName",
            "The specified path is too long.",
        ));
    }
    Ok(Target { share: Some(share.to_owned()), path })
}

/// Share names: 3 to 63 lowercase letters, digits and single hyphens, starting and
/// ending with a letter or digit.
pub(crate) fn check_share_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--");
    if valid {
        Ok(())
    } else {
        Err(StorageError::bad_request(
            "InvalidResourceName",
            "The specified resource name contains invalid characters.",
        ))
    }
}

/// One file or directory name: not empty, not `.` or `..`, no backslash, no control
/// character (NUL included), at most 255 bytes.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_NAME_BYTES
        && !name.chars().any(|c| c == '\\' || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(StorageError::bad_request(
            "InvalidFileOrDirectoryPathName",
            "The specified file or directory name is not valid.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(raw: &str) -> Result<Target> {
        parse_path(raw, "devstoreaccount1")
    }

    fn code(raw: &str) -> &'static str {
        target(raw).unwrap_err().code
    }

    #[test]
    fn splits_account_share_and_path() {
        assert_eq!(target("/devstoreaccount1").unwrap(), Target { share: None, path: vec![] });
        assert_eq!(target("/devstoreaccount1/").unwrap(), Target { share: None, path: vec![] });
        assert_eq!(
            target("/devstoreaccount1/run-1/a%20b/%C3%A9%2B%25").unwrap(),
            Target { share: Some("run-1".into()), path: vec!["a b".into(), "é+%".into()] }
        );
        assert_eq!(
            target("/devstoreaccount1/run-1/run%2Finput/").unwrap().path,
            vec!["run".to_owned(), "input".to_owned()]
        );
    }

    #[test]
    fn refuses_names_that_leave_or_confuse_the_share() {
        for raw in [
            "/devstoreaccount1/share/..",
            "/devstoreaccount1/share/%2e%2e/x",
            "/devstoreaccount1/share/a%2F..%2F..%2Fb",
            "/devstoreaccount1/share/./a",
            "/devstoreaccount1/share/a//b",
            "/devstoreaccount1/share/a%5Cb",
            "/devstoreaccount1/share/a%00b",
            "/devstoreaccount1/share/a%0Ab",
        ] {
            assert_eq!(code(raw), "InvalidFileOrDirectoryPathName", "{raw}");
        }
        assert_eq!(code("/devstoreaccount1/%2e%2e/x"), "InvalidResourceName");
        assert_eq!(code("/devstoreaccount1/share/%FF"), "InvalidUri");
        assert_eq!(code("/other/share"), "InvalidUri");
    }

    #[test]
    fn share_names_follow_azure_rules() {
        for good in ["abc", "run-1", "a1b", &"a".repeat(63)] {
            assert!(check_share_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "Abc", "-ab", "ab-", "a--b", "a_b", &"a".repeat(64), "ab c"] {
            assert!(check_share_name(bad).is_err(), "{bad}");
        }
    }
}
