//! From a `JobSpec` to volumes on Azure Files and a container group body.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use afs_staging::{Download, RemotePath, Stager, Upload, VolumeName};
use compute::{ContainerSpec, EnvValue, Error, JobSpec, WorkspacePath};

use crate::model::{
    AzureFileVolume, Container, ContainerGroup, ContainerProperties, EnvironmentVariable,
    GpuResource, GroupProperties, RegistryCredential, ResourceRequests, ResourceRequirements,
    Volume, VolumeMount,
};
use crate::{AciConfig, Priority};

/// Where the shell wrapper writes a container's stdout and stderr, in the container.
pub(crate) const IO_MOUNT: &str = "/aci-worker-io";
/// Where the one share of mounted mode appears in every container.
pub(crate) const SHARE_MOUNT: &str = "/aci-worker-share";
/// The ACI volume name of mounted mode's share.
const SHARE_VOLUME: &str = "share";
/// The volumes for captured output, one per container: `logs0`, `logs1`, ... (by
/// the container's index). A share name is `<job>-<volume>`: with the longest job
/// id (50) and volume name (12), 63 characters, Azure's limit.
const LOGS_VOLUME: &str = "logs";

/// The shell wrapper: changes to the working directory, links mounted-mode folders
/// into place, and runs argv with stdout and stderr going to files on a share. Its
/// parameters arrive as positional arguments, never spliced into the script:
/// `STDOUT STDERR WORKDIR NLINKS [SOURCE TARGET]... ARGV...`.
///
/// A program name starting with `-` must not be read as an option of `exec`: bash
/// takes `-a NAME`, `-c` and `-l` there and busybox ash takes `-a NAME`, and
/// `exec -- "$@"` is no way out, since dash (Debian's `/bin/sh`) runs a program
/// named `--` instead. Such an argv is run as a plain command, whose first word is
/// always the program, with the same `PATH` lookup; the shell then waits for it and
/// exits with its status. Every other argv is `exec`ed, so that the program is the
/// container's main process.
pub(crate) const WRAPPER: &str = r#"o=$1 e=$2 w=$3 n=$4
shift 4
while [ "$n" -gt 0 ]; do
  mkdir -p "$2" && rmdir "$2" && ln -s "$1" "$2" || exit 125
  shift 2
  n=$((n - 1))
done
if [ -n "$w" ]; then cd "$w" || exit 125; fi
case $1 in
  -*) "$@" >"$o" 2>"$e"; exit ;;
esac
exec "$@" >"$o" 2>"$e""#;

/// The shell the wrapper needs in the image.
pub(crate) const SHELL: &str = "/bin/sh";

/// A workspace folder that becomes one volume.
#[derive(Clone, Debug)]
pub(crate) struct PlanVolume {
    pub name: VolumeName,
    pub source: WorkspacePath,
    /// Some container may write to it: bring it back after the run.
    pub writable: bool,
}

/// Output captured by the wrapper: a file in its container's logs volume and where
/// it goes.
#[derive(Clone, Debug)]
pub(crate) struct Capture {
    pub volume: VolumeName,
    pub remote: RemotePath,
    pub local: WorkspacePath,
}

/// How a job maps onto Azure Files.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub volumes: Vec<PlanVolume>,
    /// By container: the volume its wrapper writes captured output to, a share that
    /// container alone mounts (in mounted mode, a folder of the one share). `None`
    /// for a container that captures nothing, or starts without the wrapper.
    pub logs: Vec<Option<VolumeName>>,
    pub captures: Vec<Capture>,
    /// Watched files: workspace path, and where they are on the shares.
    pub watches: Vec<(WorkspacePath, VolumeName, RemotePath)>,
    /// Whether each container starts under the wrapper: not with an empty argv,
    /// which keeps the image's own entrypoint (the wrapper would replace it).
    pub wrapped: Vec<bool>,
}

impl Plan {
    /// Checks the spec against what ACI can do and names the volumes.
    pub fn new(spec: &JobSpec) -> Result<Plan, Error> {
        let mut sources: BTreeMap<&str, bool> = BTreeMap::new();
        for container in &spec.containers {
            for mount in &container.mounts {
                let writable = sources.entry(mount.source.as_str()).or_insert(false);
                *writable |= !mount.read_only;
            }
        }
        let names: Vec<&str> = sources.keys().copied().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                if b.starts_with(&format!("{a}/")) {
                    return Err(Error::InvalidSpec(format!(
                        "the ACI backend cannot mount {b} and {a}, which holds it: each mounted \
                         folder becomes a file share of its own"
                    )));
                }
            }
        }
        let volumes: Vec<PlanVolume> = sources
            .iter()
            .enumerate()
            .map(|(i, (source, writable))| PlanVolume {
                name: VolumeName::new(format!("v{i}")).expect("short names"),
                source: WorkspacePath::new(*source).expect("checked by the spec"),
                writable: *writable,
            })
            .collect();
        // The one place that says which containers the wrapper starts.
        let wrapped: Vec<bool> = spec.containers.iter().map(|c| !c.argv.is_empty()).collect();
        let mut logs = Vec::new();
        let mut captures = Vec::new();
        for (i, container) in spec.containers.iter().enumerate() {
            let captured = container.stdout.is_some() || container.stderr.is_some();
            if !wrapped[i] || !captured {
                logs.push(None);
                continue;
            }
            let volume = VolumeName::new(format!("{LOGS_VOLUME}{i}")).expect("short names");
            for (stream, local) in [("stdout", &container.stdout), ("stderr", &container.stderr)] {
                if let Some(local) = local {
                    let remote = RemotePath::new(&format!("{}.{stream}", container.name))
                        .expect("container names are valid file names");
                    captures.push(Capture { volume: volume.clone(), remote, local: local.clone() });
                }
            }
            logs.push(Some(volume));
        }
        let mut watches = Vec::new();
        for watched in &spec.watch {
            let found = volumes.iter().find_map(|v| {
                let rest = watched.as_str().strip_prefix(v.source.as_str())?.strip_prefix('/')?;
                Some((v.name.clone(), RemotePath::new(rest).ok()?))
            });
            match found {
                Some((volume, remote)) => watches.push((watched.clone(), volume, remote)),
                None => tracing::warn!(
                    path = %watched,
                    "a watched file outside every mounted folder cannot be followed on ACI"
                ),
            }
        }
        Ok(Plan { volumes, logs, captures, watches, wrapped })
    }

    /// Every volume the run creates.
    pub fn volume_names(&self) -> Vec<VolumeName> {
        let mut names: Vec<VolumeName> = self.volumes.iter().map(|v| v.name.clone()).collect();
        names.extend(self.logs.iter().flatten().cloned());
        names
    }

    /// What to upload before the run.
    pub fn uploads(&self) -> Vec<Upload> {
        self.volumes
            .iter()
            .map(|v| Upload {
                local: v.source.clone(),
                volume: v.name.clone(),
                remote: RemotePath::root(),
            })
            .collect()
    }

    /// What to bring back after the run: writable folders and captured output.
    pub fn downloads(&self) -> Vec<Download> {
        let mut downloads: Vec<Download> = self
            .volumes
            .iter()
            .filter(|v| v.writable)
            .map(|v| Download {
                volume: v.name.clone(),
                remote: RemotePath::root(),
                local: v.source.clone(),
            })
            .collect();
        downloads.extend(self.captures.iter().map(|c| Download {
            volume: c.volume.clone(),
            remote: c.remote.clone(),
            local: c.local.clone(),
        }));
        downloads
    }

    fn volume_of(&self, source: &WorkspacePath) -> &VolumeName {
        &self.volumes.iter().find(|v| &v.source == source).expect("every source has a volume").name
    }

    /// The container group for one attempt. `wrapped[i]` says whether container
    /// `i` runs under the shell wrapper: [`Plan::wrapped`], or a copy of it with
    /// entries turned off (never on), one per container. A Spot group may not hold a container
    /// that requests a GPU (ACI refuses it): a job with one runs as Regular.
    pub fn group(
        &self,
        spec: &JobSpec,
        stager: &Stager,
        config: &AciConfig,
        priority: Priority,
        wrapped: &[bool],
    ) -> Result<ContainerGroup, Error> {
        let key = stager.account_key().ok_or_else(|| {
            Error::InvalidSpec(
                "the ACI backend needs the storage account key to mount file shares".into(),
            )
        })?;
        let account = key.account().to_owned();
        let account_key = key.base64_key();
        let azure_file = |share: String| AzureFileVolume {
            share_name: share,
            read_only: Some(false),
            storage_account_name: account.clone(),
            storage_account_key: Some(account_key.clone()),
        };
        let mounted = stager.is_mounted();
        let mut volumes = Vec::new();
        if mounted {
            // Every volume of the job is a folder of this one share.
            let any = VolumeName::new(SHARE_VOLUME).expect("valid");
            let share = stager.location(&spec.id, &any).share;
            volumes.push(Volume { name: SHARE_VOLUME.into(), azure_file: Some(azure_file(share)) });
        } else {
            for name in self.volume_names() {
                let share = stager.location(&spec.id, &name).share;
                volumes
                    .push(Volume { name: name.to_string(), azure_file: Some(azure_file(share)) });
            }
        }

        let mut containers = Vec::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let wrap = wrapped[i];
            if mounted && !wrap {
                return Err(Error::InvalidSpec(if c.argv.is_empty() {
                    format!(
                        "container {} has an empty argv, which keeps its image's entrypoint: in \
                         mounted mode the backend's {SHELL} wrapper must run first to put the \
                         folders in place, and it cannot run an entrypoint it does not know",
                        c.name
                    )
                } else {
                    format!(
                        "container {} has no {SHELL}; mounted mode needs one to reach its folders",
                        c.name
                    )
                }));
            }
            let logs = self.logs.get(i).and_then(Option::as_ref);
            let mut mounts = Vec::new();
            let mut links: Vec<String> = Vec::new();
            if mounted {
                mounts.push(VolumeMount {
                    name: SHARE_VOLUME.into(),
                    mount_path: SHARE_MOUNT.into(),
                    read_only: Some(false),
                });
                for m in &c.mounts {
                    let location = stager.location(&spec.id, self.volume_of(&m.source));
                    links.push(format!("{SHARE_MOUNT}/{}", location.prefix.as_str()));
                    links.push(m.target.as_str().to_owned());
                }
            } else {
                for m in &c.mounts {
                    mounts.push(VolumeMount {
                        name: self.volume_of(&m.source).to_string(),
                        mount_path: m.target.as_str().to_owned(),
                        read_only: Some(m.read_only),
                    });
                }
                // Its own logs share, which no other container mounts.
                if let Some(logs) = logs.filter(|_| wrap) {
                    mounts.push(VolumeMount {
                        name: logs.to_string(),
                        mount_path: IO_MOUNT.into(),
                        read_only: Some(false),
                    });
                }
            }
            let command = if wrap {
                let io_dir = match logs {
                    Some(logs) if mounted => Some(format!(
                        "{SHARE_MOUNT}/{}",
                        stager.location(&spec.id, logs).prefix.as_str()
                    )),
                    Some(_) => Some(IO_MOUNT.to_owned()),
                    None => None,
                };
                let out = |local: &Option<WorkspacePath>, stream: &str| match (local, &io_dir) {
                    (Some(_), Some(io_dir)) => format!("{io_dir}/{}.{stream}", c.name),
                    _ => "/dev/null".to_owned(),
                };
                let mut command = vec![
                    SHELL.to_owned(),
                    "-c".to_owned(),
                    WRAPPER.to_owned(),
                    "aci-worker".to_owned(),
                    out(&c.stdout, "stdout"),
                    out(&c.stderr, "stderr"),
                    c.workdir.as_ref().map(|w| w.as_str().to_owned()).unwrap_or_default(),
                    (links.len() / 2).to_string(),
                ];
                command.extend(links);
                command.extend(c.argv.iter().cloned());
                command
            } else {
                if c.workdir.is_some() {
                    tracing::warn!(
                        container = %c.name,
                        "without the wrapper the working directory is the image's own"
                    );
                }
                // Empty: no command, so that the image's entrypoint and command run.
                c.argv.clone()
            };
            containers.push(Container {
                name: c.name.to_string(),
                properties: ContainerProperties {
                    image: c.image.to_string(),
                    command,
                    environment_variables: environment(c),
                    resources: ResourceRequirements { requests: requests(c, config) },
                    volume_mounts: mounts,
                    instance_view: None,
                },
            });
        }

        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let tags = BTreeMap::from([
            (crate::TAG_JOB.to_owned(), spec.id.to_string()),
            (crate::TAG_WORKER.to_owned(), config.worker.clone()),
            (crate::TAG_CREATED.to_owned(), created.to_string()),
        ]);
        let registry = spec
            .registry
            .iter()
            .map(|r| RegistryCredential {
                server: r.server.clone(),
                username: r.username.clone(),
                password: Some(r.password.expose().to_owned()),
            })
            .collect();
        let gpu =
            spec.containers.iter().any(|c| c.resources.gpu.as_ref().is_some_and(|g| g.count > 0));
        let priority = if priority == Priority::Spot && gpu {
            tracing::info!(
                job = %spec.id,
                "ACI takes no GPU in a Spot group: running it as Regular"
            );
            Priority::Regular
        } else {
            priority
        };
        Ok(ContainerGroup {
            id: None,
            name: None,
            location: Some(config.location.clone()),
            tags: Some(tags),
            properties: GroupProperties {
                provisioning_state: None,
                containers,
                image_registry_credentials: registry,
                restart_policy: Some("Never".into()),
                os_type: "Linux".into(),
                volumes,
                sku: Some("Standard".into()),
                priority: Some(priority.as_str().into()),
                instance_view: None,
            },
        })
    }
}

fn environment(c: &ContainerSpec) -> Vec<EnvironmentVariable> {
    c.env
        .iter()
        .map(|var| match &var.value {
            EnvValue::Plain(v) => EnvironmentVariable {
                name: var.name.clone(),
                value: Some(v.clone()),
                secure_value: None,
            },
            EnvValue::Secret(s) => EnvironmentVariable {
                name: var.name.clone(),
                value: None,
                secure_value: Some(s.expose().to_owned()),
            },
        })
        .collect()
}

fn requests(c: &ContainerSpec, config: &AciConfig) -> ResourceRequests {
    let cpu = c.resources.cpus.filter(|c| *c > 0.0).unwrap_or(config.default_cpus);
    let memory_in_gb = c
        .resources
        .memory_bytes
        .filter(|m| *m > 0)
        // ACI takes memory in GB with one decimal; round up so the limit is not cut.
        .map(|bytes| (bytes as f64 / f64::from(1u32 << 30) * 10.0).ceil() / 10.0)
        .unwrap_or(config.default_memory_gb);
    let gpu = c.resources.gpu.as_ref().filter(|g| g.count > 0).map(|g| GpuResource {
        count: g.count,
        sku: g.sku.clone().unwrap_or_else(|| config.gpu_sku.clone()),
    });
    ResourceRequests { memory_in_gb, cpu, gpu }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use afs_staging::auth::SharedKey;
    use afs_staging::{ClientConfig, Credential, FileClient, StagingConfig};
    use compute::{ContainerName, EnvVar, Gpu, ImageRef, JobId, Mount, RegistryCredentials};

    use super::*;

    /// Secret values the group carries, each unlike anything else in it.
    const ENV_SECRET: &str = "env-secret-0b9e4c";
    const REGISTRY_PASSWORD: &str = "registry-password-77f1d2";
    /// Base64 of "storage-account-key-3a5f".
    const ACCOUNT_KEY: &str = "c3RvcmFnZS1hY2NvdW50LWtleS0zYTVm";

    fn stager() -> Stager {
        let key = SharedKey::new("storageacct", ACCOUNT_KEY).unwrap();
        let files = FileClient::new(ClientConfig::new(
            "https://storageacct.file.core.windows.net",
            Credential::SharedKey(key),
        ))
        .unwrap();
        Stager::shares(files, StagingConfig::default())
    }

    fn spec(workspace: &Path, argv: &[&str]) -> JobSpec {
        let mut spec = JobSpec::new(JobId::new("plan-job").unwrap(), workspace.to_path_buf());
        spec.registry = Some(RegistryCredentials {
            server: "registry.example".into(),
            username: "puller".into(),
            password: REGISTRY_PASSWORD.into(),
        });
        let mut c = ContainerSpec::new(
            ContainerName::new("main").unwrap(),
            ImageRef::parse("registry.example/team/model:1").unwrap(),
            argv.iter().map(|a| (*a).to_owned()).collect(),
        );
        c.env = vec![EnvVar::plain("PLAIN", "visible"), EnvVar::secret("TOKEN", ENV_SECRET)];
        c.mounts = vec![Mount::rw(
            WorkspacePath::new("out").unwrap(),
            compute::ContainerPath::new("/out").unwrap(),
        )];
        c.stdout = Some(WorkspacePath::new("logs/main.stdout").unwrap());
        spec.containers = vec![c];
        spec
    }

    fn group(spec: &JobSpec, priority: Priority) -> ContainerGroup {
        let plan = Plan::new(spec).unwrap();
        let config = AciConfig::new("westeurope", "worker-1");
        plan.group(spec, &stager(), &config, priority, &plan.wrapped).unwrap()
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let workspace = tempfile::tempdir().unwrap();
        let group = group(&spec(workspace.path(), &["python", "run.py"]), Priority::Regular);
        // The secrets are in the body ACI gets...
        let body = serde_json::to_string(&group).unwrap();
        for secret in [ENV_SECRET, REGISTRY_PASSWORD, ACCOUNT_KEY] {
            assert!(body.contains(secret), "{secret} is not in the request body");
        }
        // ...and never in Debug output, of the group or of its parts.
        let props = &group.properties;
        let texts = [
            format!("{group:?}"),
            format!("{group:#?}"),
            format!("{:?}", props.containers[0].properties.environment_variables),
            format!("{:?}", props.volumes),
            format!("{:?}", props.image_registry_credentials),
        ];
        for text in &texts {
            for secret in [ENV_SECRET, REGISTRY_PASSWORD, ACCOUNT_KEY] {
                assert!(!text.contains(secret), "{secret} shows in {text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
        }
        // What is not secret still shows.
        assert!(texts[0].contains("visible") && texts[0].contains("storageacct"), "{}", texts[0]);
        assert!(texts[0].contains("puller"), "{}", texts[0]);
    }

    #[test]
    fn an_empty_argv_keeps_the_image_entrypoint() {
        let workspace = tempfile::tempdir().unwrap();
        let spec = spec(workspace.path(), &[]);
        assert_eq!(Plan::new(&spec).unwrap().wrapped, vec![false]);
        let group = group(&spec, Priority::Regular);
        let container = &group.properties.containers[0].properties;
        // No command: ACI runs the image's entrypoint and command.
        assert!(container.command.is_empty(), "{:?}", container.command);
        let body = serde_json::to_value(&group).unwrap();
        assert!(body["properties"]["containers"][0]["properties"].get("command").is_none());
        // Nor the logs share, which only the wrapper writes to.
        assert!(container.volume_mounts.iter().all(|m| m.mount_path != IO_MOUNT));

        // Mounted mode needs the wrapper: refused, saying why.
        let mount = tempfile::tempdir().unwrap();
        let key = SharedKey::new("storageacct", ACCOUNT_KEY).unwrap();
        let mounted = Stager::mounted(
            mount.path().into(),
            "share".into(),
            Some(key),
            StagingConfig::default(),
        );
        let plan = Plan::new(&spec).unwrap();
        let config = AciConfig::new("westeurope", "worker-1");
        let err = plan.group(&spec, &mounted, &config, Priority::Regular, &plan.wrapped);
        match err {
            Err(Error::InvalidSpec(text)) => assert!(text.contains("empty argv"), "{text}"),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn each_wrapped_container_captures_into_a_share_of_its_own() {
        let workspace = tempfile::tempdir().unwrap();
        let mut spec = spec(workspace.path(), &["python", "run.py"]);
        // The longest job id: share names stay within Azure's 63 characters.
        spec.id = JobId::new("j".repeat(JobId::MAX_LEN)).unwrap();
        let mut second = spec.containers[0].clone();
        second.name = ContainerName::new("second").unwrap();
        second.stdout = None;
        second.stderr = Some(WorkspacePath::new("logs/second.stderr").unwrap());
        // Captures nothing: no logs share, output to /dev/null.
        let mut quiet = spec.containers[0].clone();
        quiet.name = ContainerName::new("quiet").unwrap();
        quiet.stdout = None;
        // Keeps its image's entrypoint: the logs API has its output.
        let mut own = spec.containers[0].clone();
        own.name = ContainerName::new("own").unwrap();
        own.argv.clear();
        spec.containers.extend([second, quiet, own]);

        let plan = Plan::new(&spec).unwrap();
        let names = |logs: &[Option<VolumeName>]| -> Vec<Option<String>> {
            logs.iter().map(|l| l.as_ref().map(VolumeName::to_string)).collect()
        };
        assert_eq!(
            names(&plan.logs),
            [Some("logs0".to_owned()), Some("logs1".to_owned()), None, None]
        );
        let downloads: Vec<(String, String, String)> = plan
            .downloads()
            .iter()
            .filter(|d| d.volume.as_str().starts_with("logs"))
            .map(|d| (d.volume.to_string(), d.remote.as_str().to_owned(), d.local.to_string()))
            .collect();
        assert_eq!(
            downloads,
            [
                ("logs0".to_owned(), "main.stdout".to_owned(), "logs/main.stdout".to_owned()),
                ("logs1".to_owned(), "second.stderr".to_owned(), "logs/second.stderr".to_owned()),
            ]
        );

        let group = group(&spec, Priority::Regular);
        let props = &group.properties;
        let share_of = |volume: &str| {
            let v = props.volumes.iter().find(|v| v.name == volume).unwrap();
            v.azure_file.as_ref().unwrap().share_name.clone()
        };
        for volume in &props.volumes {
            let share = &volume.azure_file.as_ref().unwrap().share_name;
            assert!(share.len() <= 63, "{share}");
        }
        let io_mounts = |i: usize| -> Vec<String> {
            let c = &props.containers[i].properties;
            c.volume_mounts
                .iter()
                .filter(|m| m.mount_path == IO_MOUNT)
                .map(|m| m.name.clone())
                .collect()
        };
        assert_eq!(io_mounts(0), ["logs0"]);
        assert_eq!(io_mounts(1), ["logs1"]);
        assert!(io_mounts(2).is_empty() && io_mounts(3).is_empty());
        assert_ne!(share_of("logs0"), share_of("logs1"));
        assert!(share_of("logs1").ends_with("-logs1"), "{}", share_of("logs1"));
        // Each logs share is mounted by its container alone.
        for volume in ["logs0", "logs1"] {
            let mounting = props
                .containers
                .iter()
                .filter(|c| c.properties.volume_mounts.iter().any(|m| m.name == volume))
                .count();
            assert_eq!(mounting, 1, "{volume}");
        }
        // The wrapper's STDOUT and STDERR arguments.
        let streams = |i: usize| props.containers[i].properties.command[4..6].to_vec();
        assert_eq!(streams(0), [format!("{IO_MOUNT}/main.stdout"), "/dev/null".to_owned()]);
        assert_eq!(streams(1), ["/dev/null".to_owned(), format!("{IO_MOUNT}/second.stderr")]);
        assert_eq!(streams(2), ["/dev/null", "/dev/null"]);

        // Mounted mode: one share for all (the weaker mode), a folder per container.
        spec.containers.pop();
        let plan = Plan::new(&spec).unwrap();
        let mount = tempfile::tempdir().unwrap();
        let key = SharedKey::new("storageacct", ACCOUNT_KEY).unwrap();
        let mounted = Stager::mounted(
            mount.path().into(),
            "share".into(),
            Some(key),
            StagingConfig::default(),
        );
        let config = AciConfig::new("westeurope", "worker-1");
        let group = plan.group(&spec, &mounted, &config, Priority::Regular, &plan.wrapped).unwrap();
        let props = &group.properties;
        assert_eq!(props.volumes.len(), 1);
        let streams = |i: usize| props.containers[i].properties.command[4..6].to_vec();
        let folder = |volume: &str| {
            let volume = VolumeName::new(volume).unwrap();
            format!("{SHARE_MOUNT}/{}", mounted.location(&spec.id, &volume).prefix.as_str())
        };
        assert_eq!(streams(0)[0], format!("{}/main.stdout", folder("logs0")));
        assert_eq!(streams(1)[1], format!("{}/second.stderr", folder("logs1")));
        assert_eq!(streams(2), ["/dev/null", "/dev/null"]);
    }

    #[test]
    fn a_spot_job_with_a_gpu_runs_as_regular() {
        let workspace = tempfile::tempdir().unwrap();
        let mut spec = spec(workspace.path(), &["true"]);
        assert_eq!(group(&spec, Priority::Spot).properties.priority.as_deref(), Some("Spot"));
        spec.containers[0].resources.gpu = Some(Gpu { count: 1, sku: None });
        assert_eq!(group(&spec, Priority::Spot).properties.priority.as_deref(), Some("Regular"));
        assert_eq!(group(&spec, Priority::Regular).properties.priority.as_deref(), Some("Regular"));
    }

    /// Runs the wrapper under `shell` with `argv`, output to files in `dir`, `PATH`
    /// led by `dir`: the exit code and what the program wrote to stdout.
    fn wrap(shell: &[&str], dir: &Path, argv: &[&str]) -> (Option<i32>, String) {
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let _ = std::fs::remove_file(&out);
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        let status = Command::new(shell[0])
            .args(&shell[1..])
            .args(["-c", WRAPPER, "aci-worker"])
            .arg(&out)
            .arg(&err)
            .args(["", "0"])
            .args(argv)
            .env("PATH", path)
            .status()
            .unwrap();
        (status.code(), std::fs::read_to_string(&out).unwrap_or_default())
    }

    fn found(program: &str) -> bool {
        Command::new(program)
            .arg("-c")
            .arg("true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn the_wrapper_never_reads_the_program_as_an_option_of_exec() {
        let dir = tempfile::tempdir().unwrap();
        // A program whose name starts with '-', found on PATH as any other.
        let program = dir.path().join("-prog");
        std::fs::write(&program, "#!/bin/sh\necho \"ran with $*\"\nexit 4\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();

        // bash and busybox ash read options of exec (`-a NAME`): the shells that
        // matter here. dash is Debian's /bin/sh.
        let mut shells: Vec<Vec<&str>> = vec![vec!["sh"]];
        for candidate in [vec!["bash"], vec!["bash", "--posix"], vec!["busybox", "sh"]] {
            let runs = match candidate.as_slice() {
                ["busybox", ..] => Command::new("busybox")
                    .args(["sh", "-c", "true"])
                    .status()
                    .is_ok_and(|s| s.success()),
                _ => found(candidate[0]),
            };
            if runs {
                shells.push(candidate);
            }
        }
        assert!(shells.len() > 1, "neither bash nor busybox: nothing reads exec's options");
        for shell in &shells {
            // Plain argv: exec'ed, output captured, exit code passed on.
            assert_eq!(
                wrap(shell, dir.path(), &["echo", "a", "-a b"]),
                (Some(0), "a -a b\n".into())
            );
            assert_eq!(wrap(shell, dir.path(), &["sh", "-c", "exit 7"]).0, Some(7), "{shell:?}");
            // `-a x echo no`: a program named -a, not exec's -a option running echo.
            assert_eq!(wrap(shell, dir.path(), &["-a", "x", "echo", "no"]), (Some(127), "".into()));
            for name in ["-l", "-c", "-", "--"] {
                assert_eq!(wrap(shell, dir.path(), &[name]).0, Some(127), "{shell:?} {name}");
            }
            // A program that really is named -prog runs, with its arguments.
            assert_eq!(
                wrap(shell, dir.path(), &["-prog", "-a", "x"]),
                (Some(4), "ran with -a x\n".into()),
                "{shell:?}"
            );
        }
    }
}
