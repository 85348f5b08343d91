"""``zarrstores cp``/``sync`` as a user runs them: a many-object zarr store copied
Swift -> S3 -> local -> Swift and opened equal each time, re-runs that copy nothing, an
interrupted copy that resumes, a corrupted object that ``sync`` finds and copies again.

Each test needs only enough objects to stop a copy half way: ``N_CHUNKS`` (300 chunks, 308
objects). ``benchmarks/cli_copy.py`` runs the same round trip, re-runs and kill-and-resume
with a 10,000-object store, and fails when a check fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr
from fixtures_cli import (  # noqa: F401  (the fixtures are used by name)
    ZARRSTORES,
    cli_env_fixture,
    options_fixture,
    run_cli,
    summary_of,
)

# Imported for their protocols too: swift:// and minio:// are ours in this process.
import zarrstores.minio.fs
import zarrstores.swift.fs
from zarrstores.commands._common import parse_location
from zarrstores.commands._trees import PARTIAL, LocalTree, Stored, Tree
from zarrstores.commands.transfer import IN_MEMORY, Copier, Summary, phases
from zarrstores.devserver.byteproxy import ByteCountingProxy

N_CHUNKS = 300


def open_store(url: str, options: dict[str, dict[str, str]]) -> xr.Dataset:
    scheme = url.split("://", 1)[0] if "://" in url else None
    return xr.open_zarr(url, storage_options=options.get(scheme or "")).load()


@pytest.fixture(scope="module")
def source(cli_env, options) -> tuple[str, xr.Dataset, int]:
    """A zarr store of 308 objects on Swift: its URL, its dataset and object count."""
    rng = np.random.default_rng(19)
    ds = xr.Dataset(
        {
            "tas": (("time", "cell"), rng.random((N_CHUNKS, 4))),
            "pr": (("time",), rng.random(N_CHUNKS)),
        },
        coords={"time": np.arange(N_CHUNKS)},
    )
    url = f"swift://cli-{uuid.uuid4().hex[:8]}/tas.zarr"
    encoding = {"tas": {"chunks": (1, 4)}, "pr": {"chunks": (100,)}}
    ds.to_zarr(url, mode="w", encoding=encoding, storage_options=options["swift"])
    fs = zarrstores.swift.fs.SwiftFileSystem(**options["swift"])
    return url, open_store(url, options), len(fs.find(url))


def test_phases_put_chunks_first_and_the_root_metadata_last() -> None:
    names = ["zarr.json", "a/zarr.json", "a/c/0/0", "b/.zarray", ".zmetadata", "b/0", "x.txt"]
    assert phases(names) == [
        ["a/c/0/0", "b/0", "x.txt"],
        ["a/zarr.json", "b/.zarray"],
        [".zmetadata", "zarr.json"],
    ]


def test_a_local_file_is_hashed_only_when_the_other_side_has_an_md5(tmp_path) -> None:
    """Remote sides state their MD5 in the listing (or none: multipart, SLO); the local side
    is read and hashed only when there is an MD5 to compare with."""

    class CountingLocal(LocalTree):
        hashed = 0

        async def md5(self, rel: str) -> str:
            CountingLocal.hashed += 1
            return await super().md5(rel)

    (tmp_path / "a").write_bytes(b"abc")
    local = CountingLocal(parse_location(str(tmp_path)))
    remote = Tree(parse_location("swift://c/p"), fs=None)  # only its listing is used here
    md5 = hashlib.md5(b"abc").hexdigest()
    copier = Copier(local, remote, Summary("src", "dst"), jobs=1, progress=None)

    def same(dst: Stored | None) -> bool:
        return asyncio.run(copier.same("a", "a", Stored(3), dst))

    assert not same(Stored(4, md5)) and CountingLocal.hashed == 0  # sizes differ
    assert same(Stored(3)) and CountingLocal.hashed == 0  # an SLO or multipart: size only
    assert same(Stored(3, md5)) and CountingLocal.hashed == 1
    assert not same(Stored(3, hashlib.md5(b"abd").hexdigest()))  # same size, other bytes


def test_partial_files_of_a_killed_copy_are_removed_by_the_next(tmp_path) -> None:
    """A copy killed with SIGKILL leaves its partial files; the next run's listing removes
    those whose writer is gone, and leaves those of a copy still running."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "0").write_bytes(b"whole")
    abandoned = tmp_path / "c" / f".1{PARTIAL}{host}-{ended.pid}-0a1b2c3d"
    running = tmp_path / "c" / f".2{PARTIAL}{host}-{os.getpid()}-0a1b2c3d"
    for path in (abandoned, running):
        path.write_bytes(b"par")
    listed = asyncio.run(LocalTree(parse_location(str(tmp_path))).list())
    assert listed == {"c/0": Stored(5)}
    assert not abandoned.exists() and running.exists()


def test_round_trip_swift_s3_local_swift(source, cli_env, options, bucket, tmp_path) -> None:
    url, expected, count = source
    hops = [
        url,
        f"minio://{bucket}/copy/tas.zarr",
        str(tmp_path / "local" / "tas.zarr"),
        f"swift://cli-{uuid.uuid4().hex[:8]}/back/tas.zarr",
    ]
    for src, dst in itertools.pairwise(hops):
        first = summary_of(run_cli("cp", "-r", "--json", src, dst, env=cli_env))
        assert first["copied"] == count and first["failed"] == 0, first
        assert first["bytes"] > 0
        xr.testing.assert_identical(open_store(dst, options), expected)
        again = summary_of(run_cli("sync", "--json", "-q", src, dst, env=cli_env))
        assert (again["copied"], again["skipped"], again["failed"]) == (0, count, 0), again


def test_interrupted_copy_resumes_to_the_same_store(source, cli_env, options, tmp_path) -> None:
    url, expected, count = source
    dst = tmp_path / "tas.zarr"
    proc = subprocess.Popen(
        [*ZARRSTORES, "cp", "-r", "--jobs", "2", "--json", url, str(dst)],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if dst.exists() and sum(len(f) for _, _, f in os.walk(dst)) >= count // 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    interrupted = json.loads(out)
    assert 0 < interrupted["copied"] < count
    files = [Path(d, f) for d, _, fs in os.walk(dst) for f in fs]
    assert not [f for f in files if PARTIAL in f.name], "a partial file was left behind"
    assert not (dst / "zarr.json").exists(), "the root metadata came before the chunks"

    resumed = summary_of(run_cli("cp", "-r", "--json", url, str(dst), env=cli_env))
    assert resumed["skipped"] >= interrupted["copied"]
    assert resumed["copied"] + resumed["skipped"] == count and resumed["failed"] == 0
    xr.testing.assert_identical(open_store(str(dst), options), expected)


def test_killed_copy_to_s3_resumes_to_the_same_store(
    source, cli_env, options, s3_server, bucket
) -> None:
    """SIGKILL at about half way (no chance to clean up): every object on S3 is whole, and
    the next run copies the rest."""
    url, expected, count = source
    dst = f"minio://{bucket}/killed/tas.zarr"
    proc = subprocess.Popen(
        [*ZARRSTORES, "cp", "-r", "-q", "--jobs", "4", url, dst],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **cli_env},
    )
    admin = s3_server.admin_client()
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and stored < count // 2:
        time.sleep(0.2)
        pages = admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="killed/")
        stored = sum(page.get("KeyCount", 0) for page in pages)
    proc.kill()
    proc.wait(timeout=60)
    assert 0 < stored < count, "the copy was not stopped half way"

    resumed = summary_of(run_cli("sync", "--json", url, dst, env=cli_env))
    assert resumed["skipped"] >= stored  # what was listed is whole
    assert resumed["copied"] + resumed["skipped"] == count and resumed["failed"] == 0
    xr.testing.assert_identical(open_store(dst, options), expected)


def test_sync_recopies_a_corrupted_object_and_deletes_extras(
    source, cli_env, options, s3_server, bucket, tmp_path
) -> None:
    url, expected, count = source
    local = tmp_path / "tas.zarr"
    remote = f"minio://{bucket}/tas.zarr"
    swift = f"swift://cli-{uuid.uuid4().hex[:8]}/tas.zarr"
    for dst in (str(local), remote, swift):
        assert summary_of(run_cli("cp", "-r", "-q", "--json", url, dst, env=cli_env))["copied"]
    # Same size, other bytes: only the MD5 tells them apart.
    chunk = local / "tas" / "c" / "7" / "0"
    chunk.write_bytes(bytes(b ^ 0xFF for b in chunk.read_bytes()))
    (local / "stale.txt").write_text("not in the source")
    admin = s3_server.admin_client()
    key = "tas.zarr/tas/c/7/0"
    body = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    admin.put_object(Bucket=bucket, Key=key, Body=bytes(b ^ 0xFF for b in body))
    fs = zarrstores.swift.fs.SwiftFileSystem(**options["swift"], skip_instance_cache=True)
    fs.pipe_file(f"{swift}/tas/c/7/0", bytes(b ^ 0xFF for b in body))

    for dst in (str(local), remote, swift):
        fixed = summary_of(run_cli("sync", "--delete", "--json", url, dst, env=cli_env))
        assert (fixed["copied"], fixed["skipped"]) == (1, count - 1), fixed
        assert fixed["deleted"] == (1 if dst == str(local) else 0)
        xr.testing.assert_identical(open_store(dst, options), expected)
    assert not (local / "stale.txt").exists()


def test_copies_within_one_backend_stay_on_the_server(
    cli_env, options, swift_server, s3_server, bucket
) -> None:
    """Swift -> Swift and S3 -> S3 are copied by the server (X-Copy-From, CopyObject): a proxy
    in front of each server counts what the command sends and receives, far less than the
    store; the copies open equal and a re-run copies nothing."""
    rng = np.random.default_rng(23)
    ds = xr.Dataset({"tas": (("time", "cell"), rng.random((12, 1 << 15)))})  # 12 x 256 KiB
    container = f"cli-{uuid.uuid4().hex[:8]}"
    encoding = {"tas": {"chunks": (1, 1 << 15)}}
    ds.to_zarr(f"swift://{container}/a.zarr", encoding=encoding, storage_options=options["swift"])
    on_swift, on_s3 = f"swift://{container}/a.zarr", f"minio://{bucket}/a.zarr"
    assert summary_of(run_cli("cp", "-r", "-q", "--json", on_swift, on_s3, env=cli_env))["copied"]
    stored = ds["tas"].nbytes

    for src, dst, target, env_var, path in (
        (on_swift, f"swift://{container}2/b.zarr", swift_server.proxy_url, "ST_AUTH", "/auth/v1.0"),
        (on_s3, f"minio://{bucket}/b.zarr", s3_server.endpoint, "AWS_ENDPOINT_URL", ""),
    ):
        with ByteCountingProxy(target) as proxy:
            env = {**cli_env, env_var: proxy.url + path}
            first = summary_of(run_cli("cp", "-r", "-q", "--json", src, dst, env=env))
            moved = proxy.received + proxy.sent
            print(f"{src} -> {dst}: {moved:,} bytes through the client for {stored:,} stored")
            assert first["copied"] == first["server_side"] == first["objects"] > 12, first
            assert first["bytes"] > stored / 2 and first["failed"] == 0
            assert moved < stored / 10, f"{moved:,} bytes passed through the client"
            again = summary_of(run_cli("sync", "-q", "--json", src, dst, env=env))
            assert (again["copied"], again["skipped"]) == (0, first["objects"]), again
        xr.testing.assert_identical(open_store(dst, options), ds)


def test_one_object_copies_into_a_directory(source, cli_env, tmp_path) -> None:
    url, _, _ = source
    r = run_cli("cp", f"{url}/zarr.json", f"{tmp_path}/", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "zarr.json").read_text())["node_type"] == "group"
    r = run_cli("cp", url, str(tmp_path / "x"), env=cli_env)
    assert r.returncode == 2
    assert "pass -r" in r.stderr and "Traceback" not in r.stderr


def test_large_object_as_slo_and_back(cli_env, bucket, tmp_path) -> None:
    """An object above the in-memory limit goes through a temporary file: to Swift as a Static
    Large Object (small segments here), to S3, back to disk, equal, and not copied twice."""
    data = np.random.default_rng(5).bytes(IN_MEMORY + (1 << 20))
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "blob.bin").write_bytes(data)
    swift = f"swift://cli-{uuid.uuid4().hex[:8]}/big"
    hops = [str(tmp_path / "big"), swift, f"minio://{bucket}/big", str(tmp_path / "back")]
    segments = ["-o", f"swift:segment_size={16 << 20}"]
    for src, dst in itertools.pairwise(hops):
        first = summary_of(run_cli("cp", "-r", "-q", "--json", *segments, src, dst, env=cli_env))
        assert (first["copied"], first["bytes"], first["failed"]) == (1, len(data), 0), first
        again = summary_of(run_cli("sync", "-q", "--json", *segments, src, dst, env=cli_env))
        assert (again["copied"], again["skipped"]) == (0, 1), again
    fs = zarrstores.swift.fs.SwiftFileSystem(
        authurl=cli_env["ST_AUTH"], user="test:tester", key="testing"
    )
    assert fs.info(f"{swift}/blob.bin")["slo"] is True
    assert (tmp_path / "back" / "blob.bin").read_bytes() == data
    # A time-limited link reaches the segments too (signed with the account's key).
    link = json.loads(run_cli("share", "--expires", "1h", "--json", swift, env=cli_env).stdout)
    assert link["key"] == "account"
    params = link["storage_options"]["params"]
    assert requests.get(f"{link['base_url']}/blob.bin", params=params).content == data


def test_failed_objects_hold_back_the_metadata_until_a_run_succeeds(tmp_path) -> None:
    ds = xr.Dataset({"tas": (("time",), np.arange(8.0)), "pr": (("time",), np.ones(8))})
    src, dst = tmp_path / "src.zarr", tmp_path / "dst.zarr"
    ds.to_zarr(src, encoding={"tas": {"chunks": (1,)}, "pr": {"chunks": (4,)}})
    dst.mkdir()
    (dst / "tas").write_text("a file where the copy needs a directory")

    r = run_cli("cp", "-r", "--json", str(src), str(dst), env={})
    assert r.returncode == 1
    summary = json.loads(r.stdout)
    assert summary["failed"] > 8 and summary["copied"] > 0
    assert "zarr metadata) not written" in summary["errors"][-1]
    assert not (dst / "zarr.json").exists()
    assert "zarrstores: failed:" in r.stderr and "Traceback" not in r.stderr

    (dst / "tas").unlink()
    resumed = summary_of(run_cli("cp", "-r", "--json", str(src), str(dst), env={}))
    assert resumed["failed"] == 0 and resumed["skipped"] == summary["copied"]
    xr.testing.assert_identical(xr.open_zarr(dst).load(), ds)
