//! Storage errors as Azure Files answers them: a status, an error code (also sent in
//! `x-ms-error-code`) and an XML body.

use std::io;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::xml::Xml;

/// One error answer of the Files service.
#[derive(Debug)]
pub(crate) struct StorageError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// `AuthenticationErrorDetail`, for 403s: why the credentials were refused.
    pub(crate) auth_detail: Option<String>,
    /// `Retry-After` in seconds (throttling).
    pub(crate) retry_after: Option<u32>,
}

pub(crate) type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StorageError { status, code, message: message.into(), auth_detail: None, retry_after: None }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn authentication(detail: impl Into<String>) -> Self {
        StorageError {
            auth_detail: Some(detail.into()),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization \
                 header is formed correctly including the signature.",
            )
        }
    }

    pub(crate) fn share_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ShareNotFound", "The specified share does not exist.")
    }

    pub(crate) fn parent_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ParentNotFound",
            "The specified parent path does not exist.",
        )
    }

    pub(crate) fn resource_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        )
    }

    pub(crate) fn invalid_header(name: &str) -> Self {
        Self::bad_request(
            "InvalidHeaderValue",
            format!("The value for the HTTP header {name} is not in the correct format."),
        )
    }

    pub(crate) fn missing_header(name: &str) -> Self {
        Self::bad_request(
            "MissingRequiredHeader",
            format!("The request is missing the required HTTP header {name}."),
        )
    }

    pub(crate) fn invalid_range() -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        )
    }

    /// A local I/O failure: logged here (it is the emulator's or the machine's
    /// problem, not the client's) and answered as Azure answers its own.
    pub(crate) fn internal(context: &str, err: io::Error) -> Self {
        tracing::warn!(error = %err, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
        )
    }

    /// The response, with a body unless it answers a HEAD request.
    pub(crate) fn into_response(self, head: bool) -> Response {
        let mut response = if head {
            self.status.into_response()
        } else {
            let mut xml = Xml::document();
            xml.open("Error");
            xml.element("Code", self.code);
            xml.element("Message", &self.message);
            if let Some(detail) = &self.auth_detail {
                xml.element("AuthenticationErrorDetail", detail);
            }
            xml.close("Error");
            let mut response = (self.status, xml.finish()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            response
        };
        let headers = response.headers_mut();
        headers.insert("x-ms-error-code", HeaderValue::from_static(self.code));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
