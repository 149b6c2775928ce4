//! Entra ID and ARM authentication: tokens for the official Rust SDK's credential,
//! the documents MSAL reads, the managed identity endpoint, and the 401s ARM gives
//! to requests without a valid token.

mod common;

use std::sync::Arc;

use azure_core::cloud::CustomConfiguration;
use azure_core::credentials::{Secret, TokenCredential as _};
use azure_core::http::Transport;
use azure_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use common::arm::{API_VERSION, Arm, client_token, json_of, token_with, trusting_client};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_identity_gets_a_token_that_lists_container_groups() {
    let arm = Arm::instant().await;
    let endpoint = arm.emulator().arm_endpoint();
    let before = arm.emulator().token_requests();

    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = endpoint.clone();
    let mut options = ClientSecretCredentialOptions::default();
    options.client_options.cloud = Some(Arc::new(cloud.into()));
    options.client_options.transport =
        Some(Transport::new(Arc::new(trusting_client(arm.emulator()))));
    let credential = ClientSecretCredential::new(
        DEFAULT_TENANT_ID,
        DEFAULT_CLIENT_ID.to_owned(),
        Secret::new(DEFAULT_CLIENT_SECRET),
        Some(options),
    )
    .unwrap();
    let token =
        credential.get_token(&["https://management.azure.com/.default"], None).await.unwrap();
    assert!(token.expires_on > azure_core::time::OffsetDateTime::now_utc());
    assert_eq!(arm.emulator().token_requests(), before + 1);

    let url = format!("{endpoint}{}?api-version={API_VERSION}", arm.groups_path());
    let listed = arm.call_url("GET", &url, Some(token.token.secret()), None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["value"], Value::Array(vec![]));

    // The credentials file the worker reads points here.
    let creds: Value = serde_json::from_str(&arm.emulator().azure_creds_json()).unwrap();
    assert_eq!(creds["activeDirectoryEndpointUrl"], endpoint.as_str());
    assert_eq!(creds["resourceManagerEndpointUrl"], format!("{endpoint}/").as_str());
    assert_eq!(creds["clientId"], DEFAULT_CLIENT_ID);
    assert_eq!(creds["tenantId"], DEFAULT_TENANT_ID);
    for key in [
        "clientSecret",
        "subscriptionId",
        "activeDirectoryGraphResourceId",
        "sqlManagementEndpointUrl",
        "galleryEndpointUrl",
        "managementEndpointUrl",
    ] {
        assert!(creds[key].is_string(), "{key}");
    }
    arm.files.emulator.shutdown().await;
}

#[tokio::test]
async fn arm_answers_401_without_a_token_of_its_own() {
    let arm = Arm::instant().await;
    let emulator = arm.emulator();
    let url = format!("{}{}?api-version={API_VERSION}", emulator.arm_endpoint(), arm.groups_path());

    let missing = arm.call_url("GET", &url, None, None).await;
    assert_eq!((missing.status, missing.code()), (401, "AuthenticationFailed"));
    assert!(missing.header("www-authenticate").unwrap().contains(DEFAULT_TENANT_ID));
    assert!(missing.header("x-ms-request-id").is_some());
    assert!(missing.header("x-ms-correlation-request-id").is_some());

    let garbage = arm.call_url("GET", &url, Some("not-a-token"), None).await;
    assert_eq!((garbage.status, garbage.code()), (401, "InvalidAuthenticationToken"));

    // A token of another emulator (another signing key) is not one of ours.
    let other = Arm::instant().await;
    let foreign = arm.call_url("GET", &url, Some(&other.token), None).await;
    assert_eq!((foreign.status, foreign.code()), (401, "InvalidAuthenticationToken"));

    let storage =
        client_token(&arm.http, emulator, "https://storage.azure.com/.default").await.unwrap();
    let wrong_audience = arm.call_url("GET", &url, Some(&storage), None).await;
    assert_eq!(
        (wrong_audience.status, wrong_audience.code()),
        (401, "InvalidAuthenticationTokenAudience")
    );

    // A token for the emulator's own endpoint is one for ARM.
    let own_scope = format!("{}/.default", emulator.arm_endpoint());
    let own = client_token(&arm.http, emulator, &own_scope).await.unwrap();
    assert_eq!(arm.call_url("GET", &url, Some(&own), None).await.status, 200);

    // Tokens that live zero seconds are expired on arrival.
    let short = Arm::start(|c| {
        c.instant = true;
        c.docker = None;
        c.token_lifetime = std::time::Duration::ZERO;
    })
    .await;
    let url = format!(
        "{}{}?api-version={API_VERSION}",
        short.emulator().arm_endpoint(),
        short.groups_path()
    );
    let expired = short.call_url("GET", &url, Some(&short.token), None).await;
    assert_eq!((expired.status, expired.code()), (401, "ExpiredAuthenticationToken"));
}

#[tokio::test]
async fn the_token_endpoint_refuses_wrong_credentials_without_echoing_them() {
    let arm = Arm::instant().await;
    let (http, emulator) = (&arm.http, arm.emulator());
    let scope = "https://management.azure.com/.default";
    let secret = "wrong-secret-that-must-not-come-back";

    let (status, body) =
        token_with(http, emulator, DEFAULT_CLIENT_ID, secret, scope).await.unwrap_err();
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(!body.to_string().contains(secret));

    let (status, body) = token_with(
        http,
        emulator,
        "00000000-0000-0000-0000-000000000bad",
        DEFAULT_CLIENT_SECRET,
        scope,
    )
    .await
    .unwrap_err();
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"));
    assert!(!body.to_string().contains(DEFAULT_CLIENT_SECRET));

    let (status, body) =
        token_with(http, emulator, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "https://x/user.read")
            .await
            .unwrap_err();
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_scope"));

    let other_tenant = format!("{}/some-other-tenant/oauth2/v2.0/token", emulator.arm_endpoint());
    let answer =
        http.post(other_tenant).body("grant_type=client_credentials").send().await.unwrap();
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn msal_discovery_and_the_managed_identity_endpoint() {
    let arm = Arm::instant().await;
    let (http, emulator) = (&arm.http, arm.emulator());
    let endpoint = emulator.arm_endpoint();

    let get = |url: String| async move {
        let response = http.get(url).send().await.unwrap();
        (response.status().as_u16(), json_of(response).await)
    };
    let (status, config) =
        get(format!("{endpoint}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(status, 200);
    assert_eq!(
        config["token_endpoint"],
        format!("{endpoint}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token").as_str()
    );
    assert!(config["authorization_endpoint"].is_string() && config["issuer"].is_string());

    let authorize = format!("{endpoint}/{DEFAULT_TENANT_ID}/oauth2/v2.0/authorize");
    let (status, discovery) = get(format!(
        "{endpoint}/common/discovery/instance?api-version=1.1&authorization_endpoint={authorize}"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        discovery["tenant_discovery_endpoint"],
        format!("{endpoint}/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration").as_str()
    );

    let msi = format!(
        "{endpoint}/msi/token?api-version=2019-08-01&resource=https://management.azure.com"
    );
    let refused = http.get(&msi).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let answer = json_of(
        http.get(&msi)
            .header("x-identity-header", azure_emulator::DEFAULT_IDENTITY_HEADER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["expires_on"].as_str().unwrap().parse::<u64>().is_ok());
    let url = format!("{endpoint}{}?api-version={API_VERSION}", arm.groups_path());
    let listed = arm.call_url("GET", &url, answer["access_token"].as_str(), None).await;
    assert_eq!(listed.status, 200);
}

#[tokio::test]
async fn subscriptions_and_resource_groups_as_arm_names_them() {
    let arm = Arm::instant().await;
    let sub = arm.subscription_path();

    for path in [
        format!("{sub}/resourcegroups/aci-worker-test"),
        format!("{sub}/resourceGroups/ACI-Worker-Test"),
    ] {
        let rg = arm.call("GET", &path, None).await;
        assert_eq!(rg.status, 200, "{path}");
        assert_eq!(rg.body["name"], "aci-worker-test");
        assert_eq!(rg.body["properties"]["provisioningState"], "Succeeded");
    }
    let missing = arm.call("GET", &format!("{sub}/resourceGroups/nope"), None).await;
    assert_eq!((missing.status, missing.code()), (404, "ResourceGroupNotFound"));
    let group_in_missing = arm
        .call(
            "GET",
            &format!(
                "{sub}/resourceGroups/nope/providers/Microsoft.ContainerInstance/containerGroups/g"
            ),
            None,
        )
        .await;
    assert_eq!(group_in_missing.code(), "ResourceGroupNotFound");
    let other = arm
        .call("GET", "/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/x", None)
        .await;
    assert_eq!((other.status, other.code()), (404, "SubscriptionNotFound"));
    let no_group = arm.call("GET", &arm.group_path("absent"), None).await;
    assert_eq!((no_group.status, no_group.code()), (404, "ResourceNotFound"));

    let url = format!("{}{}", arm.emulator().arm_endpoint(), arm.groups_path());
    let no_version = arm.call_url("GET", &url, Some(&arm.token), None).await;
    assert_eq!((no_version.status, no_version.code()), (400, "MissingApiVersionParameter"));
}
