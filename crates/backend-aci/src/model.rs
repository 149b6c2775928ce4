//! The container group resource of the ACI management API (2023-05-01), as much of
//! it as the backend writes or reads. Unknown fields in responses are ignored, and
//! every field the backend does not need is optional, so that newer API versions
//! and the official examples read without error.
//!
//! The secrets a request carries (`secureValue`s, storage account keys, registry
//! passwords) never show in `Debug` output: those fields print `[redacted]`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What `Debug` prints in place of a secret value.
const REDACTED: &str = "[redacted]";

/// A container group: the request body of a PUT and the body of a GET.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerGroup {
    /// The resource id (responses only).
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    /// The group's name (responses only).
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    /// The Azure region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Resource tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// The group itself.
    pub properties: GroupProperties,
}

/// `properties` of a container group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    /// `Pending`, `Creating`, `Succeeded`, `Failed`, ... (responses only).
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
    /// The containers.
    pub containers: Vec<Container>,
    /// Private registry logins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_registry_credentials: Vec<RegistryCredential>,
    /// `Always`, `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// `Linux` or `Windows`.
    #[serde(default)]
    pub os_type: String,
    /// Volumes the containers may mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// `Standard`, `Dedicated` or `Confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// `Regular` or `Spot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The group's state and events (responses only).
    #[serde(default, skip_serializing)]
    pub instance_view: Option<GroupInstanceView>,
}

/// One container of a group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Container {
    /// The container's name.
    pub name: String,
    /// Its definition and state.
    pub properties: ContainerProperties,
}

/// `properties` of a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProperties {
    /// The image reference.
    pub image: String,
    /// The command, replacing the image's entrypoint (argv, never a shell string).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// Requested resources.
    pub resources: ResourceRequirements,
    /// Volumes mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// The container's state and events (responses only).
    #[serde(default, skip_serializing)]
    pub instance_view: Option<ContainerInstanceView>,
}

/// An environment variable; a secret one has `secureValue` instead of `value`.
/// `Debug` never shows the secure value.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    /// Its name.
    pub name: String,
    /// A plain value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A value ACI never shows again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_value: Option<String>,
}

impl fmt::Debug for EnvironmentVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentVariable")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("secure_value", &self.secure_value.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// `resources` of a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResourceRequirements {
    /// What the container asks for.
    pub requests: ResourceRequests,
}

/// `resources.requests` of a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequests {
    /// Memory in GB.
    #[serde(rename = "memoryInGB")]
    pub memory_in_gb: f64,
    /// CPU cores.
    pub cpu: f64,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuResource>,
}

/// A GPU request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GpuResource {
    /// How many.
    pub count: u32,
    /// `K80`, `P100` or `V100`.
    pub sku: String,
}

/// A volume mounted into a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name.
    pub name: String,
    /// Where it appears in the container.
    pub mount_path: String,
    /// Mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A volume of the group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Its name within the group.
    pub name: String,
    /// An Azure File share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_file: Option<AzureFileVolume>,
}

/// An Azure File share as a volume. `Debug` never shows the account key.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureFileVolume {
    /// The share.
    pub share_name: String,
    /// Mounted read-only in every container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The storage account.
    pub storage_account_name: String,
    /// The account key (requests only; never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_account_key: Option<String>,
}

impl fmt::Debug for AzureFileVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureFileVolume")
            .field("share_name", &self.share_name)
            .field("read_only", &self.read_only)
            .field("storage_account_name", &self.storage_account_name)
            .field("storage_account_key", &self.storage_account_key.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// A private registry login. `Debug` never shows the password.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RegistryCredential {
    /// The registry host.
    pub server: String,
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// The password (requests only; never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// The group's instance view.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupInstanceView {
    /// Events about the group (mounts, evictions...).
    #[serde(default)]
    pub events: Vec<Event>,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Stopped`...
    #[serde(default)]
    pub state: Option<String>,
}

/// A container's instance view.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceView {
    /// Restarts so far.
    #[serde(default)]
    pub restart_count: Option<u32>,
    /// The current state.
    #[serde(default)]
    pub current_state: Option<ContainerState>,
    /// The state before.
    #[serde(default)]
    pub previous_state: Option<ContainerState>,
    /// Events (pulling, pulled, started, failed...).
    #[serde(default)]
    pub events: Vec<Event>,
}

/// A container state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// `Waiting`, `Running` or `Terminated`.
    #[serde(default)]
    pub state: Option<String>,
    /// When it started.
    #[serde(default)]
    pub start_time: Option<String>,
    /// The exit code, once terminated.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// When it finished.
    #[serde(default)]
    pub finish_time: Option<String>,
    /// `Completed`, `Error`, `Killed`, `ErrImagePull`...
    #[serde(default)]
    pub detail_status: Option<String>,
}

/// An event of the instance view.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// How often it happened.
    #[serde(default)]
    pub count: Option<u32>,
    /// Its name: `Pulling`, `Failed`, `Started`, `Killing`...
    #[serde(default)]
    pub name: Option<String>,
    /// Its text.
    #[serde(default)]
    pub message: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A page of a container group listing.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupList {
    /// The groups.
    #[serde(default)]
    pub value: Vec<ContainerGroup>,
    /// The next page, if any.
    #[serde(default)]
    pub next_link: Option<String>,
}

/// The answer of the container logs API.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Logs {
    /// The log text.
    #[serde(default)]
    pub content: Option<String>,
}

/// The answer of the usages API (`GET …/locations/{location}/usages`): how much of
/// each Container Instances quota of a region is used.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UsageList {
    /// One entry per quota.
    #[serde(default)]
    pub value: Vec<Usage>,
}

/// The use of one quota.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The usage's resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// What is counted, e.g. `Count`.
    #[serde(default)]
    pub unit: Option<String>,
    /// How much is used now.
    #[serde(default)]
    pub current_value: Option<i64>,
    /// The quota.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Which quota, e.g. `ContainerGroups` or `StandardCores`.
    #[serde(default)]
    pub name: Option<UsageName>,
}

/// The name of a quota.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    /// The name as code reads it, e.g. `ContainerGroups`.
    #[serde(default)]
    pub value: Option<String>,
    /// The name as people read it, e.g. `Container Groups`.
    #[serde(default)]
    pub localized_value: Option<String>,
}

/// An ARM error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// The error.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The error of an ARM error body.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorDetail {
    /// The code, e.g. `ContainerGroupQuotaReached`.
    #[serde(default)]
    pub code: Option<String>,
    /// The text.
    #[serde(default)]
    pub message: Option<String>,
}
