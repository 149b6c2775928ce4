//! Pulling images: from the local registries, with and without credentials, and
//! failing fast when an image cannot be had.

mod common;

use std::time::Duration;

use common::*;
use compute::*;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Image references that only this file uses, so removing them locally cannot
/// disturb tests running at the same time.
fn auth_busybox() -> ImageRef {
    ImageRef::parse(&env_or(
        "ACI_TEST_AUTH_BUSYBOX",
        "127.0.0.1:5001/aci-worker-test/busybox:latest",
    ))
    .unwrap()
}

fn probe_busybox() -> ImageRef {
    ImageRef::parse(&env_or(
        "ACI_TEST_PROBE_BUSYBOX",
        "127.0.0.1:5000/aci-worker-test/pull-probe:latest",
    ))
    .unwrap()
}

fn credentials(password: &str) -> RegistryCredentials {
    RegistryCredentials {
        server: env_or("ACI_TEST_AUTH_REGISTRY", "127.0.0.1:5001"),
        username: env_or("ACI_TEST_REGISTRY_USER", "aciworker"),
        password: Secret::new(password),
    }
}

async fn forget(backend: &backend_docker::DockerBackend, image: &ImageRef) {
    let _ = backend
        .client()
        .remove_image(
            &image.to_string(),
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

fn hello(image: ImageRef) -> ContainerSpec {
    let mut c = ContainerSpec::new(name("hello"), image, vec!["echo".into(), "pulled".into()]);
    c.stdout = Some(path("hello.out"));
    c
}

#[tokio::test]
async fn pulls_from_the_open_registry() {
    let backend = backend().await;
    forget(&backend, &probe_busybox()).await;
    let ws = tempfile::tempdir().unwrap();
    let spec = job("pull-open", ws.path(), vec![hello(probe_busybox())]);
    let outcome = backend.run(&spec, &NoEvents).await.unwrap();
    assert!(outcome.succeeded());
    assert_eq!(read(ws.path(), "hello.out"), "pulled\n");
}

#[tokio::test]
async fn the_private_registry_needs_the_right_credentials() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let password = env_or("ACI_TEST_REGISTRY_PASS", "aciworker-test-pass");

    forget(&backend, &auth_busybox()).await;
    let anonymous = job("pull-anon", ws.path(), vec![hello(auth_busybox())]);
    let err = backend.run(&anonymous, &NoEvents).await.unwrap_err();
    assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("no basic auth credentials"), "{err}");

    let mut wrong = job("pull-wrong", ws.path(), vec![hello(auth_busybox())]);
    wrong.registry = Some(credentials("not-the-password"));
    let err = backend.run(&wrong, &NoEvents).await.unwrap_err();
    assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
    let reason = err.to_string();
    assert!(
        reason.contains("unauthorized") || reason.contains("authentication required"),
        "{reason}"
    );
    assert!(!reason.contains("not-the-password"), "the password never shows: {reason}");

    let mut right = job("pull-right", ws.path(), vec![hello(auth_busybox())]);
    right.registry = Some(credentials(&password));
    let outcome = backend.run(&right, &NoEvents).await.unwrap();
    assert!(outcome.succeeded());
    assert_eq!(read(ws.path(), "hello.out"), "pulled\n");
    forget(&backend, &auth_busybox()).await;
}

#[tokio::test]
async fn an_unpullable_image_fails_fast_with_the_reason() {
    let backend = backend().await;
    let ws = tempfile::tempdir().unwrap();
    let cases = [
        ("127.0.0.1:5000/aci-worker-test/does-not-exist:latest", "not found"),
        ("127.0.0.1:1/nothing-listens-here:latest", "connection refused"),
    ];
    for (reference, expected) in cases {
        let spec = job("unpullable", ws.path(), vec![hello(ImageRef::parse(reference).unwrap())]);
        let run = backend.run(&spec, &NoEvents);
        // A guard against hanging forever, not a measure of speed.
        let err = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
        assert!(!err.is_transient());
        assert!(err.to_string().to_lowercase().contains(expected), "{reference}: {err}");
        assert!(containers_of(&backend, &spec.id).await.is_empty());
    }
}
