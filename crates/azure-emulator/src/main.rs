//! `azure-emulator`: runs the Azure Files emulator as a service.
//!
//! ```text
//! azure-emulator --data-dir DIR [--files-addr 127.0.0.1:10004] [--account A] [--key K]
//!                [--error-rate R] [--throttle-rate R] [--after-rate R] [--latency-ms MS]
//!                [--seed N]
//! ```
//!
//! Prints `azure-emulator files <endpoint>` on stdout once it accepts connections,
//! logs to stderr (filter in `RUST_LOG`, default `info`), and stops cleanly on
//! SIGTERM or SIGINT. Exit codes: 0 after a signal, 1 when it cannot start (address
//! taken, bad key, data directory not writable), 2 for bad arguments.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use azure_emulator::{DEFAULT_ACCOUNT, DEFAULT_KEY, Emulator, Faults, FilesConfig};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A local stand-in for Azure Files (REST, SharedKey and SAS) on plain directories.
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
    /// Delay added to every request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the fault generator.
    #[arg(long, default_value_t = Faults::default().seed)]
    seed: u64,
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

    let config = FilesConfig {
        account: args.account,
        key: args.key,
        data_dir: args.data_dir,
        faults: Faults {
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            after_rate: args.after_rate,
            latency: Duration::from_millis(args.latency_ms),
            seed: args.seed,
        },
    };
    tracing::info!(?config, addr = %args.files_addr, "starting");
    let emulator = match Emulator::start(config, args.files_addr).await {
        Ok(emulator) => emulator,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the files emulator");
            return ExitCode::FAILURE;
        }
    };
    // The readiness line scripts wait for; println! flushes at the newline only on a
    // terminal, so flush explicitly for pipes and files.
    println!("azure-emulator files {}", emulator.files_endpoint());
    let _ = std::io::Write::flush(&mut std::io::stdout());

    let signal = wait_for_signal().await;
    tracing::info!(signal, "stopping");
    emulator.shutdown().await;
    ExitCode::SUCCESS
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
