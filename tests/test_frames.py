"""FrameStore on real Swift and S3 servers: every method, its errors, the layout other tools
read, atomic replace, concurrent appends, and SQL that reads only what it needs."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from backends import swift_and_s3_fixture  # noqa: F401 (fixture)
from frames_support import frame_options, frame_store, frame_url

from zarrstores.devserver.byteproxy import ByteCountingProxy
from zarrstores.frames import (
    BucketDeleteMode,
    BucketNotEmptyError,
    FrameStore,
    PutMode,
    SQLError,
)


def _frame(start: int, rows: int = 5) -> pd.DataFrame:
    names = [f"n{i}" for i in range(rows)]
    return pd.DataFrame({"id": np.arange(start, start + rows), "name": names})


def test_put_get_and_modes(backend):
    store = frame_store(backend)
    store.put("stations", _frame(0))
    pd.testing.assert_frame_equal(store.get("stations"), _frame(0))

    with pytest.raises(FileExistsError, match="stations"):
        store.put("stations", _frame(100), mode=PutMode.ERROR)
    store.put("stations", _frame(5), mode=PutMode.APPEND)
    assert store.get("stations")["id"].tolist() == list(range(10))
    store.put("stations", _frame(50, rows=2), mode=PutMode.REPLACE)
    assert store.get("stations")["id"].tolist() == [50, 51]
    # REPLACE removed the old generation's files: one data file and the marker remain.
    keys = backend.raw_keys("lake/stations/")
    assert sorted(k.rsplit("/", 1)[-1].split("-")[0] for k in keys) == ["_frame.json", "part"]

    with pytest.raises(ValueError, match=r"columns differ .*new: other: double; only stored: id"):
        store.put("stations", pd.DataFrame({"other": [1.0]}), mode=PutMode.APPEND)
    with pytest.raises(ValueError, match=r"columns differ .*the same, in another order: id, name"):
        store.put("stations", _frame(0)[["name", "id"]], mode=PutMode.APPEND)
    with pytest.raises(ValueError, match="put mode is sideways"):
        store.put("stations", _frame(0), mode="sideways")
    with pytest.raises(ValueError, match=r"table name '\.\./x' is not valid"):
        store.put("../x", _frame(0))
    mixed = pd.DataFrame({"id": [1, "a"], "name": ["x", "y"]})  # ints and a string
    with pytest.raises(TypeError, match=r"cannot be stored as Parquet: .*column id.*astype"):
        store.put("stations", mixed, mode=PutMode.REPLACE)
    assert store.get("stations")["id"].tolist() == [50, 51]  # left as it was


def test_get_missing_and_outputs(backend):
    store = frame_store(backend)
    with pytest.raises(FileNotFoundError, match="dataframe nothing not found"):
        store.get("nothing")
    with pytest.raises(FileNotFoundError, match="in bucket b1"):
        store.get("nothing", bucket="b1")
    store.put("t", pl.DataFrame({"x": [1, 2, 3]}))
    assert isinstance(store.get("t", output="polars"), pl.DataFrame)
    table = store.get("t", "SELECT sum(x) AS s FROM t", output="arrow")
    assert isinstance(table, pa.Table) and table.column("s").to_pylist() == [6]


def test_sql_and_its_errors(backend):
    store = frame_store(backend)
    store.put("scores", _frame(0, rows=100))
    result = store.get("scores", "SELECT name FROM scores WHERE id >= 97 ORDER BY id")
    assert result["name"].tolist() == ["n97", "n98", "n99"]
    with pytest.raises(SQLError, match="nosuchcolumn") as info:
        store.get("scores", "SELECT nosuchcolumn FROM scores")
    assert len(str(info.value).splitlines()[0]) < 400
    with pytest.raises(SQLError):
        store.get("scores", "SELEKT * FROM scores")


def test_list_delete_and_regex(backend):
    store = frame_store(backend)
    for name in ("temp_2020", "temp_2021", "wind_2020"):
        store.put(name, _frame(0))
    store.put("elsewhere", _frame(0), bucket="other")
    listed = store.list()
    assert [t["name"] for t in listed] == ["temp_2020", "temp_2021", "wind_2020"]
    assert listed[0]["schema"].field("id").type == pa.int64()
    assert [t["name"] for t in store.list(regex=r"^temp_")] == ["temp_2020", "temp_2021"]
    assert [t["name"] for t in store.list(bucket="other")] == ["elsewhere"]
    with pytest.raises(FileNotFoundError, match="No such bucket nobucket"):
        store.list(bucket="nobucket")

    store.delete("temp_2020")
    assert [t["name"] for t in store.list()] == ["temp_2021", "wind_2020"]
    assert backend.raw_keys("lake/temp_2020/") == []
    with pytest.raises(FileNotFoundError, match="Dataframe temp_2020 not found"):
        store.delete("temp_2020")
    with pytest.raises(FileNotFoundError, match="Dataframe other not found"):
        store.delete("other")  # a bucket's name: the bucket stays
    assert [t["name"] for t in store.list(bucket="other")] == ["elsewhere"]


def test_buckets(backend):
    store = frame_store(backend)
    assert store.buckets() == []
    store.put("a", _frame(0), bucket="obs")
    store.put("b", _frame(0), bucket="obs")
    store.put("c", _frame(0), bucket="model")
    store.put("top", _frame(0))
    assert store.buckets() == ["model", "obs"]
    assert store.get("a", bucket="obs")["id"].tolist() == list(range(5))

    with pytest.raises(BucketNotEmptyError, match="Bucket Not Empty: obs"):
        store.delete_bucket("obs")
    assert store.buckets() == ["model", "obs"]
    store.delete_bucket("obs", mode=BucketDeleteMode.DELETE_CONTENTS)
    assert store.buckets() == ["model"]
    assert backend.raw_keys("lake/obs/") == []

    store.delete("c", bucket="model")  # an emptied bucket stays until deleted
    assert store.buckets() == ["model"]
    store.delete_bucket("model", mode=BucketDeleteMode.ERROR)
    assert store.buckets() == []
    with pytest.raises(FileNotFoundError, match="Bucket model not found"):
        store.delete_bucket("model")
    assert [t["name"] for t in store.list()] == ["top"]


def test_resample_with_sql_and_by_time(backend):
    store = frame_store(backend)
    times = pd.date_range("2020-01-01", periods=6000, freq="10ms")
    store.put("raw", pd.DataFrame({"timestamp": times, "data": np.arange(6000.0)}), bucket="in")

    counts = store.resample("raw", "ten", sql="SELECT * FROM raw LIMIT 10", source_bucket="in")
    assert counts == {"target_rows": 10}
    assert len(store.get("ten")) == 10

    counts = store.resample(
        "raw",
        "per_second",
        rule="1s",
        time_col="timestamp",
        aggregation_func="mean",
        source_bucket="in",
        target_bucket="out",
    )
    assert counts == {"source_rows": 6000, "target_rows": 60}
    means = store.get("per_second", bucket="out")
    assert means["data"].iloc[0] == pytest.approx(49.5)
    assert isinstance(means.index, pd.DatetimeIndex)
    by_max = {"rule": "1s", "time_col": "timestamp", "aggregation_func": "max"}
    where = {"bucket": "in", "target_bucket": "out"}
    store.resample("raw", "per_second", **by_max, **where, mode=PutMode.APPEND)
    assert len(store.get("per_second", bucket="out")) == 120
    store.resample("raw", "per_second", **by_max, **where, mode=PutMode.REPLACE)
    assert len(store.get("per_second", bucket="out")) == 60

    with pytest.raises(FileNotFoundError, match="Dataframe nope not found"):
        store.resample("nope", "x", rule="1s", time_col="timestamp", aggregation_func="mean")
    with pytest.raises(SQLError):
        store.resample("raw", "x", sql="select * from 100x", bucket="in")
    with pytest.raises(ValueError, match="aggregation_func '__class__'"):
        store.resample(
            "raw", "x", rule="1s", time_col="timestamp", aggregation_func="__class__", bucket="in"
        )
    with pytest.raises(ValueError, match="needs sql="):
        store.resample("raw", "x", rule="1s", bucket="in")


def test_refusals_are_permission_errors(backend):
    store = frame_store(backend)
    store.put("guarded", _frame(0))
    if backend.name == "swift":
        backend._raw.post_container(backend.container, {"X-Container-Read": "test:tester3"})
    reader = FrameStore(frame_url(backend), **frame_options(backend, read_only=True))
    assert reader.get("guarded", "SELECT count(*) AS n FROM guarded")["n"].tolist() == [5]
    assert [t["name"] for t in reader.list()] == ["guarded"]
    with pytest.raises(PermissionError):
        reader.put("guarded", _frame(100), mode=PutMode.REPLACE)
    with pytest.raises(PermissionError):
        reader.delete("guarded")
    assert store.get("guarded")["id"].tolist() == list(range(5))


def test_other_tools_read_the_same_url(backend):
    store = frame_store(backend)
    store.put("obs", _frame(0), bucket="site")
    store.put("obs", _frame(5), bucket="site", mode=PutMode.APPEND)
    url = store.url("obs", bucket="site")
    back = pd.read_parquet(url, storage_options=frame_options(backend))
    assert sorted(back["id"].tolist()) == list(range(10))

    dataset = pads.dataset(url.split("://", 1)[1], filesystem=store.fs, format="parquet")
    assert dataset.count_rows() == 10
    assert pl.scan_pyarrow_dataset(dataset).select(pl.col("id").sum()).collect().item() == 45

    duck = duckdb.connect()
    duck.register_filesystem(store.fs)
    query = f"SELECT count(*), sum(id) FROM read_parquet('{url}*.parquet')"
    [(count, total)] = duck.sql(query).fetchall()
    assert (count, total) == (10, 45)


def test_failed_writes_leave_the_table_as_it_was(backend):
    store = frame_store(backend)
    store.put("kept", _frame(0))
    faulty = frame_store(backend, endpoint=backend.proxy.url)
    backend.proxy.inject("status", count=0, status=500, method="PUT", path_contains="/part-")
    with pytest.raises(OSError):
        faulty.put("kept", _frame(100, rows=300_000), mode=PutMode.REPLACE)
    with pytest.raises(OSError):
        faulty.put("kept", _frame(100), mode=PutMode.APPEND)
    backend.proxy.clear()
    assert store.get("kept")["id"].tolist() == list(range(5))
    assert len(backend.raw_keys("lake/kept/")) == 2  # the marker and the one data file


def test_replace_is_atomic_for_readers(backend):
    store = frame_store(backend)
    store.put("flip", _frame(0, rows=3))
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        reader = frame_store(backend)
        while not done.is_set():
            try:
                seen.append(len(reader.get("flip")))
            except BaseException as e:  # reported below
                errors.append(e)
                return

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(6):
            store.put("flip", _frame(0, rows=7 if i % 2 == 0 else 3), mode=PutMode.REPLACE)
    finally:
        done.set()
        thread.join()
    assert not errors
    assert seen and set(seen) <= {3, 7}


def test_two_appenders_lose_no_rows(backend):
    store = frame_store(backend)
    store.put("log", _frame(0, rows=1))
    errors: list[BaseException] = []

    def append(first: int) -> None:
        writer = frame_store(backend)
        try:
            for i in range(8):
                writer.put("log", _frame(first + i * 10, rows=10), mode=PutMode.APPEND)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=append, args=(1000 * (n + 1),)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = store.get("log")["id"].tolist()
    assert len(ids) == 1 + 2 * 8 * 10
    assert len(set(ids)) == len(ids)


def test_writers_creating_one_table_at_once(backend):
    """Appenders that all create the table keep every row; of ERROR puts, exactly one wins."""
    barrier = threading.Barrier(3)
    failures: list[BaseException] = []

    def write(name: str, first: int, mode: PutMode) -> None:
        writer = frame_store(backend)
        barrier.wait()
        try:
            writer.put(name, _frame(first, rows=10), mode=mode)
        except BaseException as e:  # reported below
            failures.append(e)

    for name, mode in (("fresh", PutMode.APPEND), ("exclusive", PutMode.ERROR)):
        threads = [threading.Thread(target=write, args=(name, 100 * n, mode)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(frame_store(backend).get("fresh")["id"]) == sorted(
        i for n in range(3) for i in range(100 * n, 100 * n + 10)
    )
    assert len(failures) == 2 and all(isinstance(e, FileExistsError) for e in failures)
    assert len(frame_store(backend).get("exclusive")) == 10


def test_sql_reads_only_needed_columns_and_row_groups(backend):
    """1% of the rows and 2 of 20 columns of a large table: < 10% of the stored bytes move."""
    rows = 1_300_000  # 20 columns of doubles: ~200 MB
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(rows)})
    for i in range(1, 20):
        frame[f"c{i}"] = rng.random(rows)
    store = frame_store(backend)
    store.put("big", frame)
    del frame
    stored = sum(len(backend.raw_get(k) or b"") for k in backend.raw_keys("lake/big/"))
    assert stored > rows * 20 * 8 * 0.9  # random doubles do not compress

    target = backend.server.proxy_url if backend.name == "swift" else backend.server.endpoint
    with ByteCountingProxy(target) as proxy:
        counted = frame_store(backend, endpoint=proxy.url)
        result = counted.get("big", f"SELECT id, c7 FROM big WHERE id < {rows // 100}")
    assert len(result) == rows // 100 and list(result.columns) == ["id", "c7"]
    moved = proxy.received + proxy.sent
    print(f"{backend.name}: stored {stored:,} B, query moved {moved:,} B ({moved / stored:.2%})")
    assert moved < 0.10 * stored
