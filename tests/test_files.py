"""Files on both backends: netCDF4 (h5netcdf), netCDF3 (scipy) and zip archives written through
``fs.open(..., "wb")`` and read back, also past the multipart/SLO threshold; a write that raises
(in the with block or inside xarray), that the server rejects, or whose process is killed
leaves the old object byte for byte, nothing on the server and no temporary file; reading a
slice of a netCDF transfers a small part of it (bytes counted at the proxy in front of the
server)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import netCDF4
import numpy as np
import pytest
import xarray as xr
from backends import FAST, Backend, swift_and_s3_fixture  # noqa: F401 (fixture)
from bench_support import run_benchmark
from fsspec.core import OpenFile

from zarrstores.auth import STSCredentials
from zarrstores.minio import MinioFileSystem
from zarrstores.swift import SwiftFileSystem

OLD = bytes(range(256)) * 51  # 13,056 bytes: last week's file
MiB = 1 << 20


def filesystem(backend: Backend, *, faulty: bool = False, **options: Any) -> Any:
    """The backend's fsspec filesystem with extra ``storage_options``."""
    if backend.name == "swift":
        auth = backend.auth(faulty=faulty)  # type: ignore[attr-defined]
        return SwiftFileSystem(auth=auth, retry=FAST, skip_instance_cache=True, **options)
    endpoint = backend.endpoint(faulty=faulty)  # type: ignore[attr-defined]
    credentials = STSCredentials(endpoint, backend.issuer.mint())  # type: ignore[attr-defined]
    return MinioFileSystem(
        endpoint_url=endpoint, credentials=credentials, skip_instance_cache=True, **options
    )


def dataset(rows: int = 40, cols: int = 50) -> xr.Dataset:
    rng = np.random.default_rng(17)
    return xr.Dataset(
        {
            "tas": (("time", "x"), rng.standard_normal((rows, cols))),
            "pr": (("time", "x"), rng.random((rows, cols)).astype("f4")),
        },
        coords={"time": np.arange(rows), "x": np.linspace(0.0, 1.0, cols)},
        attrs={"title": "test"},
    )


def open_spool_files(spool: Path) -> list[str]:
    """The temporary files of ``spool`` this process still has open (named or not)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        target = os.readlink(f"/proc/self/fd/{fd}") if os.path.islink(f"/proc/self/fd/{fd}") else ""
        if target.startswith(str(spool)):
            found.append(target)
    return found


@pytest.fixture(name="spool")
def spool_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


def assert_no_temporary_file(spool: Path) -> None:
    assert os.listdir(spool) == []
    assert open_spool_files(spool) == []


@pytest.mark.parametrize("engine", ["h5netcdf", "scipy"])
def test_netcdf_written_through_fs_open_reads_back_equal(
    backend: Backend, engine: str, spool: Path
) -> None:
    fs = filesystem(backend, spool_dir=str(spool))
    ds = dataset()
    path = f"{backend.container}/run/a.nc"
    with fs.open(path, "wb") as f:
        ds.to_netcdf(f, engine=engine)
    assert_no_temporary_file(spool)
    stored = backend.raw_get("run/a.nc")
    assert stored is not None
    assert stored[:3] == (b"\x89HD" if engine == "h5netcdf" else b"CDF")
    with xr.open_dataset(io.BytesIO(stored), engine=engine) as back:
        xr.testing.assert_identical(back.load(), ds)
    with netCDF4.Dataset("stored.nc", memory=stored) as reference:  # netCDF-C reads it too
        np.testing.assert_array_equal(reference["tas"][:], ds["tas"].values)
    with fs.open(path) as f, xr.open_dataset(f, engine=engine) as back:
        xr.testing.assert_identical(back.load(), ds)


def test_fsspec_open_url_and_text_mode(backend: Backend) -> None:
    fs = filesystem(backend)
    url = f"{fs.protocol[0]}://{backend.container}/notes.txt"
    with OpenFile(fs, url, "wt") as f:
        f.write("first line\n")
    with pytest.raises(FileExistsError, match="exists"), OpenFile(fs, url, "xb"):
        pass  # refused at open, as open(path, "x") is
    late = url.replace("notes.txt", "late.txt")
    with pytest.raises(FileExistsError), OpenFile(fs, late, "xb") as f:
        f.write(b"exclusive")
        fs.pipe_file(late, b"written first")  # another writer, between open and close
    assert backend.raw_get("notes.txt") == b"first line\n"
    assert backend.raw_get("late.txt") == b"written first"


def test_file_seeks_reads_back_and_truncates_while_writing(backend: Backend) -> None:
    fs = filesystem(backend, spool_size=1000)  # past 1,000 bytes: a local temporary file
    path = f"{backend.container}/seek.bin"
    with fs.open(path, "wb") as f:
        assert f.seekable() and f.readable() and f.writable()
        f.write(b"\0" * 8 + b"x" * 3000)
        f.seek(0)
        f.write((3008).to_bytes(8, "little"))  # a table of contents, written last at the start
        f.seek(8)
        assert f.read(3) == b"xxx"
        f.truncate(2008)
        assert f.tell() == 11 and f.seek(0, os.SEEK_END) == 2008
    assert backend.raw_get("seek.bin") == (3008).to_bytes(8, "little") + b"x" * 2000


def test_transaction_is_refused_for_writing(backend: Backend) -> None:
    fs = filesystem(backend)
    with pytest.raises(NotImplementedError, match="uploaded whole when it is closed"):
        fs.open(f"{backend.container}/t.bin", "wb", autocommit=False)
    with pytest.raises(ValueError, match="use 'wb' or 'xb'"):
        fs.open(f"{backend.container}/t.bin", "r+b")
    assert backend.raw_keys() == []


def test_zip_appended_while_writing(backend: Backend) -> None:
    fs = filesystem(backend)
    path = f"{backend.container}/bundle.zip"
    with fs.open(path, "wb") as f:
        with zipfile.ZipFile(f, "w") as archive:
            archive.writestr("a.txt", "alpha")
        f.seek(0)
        with zipfile.ZipFile(f, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            assert archive.read("a.txt") == b"alpha"  # read back from the file being written
            archive.writestr("b.txt", "beta" * 1000)
    with fs.open(path) as f, zipfile.ZipFile(f) as archive:
        assert archive.namelist() == ["a.txt", "b.txt"]
        assert archive.read("b.txt") == b"beta" * 1000


def test_large_file_crosses_the_multipart_threshold(backend: Backend, spool: Path) -> None:
    # 12 MiB with 1 MiB in memory and 5 MiB parts/segments: three S3 parts or SLO segments
    # (the same code paths as a 300 MB file under the default 50 MiB parts / 5 GiB segments).
    if backend.name == "swift":
        fs = filesystem(backend, spool_dir=str(spool), spool_size=MiB, segment_size=5 * MiB)
        block = {}
    else:
        fs = filesystem(backend, spool_dir=str(spool), spool_size=MiB)
        block = {"block_size": 5 * MiB}
    ds = xr.Dataset({"v": (("t", "x"), np.arange(12 * MiB // 8, dtype="f8").reshape(-1, 1024))})
    path = f"{backend.container}/big.nc"
    with fs.open(path, "wb", **block) as f:
        ds.to_netcdf(f, engine="h5netcdf")
        size = f.seek(0, os.SEEK_END)
    assert_no_temporary_file(spool)
    info = fs.info(path)
    assert info["size"] == size > 12 * MiB
    if backend.name == "swift":
        assert info["slo"]
    else:
        assert info["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    with fs.open(path) as f, xr.open_dataset(f, engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), ds)


@pytest.mark.parametrize("size", [4, 3 * MiB], ids=["small", "past-spool"])
@pytest.mark.parametrize("opener", ["fs.open", "fsspec.open"])
def test_exception_in_with_block_keeps_old_object(
    backend: Backend, spool: Path, size: int, opener: str
) -> None:
    fs = filesystem(backend, spool_dir=str(spool), spool_size=MiB)
    old, new = f"{backend.container}/old.nc", f"{backend.container}/new.nc"
    fs.pipe_file(old, OLD)
    for path in (old, new):
        with pytest.raises(RuntimeError, match="half-way"):
            opened = fs.open(path, "wb") if opener == "fs.open" else OpenFile(fs, path, "wb")
            with opened as f:
                f.write(b"x" * size)
                raise RuntimeError("script failed half-way")
    assert backend.raw_get("old.nc") == OLD
    assert backend.raw_get("new.nc") is None
    assert backend.raw_keys() == ["old.nc"]
    assert_no_temporary_file(spool)


@pytest.mark.parametrize("engine", ["h5netcdf", "scipy"])
def test_netcdf_write_failing_half_way_keeps_old_object(backend: Backend, engine: str) -> None:
    def crash() -> np.ndarray:
        raise RuntimeError("model crashed")

    # xarray writes the header and the other variables, then computes this one, which raises.
    crashing = da.from_delayed(dask.delayed(crash)(), shape=(40,), dtype="f8")
    ds = dataset().assign(bad=("time", crashing))
    fs = filesystem(backend)
    path = f"{backend.container}/old.nc"
    fs.pipe_file(path, OLD)
    with pytest.raises(RuntimeError, match="crashed"), fs.open(path, "wb") as f:
        ds.to_netcdf(f, engine=engine)
    assert backend.raw_get("old.nc") == OLD


def test_file_written_while_handling_an_error_is_uploaded(backend: Backend) -> None:
    fs = filesystem(backend)
    path = f"{backend.container}/fallback.txt"
    try:
        raise KeyError("no cached result")
    except KeyError:
        with OpenFile(fs, path, "wb") as f:  # fsspec.open's with: closed, not told why
            f.write(b"fallback")
    assert backend.raw_get("fallback.txt") == b"fallback"


def test_file_dropped_unclosed_uploads_nothing(backend: Backend, spool: Path) -> None:
    fs = filesystem(backend, spool_dir=str(spool), spool_size=MiB)
    f = fs.open(f"{backend.container}/dropped", "wb")
    f.write(b"y" * (2 * MiB))
    del f  # an interrupted script: the garbage collector must not finish the upload
    assert backend.raw_keys() == []
    assert_no_temporary_file(spool)


_KILLED_WRITER = """
import json, sys
import fsspec
import netCDF4
url, options = sys.argv[1], json.loads(sys.argv[2])
f = fsspec.open(url, "wb", **options).open()
f.write(b"z" * (3 << 20))  # past spool_size: in the temporary file
print("written", flush=True)
sys.stdin.read()  # until killed
"""


def test_killed_process_leaves_no_object_and_no_temporary_file(
    backend: Backend, spool: Path
) -> None:
    url, options = url_and_options(backend, "killed.bin")
    if backend.name == "swift":
        server = backend.server  # type: ignore[attr-defined]
        user = "test:tester"
        plain = {"authurl": server.auth_url, "user": user, "key": server.users[user]}
    else:
        token = backend.issuer.mint()  # type: ignore[attr-defined]
        plain = {"endpoint_url": options["endpoint_url"], "token": token}
    plain.update(spool_dir=str(spool), spool_size=MiB, skip_instance_cache=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, url, json.dumps(plain)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "written\n"
    finally:
        writer.kill()
        writer.wait()
    assert backend.raw_keys() == []
    assert os.listdir(spool) == []


@pytest.mark.parametrize("size", [20_000, 12 * MiB], ids=["one-request", "multipart"])
def test_upload_the_server_rejects_keeps_old_object(
    backend: Backend, spool: Path, size: int
) -> None:
    options: dict[str, Any] = {"spool_dir": str(spool), "spool_size": MiB}
    block = {}
    if backend.name == "swift":
        options["segment_size"] = 5 * MiB
    else:
        block = {"block_size": 5 * MiB}
    fs = filesystem(backend, faulty=True, **options)
    path = f"{backend.container}/old.bin"
    fs.pipe_file(path, OLD)
    # Every body is corrupted on the way: the servers check it (MD5 / SHA-256) and refuse it.
    backend.proxy.inject("corrupt", count=0, method="PUT")
    with pytest.raises(OSError), fs.open(path, "wb", **block) as f:
        f.write(os.urandom(size))
    backend.proxy.clear()
    assert backend.proxy.injected["corrupt"] >= 1
    assert backend.raw_get("old.bin") == OLD
    assert backend.raw_keys() == ["old.bin"]
    assert_no_temporary_file(spool)
    # Nothing left over on the server either: no SLO segments, no pending multipart upload.
    if backend.name == "swift":
        segments = f"{backend.container}_segments"
        assert not fs.exists(segments) or fs.find(segments) == []
    else:
        raw = backend._raw  # type: ignore[attr-defined]
        assert raw.list_multipart_uploads(Bucket=backend.container).get("Uploads", []) == []


def url_and_options(backend: Backend, path: str, *, faulty: bool = False) -> tuple[str, dict]:
    """``swift://`` / ``minio://`` URL of ``path`` and the storage_options that reach it."""
    if backend.name == "swift":
        options: dict[str, Any] = {"auth": backend.auth(faulty=faulty), "retry": FAST}  # type: ignore[attr-defined]
        return f"swift://{backend.container}/{path}", options
    endpoint = backend.endpoint(faulty=faulty)  # type: ignore[attr-defined]
    credentials = STSCredentials(endpoint, backend.issuer.mint())  # type: ignore[attr-defined]
    options = {"endpoint_url": endpoint, "credentials": credentials}
    return f"minio://{backend.container}/{path}", options


def test_xarray_reads_netcdf_by_url_and_writes_through_fsspec_open(backend: Backend) -> None:
    url, options = url_and_options(backend, "by-url.nc")
    ds = dataset()
    with fsspec.open(url, "wb", **options) as f:
        ds.to_netcdf(f, engine="h5netcdf")
    with xr.open_dataset(url, engine="h5netcdf", storage_options=options) as back:
        xr.testing.assert_identical(back.load(), ds)
    ours = {"cache_type": "smallblocks"}
    with xr.open_dataset(url, engine="h5netcdf", storage_options=options, open_kwargs=ours) as back:
        xr.testing.assert_identical(back.load(), ds)
    url3 = url.replace("by-url.nc", "by-url3.nc")
    with fsspec.open(url3, "wb", **options) as f:
        ds.to_netcdf(f, engine="scipy")
    with fsspec.open(url3, **options) as f, xr.open_dataset(f, engine="scipy") as back:
        xr.testing.assert_identical(back.load(), ds)


def test_reading_a_slice_of_a_large_netcdf_transfers_a_small_part(backend: Backend) -> None:
    # 80 MiB (the 200 MB scaled down to keep the test short; benchmarks/files.py
    # measures 200 MiB): 1% of one variable of four, counted at the proxy.
    rows = 20 * MiB // 8 // 1024
    rng = np.random.default_rng(3)
    names = ("tas", "pr", "ua", "va")
    ds = xr.Dataset({v: (("time", "x"), rng.standard_normal((rows, 1024))) for v in names})
    fs = filesystem(backend, faulty=True)
    path = f"{backend.container}/large.nc"
    with fs.open(path, "wb") as f:
        ds.to_netcdf(f, engine="h5netcdf")
    size = fs.size(path)
    proxy = backend.proxy
    requests, received = proxy.requests, proxy.bytes_received
    with fs.open(path) as f, xr.open_dataset(f, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["tas"][: rows // 100].values, ds["tas"][: rows // 100])
    received = proxy.bytes_received - received
    assert received < size / 10, f"{received:,} bytes of {size:,} in {proxy.requests - requests}"
    assert proxy.requests - requests < 20
    # A whole variable (a quarter of the file): its data in one ranged request, not per block.
    requests, received = proxy.requests, proxy.bytes_received
    with fs.open(path) as f, xr.open_dataset(f, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["ua"].values, ds["ua"].values)
    assert proxy.bytes_received - received < ds["ua"].nbytes + 6 * MiB  # + metadata blocks
    assert proxy.requests - requests < 12


def test_files_benchmark_runs_a_tiny_round() -> None:
    """``benchmarks/files.py`` keeps working (the numbers of so small a file mean nothing)."""
    lines = run_benchmark("files", "--mib", "4", "--reps", "1").splitlines()
    for backend in ("swift", "s3"):
        assert any(line.startswith(f"{backend} write 4 MiB: ") for line in lines)
        reads = [line for line in lines if line.startswith(f"{backend} read (")]
        assert len(reads) == 13 and "download whole file" in reads[-1]
