//! Jobs on the real engine: exit codes, mounts, limits, output, time limit, removal.

mod common;

use std::time::Duration;

use common::*;
use compute::*;

#[tokio::test]
async fn exit_codes_come_back_as_data() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let spec = job(
        "exit-codes",
        ws.path(),
        vec![
            sh("zero", "echo fine"),
            sh("three", "echo oops >&2; exit 3"),
            // The shell is PID 1, which ignores signals it has no handler for: the
            // program killed is a child, whose status the shell passes on.
            sh("killed", "sh -c 'kill -9 $$'; exit $?"),
        ],
    );
    let events = Recorder::default();
    let outcome = backend.run(&spec, &events).await.unwrap();

    let code = |n: &str| outcome.container(n).unwrap().exit_code;
    assert_eq!(code("zero"), Some(0));
    assert_eq!(code("three"), Some(3));
    assert_eq!(code("killed"), Some(137));
    assert!(!outcome.succeeded() && !outcome.timed_out);
    assert_eq!(read(ws.path(), "zero.out"), "fine\n");
    assert_eq!(read(ws.path(), "three.err"), "oops\n");
    let zero = outcome.container("zero").unwrap();
    assert!(zero.duration().is_some(), "start and finish times are read from the engine");
    assert!(!zero.oom_killed && !zero.timed_out);

    let events = events.0.into_inner().unwrap();
    for n in ["zero", "three", "killed"] {
        assert!(events.contains(&Event::Started { container: name(n) }));
    }
    assert!(events.contains(&Event::Exited { container: name("three"), exit_code: Some(3) }));
    assert!(containers_of(&backend, &spec.id).await.is_empty(), "containers are removed");
}

#[tokio::test]
async fn the_time_limit_kills_the_job_and_leaves_nothing() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let mut spec = job("deadline", ws.path(), vec![sh("sleeper", "echo begun; sleep 600")]);
    spec.time_limit = Some(Duration::from_secs(2));
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert!(outcome.timed_out);
    let sleeper = outcome.container("sleeper").unwrap();
    assert!(sleeper.timed_out);
    assert_eq!(sleeper.exit_code, Some(137));
    assert_eq!(read(ws.path(), "sleeper.out"), "begun\n", "output before the kill is kept");
    assert!(containers_of(&backend, &spec.id).await.is_empty());
}

#[tokio::test]
async fn containers_of_a_job_share_a_folder_and_run_together() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let mut writer = sh("writer", "echo from-writer > /shared/note; sleep 1");
    writer.mounts.push(Mount::rw(path("shared"), cpath("/shared")));
    // The reader waits for the writer's file: it only appears if both run at once.
    let mut reader = sh(
        "reader",
        "for i in $(seq 100); do [ -f /shared/note ] && break; sleep 0.2; done; cat /shared/note",
    );
    reader.mounts.push(Mount::rw(path("shared"), cpath("/shared")));
    let spec = job("share", ws.path(), vec![writer, reader]);
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(read(ws.path(), "reader.out"), "from-writer\n");
    assert_eq!(read(ws.path(), "shared/note"), "from-writer\n", "the workspace sees it too");
}

#[tokio::test]
async fn a_folder_mounted_into_one_container_is_invisible_to_the_other() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("hidden")).unwrap();
    std::fs::write(ws.path().join("hidden/reference.txt"), "answers").unwrap();
    let mut ingestion = sh("ingestion", "cat /codalab/hidden/reference.txt");
    ingestion.mounts.push(Mount::ro(path("hidden"), cpath("/codalab/hidden")));
    let program = sh("program", "ls /codalab/hidden; cat /codalab/hidden/reference.txt");
    let spec = job("hidden", ws.path(), vec![ingestion, program]);
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert_eq!(outcome.container("ingestion").unwrap().exit_code, Some(0));
    assert_eq!(read(ws.path(), "ingestion.out"), "answers");
    assert_ne!(outcome.container("program").unwrap().exit_code, Some(0));
    assert_eq!(read(ws.path(), "program.out"), "");
    assert!(read(ws.path(), "program.err").contains("No such file or directory"));
}

#[tokio::test]
async fn a_read_only_mount_refuses_writes() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let mut c = sh("writer", "echo x > /input/new.txt");
    c.mounts.push(Mount::ro(path("input"), cpath("/input")));
    let spec = job("read-only", ws.path(), vec![c]);
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert_ne!(outcome.container("writer").unwrap().exit_code, Some(0));
    assert!(read(ws.path(), "writer.err").contains("Read-only file system"));
    assert!(!ws.path().join("input/new.txt").exists());
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_reported_as_an_oom_kill() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let mut c = ContainerSpec::new(
        name("hungry"),
        python(),
        vec!["python3".into(), "-c".into(), "b = b'x' * (1024 * 1024 * 1024)".into()],
    );
    c.resources.memory_bytes = Some(64 * 1024 * 1024);
    let spec = job("oom", ws.path(), vec![c]);
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    let hungry = outcome.container("hungry").unwrap();
    assert!(hungry.oom_killed, "{hungry:?}");
    assert_eq!(hungry.exit_code, Some(137));
    assert!(!hungry.succeeded());
}

#[tokio::test]
async fn without_network_only_loopback_exists() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let spec = job("no-net", ws.path(), vec![sh("probe", "ls /sys/class/net")]);
    assert!(!spec.network);
    backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert_eq!(read(ws.path(), "probe.out").split_whitespace().collect::<Vec<_>>(), ["lo"]);
}

#[tokio::test]
async fn a_gigabyte_of_stdout_streams_with_bounded_memory() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let spec = job("gigabyte", ws.path(), vec![sh("chatty", "head -c 1073741824 /dev/zero")]);
    let before = peak_rss();
    let outcome = backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let size = std::fs::metadata(ws.path().join("chatty.out")).unwrap().len();
    assert_eq!(size, 1 << 30);
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 64 << 20, "peak memory grew by {} MiB", grown >> 20);
}

#[tokio::test]
async fn argv_reaches_the_program_verbatim_without_a_shell() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let tricky = "$(touch /tmp/pwned); `id` > x; echo *";
    let mut c = ContainerSpec::new(
        name("echo"),
        busybox(),
        vec!["echo".into(), tricky.into(), "two words".into()],
    );
    c.stdout = Some(path("echo.out"));
    c.env.push(EnvVar::plain("GREETING", "hi there"));
    c.workdir = Some(cpath("/tmp"));
    let mut env = sh("env", "echo \"$GREETING|$PYTHONUNBUFFERED|$(pwd)\"");
    env.env.push(EnvVar::secret("GREETING", "hi there"));
    env.workdir = Some(cpath("/tmp"));
    let spec = job("argv", ws.path(), vec![c, env]);
    backend.run(&spec, &compute::NoEvents).await.unwrap();
    assert_eq!(read(ws.path(), "echo.out"), format!("{tricky} two words\n"));
    assert_eq!(read(ws.path(), "env.out"), "hi there|1|/tmp\n");
}

#[tokio::test]
async fn watched_files_are_reported_while_the_job_runs() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let mut c = sh(
        "scorer",
        "for v in 1 2 3; do echo \"<p>$v</p>\" > /out/detailed_results.html; sleep 1.5; done",
    );
    c.mounts.push(Mount::rw(path("out"), cpath("/out")));
    let mut spec = job("watch", ws.path(), vec![c]);
    spec.watch.push(path("out/detailed_results.html"));
    let events = Recorder::default();
    backend.run(&spec, &events).await.unwrap();
    let changes = events
        .0
        .into_inner()
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e, Event::FileChanged { .. }))
        .count();
    assert!(changes >= 2, "saw {changes} changes");
    assert_eq!(read(ws.path(), "out/detailed_results.html"), "<p>3</p>\n");
}

#[tokio::test]
async fn mounts_and_outputs_cannot_leave_the_workspace() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("escape")).unwrap();

    let mut mount_out = sh("a", "true");
    mount_out.mounts.push(Mount::rw(path("escape"), cpath("/data")));
    let mut write_out = sh("b", "true");
    write_out.stdout = Some(path("escape/stdout.txt"));
    for c in [mount_out, write_out] {
        let spec = job("escape", ws.path(), vec![c]);
        let err = backend.run(&spec, &compute::NoEvents).await.unwrap_err();
        assert!(matches!(err, Error::InvalidSpec(_)), "{err}");
        assert!(err.to_string().contains("outside the workspace"), "{err}");
        assert!(containers_of(&backend, &spec.id).await.is_empty());
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_container_the_engine_cannot_start_fails_the_job_and_leaves_nothing() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    // This engine has no GPU runtime, so it refuses to start the second container
    // after the first one is already running.
    let mut gpu = sh("gpu", "true");
    gpu.resources.gpu = Some(Gpu { count: 1, sku: None });
    let spec = job("no-gpu", ws.path(), vec![sh("first", "sleep 600"), gpu]);
    let err = backend.run(&spec, &compute::NoEvents).await.unwrap_err();
    assert!(matches!(err, Error::Platform { operation: "start container", .. }), "{err:?}");
    assert!(containers_of(&backend, &spec.id).await.is_empty(), "removed before returning");
}
