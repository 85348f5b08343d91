"""Failures against the real Swift: re-auth after revoked tokens, retries of 5xx, resets and
timeouts, refused access that raises instead of reading as fill values, and messages that
never carry a token."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.core.buffer import default_buffer_prototype

from zarrstores._retry import RetryPolicy
from zarrstores.auth import SwiftAuthError, TempAuth
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftError, SwiftFileSystem, SwiftStore

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc)
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def auth(swift_server: SwiftServer) -> TempAuth:
    return TempAuth(swift_server.auth_url, "test:tester", "testing")


@pytest.fixture
def store(auth: TempAuth, swift_container: str) -> SwiftStore:
    """A store holding a 4 x 4-chunk array of ones at "a"."""
    store = SwiftStore(swift_container, "arr", {"auth": auth, "retry": FAST})
    zarr.create_array(store, name="a", shape=(8, 8), chunks=(2, 2), dtype="i4")[:] = 1
    return store


def other_user(server: SwiftServer, user: str) -> dict[str, Any]:
    """Options of ``user`` pointed at the account of test:tester."""
    return {
        "authurl": server.auth_url,
        "user": user,
        "key": server.users[user],
        "storage_url": server.storage_url("test"),
        "retry": FAST,
    }


async def test_revoked_token_reauthenticates_once(
    store: SwiftStore, auth: TempAuth, swift_server: SwiftServer
) -> None:
    arr = await zarr.api.asynchronous.open_array(store=store, path="a")
    assert (await arr.getitem(slice(0, 4))).sum() == 32
    before = auth.exchanges
    swift_server.invalidate_tokens()
    # 16 chunk reads and 16 writes in flight at once, all answered 401 first
    await asyncio.gather(
        arr.getitem(slice(None)),
        *(
            store.set(f"extra/{i}", default_buffer_prototype().buffer.from_bytes(b"x"))
            for i in range(16)
        ),
    )
    assert (await arr.getitem(slice(None))).sum() == 64
    assert auth.exchanges == before + 1  # one login shared by every request
    await store.aclose()


def test_5xx_and_resets_are_retried(
    store: SwiftStore, swift_faults: SwiftServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = store.container
    swift_faults.inject_faults(status=503, count=2, method="GET", path_contains=c)
    swift_faults.inject_faults(reset=True, count=4, method="PUT", path_contains=c)
    swift_faults.inject_faults(status=500, count=1, method="POST")
    with caplog.at_level(logging.INFO, logger="zarrstores.swift"):
        assert (zarr.open_array(store, path="a", mode="r")[:] == 1).all()
        store["extra/0"] = store["extra/1"] = b"x"  # PUTs reset 4 times, then retried
        store.rmdir("extra")  # bulk delete answered 500 once
    assert store.listdir() == ["a", "zarr.json"]
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert sum("GET" in m and "503" in m for m in retries) == 2
    assert sum("POST" in m and "500" in m for m in retries) == 1
    # aiohttp itself resends once when a reused connection drops before answering; an attempt
    # takes at most two of the resets, so the client retried 2 to 4 times.
    assert 2 <= sum("PUT" in m and "Server disconnected" in m for m in retries) <= 4


def test_timeouts_are_retried(
    auth: TempAuth, swift_faults: SwiftServer, swift_container: str
) -> None:
    store = SwiftStore(
        swift_container,
        "",
        {"auth": auth, "retry": RetryPolicy(attempts=3, base=0.01, timeout=0.5)},
    )
    store["k"] = b"v"
    swift_faults.inject_faults(delay=2.0, count=1, method="GET", path_contains=swift_container)
    started = time.monotonic()
    assert store["k"] == b"v"
    assert time.monotonic() - started < 2.0


def test_persistent_5xx_raises_with_status(store: SwiftStore, swift_faults: SwiftServer) -> None:
    swift_faults.inject_faults(status=503, count=0, method="GET", path_contains=store.container)
    with pytest.raises(SwiftError, match="503") as e:
        store["a/zarr.json"]
    assert e.value.status == 503 and "Injected fault" in str(e.value)
    assert not isinstance(e.value, (FileNotFoundError, KeyError))


def test_proxy_restart_is_survived(
    auth: TempAuth, swift_server: SwiftServer, swift_container: str
) -> None:
    store = SwiftStore(
        swift_container, "", {"auth": auth, "retry": RetryPolicy(attempts=12, base=0.2, cap=1)}
    )
    store["k"] = b"v"
    swift_server.kill_proxy()
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(store["k"]))
    reader.start()  # connections refused until the proxy is back
    time.sleep(0.3)
    # from this thread: servers die with the thread that started them
    swift_server.restart_proxy()
    reader.join()
    assert result == [b"v"]


@pytest.mark.parametrize("status", [403, 401])
def test_refused_chunks_raise_instead_of_reading_as_fill(
    store: SwiftStore, swift_faults: SwiftServer, status: int, auth: TempAuth
) -> None:
    arr = zarr.open_array(store, path="a", mode="r")  # metadata readable
    swift_faults.inject_faults(status=status, count=0, method="GET", path_contains="/a/c/")
    with pytest.raises(PermissionError, match=f"read in container '{store.container}'") as e:
        arr[:]
    assert str(status) in str(e.value)
    assert_no_secret(e.value, auth.get().token.reveal())  # type: ignore[union-attr]


@pytest.mark.parametrize("user", ["test:tester3", "test2:tester2"])
def test_no_rights_is_an_error_not_zeros(
    store: SwiftStore, swift_server: SwiftServer, user: str
) -> None:
    other = other_user(swift_server, user)
    intruder = SwiftStore(store.container, "arr", other, read_only=True)
    with pytest.raises(PermissionError, match="403 Forbidden") as e:
        intruder.get_sync("a/c/0/0")
    assert "read" in str(e.value) and store.container in str(e.value) and user in str(e.value)
    with pytest.raises(PermissionError):
        zarr.open_array(intruder, path="a", mode="r")
    with pytest.raises(PermissionError):
        xr.open_zarr(f"swift://{store.container}/arr", storage_options=other)
    writer = SwiftStore(store.container, "arr", other)
    with pytest.raises(PermissionError, match="write in container"):
        writer["a/c/0/0"] = b"overwrite"
    assert (zarr.open_array(store, path="a", mode="r")[:] == 1).all()


def test_bad_and_expired_preauth_tokens(store: SwiftStore, swift_server: SwiftServer) -> None:
    storage_url, token = swift_server.get_token()
    bogus = "AUTH_tk0123456789abcdef0123456789abcdef"
    bad = SwiftStore(store.container, "arr", {"preauthurl": storage_url, "preauthtoken": bogus})
    with pytest.raises(SwiftAuthError, match="expired or was revoked") as e:
        bad["a/zarr.json"]
    assert_no_secret(e.value, bogus)

    preauth = SwiftStore(store.container, "arr", {"preauthurl": storage_url, "preauthtoken": token})
    assert (zarr.open_array(preauth, path="a", mode="r")[:] == 1).all()
    swift_server.invalidate_tokens()
    with pytest.raises(PermissionError, match="Get a new one") as e:
        zarr.open_array(preauth, path="a", mode="r")[:]
    assert store.container in str(e.value)
    assert_no_secret(e.value, token)
    fs = SwiftFileSystem(preauthurl=storage_url, preauthtoken=token, skip_instance_cache=True)
    with pytest.raises(PermissionError, match="expired or was revoked") as e:
        fs.ls(store.container)
    assert_no_secret(e.value, token)


def test_other_statuses_carry_swifts_message(auth: TempAuth) -> None:
    store = SwiftStore("c", "", {"auth": auth})
    with pytest.raises(SwiftError) as e:
        store["k" * 1100] = b"v"  # Swift refuses object names over 1024 bytes
    assert e.value.status == 400 and "longer than 1024" in str(e.value)
    assert_no_secret(e.value, auth.get().token.reveal())  # type: ignore[union-attr]


def test_unreachable_swift(swift_server: SwiftServer) -> None:
    from zarrstores.devserver._proc import free_port

    token = "AUTH_tksecretsecretsecret"
    store = SwiftStore(
        "c",
        "",
        {
            "preauthurl": f"http://127.0.0.1:{free_port()}/v1/AUTH_test",
            "preauthtoken": token,
            "retry": RetryPolicy(attempts=2, base=0.01),
        },
    )
    with pytest.raises(SwiftError, match="cannot reach Swift") as e:
        store["k"]
    assert e.value.status == 0
    assert_no_secret(e.value, token)


def test_logs_carry_no_token(
    store: SwiftStore, swift_faults: SwiftServer, auth: TempAuth, caplog: pytest.LogCaptureFixture
) -> None:
    swift_faults.inject_faults(status=503, count=3, path_contains=store.container)
    with caplog.at_level(logging.DEBUG):
        store["k"] = b"v"
        assert store["k"] == b"v"
    token = auth.get().token.reveal()  # type: ignore[union-attr]
    assert caplog.records and not any(token in r.getMessage() for r in caplog.records)
    assert np.all(zarr.open_array(store, path="a", mode="r")[:] == 1)


def test_a_shared_request_failing_after_its_waiters_left_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Container creation and /info are one request per loop for all callers: when every
    caller was cancelled and the request then fails, asyncio must not log an unretrieved error."""
    import gc

    from zarrstores.auth import PreAuth
    from zarrstores.swift._client import SwiftClient

    async def fails_later() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("refused")

    async def main() -> None:
        client = SwiftClient(PreAuth("http://127.0.0.1:9/v1/AUTH_x", "token"))
        waiter = asyncio.ensure_future(client._shared("c", fails_later))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_a_shared_request_started_after_close_stays_shared_when_an_older_one_ends() -> None:
    """close() forgets the loop's shared requests: one started after it is still the one later
    callers share when the request from before close() ends in between (one request, not two)."""
    from zarrstores.auth import PreAuth
    from zarrstores.swift._client import SwiftClient

    started: list[str] = []

    async def request(name: str, seconds: float) -> None:
        started.append(name)
        await asyncio.sleep(seconds)

    async def main() -> None:
        client = SwiftClient(PreAuth("http://127.0.0.1:9/v1/AUTH_x", "token"))
        old = asyncio.ensure_future(client._shared("c", lambda: request("old", 0.02)))
        await asyncio.sleep(0)
        await client.close()
        new = asyncio.ensure_future(client._shared("c", lambda: request("new", 0.2)))
        await old
        later = asyncio.ensure_future(client._shared("c", lambda: request("later", 0.2)))
        await asyncio.gather(new, later)

    asyncio.run(main())
    assert started == ["old", "new"]
