//! What a backend is asked to run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ContainerName, ContainerPath, Error, ImageRef, JobId, Secret, WorkspacePath};

/// One job: containers that run together over one local workspace, until they all
/// exit or the time limit passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Stable identity; backends name what they create after it.
    pub id: JobId,
    /// Absolute path of the job's local workspace. Every mount source, output file
    /// and watched file is a path inside it.
    pub workspace: PathBuf,
    /// How long the containers may run, counted from their start. `None`: no limit.
    pub time_limit: Option<Duration>,
    /// Credentials for the registry the images come from.
    pub registry: Option<RegistryCredentials>,
    /// Whether containers get a network. Off, they see only a loopback interface.
    pub network: bool,
    /// Files the caller wants to hear about while the job runs (as
    /// [`Event::FileChanged`](crate::Event::FileChanged)), e.g. detailed results.
    pub watch: Vec<WorkspacePath>,
    /// The containers, started together.
    pub containers: Vec<ContainerSpec>,
}

/// One container of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Unique within the job.
    pub name: ContainerName,
    /// The image to run.
    pub image: ImageRef,
    /// The program and its arguments, run as given: never through a shell unless the
    /// caller names one as the program. Replaces the image's entrypoint and command;
    /// empty keeps the image's own.
    pub argv: Vec<String>,
    /// Environment variables, in order.
    pub env: Vec<EnvVar>,
    /// Working directory inside the container; the image's own when `None`.
    pub workdir: Option<ContainerPath>,
    /// CPU, memory and GPU requests.
    pub resources: Resources,
    /// Workspace folders this container sees.
    pub mounts: Vec<Mount>,
    /// Workspace file that receives the container's standard output, if kept.
    pub stdout: Option<WorkspacePath>,
    /// Workspace file that receives the container's standard error, if kept.
    pub stderr: Option<WorkspacePath>,
}

impl ContainerSpec {
    /// A container running `argv` in `image`, with no mounts, default resources and
    /// nothing kept of its output.
    pub fn new(name: ContainerName, image: ImageRef, argv: Vec<String>) -> Self {
        ContainerSpec {
            name,
            image,
            argv,
            env: Vec::new(),
            workdir: None,
            resources: Resources::default(),
            mounts: Vec::new(),
            stdout: None,
            stderr: None,
        }
    }
}

/// An environment variable. Secret values go to backends that can hide them (ACI's
/// `secureValue`) and never into logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: EnvValue,
}

impl EnvVar {
    /// A plain variable.
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> Self {
        EnvVar { name: name.into(), value: EnvValue::Plain(value.into()) }
    }

    /// A variable whose value is secret.
    pub fn secret(name: impl Into<String>, value: impl Into<Secret>) -> Self {
        EnvVar { name: name.into(), value: EnvValue::Secret(value.into()) }
    }
}

/// The value of an [`EnvVar`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValue {
    /// May be shown.
    Plain(String),
    /// Must not be shown.
    Secret(Secret),
}

impl EnvValue {
    /// The value, whatever its kind, for the call that hands it to the container.
    pub fn expose(&self) -> &str {
        match self {
            EnvValue::Plain(v) => v,
            EnvValue::Secret(s) => s.expose(),
        }
    }
}

/// What a container may use. `None` leaves the choice to the backend's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores, fractions allowed.
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// GPUs.
    pub gpu: Option<Gpu>,
}

/// A GPU request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// How many.
    pub count: u32,
    /// A model name where the platform asks for one (ACI: `V100`, `K80`, ...).
    pub sku: Option<String>,
}

/// A workspace folder made visible inside a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The folder in the workspace; created when missing.
    pub source: WorkspacePath,
    /// Where the container sees it.
    pub target: ContainerPath,
    /// Refuse writes from the container.
    pub read_only: bool,
}

impl Mount {
    /// A writable mount.
    pub fn rw(source: WorkspacePath, target: ContainerPath) -> Self {
        Mount { source, target, read_only: false }
    }

    /// A read-only mount.
    pub fn ro(source: WorkspacePath, target: ContainerPath) -> Self {
        Mount { source, target, read_only: true }
    }
}

/// Login for a private registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredentials {
    /// Registry host and optional port, as in image references (`myreg.azurecr.io`).
    pub server: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

impl JobSpec {
    /// A job with no containers yet, no time limit, no network, nothing watched.
    pub fn new(id: JobId, workspace: impl Into<PathBuf>) -> Self {
        JobSpec {
            id,
            workspace: workspace.into(),
            time_limit: None,
            registry: None,
            network: false,
            watch: Vec::new(),
            containers: Vec::new(),
        }
    }

    /// Checks what the types alone cannot: an absolute workspace, at least one
    /// container, unique container names, one writer per output file, unique mount
    /// targets per container, sane resources. Backends call it before creating
    /// anything.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::InvalidSpec(msg));
        if !self.workspace.is_absolute() {
            return bad(format!("workspace {} is not an absolute path", self.workspace.display()));
        }
        if self.containers.is_empty() {
            return bad("the job has no container".into());
        }
        let mut names = BTreeSet::new();
        let mut outputs = BTreeSet::new();
        for c in &self.containers {
            if !names.insert(&c.name) {
                return bad(format!("container name {} is used twice", c.name));
            }
            for out in c.stdout.iter().chain(&c.stderr) {
                if !outputs.insert(out) {
                    return bad(format!("output file {out} is written by two streams"));
                }
            }
            let mut targets = BTreeSet::new();
            for m in &c.mounts {
                if !targets.insert(&m.target) {
                    return bad(format!("container {} mounts {} twice", c.name, m.target));
                }
            }
            for e in &c.env {
                if e.name.is_empty() || e.name.contains(['=', '\0']) {
                    return bad(format!("container {} has an invalid variable name", c.name));
                }
            }
            if let Some(cpus) = c.resources.cpus
                && !(cpus.is_finite() && cpus > 0.0)
            {
                return bad(format!("container {} asks for {cpus} CPUs", c.name));
            }
            if c.resources.memory_bytes == Some(0) {
                return bad(format!("container {} asks for no memory", c.name));
            }
            if c.resources.gpu.as_ref().is_some_and(|g| g.count == 0) {
                return bad(format!("container {} asks for zero GPUs", c.name));
            }
        }
        Ok(())
    }
}
