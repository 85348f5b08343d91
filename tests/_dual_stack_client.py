"""The client side of the broken-IPv6 test, run by ``BrokenIPv6Route.run`` where
``DUAL_HOST`` resolves to ::1 first: reads a job (JSON) from stdin, logs in, writes, reads,
lists and shares with the store of that job, and prints what it saw (JSON)."""

from __future__ import annotations

import json
import socket
import sys

import fsspec
from fixtures_net import DUAL_HOST

from zarrstores import minio, swift
from zarrstores._retry import RetryPolicy
from zarrstores.minio import MinioStore
from zarrstores.swift import SwiftStore

DATA = b"over IPv4"


def main() -> None:
    job = json.load(sys.stdin)
    order = [a[4][0] for a in socket.getaddrinfo(DUAL_HOST, job["port"], type=socket.SOCK_STREAM)]
    options, container = job["options"], job["container"]
    # Every attempt of a client without fallback would start with ::1 and hang: retries
    # cannot hide it, so the usual few are fine here.
    retry = RetryPolicy(attempts=4, base=0.05, cap=0.2, timeout=5.0)
    store: SwiftStore | MinioStore
    if job["backend"] == "s3":
        store = MinioStore(container, "dual", **options, retry=retry)
        fs, sharing = fsspec.filesystem("minio", **options, skip_instance_cache=True), minio
    else:
        store = SwiftStore(container, "dual", {**options, "retry": retry})
        fs, sharing = fsspec.filesystem("swift", **options, skip_instance_cache=True), swift
    store["k"] = DATA
    read = store["k"]
    listed = fs.ls(f"{container}/dual", detail=False)
    sharing.make_public(store)
    print(json.dumps({"order": order, "read": read.decode(), "listed": listed}))


if __name__ == "__main__":
    main()
