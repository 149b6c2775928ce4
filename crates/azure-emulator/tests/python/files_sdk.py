"""Drives the Azure Files emulator with the official Python SDK
(azure-storage-file-share) and checks that every answer is what the SDK expects.

    files_sdk.py ENDPOINT ACCOUNT KEY PREFIX

ENDPOINT is the account URL (http://127.0.0.1:PORT/ACCOUNT), PREFIX a unique
prefix for the share names this run uses. Prints one JSON line with the checks
that passed; exits non-zero with a traceback at the first one that fails.
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import (
    AccountSasPermissions,
    FileSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareFileClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_account_sas,
    generate_file_sas,
    generate_share_sas,
)

ENDPOINT, ACCOUNT, KEY, PREFIX = sys.argv[1:5]
CREDENTIAL = {"account_name": ACCOUNT, "account_key": KEY}
passed = []


def check(name):
    passed.append(name)


def fails_with(code, status, fn, *args, **kwargs):
    """Runs fn and checks that the service refused it with this error code."""
    try:
        fn(*args, **kwargs)
    except HttpResponseError as err:
        got = (err.status_code, err.error_code)
        assert got == (status, code), f"expected {(status, code)}, got {got}: {err.message}"
        return
    raise AssertionError(f"expected {status} {code}, the call succeeded")


def expiry(hours=1):
    return datetime.now(timezone.utc) + timedelta(hours=hours)


service = ShareServiceClient(account_url=ENDPOINT, credential=CREDENTIAL)

# --- shares
share_name = f"{PREFIX}-main"
share = service.create_share(share_name, quota=7, metadata={"purpose": "conformance"})
fails_with("ShareAlreadyExists", 409, service.create_share, share_name)
fails_with("InvalidResourceName", 400, service.create_share, "Not_A-Share")
props = share.get_share_properties()
assert props.quota == 7, props.quota
assert props.metadata == {"purpose": "conformance"}, props.metadata
assert props.etag and props.last_modified
check("share")

# --- directories
share.create_directory("run")
run_input = share.get_directory_client("run/input")
run_input.create_directory()
run_input.get_subdirectory_client("deep").create_directory()
fails_with("ResourceAlreadyExists", 409, run_input.create_directory)
fails_with("ParentNotFound", 404, share.get_directory_client("nope/child").create_directory)
dir_props = run_input.get_directory_properties()
assert dir_props.etag and dir_props.last_modified
check("directories")

# --- files: small ones with awkward names, one larger than a 4 MiB range
contents = {
    "small.txt": b"hello azure files\n",
    "with space.txt": b"spaces",
    "plus+sign.bin": bytes(range(256)),
    "per%cent.dat": b"100%",
    "\u00fcn\u00efc\u00f6d\u00e9 \u2713.txt": "\u00fcnicode \u2713".encode(),
    "amp&<lt>.txt": b"xml",
    "empty": b"",
    "big.bin": os.urandom((4 << 20) + 12345),
}
for name, data in contents.items():
    run_input.get_file_client(name).upload_file(data, max_concurrency=2)
for name, data in contents.items():
    got = run_input.get_file_client(name).download_file().readall()
    assert got == data, f"{name}: {len(got)} bytes back, {len(data)} sent"
big = run_input.get_file_client("big.bin")
part = big.download_file(offset=(4 << 20) - 10, length=1000).readall()
assert part == contents["big.bin"][(4 << 20) - 10 : (4 << 20) + 990]
fprops = big.get_file_properties()
assert fprops.size == len(contents["big.bin"]), fprops.size
assert fprops.etag == big.download_file().properties.etag
fails_with("ParentNotFound", 404, share.get_file_client("nope/file").upload_file, b"x")
fails_with("ResourceNotFound", 404, run_input.get_file_client("missing").get_file_properties)
fails_with("ResourceNotFound", 404, run_input.get_file_client("missing").download_file)
check("files")

# --- listing, a few entries per page
expected = set(contents) | {"deep"}
pages = list(run_input.list_directories_and_files(results_per_page=2).by_page())
listed = {}
page_count = 0
for page in pages:
    page_count += 1
    for item in page:
        listed[item["name"]] = item
assert set(listed) == expected, sorted(set(listed) ^ expected)
assert page_count == (len(expected) + 1) // 2, page_count
assert listed["deep"]["is_directory"]
for name, data in contents.items():
    assert not listed[name]["is_directory"]
    assert listed[name]["size"] == len(data), (name, listed[name]["size"])
only_p = [i["name"] for i in run_input.list_directories_and_files(name_starts_with="p")]
assert sorted(only_p) == ["per%cent.dat", "plus+sign.bin"], only_p
detailed = list(
    run_input.list_directories_and_files(
        include=["timestamps", "Etag", "Attributes", "PermissionKey"], include_extended_info=True
    )
)
by_name = {i["name"]: i for i in detailed}
assert by_name["big.bin"]["etag"] == fprops.etag
assert by_name["big.bin"]["last_modified"] and by_name["big.bin"]["file_id"]
root = [i["name"] for i in share.list_directories_and_files()]
assert root == ["run"], root
check("list")

# --- deletes
fails_with("DirectoryNotEmpty", 409, run_input.delete_directory)
run_input.get_file_client("small.txt").delete_file()
fails_with("ResourceNotFound", 404, run_input.get_file_client("small.txt").delete_file)
for name in contents:
    if name != "small.txt":
        run_input.get_file_client(name).delete_file()
run_input.get_subdirectory_client("deep").delete_directory()
run_input.delete_directory()
fails_with("ResourceNotFound", 404, run_input.delete_directory)
assert [i["name"] for i in share.get_directory_client("run").list_directories_and_files()] == []
check("deletes")

# --- SAS tokens: a share SAS, a file SAS and an account SAS, each read-only
sas_share = service.create_share(f"{PREFIX}-sas")
sas_share.create_directory("d")
sas_share.get_file_client("d/f.txt").upload_file(b"sas data")
sas_share.get_file_client("other.txt").upload_file(b"other")

read_list = ShareSasPermissions(read=True, list=True)
token = generate_share_sas(ACCOUNT, sas_share.share_name, KEY, permission=read_list, expiry=expiry())
by_share_sas = ShareClient(ENDPOINT, sas_share.share_name, credential=token)
assert by_share_sas.get_file_client("d/f.txt").download_file().readall() == b"sas data"
assert [i["name"] for i in by_share_sas.get_directory_client("d").list_directories_and_files()] == [
    "f.txt"
]
denied = "AuthorizationPermissionMismatch"
fails_with(denied, 403, by_share_sas.get_file_client("d/new.txt").upload_file, b"no")
fails_with(denied, 403, by_share_sas.get_file_client("d/f.txt").delete_file)
expired = generate_share_sas(
    ACCOUNT,
    sas_share.share_name,
    KEY,
    permission=read_list,
    start=expiry(-3),
    expiry=expiry(-2),
)
fails_with(
    "AuthenticationFailed",
    403,
    ShareClient(ENDPOINT, sas_share.share_name, credential=expired)
    .get_file_client("d/f.txt")
    .download_file,
)
check("share sas")

file_token = generate_file_sas(
    ACCOUNT, sas_share.share_name, ["d", "f.txt"], KEY, permission=FileSasPermissions(read=True),
    expiry=expiry(),
)
by_file_sas = ShareFileClient(ENDPOINT, sas_share.share_name, "d/f.txt", credential=file_token)
assert by_file_sas.download_file().readall() == b"sas data"
other_by_file_sas = ShareFileClient(ENDPOINT, sas_share.share_name, "other.txt", credential=file_token)
fails_with("AuthenticationFailed", 403, other_by_file_sas.download_file)
check("file sas")

account_token = generate_account_sas(
    ACCOUNT,
    KEY,
    resource_types=ResourceTypes(service=True, container=True, object=True),
    permission=AccountSasPermissions(read=True, list=True),
    expiry=expiry(),
)
by_account_sas = ShareServiceClient(ENDPOINT, credential=account_token)
names = [s.name for s in by_account_sas.list_shares(name_starts_with=PREFIX)]
assert sas_share.share_name in names, names
got = by_account_sas.get_share_client(sas_share.share_name).get_file_client("d/f.txt")
assert got.download_file().readall() == b"sas data"
fails_with(denied, 403, by_account_sas.create_share, f"{PREFIX}-nope")
fails_with(denied, 403, got.delete_file)
objects_only = generate_account_sas(
    ACCOUNT,
    KEY,
    resource_types=ResourceTypes(object=True),
    permission=AccountSasPermissions(read=True, list=True),
    expiry=expiry(),
)
fails_with(
    "AuthorizationResourceTypeMismatch",
    403,
    lambda: list(ShareServiceClient(ENDPOINT, credential=objects_only).list_shares()),
)
check("account sas")

# --- a wrong key
wrong = dict(CREDENTIAL, account_key="d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk=")
fails_with(
    "AuthenticationFailed",
    403,
    lambda: list(ShareServiceClient(ENDPOINT, credential=wrong).list_shares()),
)
check("wrong key")

# --- listing shares a page at a time, with metadata; then deleting them
extra = [f"{PREFIX}-list-{i}" for i in range(3)]
for i, name in enumerate(extra):
    service.create_share(name, metadata={"index": str(i)})
listed_shares = list(
    service.list_shares(name_starts_with=f"{PREFIX}-list-", include_metadata=True, results_per_page=2)
)
assert [s.name for s in listed_shares] == extra, [s.name for s in listed_shares]
assert [s.metadata for s in listed_shares] == [{"index": str(i)} for i in range(3)]
assert all(s.quota == 5120 for s in listed_shares)
for name in extra + [sas_share.share_name, share_name]:
    service.delete_share(name)
fails_with("ShareNotFound", 404, share.get_share_properties)
fails_with("ShareNotFound", 404, share.delete_share)
assert not [s.name for s in service.list_shares(name_starts_with=PREFIX)]
check("list shares and delete")

print(json.dumps({"passed": passed}))
