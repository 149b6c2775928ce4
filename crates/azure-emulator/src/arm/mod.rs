//! The Entra ID and ARM part: tokens for a service principal (and a managed
//! identity), and the Azure Container Instances API of one subscription, over HTTPS.
//! Container groups run on the local Docker engine, or complete at once in instant
//! mode; see the crate documentation for what is covered.

mod entra;
mod error;
mod group;
mod routes;
mod runner;
mod spec;
mod token;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use backend_docker::{DockerBackend, DockerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::files::FilesService;
use group::Group;
use token::TokenIssuer;

pub use group::{KILLED_EXIT_CODE, SPOT_EVICTION_EVENT};

/// The tenant id [`ArmConfig::new`] uses.
pub const DEFAULT_TENANT_ID: &str = "00000000-0000-4000-8000-0000000000a1";
/// The service principal's client (application) id [`ArmConfig::new`] uses.
pub const DEFAULT_CLIENT_ID: &str = "00000000-0000-4000-8000-0000000000c1";
/// The service principal's secret [`ArmConfig::new`] uses. It is public and protects
/// nothing.
pub const DEFAULT_CLIENT_SECRET: &str = "azure-emulator-test-secret";
/// The subscription id [`ArmConfig::new`] uses.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "00000000-0000-4000-8000-0000000000b1";
/// The one resource group [`ArmConfig::new`] makes.
pub const DEFAULT_RESOURCE_GROUP: &str = "aci-worker-test";
/// The location [`ArmConfig::new`] uses.
pub const DEFAULT_LOCATION: &str = "westeurope";
/// The `X-IDENTITY-HEADER` secret of the managed identity endpoint that
/// [`ArmConfig::new`] uses (App Service's `IDENTITY_HEADER`).
pub const DEFAULT_IDENTITY_HEADER: &str = "azure-emulator-identity-header";

/// Container groups listed per page; `nextLink` leads to the next.
const LIST_PAGE: usize = 100;

/// Settings of the Entra ID and ARM part.
#[derive(Clone)]
pub struct ArmConfig {
    /// The directory (tenant) id; tokens are issued at `/{tenant_id}/oauth2/v2.0/token`.
    pub tenant_id: String,
    /// The service principal's client id.
    pub client_id: String,
    /// The service principal's secret.
    pub client_secret: String,
    /// The one subscription; others are answered `SubscriptionNotFound`.
    pub subscription_id: String,
    /// The resource groups that exist in it (names are case-insensitive, as in ARM).
    pub resource_groups: Vec<String>,
    /// The location of the resource groups.
    pub location: String,
    /// Where the test CA's certificate (`ca.pem`) and the server's chain
    /// (`server.pem`) are written. Created if missing.
    pub tls_dir: PathBuf,
    /// Settings of the Docker backend that runs container groups; `None` runs
    /// nothing (container groups that are not instant fail to provision).
    pub docker: Option<DockerConfig>,
    /// Instant mode: every container group is done as soon as it is created, every
    /// container terminated with exit code 0, without Docker. For orchestration
    /// benchmarks of hundreds of groups.
    pub instant: bool,
    /// In instant mode, how long a group stays `Running` before its containers
    /// exit 0. Zero (the default) completes it as it is created; a few seconds
    /// keep many groups in flight at once, as real runs would.
    pub instant_run: Duration,
    /// How long issued tokens are valid (`expires_in`). Zero issues tokens that are
    /// expired at once, which ARM refuses.
    pub token_lifetime: Duration,
    /// The secret the managed identity endpoint (`GET /msi/token`) expects in
    /// `X-IDENTITY-HEADER`.
    pub identity_header: String,
    /// Faults injected from the start (none by default).
    pub faults: ArmFaults,
}

impl ArmConfig {
    /// The default tenant, service principal, subscription, one resource group
    /// ([`DEFAULT_RESOURCE_GROUP`]) in [`DEFAULT_LOCATION`], tokens valid for an
    /// hour, groups run on the Docker engine named by `DOCKER_HOST`, no faults.
    pub fn new(tls_dir: impl Into<PathBuf>) -> Self {
        ArmConfig {
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            subscription_id: DEFAULT_SUBSCRIPTION_ID.to_owned(),
            resource_groups: vec![DEFAULT_RESOURCE_GROUP.to_owned()],
            location: DEFAULT_LOCATION.to_owned(),
            tls_dir: tls_dir.into(),
            docker: Some(DockerConfig::default()),
            instant: false,
            instant_run: Duration::ZERO,
            token_lifetime: Duration::from_secs(3600),
            identity_header: DEFAULT_IDENTITY_HEADER.to_owned(),
            faults: ArmFaults::default(),
        }
    }
}

impl fmt::Debug for ArmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("subscription_id", &self.subscription_id)
            .field("resource_groups", &self.resource_groups)
            .field("location", &self.location)
            .field("tls_dir", &self.tls_dir)
            .field("docker", &self.docker)
            .field("instant", &self.instant)
            .field("instant_run", &self.instant_run)
            .field("token_lifetime", &self.token_lifetime)
            .field("identity_header", &"<redacted>")
            .field("faults", &self.faults)
            .finish()
    }
}

/// Faults of the ARM part, counted so that tests are deterministic: each counter is
/// the number of coming requests (or groups) it hits, and goes down as it does.
/// Token requests are never faulted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArmFaults {
    /// The next N ARM requests (of the methods in `fault_methods`) are answered
    /// `429 TooManyRequests` with `Retry-After: throttle_retry_after_secs`, doing
    /// nothing.
    pub throttle: u32,
    /// The `Retry-After` of throttled answers, in seconds (`None`: 1).
    pub throttle_retry_after_secs: Option<u32>,
    /// The next N ARM requests (of the methods in `fault_methods`, after those
    /// throttled) are answered `500 InternalServerError`, doing nothing.
    pub server_errors: u32,
    /// The HTTP methods (`GET`, `PUT`, `POST`, `DELETE`; any case) whose requests
    /// `throttle` and `server_errors` hit; every request when empty. With `["PUT"]`
    /// they fall on container group PUTs, and the requests before them go through.
    pub fault_methods: Vec<String>,
    /// The next N GETs of one container group (not listings, logs or operation
    /// status) are answered `500 InternalServerError`, while every other request
    /// works: an outage of reads that a client must not wait out forever.
    /// `u32::MAX` keeps it up until the faults are replaced.
    pub read_errors: u32,
    /// The next N container group PUTs that pass validation are answered
    /// `409 ContainerGroupQuotaReached`, creating nothing.
    pub quota_exceeded: u32,
    /// The next N container group PUTs that pass validation (after those refused for
    /// quota) are answered `503 ServiceUnavailable` ("The requested resource is not
    /// available in the location …"), creating nothing.
    pub capacity_unavailable: u32,
    /// Groups created from now on stay `Pending` this long before their images are
    /// pulled (ignored in instant mode).
    pub provisioning_delay: Duration,
    /// The next N Spot groups (`priority: Spot`) are evicted once all their
    /// containers have started (after `spot_eviction_delay`): containers killed
    /// (exit code 137, `detailStatus` `Evicted`), group `Stopped`, and a group
    /// event named `SpotContainerGroupEvicted`.
    pub spot_evictions: u32,
    /// How long after their start evicted groups run.
    pub spot_eviction_delay: Duration,
    /// Pulls of images whose reference contains one of these strings fail (the
    /// container waits with `ErrImagePull`, the group's provisioning fails).
    pub pull_failures: Vec<String>,
    /// PUTs (that pass validation) of groups with an image whose reference contains
    /// one of these strings are refused at once with ACI's `400 InaccessibleImage`
    /// ("The image '…' in container group '…' is not accessible. Please check the
    /// image and registry credential."), creating nothing: what ACI answers when it
    /// cannot reach an image or the registry refuses the credentials.
    pub inaccessible_images: Vec<String>,
    /// The next N stops (`POST …/stop`) leave the group `Stopped` with no instance
    /// view on its containers: ACI documents that a stop "does not preserve
    /// container state", so a client cannot count on an exit code after one.
    pub stops_forgetting_containers: u32,
    /// Deletes of container groups from now on take this much longer once the
    /// containers are gone, as ACI's often do; meanwhile the group is `Deleting` (a
    /// PUT of it is answered `409 Conflict`, another DELETE `202 Accepted`).
    pub deletion_delay: Duration,
}

/// A container group's key: the resource group's name lowercased, and the group's
/// name.
pub(crate) type GroupKey = (String, String);

/// The task running a group, and how to cancel it.
struct Run {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// The state shared by all requests of the Entra ID and ARM part.
pub(crate) struct ArmService {
    config: ArmConfig,
    /// `https://127.0.0.1:PORT`.
    endpoint: String,
    issuer: TokenIssuer,
    files: Arc<FilesService>,
    groups: Mutex<BTreeMap<GroupKey, Group>>,
    runs: Mutex<HashMap<u64, Run>>,
    faults: Mutex<ArmFaults>,
    docker: tokio::sync::Mutex<Option<DockerBackend>>,
    /// The `worker` label of every container this emulator creates.
    worker_label: String,
    /// Distinguishes this emulator's job ids from other emulators' on one engine.
    instance: String,
    next_uid: AtomicU64,
    token_requests: AtomicU64,
    arm_requests: AtomicU64,
    host_cpus: f64,
    /// Cancelled at shutdown: no new group starts after it.
    closing: CancellationToken,
}

impl ArmService {
    /// Sets up the ARM part; `endpoint` is `https://127.0.0.1:PORT` as clients reach
    /// it. Clears logs left by an earlier run in the same data directory.
    pub(crate) fn new(
        config: ArmConfig,
        endpoint: String,
        files: Arc<FilesService>,
    ) -> std::io::Result<Self> {
        if config.resource_groups.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the ARM emulator needs at least one resource group",
            ));
        }
        let logs = files.data_dir().join("arm");
        if logs.exists() {
            std::fs::remove_dir_all(&logs)?;
        }
        let worker_label = format!("azure-emulator:{}", files.data_dir().display());
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Ok(ArmService {
            issuer: TokenIssuer::new(&config.tenant_id),
            faults: Mutex::new(config.faults.clone()),
            config,
            endpoint,
            files,
            groups: Mutex::new(BTreeMap::new()),
            runs: Mutex::new(HashMap::new()),
            docker: tokio::sync::Mutex::new(None),
            worker_label,
            instance: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            next_uid: AtomicU64::new(1),
            token_requests: AtomicU64::new(0),
            arm_requests: AtomicU64::new(0),
            host_cpus,
            closing: CancellationToken::new(),
        })
    }

    /// The HTTP routes: Entra ID's and ARM's, all on one HTTPS address.
    pub(crate) fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(routes::handle).with_state(self)
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(crate) fn config(&self) -> &ArmConfig {
        &self.config
    }

    pub(crate) fn set_faults(&self, faults: ArmFaults) {
        *lock(&self.faults) = faults;
    }

    pub(crate) fn faults(&self) -> ArmFaults {
        lock(&self.faults).clone()
    }

    pub(crate) fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    pub(crate) fn arm_requests(&self) -> u64 {
        self.arm_requests.load(Ordering::Relaxed)
    }

    /// Names of the container groups that exist now (being deleted included), sorted.
    pub(crate) fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.groups).values().map(|g| g.name.clone()).collect();
        names.sort();
        names
    }

    /// The `az ad sp create-for-rbac --sdk-auth` JSON pointing at this emulator.
    pub(crate) fn sdk_auth_json(&self) -> String {
        let creds = serde_json::json!({
            "clientId": self.config.client_id,
            "clientSecret": self.config.client_secret,
            "subscriptionId": self.config.subscription_id,
            "tenantId": self.config.tenant_id,
            "activeDirectoryEndpointUrl": self.endpoint,
            "resourceManagerEndpointUrl": format!("{}/", self.endpoint),
            "activeDirectoryGraphResourceId": "https://graph.windows.net/",
            "sqlManagementEndpointUrl": "https://management.core.windows.net:8443/",
            "galleryEndpointUrl": "https://gallery.azure.com/",
            "managementEndpointUrl": "https://management.core.windows.net/",
        });
        serde_json::to_string_pretty(&creds).expect("JSON values serialize")
    }

    /// Runs `f` on the group at `key` if it is still the one with `uid` (not deleted
    /// or replaced since); tells whether it was.
    pub(crate) fn update(&self, key: &GroupKey, uid: u64, f: impl FnOnce(&mut Group)) -> bool {
        match lock(&self.groups).get_mut(key) {
            Some(group) if group.uid == uid => {
                f(group);
                true
            }
            _ => false,
        }
    }

    /// The Docker backend, connected on first use. Containers that an earlier run of
    /// an emulator on the same data directory left behind are removed then.
    pub(crate) async fn docker(&self) -> Result<DockerBackend, String> {
        let Some(config) = &self.config.docker else {
            return Err("the emulator was started without Docker".to_owned());
        };
        let mut slot = self.docker.lock().await;
        if let Some(backend) = &*slot {
            return Ok(backend.clone());
        }
        let config = DockerConfig { worker: self.worker_label.clone(), ..config.clone() };
        let backend = DockerBackend::connect(config).await.map_err(|e| compute::error_chain(&e))?;
        remove_leftovers(&backend, &self.worker_label).await;
        *slot = Some(backend.clone());
        Ok(backend)
    }

    /// The Docker backend if it was connected.
    pub(crate) async fn connected_docker(&self) -> Option<DockerBackend> {
        self.docker.lock().await.clone()
    }

    /// Cancels the task of group `uid` (if any) and waits until it is over, its
    /// containers removed.
    async fn cancel_run(&self, uid: u64) {
        let run = lock(&self.runs).remove(&uid);
        if let Some(run) = run {
            run.cancel.cancel();
            if let Err(err) = run.task.await
                && err.is_panic()
            {
                tracing::warn!(uid, "a container group task panicked");
            }
        }
    }

    /// Stops every group's task and waits for their containers to be removed.
    pub(crate) async fn shutdown(&self) {
        self.closing.cancel();
        let uids: Vec<u64> = lock(&self.runs).keys().copied().collect();
        for uid in uids {
            self.cancel_run(uid).await;
        }
    }

    /// Cancels every group's task without waiting (for `Drop`); the tasks remove
    /// their containers if the runtime lets them.
    pub(crate) fn cancel_all(&self) {
        self.closing.cancel();
        for run in lock(&self.runs).values() {
            run.cancel.cancel();
        }
    }
}

/// Removes the containers labelled with `worker`: what an emulator that was killed
/// left running.
async fn remove_leftovers(backend: &DockerBackend, worker: &str) {
    use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={worker}", backend_docker::LABEL_WORKER)],
    )]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let docker = backend.client();
    let found = match docker.list_containers(Some(options)).await {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "could not list containers left by an earlier run");
            return;
        }
    };
    for id in found.into_iter().filter_map(|c| c.id) {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match docker.remove_container(&id, Some(options)).await {
            Ok(()) => tracing::info!(container = %id, "removed a container left by an earlier run"),
            Err(err) => {
                tracing::warn!(container = %id, error = %err, "could not remove a leftover")
            }
        }
    }
}

/// Locks, carrying on past a panic elsewhere (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
