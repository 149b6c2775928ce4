//! The running emulator: its listeners, its server tasks and a handle to them.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::arm::{ArmConfig, ArmFaults, ArmService};
use crate::faults::Faults;
use crate::files::{FilesConfig, FilesService};
use crate::tls::{self, TlsListener};

/// How long [`Emulator::shutdown`] lets open requests finish before it cuts them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long [`Emulator::shutdown`] waits for running container groups to be removed.
const GROUPS_GRACE: Duration = Duration::from_secs(30);

/// One HTTP server: how to stop it and its task.
struct Server {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    fn spawn<L>(name: &'static str, listener: L, router: axum::Router) -> Server
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        Server { name, stop: Some(stop), task: Some(task) }
    }

    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn join(&mut self) {
        self.signal();
        let Some(mut task) = self.task.take() else { return };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(server = self.name, error = %err, "server failed"),
            Ok(Err(err)) => tracing::warn!(server = self.name, error = %err, "server task failed"),
            Err(_) => {
                tracing::warn!(server = self.name, "requests still open after the grace period");
                task.abort();
            }
        }
    }
}

/// The Entra ID and ARM part while it runs.
struct Arm {
    service: Arc<ArmService>,
    addr: SocketAddr,
    ca_pem_path: PathBuf,
    server: Server,
}

/// A running emulator. Dropping it stops the servers too, without waiting, and
/// cancels running container groups (their containers are removed if the runtime
/// lives on long enough: call [`Emulator::shutdown`] to be sure).
pub struct Emulator {
    files: Arc<FilesService>,
    files_addr: SocketAddr,
    files_endpoint: String,
    files_server: Server,
    arm: Option<Arm>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("files_endpoint", &self.files_endpoint)
            .field("arm_addr", &self.arm.as_ref().map(|a| a.addr))
            .finish()
    }
}

impl Emulator {
    /// Starts the Files service on `addr` (port 0 picks a free port) and returns once
    /// it accepts connections. Fails when the address is taken, the key is not base64,
    /// the account name is not a storage account name, or the data directory cannot
    /// be created.
    pub async fn start(config: FilesConfig, addr: SocketAddr) -> io::Result<Emulator> {
        Self::start_with(config, addr, None).await
    }

    /// Starts the Files service on `files_addr` and, when `arm` is given, the Entra ID
    /// and ARM service (HTTPS) on its address, and returns once both accept
    /// connections. Container groups run in the Files data directory: their
    /// `azureFile` volumes are the shares' directories. Fails as
    /// [`Emulator::start`] does, and also when the ARM address is taken, the TLS
    /// directory cannot be written or no resource group is configured.
    pub async fn start_with(
        files: FilesConfig,
        files_addr: SocketAddr,
        arm: Option<(ArmConfig, SocketAddr)>,
    ) -> io::Result<Emulator> {
        let listener = TcpListener::bind(files_addr).await?;
        let files_addr = listener.local_addr()?;
        let files_endpoint = format!("http://{files_addr}/{}", files.account);
        let endpoint = files_endpoint.clone();
        let service = tokio::task::spawn_blocking(move || FilesService::new(files, endpoint))
            .await
            .map_err(io::Error::other)??;
        let service = Arc::new(service);

        let arm = match arm {
            Some((config, addr)) => Some(start_arm(config, addr, Arc::clone(&service)).await?),
            None => None,
        };

        let listener = listener.tap_io(|tcp| {
            // Small answers (headers only) go out at once.
            let _ = tcp.set_nodelay(true);
        });
        let files_server = Server::spawn("files", listener, Arc::clone(&service).router());
        tracing::info!(endpoint = %files_endpoint, "azure files emulator listening");
        Ok(Emulator { files: service, files_addr, files_endpoint, files_server, arm })
    }

    /// The account's Files endpoint, e.g. `http://127.0.0.1:10004/devstoreaccount1`:
    /// what the Azure SDKs take as `account_url`.
    pub fn files_endpoint(&self) -> String {
        self.files_endpoint.clone()
    }

    /// The address the Files service listens on.
    pub fn files_addr(&self) -> SocketAddr {
        self.files_addr
    }

    /// The directory that holds share `share`'s files, whether or not the share
    /// exists (absolute: the data directory is canonicalized at start).
    pub fn share_dir(&self, share: &str) -> PathBuf {
        self.files.share_dir(share)
    }

    /// Replaces the injected faults of the Files part; the generator restarts from
    /// their seed.
    pub fn set_faults(&self, faults: Faults) {
        self.files.set_faults(faults);
    }

    /// How many Files requests have been answered, failed and faulted ones included.
    pub fn requests_served(&self) -> u64 {
        self.files.requests_served()
    }

    fn arm(&self) -> &Arm {
        self.arm.as_ref().expect("the emulator was started without ARM (see Emulator::start_with)")
    }

    /// The Entra ID and ARM endpoint, `https://127.0.0.1:PORT`: the authority host for
    /// tokens and the resource manager's base URL.
    ///
    /// # Panics
    ///
    /// When the emulator was started without ARM; so do the other `arm` and token
    /// methods.
    pub fn arm_endpoint(&self) -> String {
        self.arm().service.endpoint().to_owned()
    }

    /// The address the Entra ID and ARM service listens on.
    pub fn arm_addr(&self) -> SocketAddr {
        self.arm().addr
    }

    /// The PEM file of the test CA that signed the HTTPS certificate: what clients
    /// must trust (`REQUESTS_CA_BUNDLE`, `connection_verify`, reqwest's root store).
    pub fn ca_cert_pem_path(&self) -> PathBuf {
        self.arm().ca_pem_path.clone()
    }

    /// Replaces the injected ARM faults (counters start again from the given values).
    pub fn set_arm_faults(&self, faults: ArmFaults) {
        self.arm().service.set_faults(faults);
    }

    /// The ARM faults still to come (counters that have run down show 0).
    pub fn arm_faults(&self) -> ArmFaults {
        self.arm().service.faults()
    }

    /// Names of the container groups that exist now (one being deleted included),
    /// sorted.
    pub fn container_groups(&self) -> Vec<String> {
        self.arm().service.group_names()
    }

    /// How many token requests (client credentials and managed identity) have been
    /// answered, refused ones included.
    pub fn token_requests(&self) -> u64 {
        self.arm().service.token_requests()
    }

    /// How many ARM requests have been answered, refused and faulted ones included.
    pub fn arm_requests(&self) -> u64 {
        self.arm().service.arm_requests()
    }

    /// The service principal's credentials file as `az ad sp create-for-rbac
    /// --sdk-auth` writes it (the worker's `AZURE_AUTH_LOCATION`), with the Entra ID
    /// and resource manager endpoints pointing at this emulator.
    pub fn azure_creds_json(&self) -> String {
        self.arm().service.sdk_auth_json()
    }

    /// Stops accepting connections, lets open requests finish (for a few seconds at
    /// most), stops every running container group and waits until its containers
    /// are removed, and returns when the servers have stopped.
    pub async fn shutdown(mut self) {
        self.files_server.signal();
        if let Some(arm) = &mut self.arm {
            arm.server.signal();
            let service = Arc::clone(&arm.service);
            if tokio::time::timeout(GROUPS_GRACE, service.shutdown()).await.is_err() {
                tracing::warn!("container groups still being removed after the grace period");
            }
            arm.server.join().await;
        }
        self.files_server.join().await;
        tracing::info!(endpoint = %self.files_endpoint, "azure emulator stopped");
    }
}

async fn start_arm(
    config: ArmConfig,
    addr: SocketAddr,
    files: Arc<FilesService>,
) -> io::Result<Arm> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let endpoint = format!("https://{addr}");
    let tls_dir = config.tls_dir.clone();
    let material = tokio::task::spawn_blocking(move || tls::make(&tls_dir))
        .await
        .map_err(io::Error::other)??;
    let service = {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || ArmService::new(config, endpoint, files))
            .await
            .map_err(io::Error::other)??
    };
    let service = Arc::new(service);
    let listener = TlsListener::new(listener, Arc::clone(&material.config))?;
    let server = Server::spawn("arm", listener, Arc::clone(&service).router());
    tracing::info!(%endpoint, ca = %material.ca_pem_path.display(), "entra id and arm emulator listening");
    Ok(Arm { service, addr, ca_pem_path: material.ca_pem_path, server })
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.files_server.signal();
        if let Some(arm) = &mut self.arm {
            arm.server.signal();
            arm.service.cancel_all();
        }
    }
}
