"""The official Azure Files SDK moving a tree, as a Python worker would: one
file after another, each with max_concurrency=8. Prints one JSON line with
seconds, bytes and peak memory.

usage: sdk_tree.py publish|collect ENDPOINT ACCOUNT KEY SHARE LOCAL_DIR
"""

import json
import os
import resource
import sys
import time

from azure.storage.fileshare import ShareServiceClient


def main():
    mode, endpoint, account, key, share_name, local = sys.argv[1:7]
    service = ShareServiceClient(
        account_url=endpoint,
        credential={"account_name": account, "account_key": key},
    )
    share = service.get_share_client(share_name)
    started = time.monotonic()
    files = 0
    total = 0
    if mode == "publish":
        share.create_share(quota=100)
        for root, dirs, names in os.walk(local):
            dirs.sort()
            relative = os.path.relpath(root, local)
            if relative != ".":
                share.get_directory_client(relative).create_directory()
            for name in sorted(names):
                path = os.path.join(root, name)
                remote = name if relative == "." else relative + "/" + name
                with open(path, "rb") as data:
                    share.get_file_client(remote).upload_file(data, max_concurrency=8)
                files += 1
                total += os.path.getsize(path)
    elif mode == "collect":
        pending = [""]
        while pending:
            directory = pending.pop()
            target = os.path.join(local, directory)
            os.makedirs(target, exist_ok=True)
            client = share.get_directory_client(directory)
            for item in client.list_directories_and_files():
                remote = item["name"] if not directory else directory + "/" + item["name"]
                if item["is_directory"]:
                    pending.append(remote)
                    continue
                with open(os.path.join(local, remote), "wb") as out:
                    stream = share.get_file_client(remote).download_file(max_concurrency=8)
                    total += stream.readinto(out)
                files += 1
    else:
        sys.exit("unknown mode " + mode)
    seconds = time.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "files": files, "bytes": total, "peak_kib": peak_kib}))


if __name__ == "__main__":
    main()
