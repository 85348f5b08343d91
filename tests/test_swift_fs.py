"""``SwiftFileSystem`` (``swift://``) against the real Swift: ranges, listings with marker
paging, verified writes, large objects, bulk delete and containers."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import swiftclient
from fixtures_swift import memory_dir

from zarrstores.auth import TempAuth
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftFileSystem
from zarrstores.swift import _client as client_module
from zarrstores.swift import fs as fs_module
from zarrstores.swift._client import Capabilities

MiB = 1 << 20


@pytest.fixture(scope="module", params=["swift", "rgw"])
def server(request: pytest.FixtureRequest) -> SwiftServer | RGWServer:
    """OpenStack Swift, then Ceph RGW's Swift API: the tests that take it run on both."""
    return request.getfixturevalue("swift_server" if request.param == "swift" else "rgw_server")


@pytest.fixture(scope="module")
def opts(server: SwiftServer | RGWServer) -> dict[str, Any]:
    """storage_options with one shared login (an auth object, as users may pass one)."""
    return {"auth": TempAuth(server.auth_url, "test:tester", "testing")}


@pytest.fixture(scope="module")
def fast_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A second Swift keeping its data in memory (object writes here are bound by fsync: on
    tmpfs they are about twice as fast), a 1 MiB object size limit and 500 names a listing."""
    with (
        memory_dir(tmp_path_factory, "fast") as base,
        SwiftServer(base / "swift", max_file_size=MiB, container_listing_limit=500) as server,
    ):
        yield server


@pytest.fixture
def fs(opts: dict[str, Any]) -> SwiftFileSystem:
    return SwiftFileSystem(**opts)


@pytest.fixture
def raw(server: SwiftServer | RGWServer) -> Iterator[swiftclient.Connection]:
    conn = swiftclient.Connection(server.auth_url, "test:tester", "testing")
    yield conn
    conn.close()


def spy(fs: SwiftFileSystem) -> list[tuple[str, str, dict[str, str]]]:
    """Record (method, path + query, headers) of every request the filesystem sends."""
    calls: list[tuple[str, str, dict[str, str]]] = []
    request = fs.client.request

    async def recording(method: str, path: str = "", **kw: Any) -> Any:
        calls.append((method, path + kw.get("query", ""), dict(kw.get("headers") or {})))
        return await request(method, path, **kw)

    fs.client.request = recording  # type: ignore[method-assign]
    return calls


def test_registered_protocol(server: SwiftServer | RGWServer, swift_container: str) -> None:
    options = {"authurl": server.auth_url, "user": "test:tester", "key": "testing"}
    fs, path = fsspec.url_to_fs(f"swift://{swift_container}/a/b.zarr", **options)
    assert isinstance(fs, SwiftFileSystem) and path == f"{swift_container}/a/b.zarr"
    assert fsspec.filesystem("swift", **options) is fs  # fsspec's instance cache
    fs.pipe(f"swift://{swift_container}/a/b.zarr/zarr.json", b"{}")
    with fsspec.open(f"swift://{swift_container}/a/b.zarr/zarr.json", **options) as f:
        assert f.read() == b"{}"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, b"0123456789"),
        (2, 5, b"234"),
        (7, None, b"789"),
        (-3, None, b"789"),
        (None, 4, b"0123"),
        (1, -1, b"12345678"),
        (-4, -2, b"67"),
        (8, 20, b"89"),
        (10, 20, b""),
        (12, None, b""),
        (5, 5, b""),
    ],
)
def test_cat_file_ranges(
    fs: SwiftFileSystem, swift_container: str, start: int | None, end: int | None, expected: bytes
) -> None:
    fs.pipe_file(f"{swift_container}/digits", b"0123456789")
    assert fs.cat_file(f"swift://{swift_container}/digits", start=start, end=end) == expected


def test_missing_is_file_not_found_and_creates_nothing(
    fs: SwiftFileSystem, swift_container: str, raw: swiftclient.Connection
) -> None:
    with pytest.raises(FileNotFoundError, match=swift_container):
        fs.cat_file(f"{swift_container}/nope")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{swift_container}/nope")
    with pytest.raises(FileNotFoundError):
        fs.ls(swift_container)
    assert not fs.exists(f"{swift_container}/nope") and not fs.exists(swift_container)
    assert fs.cat_ranges([f"{swift_container}/nope"], [0], [1], on_error="return")[0].__class__ is (
        FileNotFoundError
    )
    with pytest.raises(swiftclient.ClientException):
        raw.head_container(swift_container)


def test_info_ls_find(fs: SwiftFileSystem, swift_container: str) -> None:
    c = swift_container
    fs.pipe({f"{c}/top": b"1", f"{c}/d/a": b"22", f"{c}/d/e/b": b"333", f"{c}/d/e/f/c": b""})
    assert fs.info(f"{c}/d/a")["size"] == 2 and fs.info(f"{c}/d/a")["type"] == "file"
    assert fs.info(f"{c}/d/a")["etag"] == hashlib.md5(b"22").hexdigest()
    assert fs.info(f"{c}/d/e")["type"] == "directory" and fs.isdir(f"{c}/d")
    assert fs.info(c)["type"] == "directory" and fs.info(c)["count"] == 4
    assert fs.isfile(f"{c}/top") and not fs.isdir(f"{c}/top")
    assert fs.ls(c, detail=False) == [f"{c}/d", f"{c}/top"]
    assert fs.ls(f"swift://{c}/d/", detail=False) == [f"{c}/d/a", f"{c}/d/e"]
    assert fs.ls(f"{c}/d/a", detail=False) == [f"{c}/d/a"]  # a file lists as itself
    assert fs.find(f"{c}/d") == [f"{c}/d/a", f"{c}/d/e/b", f"{c}/d/e/f/c"]
    assert fs.find(f"{c}/d", maxdepth=2) == [f"{c}/d/a", f"{c}/d/e/b"]
    assert fs.find(f"{c}/d", withdirs=True) == [
        f"{c}/d",
        f"{c}/d/a",
        f"{c}/d/e",
        f"{c}/d/e/b",
        f"{c}/d/e/f",
        f"{c}/d/e/f/c",
    ]
    assert fs.find(f"{c}/top") == [f"{c}/top"]
    assert fs.glob(f"{c}/d/*") == [f"{c}/d/a", f"{c}/d/e"]
    assert fs.du(f"{c}/d") == 5
    assert c in fs.ls("", detail=False)


def test_listing_past_the_servers_page_limit(fast_swift: SwiftServer, swift_container: str) -> None:
    """Swift returns at most ``container_listing_limit`` names per request (10,000 by default,
    500 on this server to keep the test short): marker paging must fetch the rest, until a page
    comes back empty (Ceph RGW's pages may be short while more remain). The benchmarks list
    50,000 objects against the default limit."""
    fs = SwiftFileSystem(
        authurl=fast_swift.auth_url, user="test:tester", key="testing", skip_instance_cache=True
    )
    n = 1_050
    fs.pipe({f"{swift_container}/many/{i:05d}": b"" for i in range(n)})
    calls = spy(fs)
    found = fs.find(f"{swift_container}/many")
    assert found == [f"{swift_container}/many/{i:05d}" for i in range(n)]
    listings = [path for method, path, _ in calls if method == "GET"]
    assert len(listings) == 4
    assert "marker=many%2F00499" in listings[1] and "marker=many%2F00999" in listings[2]
    assert "marker=many%2F01049" in listings[3]
    assert len(fs.ls(f"{swift_container}/many")) == n


def test_pipe_file_sends_md5(fs: SwiftFileSystem, swift_container: str) -> None:
    calls = spy(fs)
    fs.pipe_file(f"{swift_container}/k", b"payload")
    *_, (_, _, headers) = [c for c in calls if c[0] == "PUT"]
    assert headers["ETag"] == hashlib.md5(b"payload").hexdigest()
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{swift_container}/k", b"other", mode="create")
    assert fs.cat(f"{swift_container}/k") == b"payload"


def test_slo_round_trip_and_delete(
    opts: dict[str, Any],
    swift_container: str,
    raw: swiftclient.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fs = SwiftFileSystem(**opts, segment_size=256 * 1024, skip_instance_cache=True)
    data = os.urandom(MiB + 12345)
    path = f"{swift_container}/big.bin"
    hashed: list[int] = []  # sizes given to the whole-body MD5
    md5_hex = client_module.md5_hex
    monkeypatch.setattr(client_module, "md5_hex", lambda b: hashed.append(len(b)) or md5_hex(b))
    calls = spy(fs)
    fs.pipe_file(path, data)  # the client's first large write: segments hashed one by one only
    assert MiB + 12345 not in hashed, hashed
    # each segment sent once: the segments container was made first, so none earned a 404
    sent = [p for method, p, _ in calls if method == "PUT" and "_segments/" in p]
    assert len(sent) == len(set(sent)) == 5, sent
    info = fs.info(path)
    assert info["slo"] and info["size"] == len(data)
    assert fs.cat_file(path) == data
    # ranged reads across segment boundaries
    assert fs.cat_file(path, start=256 * 1024 - 10, end=256 * 1024 + 10) == data[262134:262154]
    assert fs.cat_file(path, start=-100) == data[-100:]
    segments = raw.get_container(f"{swift_container}_segments")[1]
    assert len(segments) == 5
    assert fs.ls(swift_container, detail=True)[0]["slo"]
    # overwriting replaces the segments; deleting removes them
    fs.pipe_file(path, data[: 600 * 1024])
    assert fs.cat_file(path) == data[: 600 * 1024]
    assert len(raw.get_container(f"{swift_container}_segments")[1]) == 3
    fs.rm(path)
    assert not fs.exists(path)
    assert raw.get_container(f"{swift_container}_segments")[1] == []


def test_open_write_large_file_becomes_slo(
    opts: dict[str, Any], swift_container: str, raw: swiftclient.Connection
) -> None:
    fs = SwiftFileSystem(**opts, segment_size=300 * 1024, skip_instance_cache=True)
    data = os.urandom(MiB)
    path = f"{swift_container}/streamed.bin"
    with fs.open(path, "wb", block_size=100 * 1024) as f:
        for i in range(0, len(data), 70_000):
            f.write(data[i : i + 70_000])
    assert fs.info(path)["slo"] and fs.cat_file(path) == data
    assert len(raw.get_container(f"{swift_container}_segments")[1]) == 4
    with fs.open(path, "rb", block_size=64 * 1024) as f:
        f.seek(500_000)
        assert f.read(1000) == data[500_000:501_000]
    # a small file is one verified PUT, no segments
    with fs.open(f"{swift_container}/small", "wb") as f:
        f.write(b"tiny")
    assert fs.info(f"{swift_container}/small")["slo"] is False
    fs.rm(swift_container, recursive=True)
    assert fs.find(swift_container) == []
    assert raw.get_container(f"{swift_container}_segments")[1] == []


def test_failed_write_leaves_nothing(
    opts: dict[str, Any], swift_container: str, raw: swiftclient.Connection
) -> None:
    fs = SwiftFileSystem(**opts, segment_size=100 * 1024, skip_instance_cache=True)
    path = f"{swift_container}/broken.bin"
    with pytest.raises(RuntimeError), fs.open(path, "wb", block_size=64 * 1024) as f:
        f.write(os.urandom(300 * 1024))
        raise RuntimeError("producer failed")
    assert not fs.exists(path)
    segments = f"{swift_container}_segments"
    assert not fs.exists(segments) or raw.get_container(segments)[1] == []


@pytest.mark.parametrize("how", ["pipe_file", "put_file"])
def test_a_large_first_write_makes_the_container_before_sending(
    opts: dict[str, Any], swift_container: str, tmp_path: Path, how: str
) -> None:
    # Swift and RGW read a whole body before answering 404 for a missing container: a large
    # write into a new container asks first, so its 2 MiB are sent once, not twice.
    fs = SwiftFileSystem(**opts, skip_instance_cache=True)
    data = os.urandom(2 * MiB)
    (tmp_path / "local").write_bytes(data)
    calls = spy(fs)
    if how == "pipe_file":
        fs.pipe_file(f"{swift_container}/a", data)
    else:
        fs.put_file(str(tmp_path / "local"), f"{swift_container}/a")
    sent = [(method, p) for method, p, _ in calls if method in ("HEAD", "PUT")]
    container = f"/{swift_container}"
    assert sent == [("HEAD", container), ("PUT", container), ("PUT", f"{container}/a")], sent
    assert fs.cat_file(f"{swift_container}/a") == data
    del calls[:]
    fs.pipe_file(f"{swift_container}/b", data)  # a container this client wrote into: no HEAD
    assert [(method, p) for method, p, _ in calls] == [("PUT", f"{container}/b")]


def test_large_writes_at_once_into_a_new_container_ask_once(
    opts: dict[str, Any], swift_container: str
) -> None:
    fs = SwiftFileSystem(**opts, skip_instance_cache=True)
    data = os.urandom(2 * MiB)
    calls = spy(fs)
    fs.pipe({f"{swift_container}/{i}": data for i in range(4)})  # (concurrently)
    container = [(method, p) for method, p, _ in calls if p == f"/{swift_container}"]
    assert container == [("HEAD", f"/{swift_container}"), ("PUT", f"/{swift_container}")]
    assert [m for m, p, _ in calls if p != f"/{swift_container}"] == ["PUT"] * 4
    assert fs.cat_file(f"{swift_container}/3") == data


def test_put_and_get_file(
    opts: dict[str, Any],
    swift_container: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fs_module, "_WRITE_BLOCK", 64 * 1024)
    monkeypatch.setattr(fs_module, "_READ_CHUNK", 100 * 1024)
    fs = SwiftFileSystem(**opts, segment_size=400 * 1024, skip_instance_cache=True)
    sizes = {"small": 1000, "medium": 300 * 1024, "large": MiB}  # PUT, streamed PUT, SLO
    for name, size in sizes.items():
        local = tmp_path / name
        local.write_bytes(os.urandom(size))
        fs.put_file(str(local), f"{swift_container}/up/{name}")
        assert fs.info(f"{swift_container}/up/{name}")["slo"] == (name == "large")
        fs.get_file(f"{swift_container}/up/{name}", str(tmp_path / f"{name}.back"))
        assert (tmp_path / f"{name}.back").read_bytes() == local.read_bytes()
    fs.get(f"{swift_container}/up", str(tmp_path / "tree"), recursive=True)
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == sorted(sizes)


def test_slo_on_cluster_with_small_max_file_size(fast_swift: SwiftServer) -> None:
    """Objects above the cluster's max_file_size become SLOs without any setting."""
    fs = SwiftFileSystem(
        authurl=fast_swift.auth_url, user="test:tester", key="testing", skip_instance_cache=True
    )
    data = os.urandom(3 * MiB + 1)
    fs.pipe_file("c/big", data)
    assert fs.info("c/big")["slo"] and fs.cat_file("c/big") == data
    with fs.open("c/streamed", "wb", block_size=MiB // 2) as f:
        f.write(data)
    assert fs.info("c/streamed")["slo"] and fs.cat_file("c/streamed") == data
    assert len(fs.ls("c_segments/streamed", detail=False)) == 1  # <name>/slo/<time>/...
    assert len(fs.find("c_segments/streamed")) == 4  # 1 MiB segments


def test_rm_many_uses_bulk_delete(fs: SwiftFileSystem, swift_container: str) -> None:
    fs.pipe({f"{swift_container}/x/{i}": b"1" for i in range(30)})
    calls = spy(fs)
    fs.rm(f"{swift_container}/x", recursive=True)
    assert fs.find(swift_container) == []
    # 30 names in 3 requests of 10 that the server works on in parallel, no single DELETE
    # (Ceph RGW's /swift/info names no limit: bulk delete is still used).
    assert sum(1 for m, p, _ in calls if m == "POST" and p.endswith("?bulk-delete")) == 3
    assert not any(m == "DELETE" for m, _, _ in calls)
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{swift_container}/x/0")


def test_rm_without_bulk_delete(fs: SwiftFileSystem, swift_container: str) -> None:
    """Clusters whose /info lacks bulk_delete get concurrent DELETEs."""
    fs = SwiftFileSystem(**fs.storage_options, skip_instance_cache=True)
    fs.pipe({f"{swift_container}/x/{i}": b"1" for i in range(5)})
    fs.client._caps = Capabilities(bulk_delete=0)
    calls = spy(fs)
    fs.rm(f"{swift_container}/x", recursive=True)
    assert fs.find(swift_container) == []
    assert sum(1 for m, _, _ in calls if m == "DELETE") == 5


def test_one_instance_per_auth_object(server: SwiftServer | RGWServer) -> None:
    wrong = TempAuth(server.auth_url, "test:tester", "wrong")
    right = TempAuth(server.auth_url, "test:tester", "testing")
    assert repr(wrong) == repr(right)  # secrets do not show...
    assert SwiftFileSystem(auth=wrong) is not SwiftFileSystem(auth=right)  # ...nor get mixed up
    assert SwiftFileSystem(auth=right) is SwiftFileSystem(auth=right)
    with pytest.raises(PermissionError, match="rejected user"):
        SwiftFileSystem(auth=wrong).ls("")
    assert isinstance(SwiftFileSystem(auth=right).ls(""), list)


def test_credentials_from_environment(
    server: SwiftServer | RGWServer, swift_container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OS_STORAGE_URL", "OS_AUTH_TOKEN", "OS_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.st_env().items():
        monkeypatch.setenv(name, value)
    fs = SwiftFileSystem(skip_instance_cache=True)
    fs.pipe_file(f"{swift_container}/env", b"from ST_*")
    storage_url, token = server.get_token()
    monkeypatch.setenv("OS_STORAGE_URL", storage_url)
    monkeypatch.setenv("OS_AUTH_TOKEN", token)
    fs = SwiftFileSystem(skip_instance_cache=True)  # OS_STORAGE_URL/OS_AUTH_TOKEN come first
    assert fs.cat(f"swift://{swift_container}/env") == b"from ST_*"
    assert "pre-authenticated" in fs.client.auth.describe()


def test_containers(fs: SwiftFileSystem, swift_container: str) -> None:
    fs.mkdir(swift_container)
    assert fs.ls(swift_container) == [] and fs.isdir(swift_container)
    with pytest.raises(FileExistsError):
        fs.makedirs(swift_container)
    fs.makedirs(swift_container, exist_ok=True)
    fs.pipe_file(f"{swift_container}/f", b"1")
    with pytest.raises(OSError, match="not empty"):
        fs.rmdir(swift_container)
    fs.rm(f"{swift_container}/f")
    fs.rmdir(swift_container)
    assert not fs.exists(swift_container)
    with pytest.raises(IsADirectoryError):
        fs.pipe_file(swift_container, b"1")


def test_pickle_and_async_use(opts: dict[str, Any], swift_container: str) -> None:
    fs = SwiftFileSystem(**opts, skip_instance_cache=True)
    fs.pipe_file(f"{swift_container}/p", b"pickled")
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat(f"{swift_container}/p") == b"pickled"

    async def concurrently() -> list[bytes]:
        afs = SwiftFileSystem(**opts, asynchronous=True, skip_instance_cache=True)
        try:
            return await asyncio.gather(*(afs._cat_file(f"{swift_container}/p") for _ in range(20)))
        finally:
            await afs.client.close()

    assert asyncio.run(concurrently()) == [b"pickled"] * 20


def test_keystone_fs(swift_server: SwiftServer, swift_container: str) -> None:
    env = swift_server.os_env("password")
    fs = SwiftFileSystem(
        authurl=env["OS_AUTH_URL"],
        user=env["OS_USERNAME"],
        key=env["OS_PASSWORD"],
        auth_version="3",
        os_options={
            "project_name": env["OS_PROJECT_NAME"],
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        skip_instance_cache=True,
    )
    fs.pipe_file(f"{swift_container}/k", b"via keystone")
    assert fs.cat(f"{swift_container}/k") == b"via keystone"
    assert fs.client.auth.get().storage_url.startswith(swift_server.keystone_proxy_url)
