//! Publishing and collecting a 1 GiB tree (one large file and 10,000 small ones)
//! against the project's Azure Files emulator, side by side with the official Python
//! SDK (`azure-storage-file-share`, `max_concurrency=8`) on the same emulator in the
//! same run.
//!
//! Each client runs in its own child process so that its peak memory is its own;
//! the emulator runs in this process on its own runtime.
//!
//! ```text
//! source <(scripts/dev-services env)
//! cargo bench -p afs-staging --bench publish_collect [-- --rounds N --small N --large-mib N]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use afs_staging::auth::SharedKey;
use afs_staging::{
    ClientConfig, Credential, Download, FileClient, RemotePath, Stager, StagingConfig, Upload,
    VolumeName,
};
use azure_emulator::{Emulator, Faults, FilesConfig};
use compute::{JobId, WorkspacePath};

const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Measured {
    seconds: f64,
    bytes: u64,
    files: u64,
    peak_kib: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--client") {
        client_main(&args[2..]);
        return;
    }
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = option("--rounds", 2);
    let small = option("--small", 10_000);
    let large_mib = option("--large-mib", 960);
    let python = std::env::var("ACI_TEST_VENV_PYTHON")
        .expect("ACI_TEST_VENV_PYTHON: run `source <(scripts/dev-services env)` first");

    let scratch = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into()))
        .expect("scratch folder");
    let tree = scratch.path().join("tree");
    build_tree(&tree, small as usize, large_mib << 20);
    let total: u64 = walk_bytes(&tree);
    println!(
        "tree: {small} small files + one {large_mib} MiB file = {:.1} MiB",
        total as f64 / 1048576.0
    );

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let data = scratch.path().join("emulator");
    let emulator = runtime.block_on(async {
        let config = FilesConfig {
            account: ACCOUNT.into(),
            key: KEY.into(),
            data_dir: data,
            faults: Faults::default(),
        };
        Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
    });
    let endpoint = emulator.files_endpoint();
    let me = std::env::current_exe().unwrap();

    for round in 1..=rounds {
        let share = format!("bench-rust-{round}");
        let rust_up =
            child(Command::new(&me).args(["--client", "publish", &endpoint, &share]).arg(&tree));
        let back = scratch.path().join(format!("rust-back-{round}"));
        let rust_down =
            child(Command::new(&me).args(["--client", "collect", &endpoint, &share]).arg(&back));
        assert_eq!(rust_down.bytes, total, "Rust collected every byte");
        std::fs::remove_dir_all(&back).unwrap();
        std::fs::remove_dir_all(emulator.share_dir(&format!("{share}-run"))).ok();

        let share = format!("bench-python-{round}");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/sdk_tree.py");
        let py_up = child(
            Command::new(&python)
                .args([script, "publish", &endpoint, ACCOUNT, KEY, &share])
                .arg(&tree),
        );
        let back = scratch.path().join(format!("python-back-{round}"));
        let py_down = child(
            Command::new(&python)
                .args([script, "collect", &endpoint, ACCOUNT, KEY, &share])
                .arg(&back),
        );
        assert_eq!(py_down.bytes, total, "Python collected every byte");
        std::fs::remove_dir_all(&back).unwrap();
        std::fs::remove_dir_all(emulator.share_dir(&share)).ok();

        for (what, rust, python) in
            [("publish", &rust_up, &py_up), ("collect", &rust_down, &py_down)]
        {
            println!(
                "round {round} {what}: Rust {:.1} s {:.1} MiB/s peak {:.0} MiB ({} files) | \
                 Python SDK {:.1} s {:.1} MiB/s peak {:.0} MiB ({} files) | speed-up {:.2}x",
                rust.seconds,
                mib_per_s(rust),
                rust.peak_kib as f64 / 1024.0,
                rust.files,
                python.seconds,
                mib_per_s(python),
                python.peak_kib as f64 / 1024.0,
                python.files,
                python.seconds / rust.seconds,
            );
        }
        std::io::stdout().flush().unwrap();
    }
    runtime.block_on(emulator.shutdown());
}

fn mib_per_s(m: &Measured) -> f64 {
    m.bytes as f64 / 1048576.0 / m.seconds
}

fn child(command: &mut Command) -> Measured {
    let output = command.output().expect("client process");
    assert!(output.status.success(), "client failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or("");
    let field = |name: &str| -> f64 {
        let key = format!("\"{name}\": ");
        let start = line.find(&key).unwrap_or_else(|| panic!("{name} in {line}")) + key.len();
        let rest = &line[start..];
        let end = rest.find([',', '}']).unwrap();
        rest[..end].trim().parse().unwrap()
    };
    Measured {
        seconds: field("seconds"),
        bytes: field("bytes") as u64,
        files: field("files") as u64,
        peak_kib: field("peak_kib") as u64,
    }
}

/// The Rust side, in its own process: `--client publish|collect ENDPOINT SHARE DIR`.
fn client_main(args: &[String]) {
    let (mode, endpoint, share, dir) = (&args[0], &args[1], &args[2], PathBuf::from(&args[3]));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (seconds, stats) = runtime.block_on(async {
        let credential = Credential::SharedKey(SharedKey::new(ACCOUNT, KEY).unwrap());
        let client = FileClient::new(ClientConfig::new(endpoint.clone(), credential)).unwrap();
        let stager = Stager::shares(client, StagingConfig::default());
        let job = JobId::new(share.clone()).unwrap();
        let volume = VolumeName::new("run").unwrap();
        let started = Instant::now();
        let stats = if mode == "publish" {
            let workspace = dir.parent().unwrap();
            let name = dir.file_name().unwrap().to_str().unwrap();
            let uploads = [Upload {
                local: WorkspacePath::new(name).unwrap(),
                volume: volume.clone(),
                remote: RemotePath::root(),
            }];
            stager.publish(&job, workspace, &[], &uploads).await.unwrap()
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            let downloads = [Download {
                volume: volume.clone(),
                remote: RemotePath::root(),
                local: WorkspacePath::new("tree").unwrap(),
            }];
            stager.collect(&job, &dir, &downloads).await.unwrap()
        };
        (started.elapsed().as_secs_f64(), stats)
    });
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .unwrap_or(0);
    println!(
        "{{\"seconds\": {seconds}, \"files\": {}, \"bytes\": {}, \"peak_kib\": {peak_kib}}}",
        stats.files, stats.bytes
    );
}

fn build_tree(root: &Path, small: usize, large: u64) {
    std::fs::create_dir_all(root).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut block = vec![0u8; 1 << 20];
    for chunk in block.chunks_mut(8) {
        chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
    }
    for i in 0..small {
        let dir = root.join(format!("part-{:03}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let len = (next() % 12_000) as usize + 1;
        let start = (next() % (block.len() - len) as u64) as usize;
        std::fs::write(dir.join(format!("sample-{i:05}.dat")), &block[start..start + len]).unwrap();
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(root.join("model.bin")).unwrap());
    let mut written = 0u64;
    let mut index = 0u64;
    while written < large {
        block[..8].copy_from_slice(&index.to_le_bytes());
        let n = (large - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        written += n as u64;
        index += 1;
    }
    file.flush().unwrap();
}

fn walk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() { walk_bytes(&e.path()) } else { meta.len() }
        })
        .sum()
}
