//! Requests of the Entra ID and ARM part: dispatch on the path, authentication and
//! injected faults for ARM, and the container group operations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::entra::{self, json_response};
use super::error::{ArmError, Result};
use super::group::Group;
use super::runner::{self, ImagePull, RunPlan};
use super::spec::{self, JobPlace};
use super::token::TokenProblem;
use super::{ArmService, GroupKey, LIST_PAGE, Run, lock};

/// The largest request body read (ARM's own limit is 4 MiB).
const BODY_LIMIT: usize = 4 << 20;

/// The most of a container's output the logs operation returns (ACI's limit).
const LOGS_LIMIT: u64 = 4 << 20;

/// The audiences ARM accepts besides the emulator's own endpoint.
const ARM_AUDIENCES: [&str; 2] =
    ["https://management.azure.com", "https://management.core.windows.net"];

/// One request of the Entra ID and ARM part.
pub(crate) async fn handle(State(service): State<Arc<ArmService>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let query = query_params(parts.uri.query());
    let arm = segments.first().is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"));

    let mut response = if arm {
        service.arm_requests.fetch_add(1, Ordering::Relaxed);
        match arm_request(&service, &parts, &segments, &query, body).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    } else {
        entra_request(&service, &parts, &segments, &query, body).await
    };

    let headers = response.headers_mut();
    let request_id = uuid::Uuid::new_v4().to_string();
    headers.insert("x-ms-request-id", header_value(&request_id));
    let correlation = parts
        .headers
        .get("x-ms-correlation-request-id")
        .cloned()
        .unwrap_or_else(|| header_value(&request_id));
    headers.insert("x-ms-correlation-request-id", correlation);
    if let Some(id) = parts.headers.get("x-ms-client-request-id") {
        headers.insert(HeaderName::from_static("x-ms-client-request-id"), id.clone());
    }
    headers.insert(header::SERVER, HeaderValue::from_static("azure-emulator"));
    let date = httpdate::fmt_http_date(SystemTime::now());
    headers.insert(header::DATE, header_value(&date));
    tracing::debug!(
        method = %parts.method,
        path = parts.uri.path(),
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "arm request",
    );
    response
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

async fn entra_request(
    service: &ArmService,
    parts: &Parts,
    segments: &[String],
    query: &BTreeMap<String, String>,
    body: Body,
) -> Response {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&parts.method, segs.as_slice()) {
        (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            match axum::body::to_bytes(body, BODY_LIMIT).await {
                Ok(bytes) => entra::token(service, tenant, &bytes),
                Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            }
        }
        (&Method::GET, [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            entra::openid_configuration(service, tenant)
        }
        (&Method::GET, ["common", "discovery", "instance"]) => {
            entra::instance_discovery(service, query)
        }
        (&Method::GET, [_, "discovery", "v2.0", "keys"]) => entra::keys(),
        (&Method::GET, ["msi", "token"]) => entra::managed_identity(service, &parts.headers, query),
        _ => ArmError::not_found(parts.method.as_str(), parts.uri.path()).into_response(),
    }
}

/// An ARM request: faults, authentication, `api-version`, then the operation.
async fn arm_request(
    service: &Arc<ArmService>,
    parts: &Parts,
    segments: &[String],
    query: &BTreeMap<String, String>,
    body: Body,
) -> Result<Response> {
    if let Some(fault) = request_fault(service, &parts.method) {
        return Err(fault);
    }
    authenticate(service, &parts.headers)?;
    let Some(api_version) = query.get("api-version").filter(|v| !v.is_empty()) else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let config = service.config();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let is = |actual: &str, expected: &str| actual.eq_ignore_ascii_case(expected);
    let method = &parts.method;
    let not_found = || ArmError::not_found(method.as_str(), parts.uri.path());

    let sub = segs.get(1).copied().unwrap_or("");
    if !is(sub, &config.subscription_id) {
        return Err(ArmError::subscription_not_found(sub));
    }
    let sub_id = &config.subscription_id;
    match segs.as_slice() {
        [_, _] if method == Method::GET => Ok(json_response(
            StatusCode::OK,
            json!({
                "id": format!("/subscriptions/{sub_id}"),
                "subscriptionId": sub_id,
                "tenantId": config.tenant_id,
                "displayName": "azure-emulator",
                "state": "Enabled",
            }),
        )),
        [_, _, rgs] if is(rgs, "resourcegroups") && method == Method::GET => {
            let value: Vec<Value> =
                config.resource_groups.iter().map(|rg| rg_json(service, rg)).collect();
            Ok(json_response(StatusCode::OK, json!({ "value": value })))
        }
        [_, _, p, rp, cg]
            if is(p, "providers")
                && is(rp, "Microsoft.ContainerInstance")
                && is(cg, "containerGroups") =>
        {
            if method != Method::GET {
                return Err(not_found());
            }
            list_groups(service, None, query, parts.uri.path(), api_version)
        }
        [_, _, p, rp, l, _location, o, operation]
            if is(p, "providers")
                && is(rp, "Microsoft.ContainerInstance")
                && is(l, "locations")
                && is(o, "operations") =>
        {
            if method != Method::GET {
                return Err(not_found());
            }
            operation_status(service, operation, parts.uri.path())
        }
        [_, _, rgs, rg, rest @ ..] if is(rgs, "resourcegroups") => {
            let Some(rg) = config.resource_groups.iter().find(|r| is(rg, r)) else {
                return Err(ArmError::resource_group_not_found(rg));
            };
            match rest {
                [] if method == Method::GET => {
                    Ok(json_response(StatusCode::OK, rg_json(service, rg)))
                }
                [p, rp, cg, tail @ ..]
                    if is(p, "providers")
                        && is(rp, "Microsoft.ContainerInstance")
                        && is(cg, "containerGroups") =>
                {
                    group_request(service, parts, rg, tail, query, api_version, body).await
                }
                _ => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

async fn group_request(
    service: &Arc<ArmService>,
    parts: &Parts,
    rg: &str,
    tail: &[&str],
    query: &BTreeMap<String, String>,
    api_version: &str,
    body: Body,
) -> Result<Response> {
    let method = &parts.method;
    let not_found = || ArmError::not_found(method.as_str(), parts.uri.path());
    match tail {
        [] if method == Method::GET => {
            list_groups(service, Some(rg), query, parts.uri.path(), api_version)
        }
        [name] => {
            let key = (rg.to_ascii_lowercase(), (*name).to_owned());
            match *method {
                Method::GET => match read_fault(service) {
                    Some(fault) => Err(fault),
                    None => get_group(service, &key, rg),
                },
                Method::PUT => {
                    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
                        .await
                        .map_err(|_| ArmError::invalid_content("the body is larger than 4 MiB"))?;
                    put_group(service, key, rg, &bytes, api_version)
                }
                Method::DELETE => delete_group(service, key, rg).await,
                _ => Err(not_found()),
            }
        }
        [name, action] if method == Method::POST && action.eq_ignore_ascii_case("stop") => {
            stop_group(service, (rg.to_ascii_lowercase(), (*name).to_owned()), rg).await
        }
        [name, containers, container, logs]
            if method == Method::GET
                && containers.eq_ignore_ascii_case("containers")
                && logs.eq_ignore_ascii_case("logs") =>
        {
            container_logs(
                service,
                (rg.to_ascii_lowercase(), (*name).to_owned()),
                rg,
                container,
                query,
            )
            .await
        }
        _ => Err(not_found()),
    }
}

/// The next request fault, if one is due for a request with `method`: throttling
/// first, then server errors.
fn request_fault(service: &ArmService, method: &Method) -> Option<ArmError> {
    let mut faults = lock(&service.faults);
    if !faults.fault_methods.is_empty()
        && !faults.fault_methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str()))
    {
        return None;
    }
    if faults.throttle > 0 {
        faults.throttle -= 1;
        return Some(ArmError {
            retry_after: Some(faults.throttle_retry_after_secs.unwrap_or(1)),
            ..ArmError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for this \
                 operation type (injected by the emulator). Retry after the time in \
                 'Retry-After'.",
            )
        });
    }
    if faults.server_errors > 0 {
        faults.server_errors -= 1;
        return Some(ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!(
                "Encountered internal server error (injected by the emulator). Tracking id \
                 '{}'.",
                uuid::Uuid::new_v4()
            ),
        ));
    }
    None
}

/// The next fault of a container group GET, if one is due.
fn read_fault(service: &ArmService) -> Option<ArmError> {
    let mut faults = lock(&service.faults);
    if faults.read_errors == 0 {
        return None;
    }
    faults.read_errors -= 1;
    Some(ArmError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        format!(
            "Encountered internal server error reading the container group (injected by the \
             emulator). Tracking id '{}'.",
            uuid::Uuid::new_v4()
        ),
    ))
}

/// Checks the bearer token: issued by this emulator, not expired, for ARM.
fn authenticate(service: &ArmService, headers: &HeaderMap) -> Result<()> {
    let authority = format!("{}/{}", service.endpoint(), service.config().tenant_id);
    let unauthorized = |code, message: String| ArmError::unauthorized(code, message, &authority);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_owned(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid \
                 format."
                    .to_owned(),
            )
        })?;
    let claims = match service.issuer.verify(token) {
        Ok(claims) => claims,
        Err(TokenProblem::Invalid) => {
            return Err(unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid.".to_owned(),
            ));
        }
        Err(TokenProblem::Expired { expired_at }) => {
            let at = |secs: u64| {
                crate::time::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
                    false,
                )
            };
            let now = crate::time::unix_seconds(SystemTime::now());
            return Err(unauthorized(
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    at(expired_at),
                    at(now)
                ),
            ));
        }
    };
    let audience = claims.aud.trim_end_matches('/');
    let own = service.endpoint();
    let own_localhost = own.replacen("127.0.0.1", "localhost", 1);
    if !(ARM_AUDIENCES.contains(&audience) || audience == own || audience == own_localhost) {
        return Err(unauthorized(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It \
                 should exactly match with one of the allowed audiences \
                 'https://management.azure.com/', 'https://management.core.windows.net/', \
                 '{own}/'.",
                claims.aud
            ),
        ));
    }
    Ok(())
}

fn rg_json(service: &ArmService, rg: &str) -> Value {
    let config = service.config();
    json!({
        "id": format!("/subscriptions/{}/resourceGroups/{rg}", config.subscription_id),
        "name": rg,
        "type": "Microsoft.Resources/resourceGroups",
        "location": config.location,
        "properties": {"provisioningState": "Succeeded"},
    })
}

fn get_group(service: &ArmService, key: &GroupKey, rg: &str) -> Result<Response> {
    let groups = lock(&service.groups);
    let group = groups.get(key).ok_or_else(|| ArmError::group_not_found(rg, &key.1))?;
    Ok(json_response(StatusCode::OK, group.json(&service.config().subscription_id)))
}

/// `GET …/containerGroups` of one resource group, or of the subscription, 100 a page
/// in name order; `$skiptoken` (in `nextLink`) is where the next page starts.
fn list_groups(
    service: &ArmService,
    rg: Option<&str>,
    query: &BTreeMap<String, String>,
    path: &str,
    api_version: &str,
) -> Result<Response> {
    let sub = &service.config().subscription_id;
    let skip = query.get("$skiptoken").cloned().unwrap_or_default();
    let groups = lock(&service.groups);
    let mut page = Vec::new();
    let mut next = None;
    let wanted = rg.map(str::to_ascii_lowercase);
    for ((group_rg, name), group) in groups.iter() {
        if wanted.as_ref().is_some_and(|w| w != group_rg) {
            continue;
        }
        let token = format!("{group_rg}/{name}");
        if token <= skip && !skip.is_empty() {
            continue;
        }
        if page.len() == LIST_PAGE {
            next = page.last().map(|(t, _): &(String, Value)| t.clone());
            break;
        }
        page.push((token, group.json(sub)));
    }
    let mut body = json!({ "value": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>() });
    if let Some(token) = next {
        let token: String =
            percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        body["nextLink"] =
            format!("{}{path}?api-version={api_version}&$skiptoken={token}", service.endpoint())
                .into();
    }
    Ok(json_response(StatusCode::OK, body))
}

/// `PUT …/containerGroups/{name}`: validate, then create (201), replace a finished
/// group (200), or answer a repeat of the same request (200, nothing changes).
fn put_group(
    service: &Arc<ArmService>,
    key: GroupKey,
    rg: &str,
    bytes: &[u8],
    api_version: &str,
) -> Result<Response> {
    spec::check_group_name(&key.1)?;
    let body: Value = serde_json::from_slice(bytes).map_err(ArmError::invalid_content)?;
    let spec = spec::parse(&key.1, &body, &service.files)?;
    let sub = service.config().subscription_id.clone();
    let conflict = |message: String| ArmError::new(StatusCode::CONFLICT, "Conflict", message);

    let mut groups = lock(&service.groups);
    let replacing = match groups.get(&key) {
        Some(existing) if existing.provisioning == "Deleting" => {
            return Err(conflict(format!(
                "The container group '{}' is being deleted; try again once it is gone.",
                key.1
            )));
        }
        Some(existing) if existing.body == body => {
            let mut response = json_response(StatusCode::OK, existing.json(&sub));
            async_operation_header(service, &mut response, existing, api_version);
            return Ok(response);
        }
        Some(existing) if existing.is_active() => {
            return Err(conflict(format!(
                "The container group '{}' is {} and a request with a different definition \
                 cannot update it; stop or delete it first.",
                key.1,
                existing.state.to_ascii_lowercase()
            )));
        }
        Some(existing) => Some((existing.uid, existing.log_dir.clone())),
        None => None,
    };

    let (evict, delay, pull_failures) = {
        let mut faults = lock(&service.faults);
        let inaccessible = spec
            .containers
            .iter()
            .find(|c| faults.inaccessible_images.iter().any(|p| c.image_text.contains(p.as_str())));
        if let Some(container) = inaccessible {
            return Err(ArmError::bad_request(
                "InaccessibleImage",
                format!(
                    "The image '{}' in container group '{}' is not accessible. Please check \
                     the image and registry credential.",
                    container.image_text, key.1
                ),
            ));
        }
        if faults.quota_exceeded > 0 {
            faults.quota_exceeded -= 1;
            let cores: f64 = spec.containers.iter().map(|c| c.cpu).sum();
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "ContainerGroupQuotaReached",
                format!(
                    "Resource type 'Microsoft.ContainerInstance/containerGroups' container group \
                     quota 'StandardCores' exceeded in region '{}'. Limit: '10', Usage: '10' \
                     Requested: '{}'.",
                    spec.location,
                    cores.ceil()
                ),
            ));
        }
        if faults.capacity_unavailable > 0 {
            faults.capacity_unavailable -= 1;
            let cores: f64 = spec.containers.iter().map(|c| c.cpu).sum();
            let memory: f64 = spec.containers.iter().map(|c| c.memory_gb).sum();
            return Err(ArmError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!(
                    "The requested resource is not available in the location '{}' at this \
                     moment. Please retry with a different resource request or in another \
                     location. Resource requested: '{cores}' CPU '{memory}' GB memory 'Linux' OS",
                    spec.location
                ),
            ));
        }
        let evict = spec.spot && faults.spot_evictions > 0;
        if evict {
            faults.spot_evictions -= 1;
        }
        let evict = evict.then_some(faults.spot_eviction_delay);
        (evict, faults.provisioning_delay, faults.pull_failures.clone())
    };

    if service.closing.is_cancelled() {
        return Err(ArmError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The emulator is shutting down.",
        ));
    }
    let uid = service.next_uid.fetch_add(1, Ordering::Relaxed);
    let mut group = Group::new(uid, rg, &key.1, body, spec);
    let forced_failure =
        |image: &str| pull_failures.iter().find(|p| image.contains(p.as_str())).cloned();
    let instant_run = service.config().instant_run;
    let plan = if service.config().instant {
        run_instantly(&mut group, evict.is_some(), instant_run, &forced_failure);
        None
    } else {
        let job_id = compute::JobId::new(format!("aciemu-{}-{uid}", service.instance))
            .map_err(|e| ArmError::invalid_content(e.to_string()))?;
        let job = spec::job(
            &group.spec,
            JobPlace {
                id: job_id,
                workspace: service.files.data_dir(),
                log_dir: &group.log_dir,
                host_cpus: service.host_cpus,
            },
        )?;
        let mut pulls: Vec<ImagePull> = Vec::new();
        for (i, c) in group.spec.containers.iter().enumerate() {
            match pulls.iter_mut().find(|p| p.image == c.image) {
                Some(pull) => pull.containers.push(i),
                None => pulls.push(ImagePull {
                    image: c.image.clone(),
                    text: c.image_text.clone(),
                    containers: vec![i],
                    forced_failure: forced_failure(&c.image_text),
                }),
            }
        }
        Some(RunPlan { key: key.clone(), uid, job, pulls, delay, evict_after: evict })
    };

    let mut response = json_response(
        if replacing.is_some() { StatusCode::OK } else { StatusCode::CREATED },
        group.json(&sub),
    );
    async_operation_header(service, &mut response, &group, api_version);
    let name = key.1.clone();
    let finish_later = (plan.is_none() && group.state == "Running").then(|| key.clone());
    groups.insert(key, group);
    drop(groups);

    if let Some(key) = finish_later {
        let service = Arc::clone(service);
        tokio::spawn(async move {
            tokio::time::sleep(instant_run).await;
            if let Some(group) = lock(&service.groups).get_mut(&key).filter(|g| g.uid == uid) {
                group.finish_instant_run();
            }
        });
    }

    if let Some((old_uid, old_logs)) = replacing {
        lock(&service.runs).remove(&old_uid);
        remove_logs(service, old_logs);
    }
    if let Some(plan) = plan {
        let cancel = service.closing.child_token();
        let task = tokio::spawn(runner::run(Arc::clone(service), plan, cancel.clone()));
        lock(&service.runs).insert(uid, Run { cancel, task });
    }
    tracing::info!(resource_group = %rg, %name, uid, "container group created");
    Ok(response)
}

/// Instant mode: the whole life of the group at once.
/// With a non-zero `run`, the containers start now and a task spawned after the
/// group is stored ends them ([`Group::finish_instant_run`]).
fn run_instantly(
    group: &mut Group,
    evict: bool,
    run: Duration,
    forced_failure: &dyn Fn(&str) -> Option<String>,
) {
    let failing: Vec<(usize, String, String)> = group
        .spec
        .containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| forced_failure(&c.image_text).map(|p| (i, c.image_text.clone(), p)))
        .collect();
    if !failing.is_empty() {
        for (i, image, pattern) in failing {
            let reason =
                format!("the emulator was told to fail pulls of images matching \"{pattern}\"");
            group.pull_failed(&[i], &image, &reason);
        }
        return;
    }
    if evict {
        let now = SystemTime::now();
        for i in 0..group.containers.len() {
            group.container_started(i, now);
        }
        group.evicted();
    } else if run.is_zero() {
        group.complete_instantly();
    } else {
        group.start_instantly();
    }
}

/// `Azure-AsyncOperation`, as ACI sends with a PUT: where the deployment's status
/// can be polled.
fn async_operation_header(
    service: &ArmService,
    response: &mut Response,
    group: &Group,
    api_version: &str,
) {
    let config = service.config();
    let url = format!(
        "{}/subscriptions/{}/providers/Microsoft.ContainerInstance/locations/{}/operations/{}?api-version={api_version}",
        service.endpoint(),
        config.subscription_id,
        group.spec.location.replace(' ', "").to_ascii_lowercase(),
        group.uid,
    );
    response.headers_mut().insert("azure-asyncoperation", header_value(&url));
}

/// `GET …/locations/{location}/operations/{id}`: the status of the deployment of the
/// group with that uid.
fn operation_status(service: &ArmService, operation: &str, path: &str) -> Result<Response> {
    let groups = lock(&service.groups);
    let group =
        operation.parse::<u64>().ok().and_then(|uid| groups.values().find(|g| g.uid == uid));
    let Some(group) = group else {
        return Ok(json_response(
            StatusCode::OK,
            json!({"id": path, "name": operation, "status": "Canceled"}),
        ));
    };
    let status = match group.provisioning {
        "Succeeded" => "Succeeded",
        "Failed" => "Failed",
        _ => "InProgress",
    };
    let mut body = json!({
        "id": path,
        "name": operation,
        "status": status,
        "startTime": crate::time::rfc3339(group.created, true),
        "properties": {"events": group.events_json()},
    });
    if status == "Failed" {
        body["error"] = json!({
            "code": "Failed",
            "message": group.last_warning().unwrap_or_else(|| "The deployment failed.".to_owned()),
        });
    }
    Ok(json_response(StatusCode::OK, body))
}

/// `DELETE`: cancels the group's run, waits for its containers to go, removes it and
/// answers 200 with its last state (204 when there is none).
async fn delete_group(service: &Arc<ArmService>, key: GroupKey, rg: &str) -> Result<Response> {
    let uid = {
        let mut groups = lock(&service.groups);
        let Some(group) = groups.get_mut(&key) else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        if group.provisioning == "Deleting" {
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        group.provisioning = "Deleting";
        group.uid
    };
    let delay = lock(&service.faults).deletion_delay;
    // In a task of its own, so that a client hanging up does not leave the group
    // half deleted.
    let service = Arc::clone(service);
    let rg = rg.to_owned();
    let work = tokio::spawn(async move {
        service.cancel_run(uid).await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let removed = {
            let mut groups = lock(&service.groups);
            match groups.get(&key) {
                Some(group) if group.uid == uid => groups.remove(&key),
                _ => None,
            }
        };
        let mut group = removed?;
        if group.is_active() {
            group.stopped();
        }
        group.provisioning = "Succeeded";
        remove_logs(&service, group.log_dir.clone());
        tracing::info!(resource_group = %rg, name = %group.name, "container group deleted");
        Some(group.json(&service.config().subscription_id))
    });
    match work.await {
        Ok(Some(body)) => Ok(json_response(StatusCode::OK, body)),
        Ok(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(err) => Err(ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("The deletion failed: {err}"),
        )),
    }
}

/// `POST …/stop`: cancels the run, waits until the containers are gone, reports
/// them killed (137) and the group `Stopped` (or, as an injected fault, the group
/// `Stopped` and nothing of its containers).
async fn stop_group(service: &Arc<ArmService>, key: GroupKey, rg: &str) -> Result<Response> {
    let uid = {
        let groups = lock(&service.groups);
        let group = groups.get(&key).ok_or_else(|| ArmError::group_not_found(rg, &key.1))?;
        if group.provisioning == "Deleting" {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("The container group '{}' is being deleted.", key.1),
            ));
        }
        group.uid
    };
    let forget = {
        let mut faults = lock(&service.faults);
        let forget = faults.stops_forgetting_containers > 0;
        if forget {
            faults.stops_forgetting_containers -= 1;
        }
        forget
    };
    let service = Arc::clone(service);
    let work = tokio::spawn(async move {
        service.cancel_run(uid).await;
        service.update(&key, uid, |group| {
            group.stopped();
            group.containers_forgotten |= forget;
        });
    });
    work.await.map_err(|err| {
        ArmError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", err.to_string())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET …/containers/{container}/logs[?tail=N]`: stdout then stderr.
async fn container_logs(
    service: &ArmService,
    key: GroupKey,
    rg: &str,
    container: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response> {
    let log_dir = {
        let groups = lock(&service.groups);
        let group = groups.get(&key).ok_or_else(|| ArmError::group_not_found(rg, &key.1))?;
        let Some(index) = group.spec.containers.iter().position(|c| c.name == container) else {
            return Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "ContainerNotFound",
                format!(
                    "The container '{container}' could not be found in container group '{}'.",
                    key.1
                ),
            ));
        };
        service.files.data_dir().join(&group.log_dir).join(index.to_string())
    };
    let tail = match query.get("tail") {
        None => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            ArmError::bad_request(
                "InvalidParameter",
                format!("The 'tail' value '{t}' is not a number."),
            )
        })?),
    };
    let content = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for ext in ["stdout", "stderr"] {
            text.push_str(&read_tail(&log_dir.with_extension(ext)));
        }
        text
    })
    .await
    .unwrap_or_default();
    let content = match tail {
        Some(n) => last_lines(&content, n),
        None => content,
    };
    Ok(json_response(StatusCode::OK, json!({ "content": content })))
}

/// The last [`LOGS_LIMIT`] bytes of a file, as text; empty when it does not exist.
fn read_tail(path: &std::path::Path) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    if len > LOGS_LIMIT {
        let _ = file.seek(SeekFrom::Start(len - LOGS_LIMIT));
    }
    let mut bytes = Vec::new();
    let _ = file.take(LOGS_LIMIT).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `n` lines of `text` (a final newline does not start a line).
fn last_lines(text: &str, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let start = body.match_indices('\n').rev().nth(n - 1).map_or(0, |(i, _)| i + 1);
    text[start..].to_owned()
}

/// Removes a group's logs, in the background.
fn remove_logs(service: &ArmService, log_dir: String) {
    let dir = service.files.data_dir().join(log_dir);
    tokio::task::spawn_blocking(move || {
        if let Err(err) = std::fs::remove_dir_all(&dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %err, "could not remove a group's logs");
        }
    });
}

/// Query parameters, names as sent, values decoded.
fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    afs_staging::auth::query_map(query.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_count_lines_from_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines("a\n", 0), "");
        assert_eq!(last_lines("", 3), "");
    }
}
