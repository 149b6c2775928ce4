//! Who may do what: a SharedKey `Authorization` header or a SAS token in the query,
//! checked with `afs_staging::auth`, the same code the worker signs with.

use std::time::{SystemTime, UNIX_EPOCH};

use afs_staging::auth::{SasError, SasPermission, SasToken, SharedKey, query_map};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::error::{Result, StorageError};

/// The kind of resource an operation works on, as account SAS tokens name them in
/// `srt`: the service (`s`), a share or a directory listing (`c`), a file or a
/// directory (`o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResourceType {
    Service,
    Container,
    Object,
}

impl ResourceType {
    fn letter(self) -> char {
        match self {
            ResourceType::Service => 's',
            ResourceType::Container => 'c',
            ResourceType::Object => 'o',
        }
    }
}

/// What an operation needs from a SAS token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SasNeed {
    /// Any one of these permissions will do.
    pub(crate) permissions: &'static [SasPermission],
    pub(crate) resource: ResourceType,
    /// Only an account SAS can do this (create or delete a share, list shares).
    pub(crate) account_only: bool,
}

/// Checks that the request carries a valid SharedKey signature or a SAS token that
/// grants `need` on `share`/`path` (decoded, no leading slash).
pub(crate) fn authenticate(
    key: &SharedKey,
    parts: &Parts,
    share: Option<&str>,
    path: &str,
    need: SasNeed,
) -> Result<()> {
    if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
        let authorization = authorization.to_str().unwrap_or("");
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let uri = &parts.uri;
        let method = parts.method.as_str();
        if key.verify(authorization, method, uri.path(), uri.query(), headers.iter().copied()) {
            return Ok(());
        }
        return Err(StorageError::authentication(
            "The MAC signature found in the HTTP request is not the same as any computed \
             signature.",
        ));
    }
    let query = parts.uri.query().unwrap_or("");
    let Some(token) = SasToken::from_query(query) else {
        return Err(StorageError::authentication(
            "The request carries neither an Authorization header nor a SAS token.",
        ));
    };
    let fields = query_map(query);
    let account_sas = fields.contains_key("ss");
    if need.account_only && !account_sas {
        return Err(permission_mismatch());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut result = Err(SasError::Permission);
    for &permission in need.permissions {
        result = token.verify(key, share, path, permission, now);
        if result != Err(SasError::Permission) {
            break;
        }
    }
    match result {
        Ok(()) => {}
        Err(SasError::Permission) => return Err(permission_mismatch()),
        Err(SasError::Signature) => {
            return Err(StorageError::authentication(
                "Signature did not match the string to sign of the SAS token.",
            ));
        }
        Err(SasError::Time) => {
            return Err(StorageError::authentication("The SAS token is expired or not valid yet."));
        }
        Err(err) => return Err(StorageError::authentication(err.to_string())),
    }
    // afs_staging::auth leaves the resource types of an account SAS to the caller.
    if account_sas {
        let srt = fields.get("srt").map_or("", String::as_str);
        if !srt.contains(need.resource.letter()) {
            return Err(StorageError::new(
                StatusCode::FORBIDDEN,
                "AuthorizationResourceTypeMismatch",
                "This request is not authorized to perform this operation using this resource \
                 type.",
            ));
        }
    }
    Ok(())
}

fn permission_mismatch() -> StorageError {
    StorageError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    )
}
