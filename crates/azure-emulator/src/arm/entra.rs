//! Entra ID: the client-credentials grant of the v2.0 token endpoint, the discovery
//! documents that MSAL (under Python's `azure-identity`) reads first, and an App
//! Service style managed identity endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::ArmService;
use super::error::EntraError;
use crate::time::unix_seconds;

/// `POST /{tenant}/oauth2/v2.0/token` with a form body.
pub(crate) fn token(service: &ArmService, tenant: &str, body: &[u8]) -> Response {
    service.token_requests.fetch_add(1, Ordering::Relaxed);
    match issue_for_client(service, tenant, body) {
        Ok((token, lifetime)) => json_response(
            StatusCode::OK,
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }),
        ),
        Err(err) => err.into_response(),
    }
}

fn issue_for_client(
    service: &ArmService,
    tenant: &str,
    body: &[u8],
) -> Result<(String, u64), EntraError> {
    let config = service.config();
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return Err(tenant_not_found(tenant));
    }
    let form = parse_form(body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let missing = |name: &str| {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    match field("grant_type") {
        "" => return Err(missing("grant_type")),
        "client_credentials" => {}
        other => {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70_003,
                format!(
                    "The app requested an unsupported grant type '{other}'; the emulator \
                     supports 'client_credentials' only."
                ),
            ));
        }
    }
    let client_id = field("client_id");
    if client_id.is_empty() {
        return Err(missing("client_id"));
    }
    if client_id != config.client_id {
        return Err(EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant."
            ),
        ));
    }
    let secret = field("client_secret");
    if secret.is_empty() {
        return Err(EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        ));
    }
    if secret != config.client_secret {
        // Never the secret itself in the answer.
        return Err(EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        ));
    }
    let scope = field("scope");
    if scope.is_empty() {
        return Err(missing("scope"));
    }
    let audience = audience_of(scope).ok_or_else(|| {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        )
    })?;
    let lifetime = config.token_lifetime;
    Ok((service.issuer.issue(audience, &config.client_id, lifetime), lifetime.as_secs()))
}

/// The resource of a client-credentials scope list: the one `<resource>/.default`
/// among OpenID's reserved scopes.
fn audience_of(scope: &str) -> Option<&str> {
    let mut resources = scope
        .split(' ')
        .filter(|s| !s.is_empty() && !matches!(*s, "openid" | "profile" | "offline_access"));
    let first = resources.next()?;
    if resources.next().is_some() {
        return None;
    }
    first.strip_suffix("/.default").filter(|r| !r.is_empty())
}

fn tenant_not_found(tenant: &str) -> EntraError {
    EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90_002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and \
             are signing into the correct cloud."
        ),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`, for the configured tenant,
/// `common` and `organizations`.
pub(crate) fn openid_configuration(service: &ArmService, tenant: &str) -> Response {
    let config = service.config();
    let known = tenant.eq_ignore_ascii_case(&config.tenant_id)
        || tenant.eq_ignore_ascii_case("common")
        || tenant.eq_ignore_ascii_case("organizations");
    if !known {
        return tenant_not_found(tenant).into_response();
    }
    let base = format!("{}/{}", service.endpoint(), config.tenant_id);
    json_response(
        StatusCode::OK,
        json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "tenant_region_scope": null,
            "cloud_instance_name": "azure-emulator",
        }),
    )
}

/// `GET /common/discovery/instance` (MSAL's instance discovery): this host is its
/// own cloud, and tenants are discovered at the host.
pub(crate) fn instance_discovery(
    service: &ArmService,
    query: &BTreeMap<String, String>,
) -> Response {
    let endpoint = service.endpoint();
    let tenant = query
        .get("authorization_endpoint")
        .and_then(|url| url.strip_prefix(endpoint))
        .and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let host = endpoint.trim_start_matches("https://");
    let localhost = host.replacen("127.0.0.1", "localhost", 1);
    json_response(
        StatusCode::OK,
        json!({
            "tenant_discovery_endpoint":
                format!("{endpoint}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host, localhost],
            }],
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`: no keys (the emulator's tokens are not meant
/// to be verified by clients).
pub(crate) fn keys() -> Response {
    json_response(StatusCode::OK, json!({"keys": []}))
}

/// `GET /msi/token?resource=…&api-version=2019-08-01` with `X-IDENTITY-HEADER`: the
/// App Service managed identity protocol (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`).
/// The identity is the configured service principal.
pub(crate) fn managed_identity(
    service: &ArmService,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
) -> Response {
    service.token_requests.fetch_add(1, Ordering::Relaxed);
    let config = service.config();
    let secret = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if secret != Some(config.identity_header.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"statusCode": 401, "message": "The X-IDENTITY-HEADER header is missing or wrong."}),
        );
    }
    let resource = query.get("resource").map(String::as_str).unwrap_or("");
    let resource = resource.strip_suffix("/.default").unwrap_or(resource);
    if resource.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"statusCode": 400, "message": "The 'resource' query parameter is required."}),
        );
    }
    let lifetime = config.token_lifetime;
    let token = service.issuer.issue(resource, &config.client_id, lifetime);
    let expires_on = unix_seconds(SystemTime::now()) + lifetime.as_secs();
    json_response(
        StatusCode::OK,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": config.client_id,
        }),
    )
}

/// An `application/x-www-form-urlencoded` body, names and values decoded.
fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let decode =
        |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let form = parse_form(b"scope=https%3A%2F%2Fmanagement.azure.com%2F.default+openid&a=b+c");
        assert_eq!(form["scope"], "https://management.azure.com/.default openid");
        assert_eq!(form["a"], "b c");
    }

    #[test]
    fn the_audience_is_the_one_default_scope() {
        assert_eq!(
            audience_of("https://management.azure.com/.default"),
            Some("https://management.azure.com")
        );
        assert_eq!(audience_of("openid https://x/.default profile"), Some("https://x"));
        assert_eq!(audience_of("https://x/user.read"), None);
        assert_eq!(audience_of("https://x/.default https://y/.default"), None);
        assert_eq!(audience_of("/.default"), None);
    }
}
