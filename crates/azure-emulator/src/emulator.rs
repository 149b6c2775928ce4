//! The running emulator: its listener, its server task and a handle to both.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::Faults;
use crate::files::{FilesConfig, FilesService};

/// How long [`Emulator::shutdown`] lets open requests finish before it cuts them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running emulator. Dropping it stops the server too, without waiting.
pub struct Emulator {
    files: Arc<FilesService>,
    files_addr: SocketAddr,
    files_endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("files_endpoint", &self.files_endpoint).finish()
    }
}

impl Emulator {
    /// Starts the Files service on `addr` (port 0 picks a free port) and returns once
    /// it accepts connections. Fails when the address is taken, the key is not base64,
    /// the account name is not a storage account name, or the data directory cannot
    /// be created.
    pub async fn start(config: FilesConfig, addr: SocketAddr) -> io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let files_addr = listener.local_addr()?;
        let files_endpoint = format!("http://{files_addr}/{}", config.account);
        let endpoint = files_endpoint.clone();
        let files = tokio::task::spawn_blocking(move || FilesService::new(config, endpoint))
            .await
            .map_err(io::Error::other)??;
        let files = Arc::new(files);

        let (stop, stopped) = oneshot::channel::<()>();
        let listener = listener.tap_io(|tcp| {
            // Small answers (headers only) go out at once.
            let _ = tcp.set_nodelay(true);
        });
        let server =
            axum::serve(listener, Arc::clone(&files).router()).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
        let task = tokio::spawn(async move { server.await });
        tracing::info!(endpoint = %files_endpoint, "azure files emulator listening");
        Ok(Emulator { files, files_addr, files_endpoint, stop: Some(stop), task: Some(task) })
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

    /// Replaces the injected faults; the generator restarts from their seed.
    pub fn set_faults(&self, faults: Faults) {
        self.files.set_faults(faults);
    }

    /// How many requests have been answered, failed and faulted ones included.
    pub fn requests_served(&self) -> u64 {
        self.files.requests_served()
    }

    /// Stops accepting connections, lets open requests finish (for a few seconds at
    /// most) and returns when the server has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else { return };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "the files server failed"),
            Ok(Err(err)) => tracing::warn!(error = %err, "the files server task failed"),
            Err(_) => {
                tracing::warn!("requests still open after the grace period; closing them");
                task.abort();
            }
        }
        tracing::info!(endpoint = %self.files_endpoint, "azure files emulator stopped");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
