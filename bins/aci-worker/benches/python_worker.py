"""An idle Python Celery worker as the Python ACI worker runs one, for the memory
figure of `cargo bench -p aci-worker --bench worker`.

It imports what the Python ACI worker imports (Celery, azure-identity,
azure-mgmt-containerinstance, azure-storage-file-share), builds its clients against
the emulator (nothing is sent until a task runs), registers a no-op
`compute_worker_run`, and consumes a queue of its own, so that it takes no task of
the benchmark. Prints `READY <pid>` on stdout once the worker consumes; stops on
SIGTERM (Celery's warm shutdown).

    python_worker.py BROKER_URL QUEUE AZURE_CREDS FILES_ENDPOINT ACCOUNT KEY
"""

import json
import os
import sys

from azure.identity import ClientSecretCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.storage.fileshare import ShareServiceClient
from celery import Celery
from celery.signals import worker_ready


def main():
    broker, queue, creds_path, files_endpoint, account, key = sys.argv[1:7]
    with open(creds_path) as f:
        creds = json.load(f)
    credential = ClientSecretCredential(
        creds["tenantId"],
        creds["clientId"],
        creds["clientSecret"],
        authority=creds["activeDirectoryEndpointUrl"],
        disable_instance_discovery=True,
    )
    aci = ContainerInstanceManagementClient(
        credential, creds["subscriptionId"], base_url=creds["resourceManagerEndpointUrl"]
    )
    files = ShareServiceClient(
        account_url=files_endpoint, credential={"account_name": account, "account_key": key}
    )

    app = Celery("python_aci_worker", broker=broker)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="compute_worker_run")
    def compute_worker_run(job_id, task_args):
        # The real worker drives `aci` and `files` here; never called in the benchmark.
        return (job_id, aci is not None, files is not None)

    @worker_ready.connect
    def ready(**_):
        print(f"READY {os.getpid()}", flush=True)

    app.worker_main(
        ["worker", "--pool", "solo", "--concurrency", "1", "-Q", queue, "--loglevel", "WARNING"]
    )


if __name__ == "__main__":
    main()
