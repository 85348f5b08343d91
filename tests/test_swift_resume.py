"""A large answer cut short (the connection closed part way) against the real Swift and Ceph
RGW's Swift API, through the fault proxy: the next attempt asks only for the bytes still
missing, of the same object (If-Match), so a 64 MiB shard dropped at 60 MiB costs 4 MiB more,
not 64; an object replaced in between is read anew, never spliced."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import swiftclient
from backends import fault_proxy
from yarl import URL

from zarrstores._retry import RetryPolicy
from zarrstores.auth import TempAuth
from zarrstores.devserver.faultproxy import FaultProxy
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftFileSystem

MIB = 1 << 20
USER = "test:tester"


@pytest.fixture(params=["swift", "rgw"])
def server(request: pytest.FixtureRequest) -> SwiftServer | RGWServer:
    """OpenStack Swift, then Ceph RGW's Swift API."""
    return request.getfixturevalue("swift_server" if request.param == "swift" else "rgw_server")


@pytest.fixture
def proxy(server: SwiftServer | RGWServer) -> Iterator[FaultProxy]:
    origin = server.proxy_url if isinstance(server, SwiftServer) else server.endpoint
    proxy = fault_proxy(origin)
    proxy.clear()
    yield proxy
    proxy.clear()


def filesystem(
    proxy: FaultProxy, server: SwiftServer | RGWServer, retry: RetryPolicy, **options: int
) -> SwiftFileSystem:
    """A ``swift://`` filesystem whose every request goes through ``proxy``."""
    origin = URL(server.auth_url).origin()
    auth = TempAuth(
        str(proxy.url + URL(server.auth_url).path),
        USER,
        "testing",
        storage_url=server.storage_url().replace(str(origin), proxy.url),
    )
    return SwiftFileSystem(auth=auth, retry=retry, skip_instance_cache=True, **options)


def gets(proxy: FaultProxy, since: int, name: str) -> list[int]:
    """The statuses Swift gave the GETs of ``name`` answered after the first ``since``."""
    return [s for m, path, s in proxy.answered[since:] if m == "GET" and path.endswith(name)]


@pytest.mark.parametrize(
    ("name", "segment", "start", "end", "cut"),
    [
        ("whole", None, None, None, 10 * MIB),
        ("slo", 8 * MIB, None, None, 13 * MIB),  # a Static Large Object of 3 segments
        ("range", None, 3 * MIB, 21 * MIB, 5 * MIB),
        ("small", None, None, None, 1 * MIB),  # under 4 MiB: simply asked for again
    ],
)
def test_a_large_answer_cut_short_is_resumed_where_it_stopped(
    proxy: FaultProxy,
    server: SwiftServer | RGWServer,
    swift_container: str,
    name: str,
    segment: int | None,
    start: int | None,
    end: int | None,
    cut: int,
) -> None:
    size = 3 * MIB if name == "small" else 24 * MIB
    data = os.urandom(size)
    options = {"segment_size": segment} if segment else {}
    fs = filesystem(proxy, server, RetryPolicy(attempts=3, base=0.05, cap=0.1), **options)
    path = f"{swift_container}/{name}"
    fs.pipe_file(path, data)  # (the container is made by this first write)
    if segment:
        assert fs.info(path).get("slo")
    fault = proxy.inject("cut", after=cut, method="GET", path_contains=path)
    seen, before = len(proxy.answered), proxy.bytes_received

    got = fs.cat_file(path, start=start, end=end)

    wanted = data[start:end]
    assert got == wanted
    moved = proxy.bytes_received - before
    assert fault.used == 1
    if name == "small":
        assert moved == cut + size  # asked for again whole
        assert gets(proxy, seen, name) == [200, 200]
    elif name == "slo" and isinstance(server, RGWServer):
        # RGW refuses If-Match with the ETag it gives an SLO: read again whole, still right.
        assert cut + size <= moved < cut + size + 1024  # (and the 412's few bytes)
        assert gets(proxy, seen, name) == [200, 412, 200]
    else:
        assert moved == len(wanted)  # the part before the cut and the rest: nothing twice
        assert gets(proxy, seen, name) == [200 if start is None else 206, 206]


def test_an_object_replaced_after_the_cut_is_read_anew_not_spliced(
    proxy: FaultProxy, server: SwiftServer | RGWServer, swift_container: str
) -> None:
    old, new = os.urandom(16 * MIB), os.urandom(16 * MIB)
    fs = filesystem(proxy, server, RetryPolicy(attempts=3, base=0.05, cap=0.1))
    path = f"{swift_container}/replaced"
    fs.pipe_file(path, old)
    fault = proxy.inject("cut", after=6 * MIB, method="GET", path_contains=path)
    # The request for the rest waits 3 s at the proxy: time to replace the object.
    proxy.inject("delay", delay=3.0, method="GET", path_contains=path)
    seen = len(proxy.answered)
    raw = swiftclient.Connection(server.auth_url, USER, "testing")

    def replace() -> None:
        while not any(p.endswith("replaced") for m, p, _ in proxy.answered[seen:] if m == "GET"):
            time.sleep(0.01)
        time.sleep(0.2)  # the first part is through by now
        raw.put_object(swift_container, "replaced", new)

    replacer = threading.Thread(target=replace)
    replacer.start()
    try:
        got = fs.cat_file(path)
    finally:
        replacer.join()
        raw.close()
    assert fault.used == 1
    assert got == new
    # The rest of the old object was refused (412), and the new one read whole.
    assert gets(proxy, seen, "replaced") == [200, 412, 200]
