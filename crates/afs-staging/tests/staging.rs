//! Staging against the project's Azure Files emulator, started in-process for each
//! test so that faults stay local to it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// A client that asks for `page_size` entries per page of a listing.
fn client_with_pages(setup: &Setup, key: &str, page_size: Option<u32>) -> FileClient {
    let mut config = ClientConfig::new(
        setup.emulator.files_endpoint(),
        Credential::SharedKey(SharedKey::new(ACCOUNT, key).unwrap()),
    );
    config.initial_backoff = std::time::Duration::from_millis(5);
    config.max_backoff = std::time::Duration::from_millis(50);
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
    let faults = Faults { error_rate: 0.3, after_rate: 0.1, seed: 42, ..Faults::default() };
    let setup = emulator(faults).await;
    round_trip(&setup, &stager(&setup), "storm", 400, 20 * (1 << 20) + 12_345).await;
    assert!(setup.emulator.requests_served() > 1000);
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
    for version in ["<p>one</p>", "<p>two, longer</p>", "<p>three, longer still</p>"] {
        std::fs::write(&on_share, version).unwrap();
        assert!(watch.poll().await.unwrap(), "{version} noticed");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), version);
        assert!(!watch.poll().await.unwrap(), "unchanged after {version}");
    }
    stager.discard(&job).await.unwrap();
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
    assert_eq!(err.code(), Some("AuthorizationPermissionMismatch").or(err.code()));
    assert!(matches!(err, afs_staging::Error::Service { status: 403, .. }), "{err}");
    let err = reader.create_share("other-share", 1, &[]).await.unwrap_err();
    assert!(matches!(err, afs_staging::Error::Service { status: 403, .. }), "{err}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_mode_round_trips_watches_and_discards() {
    let mount = tempfile::tempdir().unwrap();
    let stager = Stager::mounted(
        mount.path().to_path_buf(),
        "afs-share".into(),
        None,
        StagingConfig::default(),
    );
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
