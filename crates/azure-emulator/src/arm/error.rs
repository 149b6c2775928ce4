//! Error answers as ARM gives them: a status and `{"error":{"code":…,"message":…}}`,
//! and Entra ID's token errors (`{"error":…,"error_description":…}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One error answer of the ARM part.
#[derive(Debug)]
pub(crate) struct ArmError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// `Retry-After` in seconds.
    pub(crate) retry_after: Option<u32>,
    /// `WWW-Authenticate`, for 401s.
    pub(crate) authenticate: Option<String>,
}

pub(crate) type Result<T, E = ArmError> = std::result::Result<T, E>;

impl ArmError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ArmError { status, code, message: message.into(), retry_after: None, authenticate: None }
    }

    /// A 400 with ACI's (or the emulator's own) validation code.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A body that is not what the schema says.
    pub(crate) fn invalid_content(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{detail}'."),
        )
    }

    pub(crate) fn subscription_not_found(sub: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        )
    }

    pub(crate) fn resource_group_not_found(rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    pub(crate) fn group_not_found(rg: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' under \
                 resource group '{rg}' was not found."
            ),
        )
    }

    pub(crate) fn not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "The emulator has no operation for {method} {path}; see the azure-emulator \
                 crate documentation for what it covers."
            ),
        )
    }

    /// A 401 as ARM answers it, with the `WWW-Authenticate` challenge that names the
    /// authority to get a token from.
    pub(crate) fn unauthorized(
        code: &'static str,
        message: impl Into<String>,
        authority: &str,
    ) -> Self {
        let message = message.into();
        ArmError {
            authenticate: Some(format!(
                "Bearer authorization_uri=\"{authority}\", error=\"invalid_token\", \
                 error_description=\"{}\"",
                message.replace('"', "'")
            )),
            ..Self::new(StatusCode::UNAUTHORIZED, code, message)
        }
    }

    pub(crate) fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(value) = self.authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// An error of the token endpoint, shaped as Entra ID answers (`AADSTS` codes).
#[derive(Debug)]
pub(crate) struct EntraError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) description: String,
}

impl EntraError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        EntraError { status, error, code, description: description.into() }
    }

    pub(crate) fn into_response(self) -> Response {
        let trace = uuid::Uuid::new_v4();
        let correlation = uuid::Uuid::new_v4();
        let timestamp = crate::time::rfc3339(std::time::SystemTime::now(), false);
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {}",
                self.code,
                self.description,
                timestamp.replace('T', " "),
            ),
            "error_codes": [self.code],
            "timestamp": timestamp.replace('T', " "),
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
        });
        let mut response = (self.status, body.to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}
