//! Helpers for the ARM tests: an emulator with the Entra ID and ARM part, an HTTPS
//! client that trusts its test CA, a token, and container group requests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use azure_emulator::{ArmConfig, DEFAULT_RESOURCE_GROUP, Emulator};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::Harness;

pub const API_VERSION: &str = "2023-05-01";

/// How long a test waits for a group to reach a state before it fails.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// An answer of the ARM part: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct ArmAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl ArmAnswer {
    /// `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Arm {
    pub files: Harness,
    /// Trusts the emulator's test CA only.
    pub http: reqwest::Client,
    pub token: String,
}

impl Arm {
    /// An emulator with ARM configured by `configure` (from `ArmConfig::new`), and a
    /// token for the service principal.
    pub async fn start(configure: impl Fn(&mut ArmConfig)) -> Arm {
        let files = Harness::start_with(Some(&configure)).await;
        let http = trusting_client(&files.emulator);
        let token = client_token(&http, &files.emulator, "https://management.azure.com/.default")
            .await
            .expect("a token for the service principal");
        Arm { files, http, token }
    }

    /// In instant mode, no Docker.
    pub async fn instant() -> Arm {
        Self::start(|c| {
            c.instant = true;
            c.docker = None;
        })
        .await
    }

    pub fn emulator(&self) -> &Emulator {
        &self.files.emulator
    }

    pub fn subscription_path(&self) -> String {
        format!("/subscriptions/{}", azure_emulator::DEFAULT_SUBSCRIPTION_ID)
    }

    pub fn groups_path(&self) -> String {
        format!(
            "{}/resourceGroups/{DEFAULT_RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/containerGroups",
            self.subscription_path()
        )
    }

    pub fn group_path(&self, name: &str) -> String {
        format!("{}/{name}", self.groups_path())
    }

    /// A request with the harness's token; `path` without the api-version.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> ArmAnswer {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url =
            format!("{}{path}{separator}api-version={API_VERSION}", self.emulator().arm_endpoint());
        self.call_url(method, &url, Some(&self.token), body).await
    }

    /// A request to a full URL, with the given token (or none).
    pub async fn call_url(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> ArmAnswer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        ArmAnswer { status, headers, body }
    }

    pub async fn put_group(&self, name: &str, body: &Value) -> ArmAnswer {
        self.call("PUT", &self.group_path(name), Some(body)).await
    }

    pub async fn get_group(&self, name: &str) -> Value {
        let answer = self.call("GET", &self.group_path(name), None).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body
    }

    /// Polls the group until `done` holds, and returns it; fails after two minutes.
    pub async fn wait_group(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let group = self.get_group(name).await;
            if done(&group) {
                return group;
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "group {name} never got there: {}",
                serde_json::to_string_pretty(&group).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the group is over: its state is neither Pending nor Running, or its
    /// provisioning failed.
    pub async fn wait_finished(&self, name: &str) -> Value {
        self.wait_group(name, |g| {
            let state = g["properties"]["instanceView"]["state"].as_str().unwrap_or("");
            g["properties"]["provisioningState"] == "Failed"
                || !matches!(state, "Pending" | "Running")
        })
        .await
    }

    /// Creates a share through the Files API and returns its directory.
    pub async fn share(&self, name: &str) -> PathBuf {
        self.files.create_share(name).await;
        self.emulator().share_dir(name)
    }
}

/// A reqwest client that trusts the emulator's test CA (and nothing else).
pub fn trusting_client(emulator: &Emulator) -> reqwest::Client {
    let pem = std::fs::read(emulator.ca_cert_pem_path()).unwrap();
    let ca = reqwest::Certificate::from_pem(&pem).unwrap();
    reqwest::Client::builder().tls_certs_only([ca]).build().unwrap()
}

/// A client-credentials token for `scope`, or the error answer.
pub async fn client_token(
    http: &reqwest::Client,
    emulator: &Emulator,
    scope: &str,
) -> Result<String, (u16, Value)> {
    token_with(
        http,
        emulator,
        azure_emulator::DEFAULT_CLIENT_ID,
        azure_emulator::DEFAULT_CLIENT_SECRET,
        scope,
    )
    .await
}

pub async fn token_with(
    http: &reqwest::Client,
    emulator: &Emulator,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Result<String, (u16, Value)> {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        emulator.arm_endpoint(),
        azure_emulator::DEFAULT_TENANT_ID
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ];
    let body: String = form
        .iter()
        .map(|(k, v)| {
            let v: String =
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&");
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = json_of(response).await;
    if status == 200 {
        Ok(body["access_token"].as_str().unwrap().to_owned())
    } else {
        Err((status, body))
    }
}

/// The busybox image in the local registry (`scripts/dev-services env`).
pub fn busybox() -> String {
    std::env::var("ACI_TEST_BUSYBOX")
        .unwrap_or_else(|_| "127.0.0.1:5000/aci-worker-test/busybox:latest".to_owned())
}

/// A container definition: `command` runs in `image` with half a CPU and 0.25 GB.
pub fn container(name: &str, image: &str, command: &[&str]) -> Value {
    json!({
        "name": name,
        "properties": {
            "image": image,
            "command": command,
            "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.25}},
        }
    })
}

/// A Linux group with these containers and restart policy Never.
pub fn group_body(containers: Vec<Value>) -> Value {
    json!({
        "location": azure_emulator::DEFAULT_LOCATION,
        "properties": {
            "containers": containers,
            "osType": "Linux",
            "restartPolicy": "Never",
        }
    })
}

/// An `azureFile` volume of the emulator's account.
pub fn share_volume(name: &str, share: &str) -> Value {
    json!({
        "name": name,
        "azureFile": {
            "shareName": share,
            "storageAccountName": azure_emulator::DEFAULT_ACCOUNT,
            "storageAccountKey": azure_emulator::DEFAULT_KEY,
        }
    })
}

/// The instance view of container `i`.
pub fn view(group: &Value, i: usize) -> &Value {
    &group["properties"]["containers"][i]["properties"]["instanceView"]
}

/// The group's `instanceView.state`.
pub fn state(group: &Value) -> &str {
    group["properties"]["instanceView"]["state"].as_str().unwrap_or("")
}

/// The group's `provisioningState`.
pub fn provisioning(group: &Value) -> &str {
    group["properties"]["provisioningState"].as_str().unwrap_or("")
}

/// The JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}
