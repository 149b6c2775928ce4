//! `azure-emulator`: runs the Azure Files emulator as a service, and with `--arm-addr`
//! also Entra ID tokens and ARM / Azure Container Instances (container groups run on
//! the Docker engine named by `DOCKER_HOST`).
//!
//! ```text
//! azure-emulator --data-dir DIR [--files-addr 127.0.0.1:10004] [--account A] [--key K]
//!                [--error-rate R] [--throttle-rate R] [--after-rate R] [--latency-ms MS]
//!                [--latency-rate R] [--seed N]
//!                [--arm-addr 127.0.0.1:10005 [--tls-dir DIR] [--instant] [--no-docker]
//!                 [--tenant-id ID] [--client-id ID] [--client-secret S]
//!                 [--subscription-id ID] [--resource-group RG]... [--location L]
//!                 [--token-lifetime-secs N] [--identity-header S] [--azure-creds-file F]
//!                 [--arm-throttle N] [--arm-server-errors N] [--arm-quota N]
//!                 [--arm-capacity N] [--provisioning-delay-ms MS] [--spot-evictions N]
//!                 [--spot-eviction-delay-ms MS] [--fail-pulls PATTERN]...]
//! ```
//!
//! Prints `azure-emulator files <endpoint>` (and `azure-emulator arm <endpoint>`) on
//! stdout once it accepts connections, logs to stderr (filter in `RUST_LOG`, default
//! `info`), and stops cleanly on SIGTERM or SIGINT, removing the containers of running
//! groups. Exit codes: 0 after a signal, 1 when it cannot start (address taken, bad
//! key, data directory not writable), 2 for bad arguments.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use azure_emulator::{
    ArmConfig, ArmFaults, DEFAULT_ACCOUNT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    DEFAULT_IDENTITY_HEADER, DEFAULT_KEY, DEFAULT_LOCATION, DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID, Emulator, Faults, FilesConfig,
};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A local stand-in for Azure Files (REST, SharedKey and SAS) on plain directories,
/// and for Entra ID and ARM / Azure Container Instances on the local Docker engine.
#[derive(Debug, Parser)]
#[command(name = "azure-emulator", version)]
struct Args {
    /// Where shares are kept: <DIR>/shares/<share>/ holds a share's files. Created
    /// if missing.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Address of the Files service.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:10004")]
    files_addr: SocketAddr,
    /// Storage account name.
    #[arg(long, default_value = DEFAULT_ACCOUNT)]
    account: String,
    /// Account key, base64 (default: Azurite's well-known key).
    #[arg(long, default_value = DEFAULT_KEY, hide_default_value = true)]
    key: String,
    /// Fraction of requests answered 500 InternalError or 503 ServerBusy.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = rate)]
    error_rate: f64,
    /// Fraction of requests answered 503 ServerBusy with Retry-After: 1.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = rate)]
    throttle_rate: f64,
    /// Fraction of requests carried out and then answered 500 InternalError.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = rate)]
    after_rate: f64,
    /// Delay added to requests, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests delayed by --latency-ms (default: all).
    #[arg(long, value_name = "RATE", default_value_t = 1.0, value_parser = rate)]
    latency_rate: f64,
    /// For this long after a share is deleted, creating one of its name is answered
    /// 409 ShareBeingDeleted, as on Azure.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    share_deletion_lag_ms: u64,
    /// Seed of the fault generator.
    #[arg(long, default_value_t = Faults::default().seed)]
    seed: u64,

    /// Also serve Entra ID and ARM (HTTPS) on this address.
    #[arg(long, value_name = "ADDR", help_heading = "ARM")]
    arm_addr: Option<SocketAddr>,
    /// Where the test CA (ca.pem) is written [default: <DATA_DIR>/tls].
    #[arg(long, value_name = "DIR", help_heading = "ARM")]
    tls_dir: Option<PathBuf>,
    /// Complete every container group at once (all containers exit 0), without Docker.
    #[arg(long, help_heading = "ARM")]
    instant: bool,
    /// Run no containers: groups that are not instant fail to provision.
    #[arg(long, help_heading = "ARM")]
    no_docker: bool,
    /// Tenant id.
    #[arg(long, default_value = DEFAULT_TENANT_ID, help_heading = "ARM")]
    tenant_id: String,
    /// The service principal's client id.
    #[arg(long, default_value = DEFAULT_CLIENT_ID, help_heading = "ARM")]
    client_id: String,
    /// The service principal's secret (default: a public test value).
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET, hide_default_value = true, help_heading = "ARM")]
    client_secret: String,
    /// Subscription id.
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION_ID, help_heading = "ARM")]
    subscription_id: String,
    /// A resource group of the subscription, repeatable [default: aci-worker-test].
    #[arg(long = "resource-group", value_name = "RG", help_heading = "ARM")]
    resource_groups: Vec<String>,
    /// Location of the resource groups.
    #[arg(long, default_value = DEFAULT_LOCATION, help_heading = "ARM")]
    location: String,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600, help_heading = "ARM")]
    token_lifetime_secs: u64,
    /// The X-IDENTITY-HEADER secret of the managed identity endpoint.
    #[arg(long, default_value = DEFAULT_IDENTITY_HEADER, hide_default_value = true, help_heading = "ARM")]
    identity_header: String,
    /// Write the `az ad sp create-for-rbac --sdk-auth` credentials file here.
    #[arg(long, value_name = "FILE", help_heading = "ARM")]
    azure_creds_file: Option<PathBuf>,
    /// Answer the next N ARM requests 429 with Retry-After: 1.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "ARM faults")]
    arm_throttle: u32,
    /// Answer the next N ARM requests 500.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "ARM faults")]
    arm_server_errors: u32,
    /// Refuse the next N container group PUTs with 409 ContainerGroupQuotaReached.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "ARM faults")]
    arm_quota: u32,
    /// Refuse the next N container group PUTs with 503 ServiceUnavailable (capacity).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "ARM faults")]
    arm_capacity: u32,
    /// Keep new container groups Pending this long before pulling their images.
    #[arg(long, value_name = "MS", default_value_t = 0, help_heading = "ARM faults")]
    provisioning_delay_ms: u64,
    /// Evict the next N Spot container groups once their containers started.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "ARM faults")]
    spot_evictions: u32,
    /// How long evicted Spot groups run before the eviction.
    #[arg(long, value_name = "MS", default_value_t = 0, help_heading = "ARM faults")]
    spot_eviction_delay_ms: u64,
    /// Fail pulls of images whose reference contains PATTERN (repeatable).
    #[arg(long, value_name = "PATTERN", help_heading = "ARM faults")]
    fail_pulls: Vec<String>,
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let arm = args.arm_addr.map(|addr| {
        let tls_dir = args.tls_dir.clone().unwrap_or_else(|| args.data_dir.join("tls"));
        let mut config = ArmConfig::new(tls_dir);
        config.tenant_id = args.tenant_id.clone();
        config.client_id = args.client_id.clone();
        config.client_secret = args.client_secret.clone();
        config.subscription_id = args.subscription_id.clone();
        if !args.resource_groups.is_empty() {
            config.resource_groups = args.resource_groups.clone();
        } else {
            config.resource_groups = vec![DEFAULT_RESOURCE_GROUP.to_owned()];
        }
        config.location = args.location.clone();
        config.instant = args.instant;
        if args.no_docker {
            config.docker = None;
        }
        config.token_lifetime = Duration::from_secs(args.token_lifetime_secs);
        config.identity_header = args.identity_header.clone();
        config.faults = ArmFaults {
            throttle: args.arm_throttle,
            server_errors: args.arm_server_errors,
            quota_exceeded: args.arm_quota,
            capacity_unavailable: args.arm_capacity,
            provisioning_delay: Duration::from_millis(args.provisioning_delay_ms),
            spot_evictions: args.spot_evictions,
            spot_eviction_delay: Duration::from_millis(args.spot_eviction_delay_ms),
            pull_failures: args.fail_pulls.clone(),
            ..ArmFaults::default()
        };
        (config, addr)
    });
    let config = FilesConfig {
        account: args.account,
        key: args.key,
        data_dir: args.data_dir,
        faults: Faults {
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            after_rate: args.after_rate,
            latency: Duration::from_millis(args.latency_ms),
            latency_rate: args.latency_rate,
            share_deletion_lag: Duration::from_millis(args.share_deletion_lag_ms),
            seed: args.seed,
        },
    };
    tracing::info!(?config, addr = %args.files_addr, arm = ?arm, "starting");
    let emulator = match Emulator::start_with(config, args.files_addr, arm).await {
        Ok(emulator) => emulator,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the files emulator");
            return ExitCode::FAILURE;
        }
    };
    // The readiness line scripts wait for; println! flushes at the newline only on a
    // terminal, so flush explicitly for pipes and files.
    if let Some(path) = &args.azure_creds_file
        && let Err(err) = write_private(path, emulator.azure_creds_json().as_bytes())
    {
        tracing::error!(path = %path.display(), error = %err, "cannot write the credentials file");
        emulator.shutdown().await;
        return ExitCode::FAILURE;
    }
    println!("azure-emulator files {}", emulator.files_endpoint());
    if args.arm_addr.is_some() {
        println!("azure-emulator arm {}", emulator.arm_endpoint());
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());

    let signal = wait_for_signal().await;
    tracing::info!(signal, "stopping");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// Writes a file only its owner can read, through a rename.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(&mut file, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Waits for SIGTERM or SIGINT and names it.
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
