#!/usr/bin/env python3
"""Stage blobs in a test blob store and read them back, for the Rust tests.

The integration tests of codalab-run run this as a subprocess (with
$ACI_TEST_VENV_PYTHON, the venv of scripts/dev-services) to play the CodaLab
site's side of bundle transfer: put a bundle in a store and hand the worker a
signed read URL, hand it a signed write URL for its results, then fetch what
the worker wrote.

Two stores, both started by scripts/dev-services:

  azurite  Azure Blob Storage emulator, through the official azure-storage-blob
           SDK. Endpoint $AZURITE_BLOB_ENDPOINT (default
           http://127.0.0.1:10000/devstoreaccount1), account $AZURITE_ACCOUNT
           and key $AZURITE_KEY (default: Azurite's well-known dev account).
           URLs are service SAS URLs made by the SDK's generate_blob_sas.
  s3       S3-compatible server (moto behind s3_server.py), through boto3.
           Endpoint $ACI_TEST_S3_ENDPOINT (default http://127.0.0.1:9000),
           region us-east-1, path-style addressing, dummy credentials
           (test/test). URLs are SigV4 presigned URLs that sign only the Host
           header (UNSIGNED-PAYLOAD), so a PUT may carry any other header
           (x-ms-blob-type, Content-Type) or none.

A container is an Azure container or an S3 bucket; every subcommand creates it
when it is missing (names: 3-63 of a-z, 0-9 and '-', valid for both stores).

Subcommands (each prints one JSON object on stdout):

  put       upload FILE as blob NAME          {"url": <read URL>}
  sign-put  write URL for a new blob          {"url": <write URL>}
            Azure: SAS with create+write; PUT it with x-ms-blob-type: BlockBlob.
            S3: presigned PutObject; no header is required.
  sign-get  read URL for a blob that may not exist (yet)  {"url": <read URL>}
  get       download blob NAME to OUT         {"bytes": n}
            a missing blob (or container) exits 3 with {"missing": true}
  list      names in a container              {"names": [...]} (sorted)

Exit status: 0 done, 1 error (message on stderr, starting with "error:"),
2 bad usage, 3 blob missing (get only).

Both stores refuse a tampered, expired or wrong-method URL with 403: Azurite
checks SAS URLs itself (error code AuthorizationFailure); moto checks nothing,
so s3_server.py beside this file checks presigned URLs in front of it
(SignatureDoesNotMatch, AccessDenied "Request has expired").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone

EXIT_ERROR = 1
EXIT_MISSING = 3

AZURITE_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's built-in key, public in Microsoft's docs; it protects nothing.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_ENDPOINT = "http://127.0.0.1:9000"
S3_REGION = "us-east-1"
# Dummy credentials: moto accepts any. Fixed rather than read from the
# environment, so that a developer's real AWS keys never end up in a URL.
S3_ACCESS_KEY = "test"
S3_SECRET_KEY = "test"

# Uploads and downloads move this much per request (Azure blocks, S3 parts).
CHUNK = 32 * 1024 * 1024
CONCURRENCY = 4


class Missing(Exception):
    """The blob (or its container) does not exist."""


class Failure(Exception):
    """An error worth one line on stderr."""


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def write_atomically(out: str, fill) -> int:
    """Call fill(file) on a temporary file beside OUT, then rename it to OUT.

    Returns the number of bytes written; OUT is left untouched on failure.
    """
    out = os.path.abspath(out)
    fd, tmp = tempfile.mkstemp(prefix=".blobstore-", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            n = f.tell()
        os.replace(tmp, out)
        return n
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------- azurite


class AzuriteStore:
    def __init__(self, timeout: float):
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        self.endpoint = os.environ.get("AZURITE_BLOB_ENDPOINT", AZURITE_ENDPOINT).rstrip("/")
        self.account = os.environ.get("AZURITE_ACCOUNT", AZURITE_ACCOUNT)
        self.key = os.environ.get("AZURITE_KEY", AZURITE_KEY)
        self.service = BlobServiceClient(
            self.endpoint,
            credential={"account_name": self.account, "account_key": self.key},
            connection_timeout=timeout,
            read_timeout=timeout,
            # The SDK's default waits 15 s and more between its 3 retries;
            # against a local server that is down, give up within about 10 s.
            retry_policy=ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=0
            ),
            max_block_size=CHUNK,
            max_single_put_size=CHUNK,
            max_single_get_size=CHUNK,
            max_chunk_get_size=CHUNK,
        )

    def ensure_container(self, container: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self.service.get_container_client(container).create_container()
        except ResourceExistsError:
            pass

    def _sas_url(self, container: str, name: str, permission, expiry_seconds: int) -> str:
        from azure.storage.blob import generate_blob_sas

        expiry = datetime.now(timezone.utc) + timedelta(seconds=expiry_seconds)
        sas = generate_blob_sas(
            account_name=self.account,
            container_name=container,
            blob_name=name,
            account_key=self.key,
            permission=permission,
            expiry=expiry,
        )
        # The client's URL quotes the blob name as the service expects.
        return self.service.get_blob_client(container, name).url + "?" + sas

    def read_url(self, container: str, name: str, expiry_seconds: int) -> str:
        from azure.storage.blob import BlobSasPermissions

        return self._sas_url(container, name, BlobSasPermissions(read=True), expiry_seconds)

    def write_url(self, container: str, name: str, expiry_seconds: int) -> str:
        from azure.storage.blob import BlobSasPermissions

        return self._sas_url(
            container, name, BlobSasPermissions(create=True, write=True), expiry_seconds
        )

    def upload(self, container: str, name: str, path: str) -> None:
        with open(path, "rb") as f:
            self.service.get_blob_client(container, name).upload_blob(
                f, overwrite=True, max_concurrency=CONCURRENCY
            )

    def download(self, container: str, name: str, out: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.service.get_blob_client(container, name)
        try:
            stream = blob.download_blob(max_concurrency=CONCURRENCY)
        except ResourceNotFoundError as e:
            raise Missing() from e
        return write_atomically(out, stream.readinto)

    def names(self, container: str, prefix: str | None) -> list[str]:
        client = self.service.get_container_client(container)
        return [b.name for b in client.list_blobs(name_starts_with=prefix)]


# ---------------------------------------------------------------- s3


class S3Store:
    def __init__(self, timeout: float):
        # Keep botocore away from ~/.aws and the instance metadata service:
        # everything it needs is passed in below.
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(var, None)
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.endpoint = os.environ.get("ACI_TEST_S3_ENDPOINT", S3_ENDPOINT).rstrip("/")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "total_max_attempts": 3},
            # No default CRC32 checksums (botocore >= 1.36): plain requests,
            # as the worker sends them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            config=config,
        )
        self.transfer = TransferConfig(
            multipart_threshold=CHUNK,
            multipart_chunksize=CHUNK,
            max_concurrency=CONCURRENCY,
        )

    @staticmethod
    def _code(e) -> str:
        return str(e.response.get("Error", {}).get("Code", ""))

    def ensure_container(self, container: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=container)
            return
        except ClientError as e:
            if self._code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        try:
            # us-east-1 takes no LocationConstraint.
            self.client.create_bucket(Bucket=container)
        except ClientError as e:
            if self._code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _presign(self, method: str, container: str, name: str, expiry_seconds: int) -> str:
        if expiry_seconds < 1:
            raise Failure("--expiry-seconds must be at least 1 for s3")
        return self.client.generate_presigned_url(
            method,
            Params={"Bucket": container, "Key": name},
            ExpiresIn=expiry_seconds,
        )

    def read_url(self, container: str, name: str, expiry_seconds: int) -> str:
        return self._presign("get_object", container, name, expiry_seconds)

    def write_url(self, container: str, name: str, expiry_seconds: int) -> str:
        # Only Host is signed (X-Amz-SignedHeaders=host, UNSIGNED-PAYLOAD):
        # no ContentType param, which would make Content-Type a signed header
        # that every PUT must repeat exactly.
        return self._presign("put_object", container, name, expiry_seconds)

    def upload(self, container: str, name: str, path: str) -> None:
        self.client.upload_file(path, container, name, Config=self.transfer)

    def download(self, container: str, name: str, out: str) -> int:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=container, Key=name)
        except ClientError as e:
            if self._code(e) in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                raise Missing() from e
            raise
        body = obj["Body"]

        def fill(f) -> None:
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                f.write(chunk)

        try:
            return write_atomically(out, fill)
        finally:
            body.close()

    def names(self, container: str, prefix: str | None) -> list[str]:
        kwargs = {"Bucket": container}
        if prefix:
            kwargs["Prefix"] = prefix
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            names.extend(o["Key"] for o in page.get("Contents", []))
        return names


STORES = {"azurite": AzuriteStore, "s3": S3Store}


# ---------------------------------------------------------------- commands


def cmd_put(store, a) -> None:
    if not os.path.isfile(a.file):
        raise Failure(f"no such file: {a.file}")
    store.ensure_container(a.container)
    store.upload(a.container, a.name, a.file)
    emit({"url": store.read_url(a.container, a.name, a.expiry_seconds)})


def cmd_sign_put(store, a) -> None:
    store.ensure_container(a.container)
    emit({"url": store.write_url(a.container, a.name, a.expiry_seconds)})


def cmd_sign_get(store, a) -> None:
    store.ensure_container(a.container)
    emit({"url": store.read_url(a.container, a.name, a.expiry_seconds)})


def cmd_get(store, a) -> int:
    store.ensure_container(a.container)
    try:
        n = store.download(a.container, a.name, a.out)
    except Missing:
        emit({"missing": True})
        return EXIT_MISSING
    emit({"bytes": n})
    return 0


def cmd_list(store, a) -> None:
    store.ensure_container(a.container)
    emit({"names": sorted(store.names(a.container, a.prefix))})


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="blobstore.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Exit status: 0 ok, 1 error, 2 bad usage, 3 blob missing (get).",
    )
    timeout_help = "connect and read timeout of each request (default 60)"
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help=timeout_help)
    # --timeout is also taken after the command; SUPPRESS keeps a value given
    # before it from being reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS", help=timeout_help
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help_text: str, expiry: bool = False) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        c.set_defaults(func=func)
        c.add_argument("--store", required=True, choices=sorted(STORES))
        c.add_argument("--container", required=True, help="Azure container or S3 bucket")
        if expiry:
            c.add_argument(
                "--expiry-seconds",
                type=int,
                default=3600,
                metavar="N",
                help="the URL expires N seconds from now (default 3600; azurite "
                "takes N <= 0 for an already expired URL)",
            )
        return c

    c = command("put", cmd_put, "upload a file as a blob; print a read URL for it", True)
    c.add_argument("--name", required=True, help="blob name (key)")
    c.add_argument("--file", required=True, help="local file to upload")
    c = command("sign-put", cmd_sign_put, "print a write URL for a new blob", True)
    c.add_argument("--name", required=True, help="blob name (key)")
    c = command("sign-get", cmd_sign_get, "print a read URL for a blob that may not exist", True)
    c.add_argument("--name", required=True, help="blob name (key)")
    c = command("get", cmd_get, "download a blob to a file (exit 3 if it is missing)")
    c.add_argument("--name", required=True, help="blob name (key)")
    c.add_argument("--out", required=True, help="local file to write")
    c = command("list", cmd_list, "list the blob names in a container")
    c.add_argument("--prefix", help="only names starting with this")
    a = p.parse_args(argv)
    if a.timeout <= 0:
        p.error("--timeout must be positive")
    return a


def describe(e: BaseException) -> str:
    """One line for an exception from either SDK."""
    code = getattr(e, "error_code", None)  # azure HttpResponseError
    code = getattr(code, "value", code)  # an enum (StorageErrorCode) or a str
    if code is None and hasattr(e, "response") and isinstance(e.response, dict):
        code = e.response.get("Error", {}).get("Code")  # botocore ClientError
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return f"{type(e).__name__}: {line}" + (f" [{code}]" if code and str(code) not in line else "")


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        store = STORES[a.store](a.timeout)
        return a.func(store, a) or 0
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - any failure is one error line
        name = type(e).__name__
        hint = ""
        if name in ("ServiceRequestError", "EndpointConnectionError", "ConnectTimeoutError"):
            hint = " (is the store running? see scripts/dev-services status)"
        print(f"error: {a.command} on {a.store}: {describe(e)}{hint}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
