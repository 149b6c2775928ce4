//! A local stand-in for Azure services, for tests and development without a cloud
//! account. It emulates **Azure Files** (the REST API of a storage account's file
//! service, on plain directories) and, optionally, **Entra ID** tokens and **ARM /
//! Azure Container Instances** (container groups that really run, on the local Docker
//! engine, with the Files shares as their `azureFile` volumes), with faults on demand.
//!
//! [`Emulator::start`] runs the Files part in-process, [`Emulator::start_with`] both
//! parts (tests start one per test on port 0); the `azure-emulator` binary runs it as
//! a service (`scripts/dev-services up` starts one with Files on `127.0.0.1:10004` and
//! Entra ID and ARM on `https://127.0.0.1:10005`).
//!
//! ```
//! use afs_staging::auth::SharedKey;
//! use azure_emulator::{Emulator, Faults, FilesConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let data = tempfile::tempdir().unwrap();
//! let config = FilesConfig::new(data.path());
//! let key = SharedKey::new(&config.account, &config.key).unwrap();
//! let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
//!
//! // Create Share, signed like any Azure Storage request.
//! let url = reqwest::Url::parse(&format!("{}/runs?restype=share", emulator.files_endpoint()))
//!     .unwrap();
//! let date = httpdate::fmt_http_date(std::time::SystemTime::now());
//! let headers = [("x-ms-date", date.as_str()), ("x-ms-version", "2025-05-05")];
//! let authorization = key.authorization("PUT", url.path(), url.query(), headers);
//! let created = reqwest::Client::new()
//!     .put(url)
//!     .header("x-ms-date", &date)
//!     .header("x-ms-version", "2025-05-05")
//!     .header("authorization", authorization)
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(created.status(), 201);
//! assert!(emulator.share_dir("runs").is_dir());
//!
//! // From now on, every request fails with 500 or 503.
//! emulator.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
//! emulator.shutdown().await;
//! # });
//! ```
//!
//! # Azure Files
//!
//! Path-style URLs as in Azurite: `http://127.0.0.1:PORT/<account>/<share>/<dir>/<file>`,
//! one account whose name and key are configurable ([`FilesConfig`]; the defaults are
//! Azurite's well-known [`DEFAULT_ACCOUNT`] and [`DEFAULT_KEY`]). Every request must
//! carry a valid SharedKey `Authorization` header or SAS token (a service SAS for a
//! share or a file, or an account SAS), checked by `afs_staging::auth`; any
//! `x-ms-version` is accepted and echoed.
//!
//! Operations: List Shares; Create Share, Get Share Properties, Delete Share; Create
//! Directory, Get Directory Properties, Delete Directory, List Directories and Files
//! (with `prefix`, `marker`, `maxresults`, `include` and `x-ms-file-extended-info`);
//! Create File, Put Range (`update` and `clear`), Get File (whole or a range), Get File
//! Properties, Delete File. Answers carry Azure's status codes, error codes
//! (`x-ms-error-code` and an XML `Error` body), `x-ms-request-id`, `ETag` and
//! `Last-Modified`.
//!
//! Storage: share `s` is the directory `<data_dir>/shares/s/`, holding exactly the
//! share's files and directories (a file's size is its length on disk; Create File
//! makes a sparse file), so that it can be bind-mounted into a container; its
//! properties live in `<data_dir>/meta/s.json`. Nothing outside `data_dir` is ever
//! written: path segments are decoded and `.`, `..`, empty names, backslashes and
//! control characters are refused, and links are never followed — a link that a
//! container left in a share is neither listed, read, written nor walked through.
//!
//! Not covered (requests for other `comp` values are answered `501 NotImplemented`):
//! share snapshots, leases, setting share or file properties and metadata after
//! creation, file metadata and content headers (`x-ms-content-type`, `Content-MD5`:
//! neither kept nor checked), copy, range lists, handles, SMB permissions and
//! attributes (reported as `Archive` or `Directory`, with times from the inode), quota
//! enforcement, conditional headers, the `Date` skew check, HTTPS. SAS tokens are
//! checked for signature, time, permissions, service and resource types, but not for
//! `sip` and `spr` (the emulator speaks plain HTTP on loopback); stored access
//! policies (`si`) are unknown, and the response header overrides (`rscd`, `rsct`,
//! ...) are signed but not applied. Names are case-sensitive, as on Linux (Azure Files
//! is case-insensitive), and metadata names come back lowercased.
//!
//! The checks against links look at each directory before use and open files with
//! `O_NOFOLLOW`; a process that swaps a directory for a link in between could still
//! redirect one request: the emulator is a test tool, not a sandbox.
//!
//! # Faults
//!
//! [`Faults`] makes a share of Files requests fail (`500 InternalError`, `503
//! ServerBusy`), be throttled (`503` with `Retry-After`), fail after their effect took
//! place, or wait; drawn from a seeded generator, set at start or any time with
//! [`Emulator::set_faults`]. It can also keep a deleted share's name taken for a while
//! (`409 ShareBeingDeleted` to a create, as Azure answers while it removes the share
//! in the background). ARM has counted faults of its own ([`ArmFaults`], below).
//!
//! # Entra ID and ARM
//!
//! One HTTPS address (`https://127.0.0.1:PORT`, [`Emulator::arm_endpoint`]) serves
//! both: it is the authority host for tokens and the resource manager's base URL. The
//! certificate is signed by a test CA made at every start, written to
//! `<tls_dir>/ca.pem` ([`Emulator::ca_cert_pem_path`]) for clients to trust; its key
//! is never written. [`Emulator::azure_creds_json`] gives the service principal's
//! `az ad sp create-for-rbac --sdk-auth` file pointing here. Configuration:
//! [`ArmConfig`] (one tenant, one service principal, one subscription, its resource
//! groups, a location).
//!
//! ```
//! use azure_emulator::{ArmConfig, Emulator, FilesConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let mut arm = ArmConfig::new(dir.path().join("tls"));
//! arm.instant = true; // groups complete at once, without Docker
//! let any = "127.0.0.1:0".parse().unwrap();
//! let files = FilesConfig::new(dir.path().join("data"));
//! let emulator = Emulator::start_with(files, any, Some((arm.clone(), any))).await.unwrap();
//!
//! let ca = std::fs::read(emulator.ca_cert_pem_path()).unwrap();
//! let http = reqwest::Client::builder()
//!     .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
//!     .build()
//!     .unwrap();
//! let endpoint = emulator.arm_endpoint();
//!
//! // Client credentials, as azure_identity's ClientSecretCredential sends them.
//! let form = format!(
//!     "grant_type=client_credentials&client_id={}&client_secret={}\
//!      &scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
//!     arm.client_id, arm.client_secret
//! );
//! let answer = http
//!     .post(format!("{endpoint}/{}/oauth2/v2.0/token", arm.tenant_id))
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(form)
//!     .send()
//!     .await
//!     .unwrap();
//! let token: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
//! let token = token["access_token"].as_str().unwrap();
//!
//! let group = serde_json::json!({
//!     "location": "westeurope",
//!     "properties": {
//!         "osType": "Linux",
//!         "restartPolicy": "Never",
//!         "containers": [{"name": "hello", "properties": {
//!             "image": "busybox:latest",
//!             "command": ["echo", "hello"],
//!             "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
//!         }}],
//!     },
//! });
//! let url = format!(
//!     "{endpoint}/subscriptions/{}/resourceGroups/{}/providers/\
//!      Microsoft.ContainerInstance/containerGroups/hello?api-version=2023-05-01",
//!     arm.subscription_id, arm.resource_groups[0]
//! );
//! let created = http.put(&url).bearer_auth(token).header("content-type", "application/json")
//!     .body(group.to_string()).send().await.unwrap();
//! assert_eq!(created.status(), 201);
//! let got = http.get(&url).bearer_auth(token).send().await.unwrap();
//! let got: serde_json::Value = serde_json::from_slice(&got.bytes().await.unwrap()).unwrap();
//! assert_eq!(got["properties"]["instanceView"]["state"], "Succeeded");
//! let hello = &got["properties"]["containers"][0]["properties"]["instanceView"];
//! assert_eq!(hello["currentState"]["exitCode"], 0);
//! emulator.shutdown().await;
//! # });
//! ```
//!
//! ## Entra ID
//!
//! - `POST /{tenant}/oauth2/v2.0/token`, the client-credentials grant (form fields
//!   `grant_type`, `client_id`, `client_secret`, `scope`, which must be one
//!   `<resource>/.default`): `{"token_type":"Bearer","expires_in":N,
//!   "ext_expires_in":N,"access_token":…}`. Refusals are Entra's shape
//!   (`error`, `error_description` starting with an `AADSTS` code, `error_codes`,
//!   `trace_id`, `correlation_id`): a wrong secret is `401 invalid_client`
//!   (AADSTS7000215, never echoing the secret), an unknown client id also `401
//!   invalid_client` (AADSTS700016; Entra itself may answer that one 400
//!   `unauthorized_client`), a bad scope `400 invalid_scope`, another tenant `400`
//!   (AADSTS90002).
//! - What MSAL reads: `GET /{tenant}/v2.0/.well-known/openid-configuration` (for the
//!   tenant, `common` and `organizations`), `GET /common/discovery/instance` and
//!   `GET /{tenant}/discovery/v2.0/keys` (empty). MSAL sends instance discovery to
//!   `login.microsoftonline.com` for any authority it does not know, so Python
//!   clients must pass `disable_instance_discovery=True`; then it only reads the
//!   OpenID configuration here.
//! - A managed identity as App Service offers it: `GET
//!   /msi/token?resource=…&api-version=2019-08-01` with header `X-IDENTITY-HEADER`
//!   ([`ArmConfig::identity_header`]), answering `access_token`, `expires_on`,
//!   `resource`, `token_type`, `client_id` (set `IDENTITY_ENDPOINT` to
//!   `<endpoint>/msi/token` and `IDENTITY_HEADER`).
//!
//! Tokens are JWTs signed with HMAC-SHA256 under a key that exists only in the
//! emulator's memory: ARM accepts exactly the tokens this emulator issued since it
//! started, until their `exp` ([`ArmConfig::token_lifetime`]).
//!
//! ## ARM
//!
//! Any `api-version` is accepted (`2023-05-01` shapes the answers); a request without
//! one is `400 MissingApiVersionParameter`. Every request needs `Authorization:
//! Bearer <token>`, else `401` with `WWW-Authenticate` naming the authority, and ARM's
//! codes: `AuthenticationFailed` (no or malformed header), `InvalidAuthenticationToken`
//! (not one of ours), `ExpiredAuthenticationToken`, `InvalidAuthenticationTokenAudience`
//! (a token for anything but `https://management.azure.com`,
//! `https://management.core.windows.net` or the emulator's own endpoint). Errors are
//! `{"error":{"code":…,"message":…}}`; every answer carries `x-ms-request-id` and
//! `x-ms-correlation-request-id` (the client's, when it sent one). Path segments
//! other than names (`resourceGroups`, `providers`, …) are case-insensitive, and so
//! are resource group names.
//!
//! - `GET /subscriptions/{sub}`, `GET …/resourcegroups`, `GET
//!   …/resourcegroups/{rg}`: `404 SubscriptionNotFound` and `404
//!   ResourceGroupNotFound` for others.
//! - `PUT …/containerGroups/{name}`: checked as ACI checks (`400`): name
//!   (`InvalidContainerGroupName`: 1–63 of `[a-z0-9-]`, not starting or ending with
//!   `-`), `LocationRequired`, `InvalidOsType` / `UnsupportedOsType` (Linux only),
//!   `InvalidRestartPolicy`, `PriorityNotSpecified`, `MissingContainers`,
//!   `InvalidContainerName`, `DuplicateContainerName`, `MissingContainerImage`,
//!   `InvalidContainerImage`, `InvalidResourceRequests` (`cpu` and `memoryInGB`
//!   positive), `InvalidEnvironmentVariable`, `InvalidVolumeMount` (unknown volume,
//!   bad or repeated path), `DuplicateVolumeName`, `UnsupportedVolumeType` (only
//!   `azureFile`), `AzureFileShareNotFound`, `InvalidStorageAccountCredentials`
//!   (account name and key must be the Files part's), `InvalidImageRegistryCredential`,
//!   `InitContainersNotSupported`, ACI's Spot rules
//!   (`SpotPriorityContainerGroupWithGPUResourcesNotSupported`, …), and
//!   `InvalidRequestContent` for a body that does not fit the schema. The codes that
//!   ACI documents are ACI's; the others are the emulator's own names. A new group
//!   is `201` with `provisioningState` `Pending` and an `Azure-AsyncOperation` header
//!   (`GET` it: `InProgress`, `Succeeded` or `Failed` with `error`). The same body
//!   again while the group exists is `200` and changes nothing (a retry after a lost
//!   answer starts nothing twice); a different body is `409 Conflict` while the group
//!   is `Pending` or `Running` or being deleted, and replaces it (`200`, a new run)
//!   once it is over.
//! - `GET …/containerGroups/{name}`: the request as sent, without what ACI never
//!   shows again (`secureValue`s, storage account keys, registry passwords, secret
//!   volume contents, Log Analytics keys), with ACI's defaults (`sku`,
//!   `restartPolicy`, `initContainers`, `command`, `ports`, `environmentVariables`),
//!   `provisioningState`, the group's `instanceView` (`state`, `events`) and each
//!   container's (`restartCount` 0, `currentState` with `state`, `startTime`,
//!   `exitCode`, `finishTime`, `detailStatus`, and `events` with `count`,
//!   `firstTimestamp`, `lastTimestamp`, `name`, `message`, `type`).
//! - `GET …/containerGroups` of a resource group or of the subscription: `{"value":
//!   […]}`, 100 a page in name order, `nextLink` to the next.
//! - `DELETE`: kills the containers, waits until the engine has removed them, and
//!   answers `200` with the group's last state; `204` when there is no such group.
//! - `POST …/stop`: `204` once the containers are gone; those still alive are reported
//!   `Terminated`, exit code 137, `detailStatus` `Killed`, with a `Killing` event,
//!   and the group `Stopped` (unless a fault makes the stop forget the containers,
//!   below).
//! - `GET …/containers/{container}/logs[?tail=N]`: `{"content":…}`, the container's
//!   stdout followed by its stderr (not interleaved), the last 4 MiB at most.
//!
//! ### How groups run
//!
//! One group is one `backend-docker` job ([`backend_docker::DockerBackend`], labelled
//! with worker `azure-emulator:<data_dir>`; what a killed emulator left running is
//! removed when the next one on the same data directory first uses Docker): its workspace is the data directory, each `azureFile` mount a
//! bind mount of `shares/<share>` (read-only when the volume or the mount says so),
//! stdout and stderr go to `arm/logs/<run>/` there. `command` is the argv and replaces
//! the image's entrypoint and command, as in ACI (empty keeps the image's own);
//! environment variables (plain and secure) are passed, `cpu` (capped at this
//! machine's CPUs) and `memoryInGB` (GiB) become limits, registry credentials whose
//! server matches an image are used to pull it, and containers get no network.
//!
//! The instance view follows: `provisioningState` `Pending` → `Creating` (pulling) →
//! `Succeeded` once every container started; containers `Waiting` → `Running`
//! (`startTime`, event `Started`) → `Terminated` (`exitCode`, `finishTime`,
//! `detailStatus` `Completed` for 0, `Error` otherwise, `OOMKilled`); the group
//! `Pending` → `Running` → `Succeeded` (all exited 0) or `Failed`. Each image gets
//! `Pulling` and `Pulled` events (`pulling image "…"`, `Successfully pulled image
//! "…"`). When a pull fails, the containers of that image stay `Waiting` with
//! `detailStatus` `ErrImagePull` and a `Failed` event of type `Warning`
//! (`Failed to pull image "<image>": <the registry's or engine's words>`),
//! `provisioningState` is `Failed` and the group state stays `Pending`, as in ACI's
//! `Get_Failed` example. A container that cannot start (its program does not exist,
//! say) is `Terminated` with exit code 127 (126 for permission denied, 128
//! otherwise), `detailStatus` `Error` and a `Failed` `Warning` event whose message
//! carries Docker's text (`Error: failed to start container "main": … exec:
//! "/bin/sh": stat /bin/sh: no such file or directory …`); the other containers are
//! killed, provisioning and group are `Failed`.
//!
//! Instant mode ([`ArmConfig::instant`]) skips Docker: a group is `Succeeded` when it
//! is created, every container `Terminated` with exit code 0 and equal start and
//! finish times. It holds only the request and a small instance view per group, for
//! orchestration benchmarks of hundreds of groups.
//!
//! ### ARM faults
//!
//! [`ArmFaults`] (set at start in [`ArmConfig::faults`] or any time with
//! [`Emulator::set_arm_faults`]) counts down, so tests are deterministic: the next N
//! ARM requests answered `429 TooManyRequests` with `Retry-After` (1 s, or as set),
//! or `500 InternalServerError`, all requests or only those of some methods (so that
//! faults meant for PUTs or polls are not spent on a DELETE before them); the next N
//! GETs of one container group answered `500` while every other request works (an
//! outage of reads); the next N container group PUTs (that pass validation) refused
//! with `409 ContainerGroupQuotaReached` (ACI's message) or `503
//! ServiceUnavailable` ("The requested resource is not available in the location …
//! at this moment …"); PUTs of groups whose image matches a pattern refused at once
//! with ACI's `400 InaccessibleImage`; a provisioning delay before pulls; the next N
//! Spot groups evicted once their containers run (containers `Terminated` with 137
//! and `detailStatus` `Evicted`, group `Stopped` with a `Warning` event named
//! [`SPOT_EVICTION_EVENT`], the emulator's own name: ACI documents evictions, not
//! their event); pulls of images matching a pattern failing; the next N stops
//! leaving the group `Stopped` without any instance view of its containers (ACI
//! documents that a stop keeps no container state); deletes that take longer, the
//! group `Deleting` meanwhile. Token requests are never faulted.
//!
//! ### Not covered
//!
//! Windows groups, init containers, volumes other than `azureFile`, PATCH, `start`,
//! `restart`, `exec`, `attach`, usages, capabilities, cached images, networking (IP
//! addresses, ports, DNS, subnets are kept and shown but do nothing), probes, GPUs
//! (checked and shown; containers run without), managed identities of groups, and
//! restarts: every container runs once whatever the restart policy (real Spot groups
//! are restarted after an eviction; the emulator's stay `Stopped`). Real ACI can
//! refuse a PUT at once when it cannot reach an image (`InaccessibleImage`); the
//! emulator does so only when told to ([`ArmFaults::inaccessible_images`]), and
//! otherwise fails the pull asynchronously. A group's logs interleave nothing:
//! stdout, then stderr.

mod arm;
mod emulator;
mod faults;
mod files;
mod time;
mod tls;

pub use arm::{
    ArmConfig, ArmFaults, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_IDENTITY_HEADER,
    DEFAULT_LOCATION, DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID,
    KILLED_EXIT_CODE, SPOT_EVICTION_EVENT,
};
pub use backend_docker::DockerConfig;
pub use emulator::Emulator;
pub use faults::Faults;
pub use files::{DEFAULT_ACCOUNT, DEFAULT_KEY, FilesConfig};
