//! A container group as a PUT describes it: parsed and checked the way ACI checks it
//! before it accepts the request, and turned into the [`JobSpec`] that runs it. Also
//! the redaction of what ACI never shows again (secure values and keys).

use std::collections::BTreeSet;
use std::path::Path;

use compute::{
    ContainerName, ContainerPath, ContainerSpec, EnvVar, ImageRef, JobId, JobSpec, Mount,
    RegistryCredentials, Resources, WorkspacePath,
};
use serde_json::{Map, Value};

use super::error::{ArmError, Result};
use crate::files::FilesService;

/// 1 GB in `memoryInGB` is a GiB, as in ACI's billing and limits.
const GIB: f64 = (1u64 << 30) as f64;

/// A checked container group.
#[derive(Clone, Debug)]
pub(crate) struct GroupSpec {
    pub(crate) location: String,
    pub(crate) containers: Vec<ContainerDef>,
    pub(crate) registries: Vec<RegistryCredentials>,
    /// `priority: Spot`.
    pub(crate) spot: bool,
}

/// A checked container.
#[derive(Clone, Debug)]
pub(crate) struct ContainerDef {
    pub(crate) name: String,
    pub(crate) image: ImageRef,
    /// The image as written in the request (what events quote).
    pub(crate) image_text: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: Vec<EnvVar>,
    pub(crate) cpu: f64,
    pub(crate) memory_gb: f64,
    pub(crate) mounts: Vec<MountDef>,
}

/// A volume mount of an `azureFile` volume.
#[derive(Clone, Debug)]
pub(crate) struct MountDef {
    pub(crate) share: String,
    pub(crate) target: ContainerPath,
    pub(crate) read_only: bool,
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: ACI's rule for container
/// group and container names.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && b.iter().all(|&c| edge(c) || c == b'-')
        && edge(b[0])
        && edge(b[b.len() - 1])
}

fn name_rule(what: &str, name: &str) -> String {
    format!(
        "The {what} name '{name}' is invalid. The {what} name must contain no more than 63 \
         characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name')."
    )
}

/// Checks the group name alone (before anything else is looked at).
pub(crate) fn check_group_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ArmError::bad_request("InvalidContainerGroupName", name_rule("container group", name)))
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| ArmError::invalid_content(format!("{path} must be an object")))
}

fn opt_str<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ArmError::invalid_content(format!("{path}.{key} must be a string"))),
    }
}

fn opt_array<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value]> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ArmError::invalid_content(format!("{path}.{key} must be an array"))),
    }
}

fn opt_bool(map: &Map<String, Value>, key: &str, path: &str) -> Result<bool> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ArmError::invalid_content(format!("{path}.{key} must be a boolean"))),
    }
}

/// Parses and checks a PUT body for group `name` the way ACI does before it accepts
/// it. `files` answers whether `azureFile` volumes name a share that exists, with
/// the account's name and key.
pub(crate) fn parse(name: &str, body: &Value, files: &FilesService) -> Result<GroupSpec> {
    check_group_name(name)?;
    let root = object(body, "the body")?;
    let location = match opt_str(root, "location", "")? {
        Some(l) if !l.trim().is_empty() => l.to_owned(),
        _ => {
            return Err(ArmError::bad_request(
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
    };
    let props = match root.get("properties") {
        Some(p) => object(p, "properties")?,
        None => return Err(ArmError::invalid_content("properties is required")),
    };

    match opt_str(props, "osType", "properties")? {
        Some("Linux") => {}
        Some("Windows") => {
            return Err(ArmError::bad_request(
                "UnsupportedOsType",
                "The emulator runs Linux container groups only ('osType' 'Windows' is not \
                 supported).",
            ));
        }
        other => {
            return Err(ArmError::bad_request(
                "InvalidOsType",
                format!(
                    "The 'osType' of container group '{name}' must be one of 'Linux,Windows'; \
                     got {}.",
                    other.map_or("nothing".to_owned(), |o| format!("'{o}'"))
                ),
            ));
        }
    }
    if let Some(policy) = opt_str(props, "restartPolicy", "properties")?
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        return Err(ArmError::bad_request(
            "InvalidRestartPolicy",
            format!(
                "The restart policy '{policy}' of container group '{name}' is invalid; it must \
                 be one of 'Always,OnFailure,Never'."
            ),
        ));
    }
    let spot = match opt_str(props, "priority", "properties")? {
        None | Some("Regular") => false,
        Some("Spot") => true,
        Some(_) => {
            return Err(ArmError::bad_request(
                "PriorityNotSpecified",
                format!(
                    "The 'Priority' must be one of 'Regular,Spot' for container group '{name}'."
                ),
            ));
        }
    };
    if spot {
        if let Some(sku) = opt_str(props, "sku", "properties")?
            && sku != "Standard"
        {
            return Err(ArmError::bad_request(
                "SpotPriorityContainerGroupNotSupportedInSku",
                format!("Spot Priority Container Group is not supported in '{sku}' Sku."),
            ));
        }
        if props.get("ipAddress").is_some_and(|v| !v.is_null()) {
            return Err(ArmError::bad_request(
                "SpotPriorityContainerGroupNotSupportedForInboundConnectivity",
                "Spot Priority is not supported for container groups with inbound connectivity.",
            ));
        }
    }

    let volumes = parse_volumes(props, files)?;
    let registries = parse_registries(props)?;

    let containers = opt_array(props, "containers", "properties")?;
    if containers.is_empty() {
        return Err(ArmError::bad_request(
            "MissingContainers",
            format!("The container group '{name}' must have at least one container."),
        ));
    }
    let mut names = BTreeSet::new();
    let mut defs = Vec::with_capacity(containers.len());
    for (i, container) in containers.iter().enumerate() {
        let def = parse_container(i, container, &volumes, spot)?;
        if !names.insert(def.name.clone()) {
            return Err(ArmError::bad_request(
                "DuplicateContainerName",
                format!(
                    "The container name '{}' is used more than once in container group '{name}'.",
                    def.name
                ),
            ));
        }
        defs.push(def);
    }
    if !opt_array(props, "initContainers", "properties")?.is_empty() {
        return Err(ArmError::bad_request(
            "InitContainersNotSupported",
            "The emulator does not run init containers.",
        ));
    }
    Ok(GroupSpec { location, containers: defs, registries, spot })
}

/// An `azureFile` volume: its name and share.
struct VolumeDef {
    name: String,
    share: String,
    read_only: bool,
}

fn parse_volumes(props: &Map<String, Value>, files: &FilesService) -> Result<Vec<VolumeDef>> {
    let mut volumes: Vec<VolumeDef> = Vec::new();
    for (i, volume) in opt_array(props, "volumes", "properties")?.iter().enumerate() {
        let path = format!("properties.volumes[{i}]");
        let volume = object(volume, &path)?;
        let Some(name) = opt_str(volume, "name", &path)? else {
            return Err(ArmError::invalid_content(format!("{path}.name is required")));
        };
        if volumes.iter().any(|v| v.name == name) {
            return Err(ArmError::bad_request(
                "DuplicateVolumeName",
                format!("The volume name '{name}' is used more than once."),
            ));
        }
        let Some(azure_file) = volume.get("azureFile").filter(|v| !v.is_null()) else {
            return Err(ArmError::bad_request(
                "UnsupportedVolumeType",
                format!(
                    "The volume '{name}' is not an 'azureFile' volume; the emulator supports \
                     only Azure File volumes."
                ),
            ));
        };
        let path = format!("{path}.azureFile");
        let azure_file = object(azure_file, &path)?;
        let (Some(share), Some(account)) = (
            opt_str(azure_file, "shareName", &path)?,
            opt_str(azure_file, "storageAccountName", &path)?,
        ) else {
            return Err(ArmError::invalid_content(format!(
                "{path}.shareName and {path}.storageAccountName are required"
            )));
        };
        let key = opt_str(azure_file, "storageAccountKey", &path)?.unwrap_or("");
        if account != files.account() || !files.key_matches(key) {
            return Err(ArmError::bad_request(
                "InvalidStorageAccountCredentials",
                format!(
                    "The storage account name or key of volume '{name}' is not valid: the \
                     emulator's account is '{}' and the key must be its key.",
                    files.account()
                ),
            ));
        }
        if !files.share_exists(share) {
            return Err(ArmError::bad_request(
                "AzureFileShareNotFound",
                format!(
                    "The Azure File share '{share}' of volume '{name}' does not exist in storage \
                     account '{account}'."
                ),
            ));
        }
        volumes.push(VolumeDef {
            name: name.to_owned(),
            share: share.to_owned(),
            read_only: opt_bool(azure_file, "readOnly", &path)?,
        });
    }
    Ok(volumes)
}

fn parse_registries(props: &Map<String, Value>) -> Result<Vec<RegistryCredentials>> {
    let mut out = Vec::new();
    for (i, cred) in opt_array(props, "imageRegistryCredentials", "properties")?.iter().enumerate()
    {
        let path = format!("properties.imageRegistryCredentials[{i}]");
        let cred = object(cred, &path)?;
        let server = opt_str(cred, "server", &path)?.unwrap_or("");
        let username = opt_str(cred, "username", &path)?.unwrap_or("");
        let password = opt_str(cred, "password", &path)?.unwrap_or("");
        if server.is_empty() || username.is_empty() || password.is_empty() {
            return Err(ArmError::bad_request(
                "InvalidImageRegistryCredential",
                format!(
                    "The image registry credential {i} must have a 'server', a 'username' and a \
                     'password' (managed identities are not supported by the emulator)."
                ),
            ));
        }
        out.push(RegistryCredentials {
            server: server.to_owned(),
            username: username.to_owned(),
            password: password.into(),
        });
    }
    Ok(out)
}

fn parse_container(
    index: usize,
    container: &Value,
    volumes: &[VolumeDef],
    spot: bool,
) -> Result<ContainerDef> {
    let path = format!("properties.containers[{index}]");
    let container = object(container, &path)?;
    let name = opt_str(container, "name", &path)?.unwrap_or("");
    if !valid_name(name) {
        return Err(ArmError::bad_request("InvalidContainerName", name_rule("container", name)));
    }
    let Some(props) = container.get("properties") else {
        return Err(ArmError::invalid_content(format!("{path}.properties is required")));
    };
    let path = format!("{path}.properties");
    let props = object(props, &path)?;

    let image_text = opt_str(props, "image", &path)?.unwrap_or("").trim().to_owned();
    if image_text.is_empty() {
        return Err(ArmError::bad_request(
            "MissingContainerImage",
            format!("The container '{name}' must have an image."),
        ));
    }
    let image = ImageRef::parse(&image_text).map_err(|e| {
        ArmError::bad_request(
            "InvalidContainerImage",
            format!("The image '{image_text}' of container '{name}' is not valid: {e}."),
        )
    })?;

    let mut command = Vec::new();
    for arg in opt_array(props, "command", &path)? {
        match arg.as_str() {
            Some(arg) if !arg.contains('\0') => command.push(arg.to_owned()),
            _ => {
                return Err(ArmError::invalid_content(format!(
                    "{path}.command holds a non-string"
                )));
            }
        }
    }

    let (cpu, memory_gb, gpu) = parse_requests(name, props, &path)?;
    if spot && gpu {
        return Err(ArmError::bad_request(
            "SpotPriorityContainerGroupWithGPUResourcesNotSupported",
            "Spot Priority Container Groups that include containers requesting GPU resources \
             are not supported.",
        ));
    }

    let mut env = Vec::new();
    let mut env_names = BTreeSet::new();
    for (i, var) in opt_array(props, "environmentVariables", &path)?.iter().enumerate() {
        let var_path = format!("{path}.environmentVariables[{i}]");
        let var = object(var, &var_path)?;
        let var_name = opt_str(var, "name", &var_path)?.unwrap_or("");
        if var_name.is_empty() || var_name.contains(['=', '\0']) || !env_names.insert(var_name) {
            return Err(ArmError::bad_request(
                "InvalidEnvironmentVariable",
                format!(
                    "The environment variable name '{var_name}' of container '{name}' is empty, \
                     invalid or used twice."
                ),
            ));
        }
        env.push(match opt_str(var, "secureValue", &var_path)? {
            Some(secret) => EnvVar::secret(var_name, secret),
            None => EnvVar::plain(var_name, opt_str(var, "value", &var_path)?.unwrap_or("")),
        });
    }

    let mut mounts: Vec<MountDef> = Vec::new();
    for (i, mount) in opt_array(props, "volumeMounts", &path)?.iter().enumerate() {
        let mount_path = format!("{path}.volumeMounts[{i}]");
        let mount = object(mount, &mount_path)?;
        let volume_name = opt_str(mount, "name", &mount_path)?.unwrap_or("");
        let Some(volume) = volumes.iter().find(|v| v.name == volume_name) else {
            return Err(ArmError::bad_request(
                "InvalidVolumeMount",
                format!(
                    "The volume mount '{volume_name}' of container '{name}' names no volume of \
                     the container group."
                ),
            ));
        };
        let target = opt_str(mount, "mountPath", &mount_path)?.unwrap_or("");
        let target = ContainerPath::new(target).map_err(|e| {
            ArmError::bad_request(
                "InvalidVolumeMount",
                format!("The mount path of volume mount '{volume_name}' is not valid: {e}."),
            )
        })?;
        if mounts.iter().any(|m| m.target == target) {
            return Err(ArmError::bad_request(
                "InvalidVolumeMount",
                format!("Container '{name}' mounts two volumes at '{target}'."),
            ));
        }
        mounts.push(MountDef {
            share: volume.share.clone(),
            target,
            read_only: volume.read_only || opt_bool(mount, "readOnly", &mount_path)?,
        });
    }

    Ok(ContainerDef {
        name: name.to_owned(),
        image,
        image_text,
        command,
        env,
        cpu,
        memory_gb,
        mounts,
    })
}

/// `resources.requests`: CPU and memory (required, positive) and whether a GPU is
/// asked for (count at least 1).
fn parse_requests(name: &str, props: &Map<String, Value>, path: &str) -> Result<(f64, f64, bool)> {
    let invalid = |what: &str| {
        ArmError::bad_request(
            "InvalidResourceRequests",
            format!(
                "The container '{name}' must request {what} in 'resources.requests' (a number \
                 greater than zero)."
            ),
        )
    };
    let requests = props
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("'cpu' and 'memoryInGB'"))?;
    let positive = |key: &str| requests.get(key).and_then(Value::as_f64).filter(|v| *v > 0.0);
    let cpu = positive("cpu").ok_or_else(|| invalid("'cpu'"))?;
    let memory = positive("memoryInGB").ok_or_else(|| invalid("'memoryInGB'"))?;
    let gpu = match requests.get("gpu") {
        None | Some(Value::Null) => false,
        Some(gpu) => match gpu.get("count").and_then(Value::as_u64) {
            Some(count) if count >= 1 => true,
            _ => {
                return Err(ArmError::invalid_content(format!(
                    "{path}.resources.requests.gpu.count must be at least 1"
                )));
            }
        },
    };
    Ok((cpu, memory, gpu))
}

/// Everything the job needs beyond the spec.
pub(crate) struct JobPlace<'a> {
    pub(crate) id: JobId,
    /// The emulator's data directory, the job's workspace: shares are under
    /// `shares/`, logs under `log_dir`.
    pub(crate) workspace: &'a Path,
    /// `arm/logs/<uid>`, relative to the workspace.
    pub(crate) log_dir: &'a str,
    /// CPUs of this machine: requests are capped there (Docker refuses more).
    pub(crate) host_cpus: f64,
}

/// The job that runs a group on Docker: one container per ACI container, each
/// `azureFile` mount a bind mount of the share's directory, stdout and stderr to
/// `<log_dir>/<index>.stdout` and `.stderr`, no network. Container names are the
/// ACI names when the Docker backend accepts them all (at most 40 characters), else
/// `c0`, `c1`, ... (in the order of the spec either way).
pub(crate) fn job(spec: &GroupSpec, place: JobPlace<'_>) -> Result<JobSpec> {
    let internal = |what: String| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The emulator cannot run it: {what}"),
        )
    };
    let own_names: Option<Vec<ContainerName>> =
        spec.containers.iter().map(|c| ContainerName::new(c.name.clone()).ok()).collect();
    let mut job = JobSpec::new(place.id, place.workspace);
    job.network = false;
    job.registry = spec
        .registries
        .iter()
        .find(|r| spec.containers.iter().any(|c| same_registry(&r.server, &c.image)))
        .cloned();
    for (i, c) in spec.containers.iter().enumerate() {
        let name = match &own_names {
            Some(names) => names[i].clone(),
            None => ContainerName::new(format!("c{i}")).map_err(|e| internal(e.to_string()))?,
        };
        let mut container = ContainerSpec::new(name, c.image.clone(), c.command.clone());
        container.env = c.env.clone();
        container.resources = Resources {
            cpus: Some(c.cpu.min(place.host_cpus)),
            memory_bytes: Some((c.memory_gb * GIB) as u64),
            // Requests for GPUs are checked and shown, but the containers run without:
            // test machines have none.
            gpu: None,
        };
        for m in &c.mounts {
            let source = WorkspacePath::new(format!("shares/{}", m.share))
                .map_err(|e| internal(e.to_string()))?;
            container.mounts.push(Mount {
                source,
                target: m.target.clone(),
                read_only: m.read_only,
            });
        }
        let log = |ext: &str| {
            WorkspacePath::new(format!("{}/{i}.{ext}", place.log_dir))
                .map_err(|e| internal(e.to_string()))
        };
        container.stdout = Some(log("stdout")?);
        container.stderr = Some(log("stderr")?);
        job.containers.push(container);
    }
    job.validate().map_err(|e| internal(e.to_string()))?;
    Ok(job)
}

/// Whether registry credentials for `server` (a host, or a URL) are for `image`.
fn same_registry(server: &str, image: &ImageRef) -> bool {
    let host = server.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.trim_end_matches('/');
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => compute::DEFAULT_REGISTRY,
        host => host,
    };
    host == image.registry()
}

/// The request body as GET shows it: secure environment values, storage account
/// keys, registry passwords, secret volume contents and Log Analytics keys removed,
/// read-only properties a client may have sent dropped.
pub(crate) fn redacted(body: &Value) -> Map<String, Value> {
    let mut root = body.as_object().cloned().unwrap_or_default();
    for key in ["id", "name", "type"] {
        root.remove(key);
    }
    let Some(Value::Object(props)) = root.get_mut("properties") else { return root };
    for key in ["provisioningState", "instanceView"] {
        props.remove(key);
    }
    for list in ["containers", "initContainers"] {
        for container in array_mut(props, list) {
            let Some(Value::Object(cp)) = container.get_mut("properties") else { continue };
            cp.remove("instanceView");
            for var in array_mut(cp, "environmentVariables") {
                if let Value::Object(var) = var {
                    var.remove("secureValue");
                }
            }
        }
    }
    for volume in array_mut(props, "volumes") {
        let Value::Object(volume) = volume else { continue };
        if let Some(Value::Object(azure_file)) = volume.get_mut("azureFile") {
            azure_file.remove("storageAccountKey");
        }
        if let Some(secret) = volume.get_mut("secret") {
            *secret = Value::Object(Map::new());
        }
    }
    for cred in array_mut(props, "imageRegistryCredentials") {
        if let Value::Object(cred) = cred {
            cred.remove("password");
        }
    }
    if let Some(Value::Object(log_analytics)) =
        props.get_mut("diagnostics").and_then(|d| d.get_mut("logAnalytics"))
    {
        log_analytics.remove("workspaceKey");
    }
    root
}

fn array_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> std::slice::IterMut<'a, Value> {
    match map.get_mut(key) {
        Some(Value::Array(items)) => items.iter_mut(),
        _ => [].iter_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_aci_rules() {
        for ok in ["a", "job-1", "a--b", &"x".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let body = json!({
            "location": "westeurope",
            "properties": {
                "containers": [{"name": "c", "properties": {
                    "image": "busybox",
                    "environmentVariables": [
                        {"name": "PLAIN", "value": "shown"},
                        {"name": "SECRET", "secureValue": "hunter2"}
                    ],
                    "instanceView": {"restartCount": 9}
                }}],
                "volumes": [
                    {"name": "v", "azureFile": {"shareName": "s", "storageAccountName": "a",
                        "storageAccountKey": "hunter2"}},
                    {"name": "w", "secret": {"f": "aHVudGVyMg=="}}
                ],
                "imageRegistryCredentials": [{"server": "r", "username": "u", "password": "hunter2"}],
                "diagnostics": {"logAnalytics": {"workspaceId": "w", "workspaceKey": "hunter2"}},
                "provisioningState": "Succeeded"
            }
        });
        let shown = Value::Object(redacted(&body)).to_string();
        assert!(!shown.contains("hunter2") && !shown.contains("aHVudGVyMg"), "{shown}");
        assert!(shown.contains("\"PLAIN\"") && shown.contains("\"SECRET\""));
        assert!(shown.contains("shown"));
        assert!(!shown.contains("restartCount") && !shown.contains("provisioningState"));
    }
}
