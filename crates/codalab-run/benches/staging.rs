//! Staging a bundle from Azurite, download plus extraction: `bundle::fetch` against
//! `curl -o` then `unzip`, and against the upstream worker's way (Python `urlretrieve`
//! then `zipfile.extractall`), alternating, in the same run, on the same disk.
//!
//! `cargo bench -p codalab-run --bench staging` with the services of
//! `scripts/dev-services up`. Two bundles, built once and kept in
//! `target/bench-data/`: 1 GiB of content (a 700 MiB incompressible file, stored, and
//! 20,000 deflated text files in 200 folders) and 256 MiB (180 MiB and 5,000 files in 50
//! folders), the second to show whether peak memory grows with the bundle. Each is
//! uploaded once per run to Azurite (container `aci-bench-staging`) and read once,
//! unmeasured.
//!
//! Each contender stages into a fresh folder under `target/bench-data/runs/<pid>/`.
//! Wall time covers whole processes. Peak memory is each process's own high-water mark:
//! `VmHWM` of the child that runs `bundle::fetch` (this binary, re-run with `--stage URL
//! ROOT`), `ru_maxrss` of curl, unzip and Python through `tests/python/stage_peers.py
//! measure`. After every run the staged tree is checked (file count and bytes) and the disk
//! synced (not timed). A fourth, informative contender re-runs our steps one at a time
//! (`--stage-phases`: `Transfer::download`, then `archive::extract` and the CodaLab folder
//! rules) to show where the time goes.
//!
//! The staged trees are removed only at the end (they need `rounds` × 4 × 1.25 GiB of
//! disk; the peers' downloaded zips go at once). On ext4 without a journal (the development
//! machine's root file system) the kernel avoids reusing the inodes of files deleted in the
//! last six minutes and scans past every one of them for each new file: right after a
//! 20,000-file tree is removed, creating a file nearby costs about 1 ms instead of 30 µs,
//! which would bury what is measured here. For the same reason a run waits until six
//! minutes have passed since the previous run removed its trees.
//!
//! Environment: `ACI_BENCH_ROUNDS` (default 3), `ACI_BENCH_SIZES` (`all`, the default,
//! `small` or `large`), `ACI_TEST_VENV_PYTHON`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use codalab_run::SignedUrl;
use codalab_run::archive::{self, Limits};
use codalab_run::bundle;
use codalab_run::transfer::{Transfer, TransferConfig};
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const MIB: u64 = 1 << 20;
const CONTAINER: &str = "aci-bench-staging";
const BLOBSTORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/blobstore.py");
const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/stage_peers.py");

/// One test bundle.
struct Bundle {
    /// Name in tables.
    label: &'static str,
    /// File name in `target/bench-data/` and blob name.
    file: &'static str,
    /// Bytes of the one big, incompressible, stored file.
    big: u64,
    /// How many small deflated text files.
    small_files: u64,
    /// Folders the small files are spread over.
    folders: u64,
    /// Bytes of all files together.
    total: u64,
}

impl Bundle {
    /// Entries in the zip: the big file, the small files, `data/` and its folders.
    fn entries(&self) -> u64 {
        1 + self.small_files + 1 + self.folders
    }

    /// Files in the staged tree.
    fn files(&self) -> u64 {
        1 + self.small_files
    }
}

static LARGE: Bundle = Bundle {
    label: "1 GiB",
    file: "staging-1g.zip",
    big: 700 * MIB,
    small_files: 20_000,
    folders: 200,
    total: 1024 * MIB,
};

static SMALL: Bundle = Bundle {
    label: "256 MiB",
    file: "staging-256m.zip",
    big: 180 * MIB,
    small_files: 5_000,
    folders: 50,
    total: 256 * MIB,
};

/// xorshift64*: fast, deterministic, good enough to defeat compression.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The 64 words the small text files are made of (they deflate to about 37 %).
const WORDS: &str = "\
    the of and to in is for that with on as by at from this are be or an was which not it \
    score model train test data label value error loss epoch batch input output result \
    submission reference prediction accuracy metric feature sample weight layer config \
    run task file image token vector matrix mean median max min sum count index true \
    false none";

/// Sizes of the small files: log-uniform between 512 B and 64 KiB (median a few KiB), then
/// scaled so that they add up to exactly `total`.
fn small_sizes(rng: &mut Rng, count: u64, total: u64) -> Vec<u64> {
    let raw: Vec<u64> = (0..count)
        .map(|_| {
            let low = 512u64 << rng.below(7);
            low + rng.below(low)
        })
        .collect();
    let raw_sum: u64 = raw.iter().sum();
    let mut sizes: Vec<u64> = raw
        .iter()
        .map(|&r| u64::try_from(u128::from(r) * u128::from(total) / u128::from(raw_sum)).unwrap())
        .collect();
    let scaled: u64 = sizes.iter().sum();
    *sizes.last_mut().unwrap() += total - scaled;
    sizes
}

/// Fills `out` with `len` bytes of word soup with numbers in it.
fn fill_text(rng: &mut Rng, words: &[&[u8]], out: &mut Vec<u8>, len: usize) {
    out.clear();
    while out.len() < len {
        let r = rng.next();
        out.extend_from_slice(words[(r & 63) as usize]);
        if (r >> 6) & 3 == 0 {
            write!(out, " {}", (r >> 16) % 100_000).unwrap();
        }
        out.push(if (r >> 8) & 15 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
}

/// Whether `path` is a finished zip of `bundle`: the right entries and content bytes.
fn is_built(path: &Path, bundle: &Bundle) -> bool {
    let Ok(file) = File::open(path) else { return false };
    let Ok(archive) = ZipArchive::new(file) else { return false };
    archive.len() as u64 == bundle.entries()
        && archive.decompressed_size() == Some(u128::from(bundle.total))
}

/// Writes the zip of `bundle` at `path` (through a temporary file beside it).
fn build(path: &Path, bundle: &Bundle) {
    let tmp = path.with_extension("zip.tmp");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ bundle.total);
    let sizes = small_sizes(&mut rng, bundle.small_files, bundle.total - bundle.big);
    let mut zip =
        ZipWriter::new(BufWriter::with_capacity(MIB as usize, File::create(&tmp).unwrap()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);

    zip.start_file("weights.bin", stored).unwrap();
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = bundle.big;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = left.min(MIB);
        zip.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }

    zip.add_directory("data/", deflated).unwrap();
    let per_folder = bundle.small_files.div_ceil(bundle.folders);
    let words: Vec<&[u8]> = WORDS.split_whitespace().map(str::as_bytes).collect();
    assert_eq!(words.len(), 64);
    let mut text = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let i = i as u64;
        let folder = i / per_folder;
        if i.is_multiple_of(per_folder) {
            zip.add_directory(format!("data/d{folder:03}/"), deflated).unwrap();
        }
        fill_text(&mut rng, &words, &mut text, size as usize);
        zip.start_file(format!("data/d{folder:03}/f{i:05}.txt"), deflated).unwrap();
        zip.write_all(&text).unwrap();
    }
    zip.finish().unwrap().into_inner().unwrap().sync_all().unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// `target/`: `CARGO_TARGET_DIR`, or three levels above this binary
/// (`target/release/deps/staging-…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("the bench runs from target/<profile>/deps").to_path_buf()
}

fn python() -> String {
    std::env::var("ACI_TEST_VENV_PYTHON")
        .unwrap_or_else(|_| "/var/lib/aci-worker-dev/venv/bin/python".to_owned())
}

/// Runs a command; fails loudly unless it succeeds; returns the last line of its stdout as JSON.
fn json_of(command: &mut Command) -> Value {
    let out = command.stderr(Stdio::inherit()).output().expect("the command starts");
    assert!(out.status.success(), "{command:?} failed: {}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{command:?} printed {stdout:?}: {e}"))
}

fn sync_disk() {
    let status = Command::new("sync").status().expect("sync");
    assert!(status.success(), "sync failed");
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB.
fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Child: `--stage URL ROOT`: stages URL into ROOT/run with `bundle::fetch`.
fn stage(url: &str, root: &Path) {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let transfer = Transfer::new(TransferConfig::default());
    let url = SignedUrl::new(url);
    let staged = rt
        .block_on(bundle::fetch(&transfer, root, "run", &url, &Limits::default()))
        .expect("bundle::fetch");
    assert_eq!(staged.len(), 1, "one bundle, naming no other");
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", json!({"seconds": seconds, "peak_rss_kib": vm_hwm_kib()}));
}

/// Child: `--stage-phases URL ROOT`: the steps of `bundle::fetch` for one zip bundle, one
/// at a time, timed apiece.
fn stage_phases(url: &str, root: &Path) {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let transfer = Transfer::new(TransferConfig::default());
    let url = SignedUrl::new(url);
    let downloads = root.join(".downloads");
    fs::create_dir_all(&downloads).unwrap();
    let part = downloads.join("1-0.part");
    rt.block_on(transfer.download(&url, &part)).expect("download");
    let downloaded = Instant::now();
    let limits = Limits::default();
    let dest = root.join("run");
    assert!(archive::is_zip(&part).unwrap());
    let outer = archive::extract(&part, &dest, &limits).expect("extract");
    archive::hoist_single_folder(&dest).unwrap();
    archive::extract_nested(&dest, &limits.remaining_after(outer)).expect("extract_nested");
    fs::remove_file(&part).unwrap();
    fs::remove_dir(&downloads).unwrap();
    let done = Instant::now();
    println!(
        "{}",
        json!({
            "seconds": (done - start).as_secs_f64(),
            "download_seconds": (downloaded - start).as_secs_f64(),
            "extract_seconds": (done - downloaded).as_secs_f64(),
            "peak_rss_kib": vm_hwm_kib(),
        })
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Ours,
    CurlUnzip,
    Python,
    OursPhases,
}

impl Contender {
    const ALL: [Contender; 4] =
        [Contender::Ours, Contender::CurlUnzip, Contender::Python, Contender::OursPhases];

    fn name(self) -> &'static str {
        match self {
            Contender::Ours => "codalab-run bundle::fetch",
            Contender::CurlUnzip => "curl -o + unzip",
            Contender::Python => "urlretrieve + zipfile",
            Contender::OursPhases => "codalab-run, step by step",
        }
    }

    /// Short name for folders.
    fn tag(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            Contender::CurlUnzip => "curl-unzip",
            Contender::Python => "python",
            Contender::OursPhases => "ours-phases",
        }
    }
}

/// One measured run.
struct Run {
    contender: Contender,
    seconds: f64,
    peak_rss_kib: u64,
    /// Seconds downloading and extracting, when known.
    phases: Option<(f64, f64)>,
}

fn seconds_of(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Runs `contender` once into the fresh folder `root`, checks the tree, and removes the zip
/// a peer downloaded (the tree stays: see the module docs).
fn run_once(contender: Contender, url: &str, root: &Path, bundle: &Bundle) -> Run {
    fs::create_dir(root).unwrap();
    let zip = root.join("bundle.zip");
    let dest = root.join("run");
    let exe = std::env::current_exe().unwrap();
    let run = match contender {
        Contender::Ours | Contender::OursPhases => {
            let mode = if contender == Contender::Ours { "--stage" } else { "--stage-phases" };
            let start = Instant::now();
            let v = json_of(Command::new(&exe).arg(mode).arg(url).arg(root));
            let seconds = start.elapsed().as_secs_f64();
            let phases = (contender == Contender::OursPhases)
                .then(|| (seconds_of(&v, "download_seconds"), seconds_of(&v, "extract_seconds")));
            Run { contender, seconds, peak_rss_kib: v["peak_rss_kib"].as_u64().unwrap(), phases }
        }
        Contender::CurlUnzip => {
            let v = json_of(
                Command::new(python())
                    .args([PEERS, "measure", "--", "curl", "-sS", "-o"])
                    .arg(&zip)
                    .arg(url)
                    .args(["--then", "unzip", "-q"])
                    .arg(&zip)
                    .arg("-d")
                    .arg(&dest),
            );
            let steps = v["steps"].as_array().unwrap();
            let phases = (seconds_of(&steps[0], "seconds"), seconds_of(&steps[1], "seconds"));
            let peak_rss_kib = v["peak_rss_kib"].as_u64().unwrap();
            Run {
                contender,
                seconds: seconds_of(&v, "seconds"),
                peak_rss_kib,
                phases: Some(phases),
            }
        }
        Contender::Python => {
            let timings = root.join("timings.json");
            let v = json_of(
                Command::new(python())
                    .args([PEERS, "measure", "--"])
                    .arg(python())
                    .args([PEERS, "pyextract", "--timings"])
                    .arg(&timings)
                    .arg(url)
                    .arg(&zip)
                    .arg(&dest),
            );
            let t: Value = serde_json::from_slice(&fs::read(&timings).unwrap()).unwrap();
            let phases = (seconds_of(&t, "download_seconds"), seconds_of(&t, "extract_seconds"));
            let peak_rss_kib = v["peak_rss_kib"].as_u64().unwrap();
            Run {
                contender,
                seconds: seconds_of(&v, "seconds"),
                peak_rss_kib,
                phases: Some(phases),
            }
        }
    };
    let (files, bytes) = tree_size(&dest);
    assert!(
        files == bundle.files() && bytes == bundle.total,
        "{} staged {files} files and {bytes} bytes of the {} bundle, not {} files and {} bytes",
        contender.name(),
        bundle.label,
        bundle.files(),
        bundle.total
    );
    let leftovers: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| !["run", "bundle.zip", "timings.json"].contains(&name.to_str().unwrap()))
        .collect();
    assert!(leftovers.is_empty(), "{} left {leftovers:?} behind", contender.name());
    if contender != Contender::Ours && contender != Contender::OursPhases {
        fs::remove_file(&zip).unwrap();
    }
    sync_disk();
    run
}

/// Regular files under `dir` and their bytes (not following symbolic links).
fn tree_size(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// The results of one bundle.
struct Measured {
    bundle: &'static Bundle,
    zip_bytes: u64,
    runs: Vec<Run>,
}

fn bench(bundle: &'static Bundle, data: &Path, runs_dir: &Path, rounds: usize) -> Measured {
    let path = data.join(bundle.file);
    if is_built(&path, bundle) {
        println!("{}: reusing {}", bundle.label, path.display());
    } else {
        let start = Instant::now();
        build(&path, bundle);
        assert!(is_built(&path, bundle), "the zip just built is not what was meant");
        println!(
            "{}: built {} in {:.1} s",
            bundle.label,
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    let zip_bytes = fs::metadata(&path).unwrap().len();

    let start = Instant::now();
    let put = json_of(
        Command::new(python())
            .args([BLOBSTORE, "put", "--store", "azurite", "--container", CONTAINER, "--name"])
            .arg(bundle.file)
            .arg("--file")
            .arg(&path),
    );
    let url = put["url"].as_str().unwrap().to_owned();
    sync_disk();
    println!(
        "{}: zip of {:.1} MiB uploaded to Azurite in {:.1} s (not measured)",
        bundle.label,
        zip_bytes as f64 / MIB as f64,
        start.elapsed().as_secs_f64()
    );
    // One unmeasured read, so that no contender is the first to read the new blob.
    let warm_up = Command::new("curl").args(["-sS", "-o", "/dev/null", &url]).status().unwrap();
    assert!(warm_up.success(), "curl could not read the blob");

    let stem = bundle.file.trim_end_matches(".zip");
    let mut runs = Vec::new();
    for round in 0..rounds {
        for k in 0..Contender::ALL.len() {
            let contender = Contender::ALL[(round + k) % Contender::ALL.len()];
            let root = runs_dir.join(format!("{stem}-r{}-{}", round + 1, contender.tag()));
            let run = run_once(contender, &url, &root, bundle);
            let phases = run.phases.map_or_else(String::new, |(download, extract)| {
                format!(" (download {download:.2} s, extract {extract:.2} s)")
            });
            println!(
                "{} round {}: {:<26} {:>7.2} s {:>7.1} MiB peak{phases}",
                bundle.label,
                round + 1,
                contender.name(),
                run.seconds,
                run.peak_rss_kib as f64 / 1024.0
            );
            runs.push(run);
        }
    }
    Measured { bundle, zip_bytes, runs }
}

fn report(results: &[Measured]) {
    println!();
    println!(
        "{:<26} {:<8} {:>9} {:>8} {:>14}",
        "contender", "bundle", "median s", "MB/s", "peak RSS MiB"
    );
    for m in results {
        for contender in Contender::ALL {
            let runs: Vec<&Run> = m.runs.iter().filter(|r| r.contender == contender).collect();
            let secs = median(runs.iter().map(|r| r.seconds).collect());
            let peak = runs.iter().map(|r| r.peak_rss_kib).max().unwrap();
            println!(
                "{:<26} {:<8} {:>9.2} {:>8.0} {:>14.1}",
                contender.name(),
                m.bundle.label,
                secs,
                m.bundle.total as f64 / 1e6 / secs,
                peak as f64 / 1024.0
            );
        }
    }
    println!();
    println!(
        "MB/s: content bytes (1 GiB or 256 MiB) per median second; peak: largest of the runs."
    );
    println!();
    println!(
        "{:<26} {:<8} {:>12} {:>12} {:>12}",
        "phases", "bundle", "download s", "MB/s", "extract s"
    );
    for m in results {
        for contender in [Contender::OursPhases, Contender::CurlUnzip, Contender::Python] {
            let phases: Vec<(f64, f64)> = m
                .runs
                .iter()
                .filter(|r| r.contender == contender)
                .filter_map(|r| r.phases)
                .collect();
            let download = median(phases.iter().map(|p| p.0).collect());
            let extract = median(phases.iter().map(|p| p.1).collect());
            println!(
                "{:<26} {:<8} {:>12.2} {:>12.0} {:>12.2}",
                contender.name(),
                m.bundle.label,
                download,
                m.zip_bytes as f64 / 1e6 / download,
                extract
            );
        }
    }
    println!();
    println!("phases MB/s: zip bytes downloaded per median second of download.");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--stage") => return stage(&args[2], Path::new(&args[3])),
        Some("--stage-phases") => return stage_phases(&args[2], Path::new(&args[3])),
        _ => {}
    }
    let rounds: usize =
        std::env::var("ACI_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    assert!(rounds > 0, "ACI_BENCH_ROUNDS must be at least 1");
    let sizes = std::env::var("ACI_BENCH_SIZES").unwrap_or_else(|_| "all".to_owned());
    let bundles: Vec<&'static Bundle> = match sizes.as_str() {
        "all" => vec![&LARGE, &SMALL],
        "small" => vec![&SMALL],
        "large" => vec![&LARGE],
        other => panic!("ACI_BENCH_SIZES is all, small or large, not {other:?}"),
    };
    let data = target_dir().join("bench-data");
    let all_runs = data.join("runs");
    fs::create_dir_all(&all_runs).unwrap();
    for stale in fs::read_dir(&all_runs).unwrap() {
        let stale = stale.unwrap().path();
        let pid = stale.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| is_bench_process(*pid)) {
            panic!("another run of this benchmark (pid {pid}) is using {}", stale.display());
        }
        println!(
            "warning: removing {} (left by an interrupted run); file creation in its \
             area of the disk may be slower for a few minutes",
            stale.display()
        );
        if stale.is_dir() {
            fs::remove_dir_all(&stale).unwrap();
            sync_disk();
            mark_removed(&all_runs);
        }
    }
    let needed: u64 =
        bundles.iter().map(|b| b.total * (rounds * Contender::ALL.len()) as u64).sum();
    let available = available_bytes(&all_runs);
    assert!(
        available > needed + 4 * (1 << 30),
        "the staged trees are kept until the end: {:.1} GiB are needed on {}, {:.1} GiB are free",
        needed as f64 / (1u64 << 30) as f64,
        all_runs.display(),
        available as f64 / (1u64 << 30) as f64
    );
    wait_for_quiet_inodes(&all_runs);
    let runs_dir = all_runs.join(std::process::id().to_string());
    fs::create_dir(&runs_dir).unwrap();
    let results: Vec<Measured> =
        bundles.into_iter().map(|b| bench(b, &data, &runs_dir, rounds)).collect();
    report(&results);
    let start = Instant::now();
    fs::remove_dir_all(&runs_dir).unwrap();
    sync_disk();
    mark_removed(&all_runs);
    println!(
        "\nremoved the staged trees in {:.1} s; wait a few minutes before running again \
         (see the module docs)",
        start.elapsed().as_secs_f64()
    );
}

/// Where the time of the last removal of staged trees is kept (seconds since the epoch).
const REMOVED_AT: &str = "removed-at";
/// How long ext4 without a journal avoids reusing the inodes of deleted files (up to 360 s:
/// `RECENTCY_MIN` plus `RECENTCY_DIRTY` in `fs/ext4/ialloc.c`), and some margin.
const INODE_QUIET: Duration = Duration::from_secs(380);

fn mark_removed(all_runs: &Path) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    fs::write(all_runs.parent().unwrap().join(REMOVED_AT), now.to_string()).unwrap();
}

/// Sleeps until `INODE_QUIET` has passed since the last removal of staged trees: until then
/// every file created near them costs up to a millisecond (see the module docs).
fn wait_for_quiet_inodes(all_runs: &Path) {
    let Ok(text) = fs::read_to_string(all_runs.parent().unwrap().join(REMOVED_AT)) else {
        return;
    };
    let removed = UNIX_EPOCH + Duration::from_secs(text.trim().parse().unwrap_or(0));
    let since = SystemTime::now().duration_since(removed).unwrap_or_default();
    if let Some(left) = INODE_QUIET.checked_sub(since) {
        println!(
            "staged trees were removed {} s ago: waiting {} s until their inodes are reusable",
            since.as_secs(),
            left.as_secs()
        );
        std::thread::sleep(left);
    }
}

/// Whether process `pid` is alive and runs this benchmark.
fn is_bench_process(pid: u32) -> bool {
    let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) else { return false };
    exe.file_name() == std::env::current_exe().unwrap().file_name()
}

/// Bytes free for this user on the file system of `path` (`df`).
fn available_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().unwrap();
    assert!(out.status.success(), "df failed");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}
