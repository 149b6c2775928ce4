//! Credentials for Azure Resource Manager: the `azure_creds` file of the Python ACI
//! worker's deployment (`az ad sp create-for-rbac --sdk-auth` JSON), or a managed
//! identity.

use std::path::Path;
use std::sync::Arc;

use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use compute::Secret;
use serde::Deserialize;

/// A credential that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an `--sdk-auth` JSON document (its contents are never shown).
    #[error("{path} is not an Azure SDK auth file: {detail}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, without values.
        detail: String,
    },
    /// The CA file could not be used.
    #[error("CA certificate file {path}: {detail}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// azure_identity refused the settings.
    #[error("credential: {0}")]
    Identity(String),
}

/// The fields of an `az ad sp create-for-rbac --sdk-auth` file that the worker uses.
/// The endpoint URLs select the cloud (or point at the emulator).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkAuth {
    /// The service principal's application id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// The subscription the worker creates container groups in.
    pub subscription_id: String,
    /// The Entra ID tenant.
    pub tenant_id: String,
    /// The token authority, e.g. `https://login.microsoftonline.com`.
    #[serde(default = "default_authority")]
    pub active_directory_endpoint_url: String,
    /// ARM, e.g. `https://management.azure.com/`.
    #[serde(default = "default_arm")]
    pub resource_manager_endpoint_url: String,
}

impl std::fmt::Debug for SdkAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkAuth")
            .field("client_id", &self.client_id)
            .field("subscription_id", &self.subscription_id)
            .field("tenant_id", &self.tenant_id)
            .field("active_directory_endpoint_url", &self.active_directory_endpoint_url)
            .field("resource_manager_endpoint_url", &self.resource_manager_endpoint_url)
            .finish_non_exhaustive()
    }
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".to_owned()
}

fn default_arm() -> String {
    "https://management.azure.com/".to_owned()
}

impl SdkAuth {
    /// Reads the file `AZURE_AUTH_LOCATION` names.
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| CredentialError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses the JSON text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CredentialError> {
        // serde_json's messages quote the offending value, which may be the secret:
        // report the position and which field is missing only.
        let auth: SdkAuth = serde_json::from_str(text).map_err(|e| {
            let detail = if e.is_data() {
                let msg = e.to_string();
                match msg.split('`').nth(1) {
                    Some(field) if msg.starts_with("missing field") => {
                        format!("the field {field:?} is missing")
                    }
                    _ => format!(
                        "a field has the wrong type (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                }
            } else {
                format!("not valid JSON (line {}, column {})", e.line(), e.column())
            };
            CredentialError::Format { path: origin.to_owned(), detail }
        })?;
        for (name, value) in [
            ("clientId", &auth.client_id),
            ("subscriptionId", &auth.subscription_id),
            ("tenantId", &auth.tenant_id),
        ] {
            if value.trim().is_empty() {
                return Err(CredentialError::Format {
                    path: origin.to_owned(),
                    detail: format!("{name} is empty"),
                });
            }
        }
        if auth.client_secret.expose().is_empty() {
            return Err(CredentialError::Format {
                path: origin.to_owned(),
                detail: "clientSecret is empty".to_owned(),
            });
        }
        for (name, url) in [
            ("activeDirectoryEndpointUrl", &auth.active_directory_endpoint_url),
            ("resourceManagerEndpointUrl", &auth.resource_manager_endpoint_url),
        ] {
            if !url.starts_with("https://") {
                return Err(CredentialError::Format {
                    path: origin.to_owned(),
                    detail: format!("{name} must be an https:// URL"),
                });
            }
        }
        Ok(auth)
    }

    /// A token credential for this service principal.
    pub fn credential(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<dyn TokenCredential>, CredentialError> {
        let mut cloud = azure_core::cloud::CustomConfiguration::default();
        cloud.authority_host = self.active_directory_endpoint_url.trim_end_matches('/').to_owned();
        let options = azure_identity::ClientSecretCredentialOptions {
            client_options: client_options(http, Some(cloud.into())),
        };
        let credential = azure_identity::ClientSecretCredential::new(
            &self.tenant_id,
            self.client_id.clone(),
            AzureSecret::new(self.client_secret.expose().to_owned()),
            Some(options),
        )
        .map_err(|e| CredentialError::Identity(e.to_string()))?;
        Ok(credential)
    }
}

/// A managed identity (system-assigned, or the user-assigned one with `client_id`).
pub fn managed_identity(
    client_id: Option<String>,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let options = azure_identity::ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(azure_identity::UserAssignedId::ClientId),
        client_options: client_options(http, None),
    };
    let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
        .map_err(|e| CredentialError::Identity(e.to_string()))?;
    Ok(credential)
}

fn client_options(
    http: &reqwest::Client,
    cloud: Option<azure_core::cloud::CloudConfiguration>,
) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: cloud.map(Arc::new),
        ..Default::default()
    }
}

/// The HTTP client for ARM and tokens: rustls with the system's roots, plus the
/// certificates in `extra_ca` (a PEM file) when given, e.g. the emulator's.
pub fn http_client(extra_ca: Option<&Path>) -> Result<reqwest::Client, CredentialError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60));
    if let Some(path) = extra_ca {
        let shown = path.display().to_string();
        let pem = std::fs::read(path)
            .map_err(|e| CredentialError::Ca { path: shown.clone(), detail: e.to_string() })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| CredentialError::Ca { path: shown.clone(), detail: e.to_string() })?;
        if certs.is_empty() {
            return Err(CredentialError::Ca { path: shown, detail: "no certificate in it".into() });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| CredentialError::Identity(format!("HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "clientId": "00000000-0000-0000-0000-000000000001",
      "clientSecret": "very-secret-value",
      "subscriptionId": "00000000-0000-0000-0000-000000000002",
      "tenantId": "00000000-0000-0000-0000-000000000003",
      "activeDirectoryEndpointUrl": "https://login.microsoftonline.com",
      "resourceManagerEndpointUrl": "https://management.azure.com/",
      "activeDirectoryGraphResourceId": "https://graph.windows.net/",
      "sqlManagementEndpointUrl": "https://management.core.windows.net:8443/",
      "galleryEndpointUrl": "https://gallery.azure.com/",
      "managementEndpointUrl": "https://management.core.windows.net/"
    }"#;

    #[test]
    fn reads_an_sdk_auth_file_and_hides_the_secret() {
        let auth = SdkAuth::parse(FILE, "azure_creds").unwrap();
        assert_eq!(auth.tenant_id, "00000000-0000-0000-0000-000000000003");
        assert!(!format!("{auth:?}").contains("very-secret-value"));
    }

    #[test]
    fn bad_files_say_what_is_wrong_without_values() {
        let missing = FILE.replace("\"tenantId\"", "\"tenant\"");
        let err = SdkAuth::parse(&missing, "azure_creds").unwrap_err().to_string();
        assert!(err.contains("tenantId"), "{err}");
        let wrong_type = FILE.replace("\"very-secret-value\"", "[\"very-secret-value\"]");
        let err = SdkAuth::parse(&wrong_type, "azure_creds").unwrap_err().to_string();
        assert!(!err.contains("very-secret-value"), "{err}");
        let plain = FILE.replace("https://management.azure.com/", "http://x/");
        let err = SdkAuth::parse(&plain, "azure_creds").unwrap_err().to_string();
        assert!(err.contains("resourceManagerEndpointUrl"), "{err}");
        let err = SdkAuth::parse("{", "azure_creds").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
