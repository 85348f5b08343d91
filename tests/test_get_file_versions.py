"""``fs.get_file`` and ``fs.open`` read a large object in ranged GETs: every part must come
of the version the read began with. On each backend, the object is replaced between two parts
(for get_file the second held back by the fault proxy): the file gets the new version whole,
never a mix; a file open for reading refuses to go on."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from backends import Backend, backend_fixture  # noqa: F401 (fixture)
from s3fs.utils import FileExpired

from zarrstores.minio import fs as minio_fs
from zarrstores.swift import fs as swift_fs

MIB = 1 << 20


@pytest.mark.parametrize("new_mib", [12, 6])
def test_get_file_of_an_object_replaced_meanwhile_gives_the_new_one_not_a_mix(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_mib: int
) -> None:
    monkeypatch.setattr(swift_fs, "_READ_CHUNK", 4 * MIB)  # 3 ranged GETs for 12 MiB
    monkeypatch.setattr(minio_fs, "_GET_PART", 4 * MIB)
    old, new = os.urandom(12 * MIB), os.urandom(new_mib * MIB)
    direct, through = backend.fs(), backend.fs(faulty=True)
    path = f"{backend.container}/file"
    direct.pipe_file(path, old)
    proxy = backend.proxy
    proxy.inject("delay", delay=0.0, method="GET", path_contains="/file")  # the first GET
    proxy.inject("delay", delay=3.0, method="GET", path_contains="/file")  # the second waits
    seen = len(proxy.answered)

    def gets() -> list[int]:
        return [s for m, p, s in proxy.answered[seen:] if m == "GET" and p.endswith("/file")]

    def replace() -> None:  # between the first ranged GET and the second
        while not gets():
            time.sleep(0.01)
        direct.pipe_file(path, new)

    replacer = threading.Thread(target=replace)
    replacer.start()
    try:
        through.get_file(path, str(tmp_path / "file"), max_concurrency=1)
    finally:
        replacer.join()
    assert (tmp_path / "file").read_bytes() == new
    # The second part came of the new version (another ETag): not used, and the new version
    # read from its start (12 MiB: 3 parts, 6 MiB: 2): five or four ranged GETs, not three.
    assert gets() == [206] * (2 + -(-new_mib // 4))


def test_a_file_opened_for_reading_refuses_blocks_of_a_newer_version(backend: Backend) -> None:
    """``fs.open(path)`` reads in blocks: one read after the object was replaced must fail
    (and say what to do), not hand out the new version's bytes after the old one's."""
    fs = backend.fs()
    path = f"{backend.container}/tas.nc"
    old, new = os.urandom(3 * MIB), os.urandom(3 * MIB)
    fs.pipe_file(path, old)
    with fs.open(path, "rb", block_size=MIB) as f:
        assert f.read(MIB) == old[:MIB]
        fs.pipe_file(path, new)
        with pytest.raises(OSError) as caught:
            f.read(MIB)
    first = str(caught.value).splitlines()[0]
    assert first.endswith("was replaced after it was opened: open it again"), first
    assert len(first) < 200
    if backend.kind == "s3":  # s3fs's error, which code written for s3fs catches
        assert isinstance(caught.value, FileExpired)
    assert fs.cat_file(path) == new  # the new version is untouched and whole
    with fs.open(path, "rb", block_size=MIB) as f:  # opened again: the new version
        assert f.read() == new
