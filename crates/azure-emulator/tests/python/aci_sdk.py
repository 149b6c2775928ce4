"""Drives the emulator's Entra ID and ARM part with the official Python SDKs
(azure-identity, which uses MSAL, and azure-mgmt-containerinstance) and checks
that every answer is what they expect.

    aci_sdk.py ENDPOINT CA_PEM TENANT CLIENT_ID SECRET SUBSCRIPTION RESOURCE_GROUP IMAGE PREFIX

ENDPOINT is the emulator's https://127.0.0.1:PORT (authority and resource
manager both), CA_PEM the test CA to trust, IMAGE a busybox image the engine can
pull, PREFIX a unique prefix for container group names. Prints one JSON line
with the checks that passed; exits non-zero with a traceback at the first one
that fails.
"""

import json
import socket
import sys
import time

# This script must never talk to anything but this machine: MSAL, for one, asks
# login.microsoftonline.com about unknown authorities unless told not to.
_getaddrinfo = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise OSError(f"aci_sdk.py talks to loopback only, not to {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only

from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.mgmt.containerinstance import ContainerInstanceManagementClient  # noqa: E402
from azure.mgmt.containerinstance.models import (  # noqa: E402
    Container,
    ContainerGroup,
    EnvironmentVariable,
    ResourceRequests,
    ResourceRequirements,
)

ENDPOINT, CA, TENANT, CLIENT, SECRET, SUBSCRIPTION, RG, IMAGE, PREFIX = sys.argv[1:10]
SCOPE = "https://management.azure.com/.default"
passed = []


def check(name):
    passed.append(name)


def credential(secret):
    # disable_instance_discovery: MSAL then reads the tenant's OpenID configuration
    # from the authority itself instead of asking Microsoft's discovery service.
    return ClientSecretCredential(
        TENANT,
        CLIENT,
        secret,
        authority=ENDPOINT,
        disable_instance_discovery=True,
        connection_verify=CA,
    )


def group(command, secure=None):
    env = [EnvironmentVariable(name="GREETING", secure_value=secure)] if secure else []
    return ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="Never",
        containers=[
            Container(
                name="hello",
                image=IMAGE,
                command=command,
                environment_variables=env,
                resources=ResourceRequirements(
                    requests=ResourceRequests(cpu=0.5, memory_in_gb=0.25)
                ),
            )
        ],
    )


def wait_until(client, name, states):
    deadline = time.monotonic() + 120
    while True:
        got = client.container_groups.get(RG, name)
        if got.instance_view.state in states:
            return got
        assert time.monotonic() < deadline, f"{name} stays {got.instance_view.state}"
        time.sleep(0.2)


# --- tokens
good = credential(SECRET)
token = good.get_token(SCOPE)
assert token.token and token.expires_on > time.time()
check("token")

bad_secret = "not-the-secret-8c1f"
try:
    credential(bad_secret).get_token(SCOPE)
    raise AssertionError("a wrong secret got a token")
except ClientAuthenticationError as err:
    assert "AADSTS7000215" in str(err), str(err)
    assert bad_secret not in str(err)
check("wrong secret")

client = ContainerInstanceManagementClient(
    good,
    SUBSCRIPTION,
    base_url=ENDPOINT,
    credential_scopes=[SCOPE],
    connection_verify=CA,
    polling_interval=0.2,
)

# --- create, read, logs
name = f"{PREFIX}-hello"
command = ["/bin/sh", "-c", "echo hello from the sdk; echo $GREETING"]
created = client.container_groups.begin_create_or_update(
    RG, name, group(command, secure="secret-greeting")
).result()
assert created.provisioning_state == "Succeeded", created.provisioning_state
assert created.name == name and created.os_type == "Linux"
check("create")

done = wait_until(client, name, ("Succeeded", "Failed"))
assert done.instance_view.state == "Succeeded", done.instance_view.state
hello = done.containers[0]
current = hello.instance_view.current_state
assert (current.state, current.exit_code, current.detail_status) == ("Terminated", 0, "Completed")
assert current.start_time is not None and current.finish_time is not None
assert hello.instance_view.restart_count == 0
assert [e.name for e in hello.instance_view.events] == ["Pulling", "Pulled", "Started"]
assert hello.environment_variables[0].name == "GREETING"
assert hello.environment_variables[0].secure_value is None
assert hello.command == command
check("get")

logs = client.containers.list_logs(RG, name, "hello")
assert logs.content == "hello from the sdk\nsecret-greeting\n", logs.content
assert client.containers.list_logs(RG, name, "hello", tail=1).content == "secret-greeting\n"
check("logs")

names = [g.name for g in client.container_groups.list_by_resource_group(RG)]
assert name in names, names
check("list")

# --- stop a running group
sleeper = f"{PREFIX}-sleeper"
client.container_groups.begin_create_or_update(RG, sleeper, group(["sleep", "600"])).result()
wait_until(client, sleeper, ("Running",))
client.container_groups.stop(RG, sleeper)
stopped = client.container_groups.get(RG, sleeper)
assert stopped.instance_view.state == "Stopped"
killed = stopped.containers[0].instance_view.current_state
assert (killed.state, killed.exit_code, killed.detail_status) == ("Terminated", 137, "Killed")
check("stop")

# --- delete
for doomed in (name, sleeper):
    client.container_groups.begin_delete(RG, doomed).result()
    try:
        client.container_groups.get(RG, doomed)
        raise AssertionError(f"{doomed} is still there")
    except ResourceNotFoundError:
        pass
check("delete")

print(json.dumps({"passed": passed}))
