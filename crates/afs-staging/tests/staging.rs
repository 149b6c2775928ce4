//! Staging against the project's Azure Files emulator, started in-process for each
//! test so that faults stay local to it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use afs_staging::auth::{SasPermission, SharedKey, share_sas};
use afs_staging::{
    ClientConfig, Credential, Download, FileClient, RemotePath, Stager, StagingConfig, Upload,
    VolumeName,
};
use azure_emulator::{Emulator, Faults, FilesConfig};
use compute::{JobId, WorkspacePath};

const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Setup {
    emulator: Emulator,
    _data: tempfile::TempDir,
}

async fn emulator(faults: Faults) -> Setup {
    let data = tempfile::tempdir().unwrap();
    let config = FilesConfig {
        account: ACCOUNT.to_owned(),
        key: KEY.to_owned(),
        data_dir: data.path().to_path_buf(),
        faults,
    };
    let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    Setup { emulator, _data: data }
}

fn client(setup: &Setup, key: &str) -> FileClient {
    client_with_pages(setup, key, None)
}

/// A client configuration for tests: the test account's key and short pauses
/// between attempts (5 ms, doubling to at most 50 ms).
fn test_config(endpoint: String) -> ClientConfig {
    let mut config =
        ClientConfig::new(endpoint, Credential::SharedKey(SharedKey::new(ACCOUNT, KEY).unwrap()));
    config.initial_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(50);
    config
}

/// A client that asks for `page_size` entries per page of a listing.
fn client_with_pages(setup: &Setup, key: &str, page_size: Option<u32>) -> FileClient {
    let mut config = test_config(setup.emulator.files_endpoint());
    config.credential = Credential::SharedKey(SharedKey::new(ACCOUNT, key).unwrap());
    config.attempts = 30;
    config.list_page_size = page_size;
    FileClient::new(config).unwrap()
}

fn stager(setup: &Setup) -> Stager {
    stager_with_pages(setup, None)
}

fn stager_with_pages(setup: &Setup, page_size: Option<u32>) -> Stager {
    Stager::shares(
        client_with_pages(setup, KEY, page_size),
        StagingConfig { worker: "test-worker".into(), ..Default::default() },
    )
}

/// A mounted-mode stager on the share mounted at `mount`.
fn mounted_stager(mount: &Path) -> Stager {
    Stager::mounted(mount.to_path_buf(), "afs-share".into(), None, StagingConfig::default())
}

fn ws(path: &str) -> WorkspacePath {
    WorkspacePath::new(path).unwrap()
}

fn vol(name: &str) -> VolumeName {
    VolumeName::new(name).unwrap()
}

fn remote(path: &str) -> RemotePath {
    RemotePath::new(path).unwrap()
}

/// Bytes that differ from block to block, so a range written at the wrong offset
/// shows.
fn write_patterned(path: &Path, len: u64, seed: u64) {
    let mut block = vec![0u8; 1 << 20];
    let mut state = seed | 1;
    for byte in block.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut index = 0u64;
    while written < len {
        block[..8].copy_from_slice(&index.to_le_bytes());
        let n = (len - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        written += n as u64;
        index += 1;
    }
    file.flush().unwrap();
}

/// Every file and folder under `root`, relative, with file contents compared by the
/// caller through `same_tree`.
fn listing(root: &Path) -> Vec<(String, Option<u64>)> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, Option<u64>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push((relative, None));
                visit(root, &path, out);
            } else {
                out.push((relative, Some(meta.len())));
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut out);
    out.sort();
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (la, lb) = (listing(a), listing(b));
    assert_eq!(la.len(), lb.len(), "entry count");
    assert_eq!(la, lb);
    for (path, len) in la {
        if len.is_some() {
            assert!(same_file(&a.join(&path), &b.join(&path)), "{path} differs");
        }
    }
}

const ODD_NAMES: [&str; 8] = [
    "with space.txt",
    "plus+sign",
    "per%20cent",
    "ü ñ 漢字",
    "amp&hash#",
    "semi;colon",
    "quote'",
    "~tilde",
];

/// A tree of `small` files spread over folders, odd names, empty files and folders.
fn build_tree(root: &Path, small: usize, large: u64) {
    std::fs::create_dir_all(root.join("empty/nested-empty")).unwrap();
    for i in 0..small {
        let dir = root.join(format!("d{:02}/e{}", i % 50, i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i} {}", "x".repeat(i % 300)))
            .unwrap();
    }
    let odd = root.join("odd names");
    std::fs::create_dir_all(&odd).unwrap();
    for (i, name) in ODD_NAMES.iter().enumerate() {
        std::fs::write(odd.join(name), format!("odd {i}")).unwrap();
    }
    std::fs::write(root.join("empty-file"), b"").unwrap();
    if large > 0 {
        write_patterned(&root.join("large.bin"), large, 7);
    }
}

async fn round_trip(setup: &Setup, stager: &Stager, job: &str, small: usize, large: u64) {
    let local = tempfile::tempdir().unwrap();
    build_tree(&local.path().join("run"), small, large);
    let job = JobId::new(job).unwrap();
    let share_dir = setup.emulator.share_dir(&stager.location(&job, &vol("run")).share);
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: remote("data") }];
    let up = stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    assert_eq!(up.files as usize, small + ODD_NAMES.len() + 1 + usize::from(large > 0));

    // The share holds exactly the tree.
    assert_same_tree(&local.path().join("run"), &share_dir.join("data"));

    let back = tempfile::tempdir().unwrap();
    let downloads = [Download { volume: vol("run"), remote: remote("data"), local: ws("copy") }];
    let down = stager.collect(&job, back.path(), &downloads).await.unwrap();
    assert_eq!(down.files, up.files);
    assert_eq!(down.bytes, up.bytes);
    assert_same_tree(&local.path().join("run"), &back.path().join("copy"));

    stager.discard(&job).await.unwrap();
    assert!(!share_dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_files_a_large_one_and_odd_names_round_trip() {
    let setup = emulator(Faults::default()).await;
    round_trip(&setup, &stager(&setup), "tree-10k", 10_000, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_storm_still_gives_identical_bytes() {
    // The same round trip without faults, for the number of requests it needs.
    let calm = emulator(Faults::default()).await;
    round_trip(&calm, &stager(&calm), "storm", 400, 20 * (1 << 20) + 12_345).await;
    let needed = calm.emulator.requests_served();
    assert!(needed > 1000, "{needed}");

    // About 37% of requests fail (30% before their effect, a tenth of the rest
    // after it). The test clients try 30 times: with the default 8, one request in
    // about 2,800 would still fail at this rate, far above any rate Azure shows, and
    // the test would be a lottery.
    let faults = Faults { error_rate: 0.3, after_rate: 0.1, seed: 42, ..Faults::default() };
    let setup = emulator(faults).await;
    round_trip(&setup, &stager(&setup), "storm", 400, 20 * (1 << 20) + 12_345).await;
    let served = setup.emulator.requests_served();
    // Every failed answer cost one more request: about 1.6 times as many in all.
    assert!(served > needed * 13 / 10, "too few faults met: {served} served, {needed} needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out() {
    // The same round trip without faults needs this many requests; every throttled
    // answer (given before the operation is carried out) costs one more.
    let calm = emulator(Faults::default()).await;
    round_trip(&calm, &stager(&calm), "throttled", 30, 5 << 20).await;
    let needed = calm.emulator.requests_served();
    assert!(needed > 50, "{needed}");

    let faults = Faults { throttle_rate: 0.1, seed: 7, ..Faults::default() };
    let setup = emulator(faults).await;
    round_trip(&setup, &stager(&setup), "throttled", 30, 5 << 20).await;
    let served = setup.emulator.requests_served();
    assert!(served > needed, "no request was throttled: {served} served, {needed} needed");
}

/// A client with short pauses between attempts and its own attempts and read
/// timeout.
fn impatient_client(setup: &Setup, attempts: u32, read_timeout: Duration) -> FileClient {
    let mut config = test_config(setup.emulator.files_endpoint());
    config.attempts = attempts;
    config.read_timeout = read_timeout;
    FileClient::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_request_waits_as_long_as_retry_after_says() {
    let setup = emulator(Faults::default()).await;
    assert!(client(&setup, KEY).create_share("busy", 1, &[]).await.unwrap());
    // Every request throttled with `Retry-After: 1`; the client's own backoff would
    // wait 5 ms. Two attempts: the pause between them is all the time taken.
    setup.emulator.set_faults(Faults { throttle_rate: 1.0, ..Faults::default() });
    let twice = impatient_client(&setup, 2, Duration::from_secs(60));
    let before = setup.emulator.requests_served();
    let started = Instant::now();
    let err = twice.share_exists("busy").await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, afs_staging::Error::Service { status: 503, .. }), "{err:?}");
    assert_eq!(err.code(), Some("ServerBusy"));
    assert_eq!(setup.emulator.requests_served() - before, 2);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");

    // Throttling that ends after the first answer: the request succeeds, once the
    // second attempt has waited.
    let patient = impatient_client(&setup, 30, Duration::from_secs(60));
    let before = setup.emulator.requests_served();
    let started = Instant::now();
    let exists = tokio::spawn(async move { patient.share_exists("busy").await });
    while setup.emulator.requests_served() == before {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    setup.emulator.set_faults(Faults::default());
    assert!(exists.await.unwrap().unwrap());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_outlast_the_read_timeout_are_retried() {
    let setup = emulator(Faults::default()).await;
    let local = tempfile::tempdir().unwrap();
    build_tree(&local.path().join("run"), 30, 3 << 20);
    let job = JobId::new("slow").unwrap();
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() }];
    stager(&setup).publish(&job, local.path(), &[], &uploads).await.unwrap();
    let share = format!("{job}-run");

    // A third of the requests wait 5 s before the emulator answers them; the client
    // waits half a second for an answer.
    let read_timeout = Duration::from_millis(500);
    let slow = Faults {
        latency: Duration::from_secs(5),
        latency_rate: 0.3,
        seed: 17,
        ..Faults::default()
    };
    // With one attempt, some requests fail for want of an answer.
    setup.emulator.set_faults(slow.clone());
    let once = impatient_client(&setup, 1, read_timeout);
    let mut timed_out = 0;
    for _ in 0..10 {
        match once.share_exists(&share).await {
            Ok(exists) => assert!(exists),
            Err(afs_staging::Error::Network { source, .. }) if source.is_timeout() => {
                timed_out += 1
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(timed_out > 0, "no request timed out");

    // With attempts to spare, reading everything back (only reads: a request that
    // was given up on changes nothing when it is carried out late) completes.
    setup.emulator.set_faults(slow);
    let stager = Stager::shares(
        impatient_client(&setup, 30, read_timeout),
        StagingConfig { worker: "test-worker".into(), ..Default::default() },
    );
    let back = tempfile::tempdir().unwrap();
    let all = [Download { volume: vol("run"), remote: RemotePath::root(), local: ws("copy") }];
    let stats = stager.collect(&job, back.path(), &all).await.unwrap();
    assert_eq!(stats.files, 30 + ODD_NAMES.len() as u64 + 2);
    assert_same_tree(&local.path().join("run"), &back.path().join("copy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_files_and_shares_are_made_found_and_deleted() {
    let setup = emulator(Faults::default()).await;
    let client = client(&setup, KEY);
    assert!(!client.share_exists("ops").await.unwrap());
    assert!(client.create_share("ops", 1, &[]).await.unwrap());
    assert!(client.share_exists("ops").await.unwrap());
    let on_share = setup.emulator.share_dir("ops");

    // Every missing parent, then nothing new the second time.
    let deep = remote("a/b c/ü");
    client.create_directory_all("ops", &deep).await.unwrap();
    assert!(on_share.join("a/b c/ü").is_dir());
    client.create_directory_all("ops", &deep).await.unwrap();
    client.create_directory_all("ops", &remote("a/other")).await.unwrap();
    client.create_directory_all("ops", &RemotePath::root()).await.unwrap();
    assert_eq!(
        listing(&on_share).into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        ["a", "a/b c", "a/b c/ü", "a/other"]
    );

    let file = remote("a/b c/ü/f.txt");
    client.create_file("ops", &file, 3).await.unwrap();
    client.put_range("ops", &file, 0, bytes::Bytes::from_static(b"abc")).await.unwrap();
    // A folder that is not empty stays.
    let err = client.delete_directory("ops", &deep).await.unwrap_err();
    assert_eq!(err.code(), Some("DirectoryNotEmpty"));
    assert!(on_share.join("a/b c/ü/f.txt").is_file());
    assert!(client.delete_file("ops", &file).await.unwrap());
    assert!(!on_share.join("a/b c/ü/f.txt").exists());
    assert!(!client.delete_file("ops", &file).await.unwrap(), "deleted twice");
    assert!(client.file_version("ops", &file).await.unwrap().is_none());

    assert!(client.delete_directory("ops", &deep).await.unwrap());
    assert!(!on_share.join("a/b c/ü").exists());
    assert!(on_share.join("a/b c").is_dir());
    assert!(!client.delete_directory("ops", &deep).await.unwrap(), "deleted twice");

    assert!(client.delete_share("ops").await.unwrap());
    assert!(!client.share_exists("ops").await.unwrap());
    assert!(!client.delete_share("ops").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_continuation_markers_with_small_pages() {
    let setup = emulator(Faults::default()).await;
    let client = client_with_pages(&setup, KEY, Some(7));
    assert!(client.create_share("paged", 1, &[]).await.unwrap());
    // 50 entries, files and folders, every name with characters a marker must have
    // encoded in the query string.
    let mut expected = Vec::new();
    for i in 0..50 {
        let name = format!("{i:02} {}", ODD_NAMES[i % ODD_NAMES.len()]);
        if i % 5 == 0 {
            assert!(client.create_directory("paged", &remote(&name)).await.unwrap());
            expected.push((name, None));
        } else {
            client.create_file("paged", &remote(&name), i as u64).await.unwrap();
            expected.push((name, Some(i as u64)));
        }
    }
    expected.sort();

    let before = setup.emulator.requests_served();
    let entries = client.list_directory("paged", &RemotePath::root()).await.unwrap();
    // ceil(50 / 7) pages: the page size was asked for and every marker followed.
    assert_eq!(setup.emulator.requests_served() - before, 8);
    let mut listed: Vec<_> = entries.into_iter().map(|e| (e.name, e.file_len)).collect();
    listed.sort();
    assert_eq!(listed, expected, "every entry exactly once");

    // Shares page the same way: 16 more shares, listed 7 at a time.
    for i in 0..16 {
        assert!(client.create_share(&format!("paged-{i:02}"), 1, &[]).await.unwrap());
    }
    let before = setup.emulator.requests_served();
    let mut shares: Vec<_> =
        client.list_shares("paged").await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(setup.emulator.requests_served() - before, 3);
    shares.sort();
    let mut names: Vec<_> = (0..16).map(|i| format!("paged-{i:02}")).collect();
    names.insert(0, "paged".to_owned());
    assert_eq!(shares, names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_with_tiny_listing_pages() {
    let calm = emulator(Faults::default()).await;
    round_trip(&calm, &stager(&calm), "pages", 120, 0).await;
    let whole_pages = calm.emulator.requests_served();

    let setup = emulator(Faults::default()).await;
    round_trip(&setup, &stager_with_pages(&setup, Some(3)), "pages", 120, 0).await;
    // The same transfers, only the listings took more pages.
    let served = setup.emulator.requests_served();
    assert!(served > whole_pages, "{served} requests with pages of 3, {whole_pages} without");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_each_new_version() {
    let setup = emulator(Faults::default()).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("out")).unwrap();
    let job = JobId::new("watch-job").unwrap();
    let uploads = [Upload { local: ws("out"), volume: vol("run"), remote: remote("out") }];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();

    let target = local.path().join("detail.html");
    let mut watch =
        stager.watch(&job, &vol("run"), &remote("out/detail.html"), target.clone()).unwrap();
    assert!(!watch.poll().await.unwrap(), "no file yet");

    let on_share =
        setup.emulator.share_dir(&stager.location(&job, &vol("run")).share).join("out/detail.html");
    // The second version has the length of the first: only its ETag and
    // Last-Modified tell. The emulator's ETag comes from the modification time, which
    // file systems keep in ticks of a few milliseconds, so each version gets a time
    // of its own.
    let versions =
        ["<p>one</p>", "<p>two</p>", "<p>three, longer</p>", "<p>four, longer still</p>"];
    for (i, version) in versions.into_iter().enumerate() {
        std::fs::write(&on_share, version).unwrap();
        let modified =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&on_share)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert!(watch.poll().await.unwrap(), "{version} noticed");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), version);
        assert!(!watch.poll().await.unwrap(), "unchanged after {version}");
    }
    stager.discard(&job).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gets_a_file_that_grew_after_it_was_looked_at() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // The file has 5 bytes when the watch asks for its properties and 12 when it
    // reads it; after that read the properties say 12 too.
    let read = std::sync::Arc::new(AtomicBool::new(false));
    let seen = read.clone();
    let endpoint = fake_service(move |asked| {
        let grown = seen.load(Ordering::SeqCst);
        match asked.method.as_str() {
            "HEAD" if grown => Reply::new(200, &[("content-length", "12"), ("etag", "\"v2\"")], ""),
            "HEAD" => Reply::new(200, &[("content-length", "5"), ("etag", "\"v1\"")], ""),
            "GET" => {
                seen.store(true, Ordering::SeqCst);
                Reply::new(200, &[("etag", "\"v2\"")], "hello, world")
            }
            _ => Reply::not_found(),
        }
    })
    .await;
    let stager = fake_stager(endpoint);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("log.txt");
    let job = JobId::new("growing").unwrap();
    let mut watch = stager.watch(&job, &vol("run"), &remote("log.txt"), target.clone()).unwrap();
    assert!(watch.poll().await.unwrap());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "hello, world");
    assert!(read.load(Ordering::SeqCst));
    // What was downloaded is what the properties say now: nothing new.
    assert!(!watch.poll().await.unwrap());
    assert!(!local.path().join("log.txt.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_never_mixes_the_ranges_of_two_versions() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A file of three ranges that is rewritten (same length, new ETag) right after
    // the first range is served: the ranges of that download come from two versions.
    const LEN: u64 = 9 << 20;
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let endpoint = fake_service(move |asked| {
        let version = |ranges_served: usize| if ranges_served == 0 { b'a' } else { b'b' };
        let len = LEN.to_string();
        match asked.method.as_str() {
            "HEAD" => {
                let etag = format!("\"{}\"", version(count.load(Ordering::SeqCst)) as char);
                Reply::new(200, &[("content-length", &len), ("etag", &etag)], "")
            }
            "GET" => {
                let Some((start, end)) = asked.range() else { return Reply::not_found() };
                let byte = version(count.fetch_add(1, Ordering::SeqCst));
                let etag = format!("\"{}\"", byte as char);
                let end = end.min(LEN - 1);
                let range = format!("bytes {start}-{end}/{LEN}");
                let body = vec![byte; (end - start + 1) as usize];
                Reply::new(206, &[("etag", &etag), ("content-range", &range)], body)
            }
            _ => Reply::not_found(),
        }
    })
    .await;
    let stager = fake_stager(endpoint);
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("big.bin");
    let job = JobId::new("rewritten").unwrap();
    let mut watch = stager.watch(&job, &vol("run"), &remote("big.bin"), target.clone()).unwrap();
    assert!(watch.poll().await.unwrap());
    let got = std::fs::read(&target).unwrap();
    assert_eq!(got.len() as u64, LEN);
    assert!(got.iter().all(|&b| b == b'b'), "a mix of two versions");
    // One range of the first version, then all three of the second.
    assert_eq!(served.load(Ordering::SeqCst), 6);
    assert!(!watch.poll().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_after_a_failed_publish_leaves_no_share() {
    let setup = emulator(Faults::default()).await;
    let mut config = ClientConfig::new(
        setup.emulator.files_endpoint(),
        Credential::SharedKey(SharedKey::new(ACCOUNT, KEY).unwrap()),
    );
    config.attempts = 1;
    let fragile = Stager::shares(FileClient::new(config).unwrap(), StagingConfig::default());
    let stable = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    build_tree(&local.path().join("run"), 200, 0);
    std::fs::create_dir_all(local.path().join("hidden")).unwrap();
    std::fs::write(local.path().join("hidden/ref.txt"), "reference").unwrap();
    let uploads = [
        Upload { local: ws("hidden"), volume: vol("hidden"), remote: remote("ref") },
        Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() },
    ];

    setup.emulator.set_faults(Faults { error_rate: 0.05, seed: 3, ..Faults::default() });
    let mut failed_with_a_share = 0;
    for i in 0..5 {
        let job = JobId::new(format!("failing-{i}")).unwrap();
        let result = fragile.publish(&job, local.path(), &[], &uploads).await;
        let share_dir = setup.emulator.share_dir(&fragile.location(&job, &vol("run")).share);
        if result.is_err() && share_dir.exists() {
            failed_with_a_share += 1;
        }
        setup.emulator.set_faults(Faults::default());
        stable.discard(&job).await.unwrap();
        assert!(!share_dir.exists());
        assert!(!setup.emulator.share_dir(&fragile.location(&job, &vol("hidden")).share).exists());
        setup.emulator.set_faults(Faults { error_rate: 0.05, seed: 3 + i, ..Faults::default() });
    }
    assert!(failed_with_a_share > 0, "no publish failed part-way");
    setup.emulator.set_faults(Faults::default());
    let client = client(&setup, KEY);
    assert!(client.list_shares("failing-").await.unwrap().is_empty());
}

/// Azure removes a deleted share in the background and answers a create of its name
/// `409 ShareBeingDeleted` meanwhile: a job published again right after its discard
/// (a retried run) waits for the name, and a client that may not wait long enough
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_still_being_deleted_is_waited_for() {
    let lag = std::time::Duration::from_millis(1500);
    let setup = emulator(Faults { share_deletion_lag: lag, ..Faults::default() }).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("run")).unwrap();
    std::fs::write(local.path().join("run/a.txt"), "first").unwrap();
    let job = JobId::new("republished").unwrap();
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() }];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    stager.discard(&job).await.unwrap();

    // A client that waits a tenth of the lag gives up with Azure's code.
    let mut config = test_config(setup.emulator.files_endpoint());
    config.max_backoff = Duration::from_millis(20);
    config.share_deletion_wait = lag / 10;
    let impatient = Stager::shares(FileClient::new(config).unwrap(), StagingConfig::default());
    let err = impatient.publish(&job, local.path(), &[], &uploads).await.unwrap_err();
    assert_eq!(err.code(), Some("ShareBeingDeleted"), "{err}");

    // The default wait outlasts the deletion: the second publish goes through with
    // the new tree.
    std::fs::write(local.path().join("run/a.txt"), "second").unwrap();
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    let share = setup.emulator.share_dir(&stager.location(&job, &vol("run")).share);
    assert_eq!(std::fs::read_to_string(share.join("a.txt")).unwrap(), "second");
    stager.discard(&job).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_data_goes_to_its_own_share() {
    let setup = emulator(Faults::default()).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("run/input")).unwrap();
    std::fs::write(local.path().join("run/input/x.txt"), "x").unwrap();
    std::fs::create_dir_all(local.path().join("ref")).unwrap();
    std::fs::write(local.path().join("ref/truth.txt"), "secret answers").unwrap();
    let job = JobId::new("hidden-job").unwrap();
    let uploads = [
        Upload { local: ws("run"), volume: vol("run"), remote: remote("run") },
        Upload { local: ws("ref"), volume: vol("hidden"), remote: RemotePath::root() },
    ];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    let run = setup.emulator.share_dir(&stager.location(&job, &vol("run")).share);
    let hidden = setup.emulator.share_dir(&stager.location(&job, &vol("hidden")).share);
    assert!(run.join("run/input/x.txt").is_file());
    assert!(!run.join("truth.txt").exists());
    assert_eq!(std::fs::read_to_string(hidden.join("truth.txt")).unwrap(), "secret answers");

    // Orphans: listed by worker and age, only this worker's.
    let stale = stager.stale_shares("test-worker", 0).await.unwrap();
    for volume in ["run", "hidden"] {
        let share = stager.location(&job, &vol(volume)).share;
        let found = stale.iter().find(|s| s.name == share).unwrap_or_else(|| panic!("{stale:?}"));
        assert_eq!(found.job.as_deref(), Some(job.as_str()));
    }
    assert!(stager.stale_shares("other-worker", 0).await.unwrap().is_empty());
    assert!(stager.stale_shares("test-worker", 3600).await.unwrap().is_empty());
    stager.discard(&job).await.unwrap();
    assert!(!run.exists() && !hidden.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_not_shown() {
    let setup = emulator(Faults::default()).await;
    let wrong_key =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
    let client = client(&setup, wrong_key);
    let err = client.create_share("refused", 1, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("AuthenticationFailed"));
    assert!(!err.is_transient());
    let afs_staging::Error::Service { status, request_id: Some(request_id), .. } = &err else {
        panic!("a service error with a request id: {err:?}");
    };
    assert_eq!(*status, 403);
    assert!(!request_id.trim().is_empty(), "{err:?}");
    let display = err.to_string();
    assert!(display.contains("AuthenticationFailed"), "{display}");
    assert!(display.contains(&format!("request id {request_id}")), "{display}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong_key) && !text.contains(KEY), "{text}");
    assert!(!text.contains("SharedKey"), "{text}");
    assert!(!setup.emulator.share_dir("refused").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sas_token_grants_what_it_says() {
    let setup = emulator(Faults::default()).await;
    let owner = client(&setup, KEY);
    assert!(owner.create_share("sas-share", 1, &[]).await.unwrap());
    let key = SharedKey::new(ACCOUNT, KEY).unwrap();
    let expiry =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            + 3600;
    let sas_client = |permissions: &[SasPermission]| {
        let token =
            share_sas(&key, "sas-share", permissions, expiry, afs_staging::client::API_VERSION);
        FileClient::new(ClientConfig::new(setup.emulator.files_endpoint(), Credential::Sas(token)))
            .unwrap()
    };
    let writer = sas_client(&[
        SasPermission::Read,
        SasPermission::Create,
        SasPermission::Write,
        SasPermission::List,
    ]);
    let file = remote("hello.txt");
    writer.create_file("sas-share", &file, 5).await.unwrap();
    writer.put_range("sas-share", &file, 0, bytes::Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(writer.list_directory("sas-share", &RemotePath::root()).await.unwrap().len(), 1);

    let reader = sas_client(&[SasPermission::Read, SasPermission::List]);
    assert_eq!(reader.file_version("sas-share", &file).await.unwrap().unwrap().len, 5);
    let err = reader.delete_file("sas-share", &file).await.unwrap_err();
    assert_eq!(err.code(), Some("AuthorizationPermissionMismatch"));
    assert!(matches!(err, afs_staging::Error::Service { status: 403, .. }), "{err}");
    let err = reader.create_share("other-share", 1, &[]).await.unwrap_err();
    assert!(matches!(err, afs_staging::Error::Service { status: 403, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_xml_cannot_carry_round_trip_encoded() {
    let setup = emulator(Faults::default()).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    // U+FFFE and U+FFFF are neither control characters nor XML 1.0 characters: the
    // listing carries them percent-encoded with `Encoded="true"`.
    let run = local.path().join("run");
    std::fs::create_dir_all(run.join("dir \u{fffe}")).unwrap();
    std::fs::write(run.join("dir \u{fffe}/in.txt"), "inside").unwrap();
    std::fs::write(run.join("file \u{ffff}%41.txt"), "file").unwrap();
    let job = JobId::new("encoded-names").unwrap();
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() }];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();

    let share = stager.location(&job, &vol("run")).share;
    let mut listed: Vec<_> = client(&setup, KEY)
        .list_directory(&share, &RemotePath::root())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.file_len))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [("dir \u{fffe}".to_owned(), None), ("file \u{ffff}%41.txt".to_owned(), Some(4))]
    );

    let back = tempfile::tempdir().unwrap();
    let downloads =
        [Download { volume: vol("run"), remote: RemotePath::root(), local: ws("copy") }];
    let stats = stager.collect(&job, back.path(), &downloads).await.unwrap();
    assert_eq!(stats.files, 2);
    assert_same_tree(&run, &back.path().join("copy"));
    stager.discard(&job).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_azure_files_cannot_hold_fail_before_anything_is_created() {
    let setup = emulator(Faults::default()).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("run")).unwrap();
    std::fs::write(local.path().join("run/a:b.txt"), "colon").unwrap();
    let job = JobId::new("bad-names").unwrap();
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() }];
    let err = stager.publish(&job, local.path(), &[], &uploads).await.unwrap_err();
    assert!(err.to_string().contains("a:b.txt"), "{err}");
    assert!(!setup.emulator.share_dir(&stager.location(&job, &vol("run")).share).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_never_writes_through_a_link() {
    let setup = emulator(Faults::default()).await;
    let stager = stager(&setup);
    let local = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("out")).unwrap();
    std::fs::write(local.path().join("out/result.txt"), "result").unwrap();
    let job = JobId::new("links").unwrap();
    let uploads = [Upload { local: ws("out"), volume: vol("run"), remote: remote("out") }];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();

    // The local copy target holds a link to a folder outside the workspace.
    let back = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), back.path().join("copy")).unwrap();
    let downloads = [Download { volume: vol("run"), remote: remote("out"), local: ws("copy") }];
    stager.collect(&job, back.path(), &downloads).await.unwrap();
    assert_eq!(std::fs::read_to_string(back.path().join("copy/result.txt")).unwrap(), "result");
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "wrote outside");
    stager.discard(&job).await.unwrap();
}

/// Links a container may leave in the local workspace, above the collect target and
/// at a file inside it: in either mode the collected tree lands in the workspace and
/// nothing is written where the links point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_replaces_links_above_and_inside_its_target_in_both_modes() {
    let setup = emulator(Faults::default()).await;
    let mount = tempfile::tempdir().unwrap();
    let mounted = mounted_stager(mount.path());
    for (mode, stager) in [("shares", stager(&setup)), ("mounted", mounted)] {
        let local = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(local.path().join("out/deep")).unwrap();
        std::fs::write(local.path().join("out/deep/result.txt"), "result").unwrap();
        std::fs::write(local.path().join("out/scores.txt"), "1.0").unwrap();
        let job = JobId::new(format!("parent-links-{mode}")).unwrap();
        let uploads = [Upload { local: ws("out"), volume: vol("run"), remote: remote("out") }];
        stager.publish(&job, local.path(), &[], &uploads).await.unwrap();

        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("scores.txt"), "untouched").unwrap();
        let untouched = listing(outside.path());
        let back = tempfile::tempdir().unwrap();
        // `run` is a link to a folder outside; the target is below it.
        std::os::unix::fs::symlink(outside.path(), back.path().join("run")).unwrap();
        let downloads =
            [Download { volume: vol("run"), remote: remote("out"), local: ws("run/output") }];
        stager.collect(&job, back.path(), &downloads).await.unwrap();
        assert!(
            std::fs::symlink_metadata(back.path().join("run")).unwrap().is_dir(),
            "{mode}: the link above the target became a real folder"
        );
        let output = back.path().join("run/output");
        assert_eq!(std::fs::read_to_string(output.join("deep/result.txt")).unwrap(), "result");
        assert_eq!(listing(outside.path()), untouched, "{mode}: wrote through a parent link");

        // Links at a file and at a folder inside the target, then a second collect.
        std::fs::remove_file(output.join("scores.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("scores.txt"), output.join("scores.txt"))
            .unwrap();
        std::fs::remove_dir_all(output.join("deep")).unwrap();
        std::os::unix::fs::symlink(outside.path(), output.join("deep")).unwrap();
        stager.collect(&job, back.path(), &downloads).await.unwrap();
        assert_eq!(std::fs::read_to_string(output.join("scores.txt")).unwrap(), "1.0");
        assert!(!std::fs::symlink_metadata(output.join("scores.txt")).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(output.join("deep/result.txt")).unwrap(), "result");
        assert_eq!(listing(outside.path()), untouched, "{mode}: wrote through an inner link");
        stager.discard(&job).await.unwrap();
    }
}

/// A folder where a watch writes its download (beside the target) is refused with a
/// clear error in either mode, and left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_refuses_a_folder_in_its_way_in_both_modes() {
    let setup = emulator(Faults::default()).await;
    let mount = tempfile::tempdir().unwrap();
    let mounted = mounted_stager(mount.path());
    for (mode, stager) in [("shares", stager(&setup)), ("mounted", mounted)] {
        let local = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(local.path().join("run")).unwrap();
        std::fs::write(local.path().join("run/detail.html"), "detail").unwrap();
        let job = JobId::new(format!("watch-folder-{mode}")).unwrap();
        let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: remote("out") }];
        stager.publish(&job, local.path(), &[], &uploads).await.unwrap();

        let back = tempfile::tempdir().unwrap();
        let target = back.path().join("detail.html");
        std::fs::create_dir(back.path().join("detail.html.partial")).unwrap();
        let mut watch =
            stager.watch(&job, &vol("run"), &remote("out/detail.html"), target.clone()).unwrap();
        let err = watch.poll().await.unwrap_err();
        assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{mode}: {err:?}");
        assert!(err.to_string().contains("is a folder locally"), "{mode}: {err}");
        assert!(back.path().join("detail.html.partial").is_dir(), "{mode}");
        assert!(!target.exists(), "{mode}");
        stager.discard(&job).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_mode_round_trips_watches_and_discards() {
    let mount = tempfile::tempdir().unwrap();
    let stager = mounted_stager(mount.path());
    let local = tempfile::tempdir().unwrap();
    build_tree(&local.path().join("run"), 50, 3 << 20);
    let job = JobId::new("mounted-job").unwrap();
    assert_eq!(stager.location(&job, &vol("run")).share, "afs-share");
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: remote("data") }];
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    let on_mount: PathBuf =
        mount.path().join(stager.location(&job, &vol("run")).prefix.as_str()).join("data");
    assert_same_tree(&local.path().join("run"), &on_mount);

    let back = tempfile::tempdir().unwrap();
    let downloads = [Download { volume: vol("run"), remote: remote("data"), local: ws("copy") }];
    stager.collect(&job, back.path(), &downloads).await.unwrap();
    assert_same_tree(&local.path().join("run"), &back.path().join("copy"));

    let target = back.path().join("detail.html");
    let mut watch =
        stager.watch(&job, &vol("run"), &remote("data/detail.html"), target.clone()).unwrap();
    for version in ["1", "22", "333"] {
        std::fs::write(on_mount.join("detail.html"), version).unwrap();
        assert!(watch.poll().await.unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), version);
    }
    stager.discard(&job).await.unwrap();
    assert!(!mount.path().join(stager.location(&job, &vol("run")).prefix.as_str()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_mode_never_writes_or_reads_through_links_in_the_share() {
    let mount = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("detail.html"), "secret").unwrap();
    std::fs::create_dir(outside.path().join("linked")).unwrap();
    std::fs::write(outside.path().join("linked/keep.txt"), "keep").unwrap();
    let untouched = listing(outside.path());
    let stager = mounted_stager(mount.path());
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("run/data")).unwrap();
    std::fs::write(local.path().join("run/data/a.txt"), "a").unwrap();
    let job = JobId::new("linked").unwrap();
    let uploads = [Upload { local: ws("run"), volume: vol("run"), remote: RemotePath::root() }];
    let runs = mount.path().join("aci-worker-runs");
    let reset = || {
        if std::fs::symlink_metadata(&runs).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&runs).unwrap();
        } else {
            let _ = std::fs::remove_file(&runs);
        }
    };

    // A link where a folder of the run's volume would go, at each step.
    for step in ["aci-worker-runs", "aci-worker-runs/linked", "aci-worker-runs/linked/run"] {
        reset();
        let planted = mount.path().join(step);
        std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(outside.path(), &planted).unwrap();
        let err = stager.publish(&job, local.path(), &[], &uploads).await.unwrap_err();
        assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{step}: {err:?}");
        assert!(err.to_string().contains(step), "{step}: {err}");
        assert_eq!(listing(outside.path()), untouched, "{step}: wrote through the link");
        // Discarding the job neither follows the link nor fails on a link in its place.
        let discarded = stager.discard(&job).await;
        assert_eq!(discarded.is_err(), step == "aci-worker-runs", "{step}: {discarded:?}");
        assert_eq!(listing(outside.path()), untouched, "{step}: discard went through the link");
    }

    // A link inside the volume is left from before: the volume starts empty.
    reset();
    let volume = mount.path().join("aci-worker-runs/linked/run");
    std::fs::create_dir_all(&volume).unwrap();
    std::os::unix::fs::symlink(outside.path(), volume.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("detail.html"), volume.join("old")).unwrap();
    stager.publish(&job, local.path(), &[], &uploads).await.unwrap();
    assert_same_tree(&local.path().join("run"), &volume);
    assert_eq!(listing(outside.path()), untouched);

    // Links left by a container while the run goes on: not read.
    let target = local.path().join("detail.html");
    let data = volume.join("data");
    std::fs::remove_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(outside.path(), &data).unwrap();
    let mut through_folder =
        stager.watch(&job, &vol("run"), &remote("data/detail.html"), target.clone()).unwrap();
    let err = through_folder.poll().await.unwrap_err();
    assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{err:?}");
    std::os::unix::fs::symlink(outside.path().join("detail.html"), volume.join("detail.html"))
        .unwrap();
    let mut at_file =
        stager.watch(&job, &vol("run"), &remote("detail.html"), target.clone()).unwrap();
    let err = at_file.poll().await.unwrap_err();
    assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{err:?}");
    assert!(!target.exists() && !local.path().join("detail.html.partial").exists());

    // Collecting: a link on the way is refused, links inside are left out.
    let back = tempfile::tempdir().unwrap();
    let through =
        [Download { volume: vol("run"), remote: remote("data/detail.html"), local: ws("a") }];
    let err = stager.collect(&job, back.path(), &through).await.unwrap_err();
    assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{err:?}");
    let all = [Download { volume: vol("run"), remote: RemotePath::root(), local: ws("all") }];
    let stats = stager.collect(&job, back.path(), &all).await.unwrap();
    assert_eq!(stats.files, 0);
    assert!(listing(back.path()).iter().all(|(p, _)| !p.contains("detail") && !p.contains("data")));
    assert_eq!(listing(outside.path()), untouched);

    stager.discard(&job).await.unwrap();
    assert!(!mount.path().join("aci-worker-runs/linked").exists());
    assert_eq!(listing(outside.path()), untouched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publish_leaves_only_the_new_tree() {
    let setup = emulator(Faults::default()).await;
    let mount = tempfile::tempdir().unwrap();
    let mounted = mounted_stager(mount.path());
    let local = tempfile::tempdir().unwrap();
    build_tree(&local.path().join("first"), 40, 0);
    std::fs::create_dir_all(local.path().join("second/only-in-second")).unwrap();
    std::fs::write(local.path().join("second/only-in-second/b.txt"), "second").unwrap();
    std::fs::write(local.path().join("second/empty-file"), "no longer empty").unwrap();
    let job = JobId::new("again").unwrap();
    let upload =
        |from: &str| [Upload { local: ws(from), volume: vol("run"), remote: RemotePath::root() }];

    for (stager, on_share) in [
        (stager(&setup), setup.emulator.share_dir(&format!("{job}-run"))),
        (mounted, mount.path().join("aci-worker-runs/again/run")),
    ] {
        stager.publish(&job, local.path(), &[], &upload("first")).await.unwrap();
        assert_same_tree(&local.path().join("first"), &on_share);
        stager.publish(&job, local.path(), &[], &upload("second")).await.unwrap();
        assert_same_tree(&local.path().join("second"), &on_share);

        let back = tempfile::tempdir().unwrap();
        let all = [Download { volume: vol("run"), remote: RemotePath::root(), local: ws("copy") }];
        stager.collect(&job, back.path(), &all).await.unwrap();
        assert_same_tree(&local.path().join("second"), &back.path().join("copy"));
        stager.discard(&job).await.unwrap();
        assert!(!on_share.exists());
    }
}

#[test]
fn share_names_follow_azure_rules() {
    let client = FileClient::new(ClientConfig::new(
        "http://127.0.0.1:9/devstoreaccount1",
        Credential::SharedKey(SharedKey::new(ACCOUNT, KEY).unwrap()),
    ))
    .unwrap();
    let stager = Stager::shares(client, StagingConfig::default());
    let longest = JobId::derive(&["x".repeat(200).as_str(), "predict"]);
    for job in [JobId::new("abc").unwrap(), longest] {
        for name in
            [stager.location(&job, &vol("run")).share, stager.location(&job, &vol("hidden")).share]
        {
            assert!(name.len() >= 3 && name.len() <= 63, "{name}");
            assert!(!name.contains("--"));
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
        }
    }
}

/// What the hand-written service answers one request with.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        Reply { status, headers, body: body.into() }
    }

    fn not_found() -> Reply {
        Reply::new(404, &[("x-ms-error-code", "ResourceNotFound")], "")
    }

    fn listing(entries: &str) -> Reply {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Entries>{entries}\
             </Entries><NextMarker /></EnumerationResults>"
        );
        Reply::new(200, &[("content-type", "application/xml")], xml)
    }
}

/// A request to the hand-written service.
struct Asked {
    method: String,
    /// Path and query as sent.
    target: String,
    /// The request line and headers.
    head: String,
}

impl Asked {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// `x-ms-range: bytes=a-b` as `(a, b)`.
    fn range(&self) -> Option<(u64, u64)> {
        let (a, b) = self.header("x-ms-range")?.strip_prefix("bytes=")?.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    fn is_list(&self) -> bool {
        self.target.contains("comp=list")
    }
}

/// A file service written by hand, on 127.0.0.1: it answers each request with what
/// `answer` makes of it, one request per connection. The endpoint is returned; the
/// server stops with the test's runtime.
async fn fake_service<F>(answer: F) -> String
where
    F: Fn(&Asked) -> Reply + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                let mut words = head.split_whitespace();
                let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let asked = Asked { method: method.to_owned(), target: target.to_owned(), head };
                // Read and drop a body, so that the client sees the answer.
                let body_len: usize =
                    asked.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut unread = (head_end + body_len).saturating_sub(request.len());
                while unread > 0 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => unread = unread.saturating_sub(n),
                    }
                }
                let reply = answer(&asked);
                let mut out = format!("HTTP/1.1 {} Answer\r\nconnection: close\r\n", reply.status);
                let has_length = reply.headers.iter().any(|(n, _)| n == "content-length");
                if !has_length {
                    out.push_str(&format!("content-length: {}\r\n", reply.body.len()));
                }
                for (name, value) in &reply.headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                if asked.method != "HEAD" {
                    bytes.extend_from_slice(&reply.body);
                }
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}/{ACCOUNT}")
}

/// A stager for a hand-written service: few attempts, short pauses.
fn fake_stager(endpoint: String) -> Stager {
    let mut config = test_config(endpoint);
    config.attempts = 2;
    Stager::shares(FileClient::new(config).unwrap(), StagingConfig::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_refuses_listed_names_that_are_not_plain_names() {
    let outer = tempfile::tempdir().unwrap();
    let planted = outer.path().join("planted");
    let absolute = planted.display().to_string();
    let escaping = "../../planted".to_owned();
    // (name as listed, `Encoded="true"`?, listed as a folder?)
    let cases: Vec<(String, bool, bool)> = vec![
        ("..".into(), false, false),
        ("..".into(), false, true),
        (".".into(), false, true),
        (String::new(), false, false),
        (escaping.clone(), false, false),
        ("a/b".into(), false, false),
        ("..\\..\\planted".into(), false, false),
        ("a\\b".into(), false, true),
        (absolute.clone(), false, false),
        (absolute.clone(), false, true),
        // The same names percent-encoded, as Azure sends names XML cannot carry.
        ("%2E%2E".into(), true, true),
        ("..%2F..%2Fplanted".into(), true, false),
        (absolute.replace('/', "%2F"), true, false),
    ];
    for nested in [false, true] {
        for (name, encoded, is_dir) in &cases {
            let workspace = outer.path().join("ws");
            let _ = std::fs::remove_dir_all(&workspace);
            std::fs::create_dir(&workspace).unwrap();
            let escaped = name.replace('&', "&amp;").replace('<', "&lt;");
            let open = if *encoded { "<Name Encoded=\"true\">" } else { "<Name>" };
            let bad = if *is_dir {
                format!("<Directory>{open}{escaped}</Name><Properties /></Directory>")
            } else {
                format!(
                    "<File>{open}{escaped}</Name><Properties><Content-Length>6</Content-Length>\
                     </Properties></File>"
                )
            };
            let good = "<File><Name>ok.txt</Name><Properties><Content-Length>6</Content-Length>\
                        </Properties></File>";
            let (root, sub) = if nested {
                (format!("{good}<Directory><Name>sub</Name><Properties /></Directory>"), bad)
            } else {
                (format!("{good}{bad}"), String::new())
            };
            let endpoint = fake_service(move |asked| {
                let path = asked.target.split('?').next().unwrap_or("");
                match (asked.method.as_str(), asked.is_list()) {
                    ("GET", true) if path.ends_with("/out") => Reply::listing(&root),
                    ("GET", true) if path.ends_with("/out/sub") => Reply::listing(&sub),
                    ("GET", true) => Reply::listing(""),
                    // Any file the client asks for: were it written where its name
                    // points, the test would find it.
                    ("GET", false) => Reply::new(200, &[], "pwned!"),
                    _ => Reply::not_found(),
                }
            })
            .await;
            let stager = fake_stager(endpoint);
            let job = JobId::new("hostile").unwrap();
            let downloads =
                [Download { volume: vol("run"), remote: remote("out"), local: ws("copy") }];
            let what = format!("{name:?} (encoded {encoded}, folder {is_dir}, nested {nested})");
            let err = stager.collect(&job, &workspace, &downloads).await.expect_err(&what);
            assert!(matches!(err, afs_staging::Error::InvalidPath(_)), "{what}: {err:?}");
            // Nothing beside the workspace, nothing at the absolute name.
            let beside: Vec<_> = std::fs::read_dir(outer.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(beside, ["ws"], "{what}");
            assert!(!planted.exists(), "{what}");
            assert!(!Path::new(&absolute).exists(), "{what}");
        }
    }
}
