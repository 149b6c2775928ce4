//! The operations: routing a request to one, and carrying it out.

use std::collections::BTreeMap;
use std::io::{self, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use afs_staging::auth::SasPermission;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::io::ReaderStream;

use super::auth::{self, ResourceType, SasNeed};
use super::error::{Result, StorageError};
use super::names::{self, Target};
use super::store::{ListQuery, Props, Store, format_file_time};
use super::xml::Xml;
use super::{FilesService, query_params};

/// The most a list operation returns at once, and its default.
const MAX_RESULTS: usize = 5000;
/// The largest range one Put Range writes.
const MAX_RANGE: u64 = 4 << 20;
/// The largest file Azure Files holds: 4 TiB.
const MAX_FILE_SIZE: u64 = 4 << 40;
/// The largest share quota, in GiB.
const MAX_QUOTA_GIB: u64 = 102_400;
/// Read size when streaming a file out.
const READ_CHUNK: usize = 256 << 10;

/// An operation of the Files REST API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    ListShares,
    CreateShare,
    GetShareProperties,
    DeleteShare,
    ListDirectory,
    CreateDirectory,
    GetDirectoryProperties,
    DeleteDirectory,
    CreateFile,
    PutRange,
    GetFile,
    GetFileProperties,
    DeleteFile,
}

impl Op {
    /// The operation's name in Azure's documentation.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::ListShares => "ListShares",
            Op::CreateShare => "CreateShare",
            Op::GetShareProperties => "GetShareProperties",
            Op::DeleteShare => "DeleteShare",
            Op::ListDirectory => "ListFilesAndDirectories",
            Op::CreateDirectory => "CreateDirectory",
            Op::GetDirectoryProperties => "GetDirectoryProperties",
            Op::DeleteDirectory => "DeleteDirectory",
            Op::CreateFile => "CreateFile",
            Op::PutRange => "PutRange",
            Op::GetFile => "GetFile",
            Op::GetFileProperties => "GetFileProperties",
            Op::DeleteFile => "DeleteFile",
        }
    }

    /// What a SAS token must grant for this operation.
    fn sas_need(self) -> SasNeed {
        use ResourceType::{Container, Object, Service};
        use SasPermission::{Create, Delete, List, Read, Write};
        let (permissions, resource, account_only): (&'static [SasPermission], _, _) = match self {
            Op::ListShares => (&[List], Service, true),
            Op::CreateShare => (&[Create, Write], Container, true),
            Op::GetShareProperties => (&[Read], Container, false),
            Op::DeleteShare => (&[Delete], Container, true),
            Op::ListDirectory => (&[List], Container, false),
            Op::CreateDirectory | Op::CreateFile => (&[Create, Write], Object, false),
            Op::GetDirectoryProperties | Op::GetFile | Op::GetFileProperties => {
                (&[Read], Object, false)
            }
            Op::DeleteDirectory | Op::DeleteFile => (&[Delete], Object, false),
            Op::PutRange => (&[Write], Object, false),
        };
        SasNeed { permissions, resource, account_only }
    }
}

/// Routes, authenticates and carries out one request. The operation is returned
/// for the log even when the request fails.
pub(crate) async fn run(
    service: &Arc<FilesService>,
    parts: &Parts,
    body: &mut Option<Body>,
) -> (Option<Op>, Result<Response>) {
    let target = match names::parse_path(parts.uri.path(), &service.account) {
        Ok(target) => target,
        Err(err) => return (None, Err(err)),
    };
    let query = query_params(parts.uri.query());
    let op = match route(&parts.method, &target, &query) {
        Ok(op) => op,
        Err(err) => return (None, Err(err)),
    };
    let path = target.joined();
    let need = op.sas_need();
    if let Err(err) = auth::authenticate(&service.key, parts, target.share.as_deref(), &path, need)
    {
        return (Some(op), Err(err));
    }
    let call = Call { service, parts, query, target };
    (Some(op), call.run(op, body).await)
}

/// Picks the operation from the method, `restype` and `comp`. Other query
/// parameters (SAS fields among them) play no part.
fn route(method: &Method, target: &Target, query: &BTreeMap<String, String>) -> Result<Op> {
    let restype = query.get("restype").map(String::as_str);
    let comp = query.get("comp").map(String::as_str);
    let verb = || {
        Err(StorageError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        ))
    };
    if target.share.is_none() {
        return match comp {
            Some("list") if *method == Method::GET => Ok(Op::ListShares),
            Some("list") => verb(),
            Some(comp) => Err(not_implemented(&format!("comp={comp} on the account"))),
            None => Err(StorageError::bad_request(
                "InvalidUri",
                "The requested URI does not represent any resource on the server.",
            )),
        };
    }
    match restype {
        Some("share") => {
            if !target.path.is_empty() {
                return Err(invalid_query("restype"));
            }
            if let Some(comp) = comp {
                return Err(not_implemented(&format!("comp={comp} on a share")));
            }
            match *method {
                Method::PUT => Ok(Op::CreateShare),
                Method::GET | Method::HEAD => Ok(Op::GetShareProperties),
                Method::DELETE => Ok(Op::DeleteShare),
                _ => verb(),
            }
        }
        Some("directory") => match (comp, method) {
            (Some("list"), &Method::GET) => Ok(Op::ListDirectory),
            (Some("list"), _) => verb(),
            (Some(comp), _) => Err(not_implemented(&format!("comp={comp} on a directory"))),
            (None, &Method::PUT) => Ok(Op::CreateDirectory),
            (None, &Method::GET | &Method::HEAD) => Ok(Op::GetDirectoryProperties),
            (None, &Method::DELETE) => Ok(Op::DeleteDirectory),
            (None, _) => verb(),
        },
        Some(_) => Err(invalid_query("restype")),
        None if target.path.is_empty() => Err(StorageError::bad_request(
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        )),
        None => match (comp, method) {
            (Some("range"), &Method::PUT) => Ok(Op::PutRange),
            (Some("range"), _) => verb(),
            (Some(comp), _) => Err(not_implemented(&format!("comp={comp} on a file"))),
            (None, &Method::PUT) => Ok(Op::CreateFile),
            (None, &Method::GET) => Ok(Op::GetFile),
            (None, &Method::HEAD) => Ok(Op::GetFileProperties),
            (None, &Method::DELETE) => Ok(Op::DeleteFile),
            (None, _) => verb(),
        },
    }
}

fn invalid_query(name: &str) -> StorageError {
    StorageError::bad_request(
        "InvalidQueryParameterValue",
        format!("Value for the query parameter {name} is invalid."),
    )
}

/// An Azure Files operation this emulator does not carry out (501, which clients
/// do not retry).
fn not_implemented(what: &str) -> StorageError {
    StorageError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!("The emulator does not implement {what}."),
    )
}

/// A byte range asked for in a header.
struct ByteRange {
    /// The header it came from.
    header: &'static str,
    start: u64,
    /// The last byte, included; `None` for "to the end".
    end: Option<u64>,
}

/// One authenticated request.
struct Call<'a> {
    service: &'a Arc<FilesService>,
    parts: &'a Parts,
    query: BTreeMap<String, String>,
    target: Target,
}

impl Call<'_> {
    async fn run(&self, op: Op, body: &mut Option<Body>) -> Result<Response> {
        match op {
            Op::ListShares => self.list_shares().await,
            Op::CreateShare => self.create_share().await,
            Op::GetShareProperties => self.share_properties().await,
            Op::DeleteShare => self.delete_share().await,
            Op::ListDirectory => self.list_directory().await,
            Op::CreateDirectory => self.create_directory().await,
            Op::GetDirectoryProperties => self.directory_properties().await,
            Op::DeleteDirectory => self.delete_directory().await,
            Op::CreateFile => self.create_file().await,
            Op::PutRange => self.put_range(body).await,
            Op::GetFile => self.get_file().await,
            Op::GetFileProperties => self.file_properties().await,
            Op::DeleteFile => self.delete_file().await,
        }
    }

    // === helpers ===

    fn share(&self) -> String {
        self.target.share.clone().expect("routed to an operation inside a share")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).map(|v| v.to_str().unwrap_or(""))
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// `maxresults`: at most [`MAX_RESULTS`], and the default.
    fn max_results(&self) -> Result<usize> {
        let Some(value) = self.query("maxresults") else { return Ok(MAX_RESULTS) };
        match value.parse::<u64>() {
            Ok(0) => Err(StorageError::bad_request(
                "OutOfRangeQueryParameterValue",
                "The query parameter maxresults must be greater than 0.",
            )),
            Ok(n) => Ok(usize::try_from(n).unwrap_or(MAX_RESULTS).min(MAX_RESULTS)),
            Err(_) => Err(invalid_query("maxresults")),
        }
    }

    /// The lowercased items of `include`.
    fn includes(&self) -> Vec<String> {
        self.query("include")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Runs `f` on the blocking pool with the store.
    async fn store<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.service.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StorageError::internal("a storage task failed", io::Error::other(e)))?
    }

    // === shares ===

    async fn list_shares(&self) -> Result<Response> {
        let prefix = self.query("prefix").unwrap_or("").to_owned();
        let marker = self.query("marker").unwrap_or("").to_owned();
        let max_results = self.max_results()?;
        let with_metadata = self.includes().iter().any(|i| i == "metadata");
        let (page, next_marker) = self
            .store(move |s| {
                s.list_shares(&ListQuery { prefix: &prefix, marker: &marker, max_results })
            })
            .await?;

        let mut xml = Xml::document();
        let endpoint = format!("{}/", self.service.endpoint);
        xml.open_with("EnumerationResults", &[("ServiceEndpoint", &endpoint)]);
        self.echo_list_parameters(&mut xml);
        xml.open("Shares");
        for share in &page {
            xml.open("Share");
            xml.name_element(&share.name);
            xml.open("Properties");
            xml.element("Last-Modified", &httpdate::fmt_http_date(share.last_modified));
            xml.element("Etag", &share.etag());
            xml.element("Quota", &share.quota_gib.to_string());
            xml.close("Properties");
            if with_metadata {
                xml.open("Metadata");
                for (name, value) in &share.metadata {
                    xml.element(name, value);
                }
                xml.close("Metadata");
            }
            xml.close("Share");
        }
        xml.close("Shares");
        xml.element("NextMarker", next_marker.as_deref().unwrap_or(""));
        xml.close("EnumerationResults");
        Ok(xml_response(xml))
    }

    /// `Prefix`, `Marker` and `MaxResults` of a listing, when the request gave them.
    fn echo_list_parameters(&self, xml: &mut Xml) {
        for (param, element) in [("prefix", "Prefix"), ("marker", "Marker")] {
            if let Some(value) = self.query(param) {
                xml.element(element, value);
            }
        }
        if self.query("maxresults").is_some()
            && let Ok(max) = self.max_results()
        {
            xml.element("MaxResults", &max.to_string());
        }
    }

    async fn create_share(&self) -> Result<Response> {
        let quota = match self.header("x-ms-share-quota") {
            None => None,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(gib) if (1..=MAX_QUOTA_GIB).contains(&gib) => Some(gib),
                _ => return Err(StorageError::invalid_header("x-ms-share-quota")),
            },
        };
        let metadata = metadata(&self.parts.headers)?;
        let share = self.share();
        self.service.refuse_while_deleting(&share)?;
        let info = self.store(move |s| s.create_share(&share, quota, metadata)).await?;
        let mut headers = HeaderMap::new();
        insert(&mut headers, "etag", &info.etag());
        insert(&mut headers, "last-modified", &httpdate::fmt_http_date(info.last_modified));
        Ok(response(StatusCode::CREATED, headers, Body::empty()))
    }

    async fn share_properties(&self) -> Result<Response> {
        let share = self.share();
        let info = self.store(move |s| s.share_info(&share)).await?;
        let mut headers = HeaderMap::new();
        insert(&mut headers, "etag", &info.etag());
        insert(&mut headers, "last-modified", &httpdate::fmt_http_date(info.last_modified));
        insert(&mut headers, "x-ms-share-quota", &info.quota_gib.to_string());
        for (name, value) in &info.metadata {
            insert(&mut headers, &format!("x-ms-meta-{name}"), value);
        }
        Ok(response(StatusCode::OK, headers, Body::empty()))
    }

    async fn delete_share(&self) -> Result<Response> {
        let share = self.share();
        let deleted = share.clone();
        self.store(move |s| s.delete_share(&share)).await?;
        self.service.deleted(deleted);
        Ok(response(StatusCode::ACCEPTED, HeaderMap::new(), Body::empty()))
    }

    // === directories ===

    async fn list_directory(&self) -> Result<Response> {
        let prefix = self.query("prefix").unwrap_or("").to_owned();
        let marker = self.query("marker").unwrap_or("").to_owned();
        let max_results = self.max_results()?;
        let includes = self.includes();
        let include = |what: &str| includes.iter().any(|i| i == what);
        let (timestamps, etags, attributes) =
            (include("timestamps"), include("etag"), include("attributes"));
        let extended =
            self.header("x-ms-file-extended-info").is_some_and(|v| v.eq_ignore_ascii_case("true"));

        let (share, path) = (self.share(), self.target.path.clone());
        let listing = self
            .store(move |s| {
                let query = ListQuery { prefix: &prefix, marker: &marker, max_results };
                s.list_directory(&share, &path, &query)
            })
            .await?;

        let mut xml = Xml::document();
        let endpoint = format!("{}/", self.service.endpoint);
        let share = self.share();
        let directory_path = self.target.joined();
        xml.open_with(
            "EnumerationResults",
            &[
                ("ServiceEndpoint", &endpoint),
                ("ShareName", &share),
                ("DirectoryPath", &directory_path),
            ],
        );
        self.echo_list_parameters(&mut xml);
        xml.open("Entries");
        for entry in &listing.entries {
            let props = &entry.props;
            let tag = if props.is_dir { "Directory" } else { "File" };
            xml.open(tag);
            xml.name_element(&entry.name);
            if extended {
                xml.element("FileId", &props.id.to_string());
            }
            xml.open("Properties");
            if !props.is_dir {
                xml.element("Content-Length", &props.len.to_string());
            }
            if timestamps {
                xml.element("CreationTime", &format_file_time(props.created));
                xml.element("LastAccessTime", &format_file_time(props.accessed));
                xml.element("LastWriteTime", &format_file_time(props.modified));
                xml.element("ChangeTime", &format_file_time(props.changed));
                xml.element("Last-Modified", &httpdate::fmt_http_date(props.modified));
            }
            if etags {
                xml.element("Etag", &props.etag());
            }
            xml.close("Properties");
            if attributes {
                xml.element("Attributes", attributes_of(props));
            }
            xml.close(tag);
        }
        xml.close("Entries");
        xml.element("NextMarker", listing.next_marker.as_deref().unwrap_or(""));
        if extended {
            xml.element("DirectoryId", &listing.directory.id.to_string());
        }
        xml.close("EnumerationResults");
        Ok(xml_response(xml))
    }

    async fn create_directory(&self) -> Result<Response> {
        if self.target.path.is_empty() {
            return Err(StorageError::new(
                StatusCode::CONFLICT,
                "ResourceAlreadyExists",
                "The specified resource already exists.",
            ));
        }
        let (share, path) = (self.share(), self.target.path.clone());
        let props = self.store(move |s| s.create_directory(&share, &path)).await?;
        let mut headers = HeaderMap::new();
        item_headers(&mut headers, &props);
        insert(&mut headers, "x-ms-request-server-encrypted", "false");
        Ok(response(StatusCode::CREATED, headers, Body::empty()))
    }

    async fn directory_properties(&self) -> Result<Response> {
        let (share, path) = (self.share(), self.target.path.clone());
        let props = self.store(move |s| s.directory(&share, &path)).await?;
        let mut headers = HeaderMap::new();
        item_headers(&mut headers, &props);
        insert(&mut headers, "x-ms-server-encrypted", "false");
        Ok(response(StatusCode::OK, headers, Body::empty()))
    }

    async fn delete_directory(&self) -> Result<Response> {
        if self.target.path.is_empty() {
            return Err(StorageError::bad_request(
                "InvalidUri",
                "The root directory of a share cannot be deleted; delete the share.",
            ));
        }
        let (share, path) = (self.share(), self.target.path.clone());
        self.store(move |s| s.delete_directory(&share, &path)).await?;
        Ok(response(StatusCode::ACCEPTED, HeaderMap::new(), Body::empty()))
    }

    // === files ===

    async fn create_file(&self) -> Result<Response> {
        match self.header("x-ms-type") {
            None => return Err(StorageError::missing_header("x-ms-type")),
            Some(kind) if kind.eq_ignore_ascii_case("file") => {}
            Some(_) => return Err(StorageError::invalid_header("x-ms-type")),
        }
        let len = match self.header("x-ms-content-length").map(|v| v.trim().parse::<u64>()) {
            None => return Err(StorageError::missing_header("x-ms-content-length")),
            Some(Ok(len)) if len <= MAX_FILE_SIZE => len,
            Some(_) => return Err(StorageError::invalid_header("x-ms-content-length")),
        };
        let (share, path) = (self.share(), self.target.path.clone());
        let props = self.store(move |s| s.create_file(&share, &path, len)).await?;
        let mut headers = HeaderMap::new();
        item_headers(&mut headers, &props);
        insert(&mut headers, "x-ms-request-server-encrypted", "false");
        Ok(response(StatusCode::CREATED, headers, Body::empty()))
    }

    async fn put_range(&self, body: &mut Option<Body>) -> Result<Response> {
        let (start, end, len) = match self.range()? {
            // `range` makes sure that `end >= start`; the length of `bytes=0-<u64::MAX>`
            // is one more than any u64, a value Azure's 64-bit ranges cannot hold.
            Some(ByteRange { start, end: Some(end), header }) => {
                match (end - start).checked_add(1) {
                    Some(len) => (start, end, len),
                    None => return Err(StorageError::invalid_header(header)),
                }
            }
            Some(range) => return Err(StorageError::invalid_header(range.header)),
            None => return Err(StorageError::missing_header("x-ms-range")),
        };
        let clear = match self.header("x-ms-write") {
            None => return Err(StorageError::missing_header("x-ms-write")),
            Some(w) if w.eq_ignore_ascii_case("update") => false,
            Some(w) if w.eq_ignore_ascii_case("clear") => true,
            Some(_) => return Err(StorageError::invalid_header("x-ms-write")),
        };
        let content_length = match self.header("content-length").map(str::parse::<u64>) {
            None if clear => 0,
            None => {
                return Err(StorageError::new(
                    StatusCode::LENGTH_REQUIRED,
                    "MissingContentLengthHeader",
                    "Content-Length HTTP header is missing.",
                ));
            }
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(StorageError::invalid_header("Content-Length")),
        };
        if clear && content_length != 0 {
            return Err(StorageError::invalid_header("Content-Length"));
        }
        if !clear && len > MAX_RANGE {
            return Err(StorageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                "The request body is too large and exceeds the maximum permissible limit.",
            ));
        }
        if !clear && content_length != len {
            return Err(StorageError::invalid_header("Content-Length"));
        }

        let (share, path) = (self.share(), self.target.path.clone());
        let (file, props) = self.store(move |s| s.open_file(&share, &path, true)).await?;
        if end >= props.len {
            return Err(StorageError::invalid_range());
        }
        let meta = if clear {
            clear_range(file, start, len).await?
        } else {
            let body = body.take().unwrap_or_else(Body::empty);
            write_range(file, start, len, body).await?
        };
        let props = Props::from_metadata(&meta);
        let mut headers = HeaderMap::new();
        insert(&mut headers, "etag", &props.etag());
        insert(&mut headers, "last-modified", &httpdate::fmt_http_date(props.modified));
        insert(&mut headers, "x-ms-request-server-encrypted", "false");
        insert(&mut headers, "x-ms-file-last-write-time", &format_file_time(props.modified));
        Ok(response(StatusCode::CREATED, headers, Body::empty()))
    }

    /// The range of `x-ms-range` (preferred) or `Range`: `bytes=start-end` or
    /// `bytes=start-`.
    fn range(&self) -> Result<Option<ByteRange>> {
        let (header, value) = match (self.header("x-ms-range"), self.header("range")) {
            (Some(value), _) => ("x-ms-range", value),
            (None, Some(value)) => ("Range", value),
            (None, None) => return Ok(None),
        };
        let parsed = value.trim().strip_prefix("bytes=").and_then(|spec| {
            let (start, end) = spec.split_once('-')?;
            let start = start.trim().parse::<u64>().ok()?;
            let end = match end.trim() {
                "" => None,
                end => Some(end.parse::<u64>().ok()?),
            };
            match end {
                Some(end) if end < start => None,
                _ => Some((start, end)),
            }
        });
        match parsed {
            Some((start, end)) => Ok(Some(ByteRange { header, start, end })),
            None => Err(StorageError::invalid_header(header)),
        }
    }

    async fn get_file(&self) -> Result<Response> {
        let range = self.range()?.map(|r| (r.start, r.end));
        let (share, path) = (self.share(), self.target.path.clone());
        let (mut file, props) = self.store(move |s| s.open_file(&share, &path, false)).await?;
        let size = props.len;
        let (status, start, count) = match range {
            None => (StatusCode::OK, 0, size),
            Some((start, _)) if start >= size => {
                let mut err = StorageError::invalid_range().into_response(false);
                insert(err.headers_mut(), "content-range", &format!("bytes */{size}"));
                return Ok(err);
            }
            Some((start, end)) => {
                let end = end.map_or(size - 1, |end| end.min(size - 1));
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start)).map_err(|e| StorageError::internal("seeking", e))?;
        }
        let mut headers = HeaderMap::new();
        file_headers(&mut headers, &props);
        insert(&mut headers, "content-length", &count.to_string());
        if status == StatusCode::PARTIAL_CONTENT {
            let last = start + count - 1;
            insert(&mut headers, "content-range", &format!("bytes {start}-{last}/{size}"));
        }
        let reader = tokio::fs::File::from_std(file).take(count);
        let body = Body::from_stream(ReaderStream::with_capacity(reader, READ_CHUNK));
        Ok(response(status, headers, body))
    }

    async fn file_properties(&self) -> Result<Response> {
        let (share, path) = (self.share(), self.target.path.clone());
        let (_, props) = self.store(move |s| s.open_file(&share, &path, false)).await?;
        let mut headers = HeaderMap::new();
        file_headers(&mut headers, &props);
        insert(&mut headers, "content-length", &props.len.to_string());
        Ok(response(StatusCode::OK, headers, Body::empty()))
    }

    async fn delete_file(&self) -> Result<Response> {
        let (share, path) = (self.share(), self.target.path.clone());
        self.store(move |s| s.delete_file(&share, &path)).await?;
        Ok(response(StatusCode::ACCEPTED, HeaderMap::new(), Body::empty()))
    }
}

/// Writes the request body, which must be `len` bytes, at `start`.
async fn write_range(
    mut file: std::fs::File,
    start: u64,
    len: u64,
    body: Body,
) -> Result<std::fs::Metadata> {
    let io_error = |e| StorageError::internal("writing a range", e);
    file.seek(SeekFrom::Start(start)).map_err(io_error)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            StorageError::bad_request("InvalidInput", "The request body could not be read.")
        })?;
        written += chunk.len() as u64;
        if written > len {
            return Err(StorageError::invalid_header("Content-Length"));
        }
        file.write_all(&chunk).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    if written != len {
        return Err(StorageError::bad_request(
            "InvalidInput",
            "The request body is shorter than its range.",
        ));
    }
    file.metadata().await.map_err(io_error)
}

/// Writes `len` zeros at `start`.
async fn clear_range(file: std::fs::File, start: u64, len: u64) -> Result<std::fs::Metadata> {
    tokio::task::spawn_blocking(move || {
        let zeros = vec![0u8; 1 << 20];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64);
            file.write_all_at(&zeros[..n as usize], start + done)?;
            done += n;
        }
        file.metadata()
    })
    .await
    .map_err(io::Error::other)
    .and_then(|r| r)
    .map_err(|e| StorageError::internal("clearing a range", e))
}

/// Reads `x-ms-meta-*` headers: names must be C identifiers.
fn metadata(headers: &HeaderMap) -> Result<BTreeMap<String, String>> {
    let invalid = || {
        StorageError::bad_request(
            "InvalidMetadata",
            "The metadata specified is invalid. It has characters that are not permitted.",
        )
    };
    let mut metadata = BTreeMap::new();
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix("x-ms-meta-") else { continue };
        let mut chars = key.chars();
        let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(invalid());
        }
        let value = value.to_str().map_err(|_| invalid())?;
        metadata.insert(key.to_owned(), value.to_owned());
    }
    Ok(metadata)
}

fn attributes_of(props: &Props) -> &'static str {
    if props.is_dir { "Directory" } else { "Archive" }
}

/// ETag, Last-Modified and the SMB properties of a file or directory.
fn item_headers(headers: &mut HeaderMap, props: &Props) {
    insert(headers, "etag", &props.etag());
    insert(headers, "last-modified", &httpdate::fmt_http_date(props.modified));
    insert(headers, "x-ms-file-attributes", attributes_of(props));
    insert(headers, "x-ms-file-creation-time", &format_file_time(props.created));
    insert(headers, "x-ms-file-last-write-time", &format_file_time(props.modified));
    insert(headers, "x-ms-file-change-time", &format_file_time(props.changed));
    insert(headers, "x-ms-file-id", &props.id.to_string());
}

/// The headers of Get File and Get File Properties, but Content-Length.
fn file_headers(headers: &mut HeaderMap, props: &Props) {
    item_headers(headers, props);
    insert(headers, "x-ms-type", "File");
    insert(headers, "content-type", "application/octet-stream");
    insert(headers, "accept-ranges", "bytes");
    insert(headers, "x-ms-server-encrypted", "false");
    insert(headers, "x-ms-lease-status", "unlocked");
    insert(headers, "x-ms-lease-state", "available");
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    // Names are ours or metadata names checked as identifiers; values are ASCII
    // that we made, or header values that came in.
    if let (Ok(name), Ok(value)) =
        (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
    {
        headers.insert(name, value);
    }
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn xml_response(xml: Xml) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response(StatusCode::OK, headers, Body::from(xml.finish()))
}
