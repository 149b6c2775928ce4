//! A small Azure Resource Manager client for container groups.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::credentials::TokenCredential;
use backoff::Backoff;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::model::{ContainerGroup, ErrorBody, GroupList, Logs};

/// A failed ARM call. Messages carry ARM's code, message and request id; never a
/// token, a secret value or a request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArmError {
    /// ARM answered with an error status.
    #[error("{operation}: {status}{}{}{}",
        code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Status {
        /// What was attempted.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// ARM's error code.
        code: Option<String>,
        /// ARM's message.
        message: Option<String>,
        /// `x-ms-request-id`, for support cases.
        request_id: Option<String>,
        /// `Retry-After`, when sent.
        #[source]
        retry_after: Option<RetryAfter>,
    },
    /// No answer.
    #[error("{operation}: no answer from Azure Resource Manager")]
    Network {
        /// What was attempted.
        operation: String,
        /// The cause, its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// No token could be had.
    #[error("getting an Azure token: {0}")]
    Token(String),
    /// The answer was not what the API describes.
    #[error("{operation}: unexpected answer: {detail}")]
    Decode {
        /// What was attempted.
        operation: String,
        /// What was wrong.
        detail: String,
    },
}

/// A `Retry-After` duration carried with an error.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("retry after {0:?}")]
pub struct RetryAfter(pub Duration);

impl ArmError {
    /// ARM's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same call may succeed later: no answer, 408, 429, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ArmError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            ArmError::Network { .. } | ArmError::Token(_) => true,
            ArmError::Decode { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ArmError::Status { retry_after, .. } => retry_after.map(|r| r.0),
            _ => None,
        }
    }
}

/// Where the container groups live and how to reach ARM.
#[derive(Clone, Debug)]
pub struct ArmTarget {
    /// ARM's base URL, e.g. `https://management.azure.com`.
    pub endpoint: String,
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The `api-version` of Microsoft.ContainerInstance.
    pub api_version: String,
}

/// The most pages a listing follows: far more than a resource group's container
/// groups fill (ARM sends them a hundred or more to a page).
const MAX_PAGES: usize = 1000;

/// The longest `Retry-After` waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The ARM client. Cheap to clone.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    target: ArmTarget,
    scope: String,
    attempts: u32,
    initial_backoff: Duration,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient").field("target", &self.target).finish_non_exhaustive()
    }
}

/// Retry only what is safe for the call: a PUT of a group leaves 503 (capacity) and
/// 409 (quota, conflicts) to its caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Transient,
    TransientButCapacity,
}

impl ArmClient {
    /// A client for `target`, with tokens from `credential`.
    pub fn new(
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        target: ArmTarget,
    ) -> Self {
        let endpoint = target.endpoint.trim_end_matches('/').to_owned();
        let scope = format!("{endpoint}/.default");
        ArmClient {
            http,
            credential,
            target: ArmTarget { endpoint, ..target },
            scope,
            attempts: 6,
            initial_backoff: Duration::from_millis(500),
        }
    }

    /// Shortens the pauses between attempts (for tests).
    pub fn with_retry(mut self, attempts: u32, initial_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.initial_backoff = initial_backoff;
        self
    }

    /// The target.
    pub fn target(&self) -> &ArmTarget {
        &self.target
    }

    fn resource_group_url(&self) -> String {
        format!(
            "{}/subscriptions/{}/resourceGroups/{}",
            self.target.endpoint, self.target.subscription_id, self.target.resource_group
        )
    }

    fn groups_url(&self) -> String {
        format!(
            "{}/providers/Microsoft.ContainerInstance/containerGroups",
            self.resource_group_url()
        )
    }

    fn group_url(&self, name: &str) -> String {
        format!("{}/{name}", self.groups_url())
    }

    /// Checks that the resource group exists and the credential may read it.
    pub async fn check_resource_group(&self) -> Result<(), ArmError> {
        let url = format!("{}?api-version=2021-04-01", self.resource_group_url());
        self.call::<serde_json::Value>(
            "read resource group",
            Method::GET,
            url,
            None,
            Retry::Transient,
        )
        .await?;
        Ok(())
    }

    /// Creates (or re-asserts) a container group. 409 and 503 come back to the
    /// caller, which knows quota and capacity from conflicts.
    pub async fn put_group(
        &self,
        name: &str,
        group: &ContainerGroup,
    ) -> Result<ContainerGroup, ArmError> {
        let body = serde_json::to_vec(group).map_err(|e| ArmError::Decode {
            operation: format!("create container group {name}"),
            detail: e.to_string(),
        })?;
        let url = format!("{}?api-version={}", self.group_url(name), self.target.api_version);
        self.call(
            &format!("create container group {name}"),
            Method::PUT,
            url,
            Some(body),
            Retry::TransientButCapacity,
        )
        .await
    }

    /// The group with its instance view, or `None` when it does not exist.
    pub async fn get_group(&self, name: &str) -> Result<Option<ContainerGroup>, ArmError> {
        let url = format!("{}?api-version={}", self.group_url(name), self.target.api_version);
        match self
            .call(&format!("read container group {name}"), Method::GET, url, None, Retry::Transient)
            .await
        {
            Ok(group) => Ok(Some(group)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a group; `Ok(false)` when there was none.
    pub async fn delete_group(&self, name: &str) -> Result<bool, ArmError> {
        let url = format!("{}?api-version={}", self.group_url(name), self.target.api_version);
        match self
            .call::<serde_json::Value>(
                &format!("delete container group {name}"),
                Method::DELETE,
                url,
                None,
                Retry::Transient,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stops every container of a group.
    pub async fn stop_group(&self, name: &str) -> Result<(), ArmError> {
        let url = format!("{}/stop?api-version={}", self.group_url(name), self.target.api_version);
        self.call::<serde_json::Value>(
            &format!("stop container group {name}"),
            Method::POST,
            url,
            Some(Vec::new()),
            Retry::Transient,
        )
        .await?;
        Ok(())
    }

    /// A container's log (stdout and stderr together).
    pub async fn logs(&self, name: &str, container: &str) -> Result<String, ArmError> {
        let url = format!(
            "{}/containers/{container}/logs?api-version={}",
            self.group_url(name),
            self.target.api_version
        );
        let logs: Logs = self
            .call(
                &format!("read logs of {name}/{container}"),
                Method::GET,
                url,
                None,
                Retry::Transient,
            )
            .await?;
        Ok(logs.content.unwrap_or_default())
    }

    /// Every container group of the resource group. A listing that runs past 1000
    /// pages (a `nextLink` that keeps coming back, say) fails rather than going on
    /// forever.
    pub async fn list_groups(&self) -> Result<Vec<ContainerGroup>, ArmError> {
        let operation = "list container groups";
        let mut groups = Vec::new();
        let mut url = format!("{}?api-version={}", self.groups_url(), self.target.api_version);
        for _ in 0..MAX_PAGES {
            let page: GroupList =
                self.call(operation, Method::GET, url, None, Retry::Transient).await?;
            groups.extend(page.value);
            // Follow only links to the same ARM endpoint: the bearer token goes with it.
            match page.next_link.filter(|next| next.starts_with(&self.target.endpoint)) {
                Some(next) => url = next,
                None => return Ok(groups),
            }
        }
        // The link is not shown: it may carry a continuation token.
        Err(ArmError::Decode {
            operation: operation.to_owned(),
            detail: format!("the listing goes on past {MAX_PAGES} pages"),
        })
    }

    async fn token(&self) -> Result<String, ArmError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| ArmError::Token(e.to_string()))?;
        Ok(token.token.secret().to_owned())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: Method,
        url: String,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<T, ArmError> {
        let mut backoff = Backoff::new(self.initial_backoff, Duration::from_secs(30));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.call_once(operation, &method, &url, body.as_deref()).await {
                Ok(text) => {
                    let text = if text.trim().is_empty() { "null" } else { text.as_str() };
                    return serde_json::from_str(text).map_err(|e| ArmError::Decode {
                        operation: operation.to_owned(),
                        detail: e.to_string(),
                    });
                }
                Err(e) => e,
            };
            let status = error.status().map_or_else(|| "none".to_owned(), |s| s.to_string());
            metrics::counter!("aci_worker_arm_errors_total", "status" => status).increment(1);
            let retryable = match retry {
                Retry::Transient => error.is_transient(),
                Retry::TransientButCapacity => error.is_transient() && error.status() != Some(503),
            };
            if !retryable || attempt >= self.attempts {
                return Err(error);
            }
            let delay = match error.retry_after() {
                Some(after) => after.max(backoff.next_delay()),
                None => backoff.next_delay(),
            };
            tracing::debug!(operation, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying ARM call");
            tokio::time::sleep(delay).await;
        }
    }

    async fn call_once(
        &self,
        operation: &str,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<String, ArmError> {
        let token = self.token().await?;
        let mut request = self.http.request(method.clone(), url).bearer_auth(token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| ArmError::Network {
            operation: operation.to_owned(),
            source: e.without_url(),
        })?;
        let status = response.status();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let request_id = header("x-ms-request-id");
        let retry_after = header("retry-after")
            .and_then(|v| backoff::retry_after(&v, SystemTime::now(), MAX_RETRY_AFTER))
            .map(RetryAfter);
        let text = response.text().await.map_err(|e| ArmError::Network {
            operation: operation.to_owned(),
            source: e.without_url(),
        })?;
        if status.is_success() {
            return Ok(text);
        }
        let detail = serde_json::from_str::<ErrorBody>(&text).ok().and_then(|b| b.error);
        let (code, message) = match detail {
            Some(d) => (d.code, d.message),
            None => {
                (None, (status != StatusCode::NOT_FOUND).then(|| text.chars().take(300).collect()))
            }
        };
        Err(ArmError::Status {
            operation: operation.to_owned(),
            status: status.as_u16(),
            code,
            message: message.filter(|m: &String| !m.trim().is_empty()),
            request_id,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use azure_core::credentials::{AccessToken, TokenRequestOptions};
    use azure_core::time::OffsetDateTime;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Hands out a token that ARM stand-ins take.
    #[derive(Debug)]
    struct AnyToken;

    impl TokenCredential for AnyToken {
        fn get_token<'a, 'b, 'c, 'd, 'f>(
            &'a self,
            _scopes: &'b [&'c str],
            _options: Option<TokenRequestOptions<'d>>,
        ) -> Pin<Box<dyn Future<Output = azure_core::Result<AccessToken>> + Send + 'f>>
        where
            'a: 'f,
            'b: 'f,
            'c: 'f,
            'd: 'f,
            Self: 'f,
        {
            let expires = OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
            Box::pin(async move { Ok(AccessToken::new("token", expires)) })
        }
    }

    /// An ARM stand-in on plain HTTP that answers every request with a listing page,
    /// `{"value": []}` and the `nextLink` that `next` gives for the request's
    /// target, if any; a client of it, and how many requests it served.
    async fn listing(next: fn(&str) -> Option<String>) -> (ArmClient, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let (base, count) = (endpoint.clone(), served.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let target = text.split(' ').nth(1).unwrap_or("");
                let mut body = serde_json::json!({"value": []});
                if let Some(link) = next(target) {
                    body["nextLink"] = format!("{base}{link}").into();
                }
                let body = body.to_string();
                count.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        let target = ArmTarget {
            endpoint,
            subscription_id: "sub".into(),
            resource_group: "rg".into(),
            api_version: "2023-05-01".into(),
        };
        let client = ArmClient::new(reqwest::Client::new(), Arc::new(AnyToken), target)
            .with_retry(1, Duration::from_millis(10));
        (client, served)
    }

    #[tokio::test]
    async fn a_listing_follows_its_links_to_the_end_but_never_without_end() {
        // Two links, then a last page without one.
        let (arm, served) = listing(|target| {
            let page = target.split("$skiptoken=").nth(1).map_or(0, |n| n.parse().unwrap());
            (page < 2).then(|| format!("/groups?$skiptoken={}", page + 1))
        })
        .await;
        assert!(arm.list_groups().await.unwrap().is_empty());
        assert_eq!(served.load(Ordering::SeqCst), 3, "pages read");

        // The same link again and again: stopped at the cap, with an error that does
        // not show the link's token.
        let (arm, served) = listing(|_| Some("/groups?$skiptoken=again".into())).await;
        let err = arm.list_groups().await.unwrap_err();
        let text = err.to_string();
        assert_eq!(served.load(Ordering::SeqCst), MAX_PAGES, "pages read");
        assert!(matches!(err, ArmError::Decode { .. }), "{text}");
        assert!(!err.is_transient(), "{text}");
        assert!(text.contains("past 1000 pages") && !text.contains("skiptoken"), "{text}");
    }
}
