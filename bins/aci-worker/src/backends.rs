//! Building the compute backends and runners from the configuration.

use std::sync::Arc;

use afs_staging::auth::SharedKey;
use afs_staging::{ClientConfig, Credential, FileClient, Stager, StagingConfig};
use anyhow::{Context, Result};
use backend_aci::{AciBackend, AciConfig, ArmClient, ArmTarget, Priority, credentials};
use backend_docker::{DockerBackend, DockerConfig};
use codalab_run::{Runner, RunnerConfig};
use compute::ComputeBackend;

use crate::config::{Azure, AzureAuth, Config};

/// A runner over whichever backend a step uses.
pub type DynRunner = Runner<Arc<dyn ComputeBackend>>;

/// What the worker runs tasks with.
pub struct Backends {
    /// Runs prediction steps.
    pub predict: Arc<DynRunner>,
    /// Runs scoring steps.
    pub score: Arc<DynRunner>,
    /// The ACI backend, when a step uses it.
    pub aci: Option<AciBackend>,
}

impl Backends {
    /// The runner for a task's step and the backend's name.
    pub fn for_step(&self, predict: bool) -> (&Arc<DynRunner>, &'static str) {
        let runner = if predict { &self.predict } else { &self.score };
        (runner, runner.backend().name())
    }
}

/// The Azure Files client for the configured account.
pub fn stager(config: &Config) -> Result<Option<Stager>> {
    let Some(afs) = &config.afs else { return Ok(None) };
    let key = SharedKey::new(&afs.account, afs.key.expose()).context("AFS_NAME/AFS_KEY")?;
    let staging = StagingConfig { worker: config.worker_name.clone(), ..StagingConfig::default() };
    if afs.mounted {
        let share = afs.share.clone().context("AFS_SHARE")?;
        return Ok(Some(Stager::mounted(config.work_root.clone(), share, Some(key), staging)));
    }
    let client =
        FileClient::new(ClientConfig::new(afs.endpoint.clone(), Credential::SharedKey(key)))
            .context("AFS_ENDPOINT")?;
    Ok(Some(Stager::shares(client, staging)))
}

/// The ARM client for the configured credentials.
pub fn arm_client(azure: &Azure) -> Result<ArmClient> {
    let http = credentials::http_client(azure.ca_file.as_deref())?;
    let (credential, subscription, endpoint) = match &azure.auth {
        AzureAuth::SdkFile(path) => {
            let auth = credentials::SdkAuth::from_file(path)?;
            let credential = auth.credential(&http)?;
            let endpoint =
                azure.arm_endpoint.clone().unwrap_or(auth.resource_manager_endpoint_url.clone());
            let subscription =
                azure.subscription_id.clone().unwrap_or(auth.subscription_id.clone());
            (credential, subscription, endpoint)
        }
        AzureAuth::ManagedIdentity { client_id } => {
            let credential = credentials::managed_identity(client_id.clone(), &http)?;
            let endpoint =
                azure.arm_endpoint.clone().unwrap_or_else(|| "https://management.azure.com".into());
            (credential, azure.subscription_id.clone().unwrap_or_default(), endpoint)
        }
    };
    Ok(ArmClient::new(
        http,
        credential,
        ArmTarget {
            endpoint,
            subscription_id: subscription,
            resource_group: azure.resource_group.clone(),
            api_version: backend_aci::API_VERSION.into(),
        },
    ))
}

/// The ACI backend, when configured.
pub fn aci(config: &Config) -> Result<Option<AciBackend>> {
    let Some(azure) = &config.azure else { return Ok(None) };
    let arm = arm_client(azure)?;
    let stager = stager(config)?.context("Azure Files settings")?;
    let mut aci = AciConfig::new(azure.location.clone(), config.worker_name.clone());
    aci.priority = if azure.spot { Priority::Spot } else { Priority::Regular };
    aci.default_cpus = azure.default_cpu;
    aci.default_memory_gb = azure.default_memory_gb;
    aci.gpu_sku = azure.gpu_sku.clone();
    aci.capacity_retry_for = azure.capacity_retry;
    Ok(Some(AciBackend::new(arm, stager, aci)))
}

/// The local Docker backend.
pub async fn docker(config: &Config) -> Result<DockerBackend> {
    let docker = DockerConfig { worker: config.worker_name.clone(), ..DockerConfig::default() };
    DockerBackend::connect(docker).await.map_err(|e| anyhow::anyhow!(compute::error_chain(&e))).context(
        "connecting to the Docker engine (DOCKER_HOST); steps with ACI_PRED/ACI_SCORE off run there",
    )
}

/// Every backend and both runners. `allow_file_urls` for local runs only.
pub async fn build(config: &Config, allow_file_urls: bool) -> Result<Backends> {
    let aci = aci(config)?;
    let docker =
        if config.aci_pred && config.aci_score { None } else { Some(docker(config).await?) };
    let runner = |use_aci: bool| -> Arc<DynRunner> {
        let backend: Arc<dyn ComputeBackend> = match (use_aci, &aci, &docker) {
            (true, Some(aci), _) => Arc::new(aci.clone()),
            (_, _, Some(docker)) => Arc::new(docker.clone()),
            _ => unreachable!("a backend exists for every step"),
        };
        let mut runner_config = RunnerConfig::new(config.work_root.clone());
        runner_config.hostname = config.hostname.clone();
        runner_config.dont_finalize = config.dont_finalize;
        runner_config.network = config.network;
        runner_config.registry = config.registry.clone();
        runner_config.default_gpus = config.use_gpu.then_some(1);
        runner_config.transfer.allow_file_urls = allow_file_urls;
        Arc::new(Runner::new(backend, runner_config))
    };
    Ok(Backends { predict: runner(config.aci_pred), score: runner(config.aci_score), aci })
}
