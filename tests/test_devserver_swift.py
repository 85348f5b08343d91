"""The local Swift + Keystone launcher, against its real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from zarrstores.devserver._proc import http_status, venv_bin
from zarrstores.devserver.swift import SwiftServer


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _auth(server: SwiftServer, user: str = "test:tester") -> tuple[str, dict[str, str]]:
    storage_url, token = server.get_token(user)
    return storage_url, {"X-Auth-Token": token}


# -- lifecycle -------------------------------------------------------------------------------


def test_start_stop_leaves_no_process_and_no_dir() -> None:
    with SwiftServer(max_file_size=1024) as server:
        assert http_status(f"{server.proxy_url}/healthcheck") == 200
        assert len(server.pids) == 4
        assert all(_alive(pid) for pid in server.pids)
        url, headers = _auth(server)
        assert requests.put(f"{url}/c", headers=headers).status_code == 201
        assert requests.put(f"{url}/c/big", data=b"x" * 1025, headers=headers).status_code == 413
        assert requests.put(f"{url}/c/ok", data=b"x" * 1024, headers=headers).status_code == 201
        info = requests.get(f"{server.proxy_url}/info").json()
        assert info["swift"]["max_file_size"] == 1024
    assert not any(_alive(pid) for pid in server.pids)
    assert not server.dir.exists()


def test_killed_owner_leaves_no_process(tmp_path: Path) -> None:
    # The servers get SIGTERM from the kernel when the process that started them dies.
    script = (
        "import sys, time\n"
        "from zarrstores.devserver.swift import SwiftServer\n"
        "s = SwiftServer(sys.argv[1]).start()\n"
        "print(*s.pids, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "swift")], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 4 and all(_alive(p) for p in pids)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert _wait_dead(pids) == []


# -- tempauth --------------------------------------------------------------------------------


def test_tempauth_v1(swift_server: SwiftServer) -> None:
    resp = requests.get(
        swift_server.auth_url, headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}
    )
    assert resp.status_code == 200
    assert resp.headers["X-Storage-Url"] == swift_server.storage_url("test")
    assert resp.headers["X-Auth-Token"]
    assert 0 < int(resp.headers["X-Auth-Token-Expires"]) <= 86400

    wrong = requests.get(
        swift_server.auth_url, headers={"X-Auth-User": "test:tester", "X-Auth-Key": "wrong"}
    )
    assert wrong.status_code == 401


def test_put_and_get_object(swift_server: SwiftServer, swift_container: str) -> None:
    url, headers = _auth(swift_server)
    assert requests.put(f"{url}/{swift_container}", headers=headers).status_code == 201
    put = requests.put(f"{url}/{swift_container}/a/b.bin", data=b"\x00payload", headers=headers)
    assert put.status_code == 201
    got = requests.get(f"{url}/{swift_container}/a/b.bin", headers=headers)
    assert (got.status_code, got.content) == (200, b"\x00payload")
    listing = requests.get(f"{url}/{swift_container}", headers=headers)
    assert listing.text.split() == ["a/b.bin"]


def test_non_admin_user_needs_an_acl(swift_server: SwiftServer, swift_container: str) -> None:
    url, headers = _auth(swift_server, "test:tester3")
    assert url == swift_server.storage_url("test")
    assert requests.put(f"{url}/{swift_container}", headers=headers).status_code == 403


def test_invalidate_tokens(swift_server: SwiftServer) -> None:
    url, headers = _auth(swift_server)
    assert requests.head(url, headers=headers).status_code == 204
    swift_server.invalidate_tokens()
    assert requests.head(url, headers=headers).status_code == 401
    url, fresh = _auth(swift_server)
    assert fresh != headers
    assert requests.head(url, headers=fresh).status_code == 204


# -- faults ----------------------------------------------------------------------------------


def test_injected_status_hits_exactly_count_matching_requests(
    swift_faults: SwiftServer, swift_container: str
) -> None:
    url, headers = _auth(swift_faults)
    obj = f"{url}/{swift_container}/o"
    requests.put(f"{url}/{swift_container}", headers=headers)
    requests.put(obj, data=b"x", headers=headers)
    swift_faults.inject_faults(status=503, count=2, method="GET", path_contains=swift_container)

    assert requests.head(obj, headers=headers).status_code == 200  # other method: untouched
    statuses = [requests.get(obj, headers=headers).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_injected_delay_and_reset(swift_faults: SwiftServer, swift_container: str) -> None:
    url, headers = _auth(swift_faults)
    container = f"{url}/{swift_container}"
    requests.put(container, headers=headers)

    swift_faults.inject_faults(delay=0.5, path_contains=swift_container)
    start = time.monotonic()
    assert requests.head(container, headers=headers).status_code == 204
    assert time.monotonic() - start >= 0.5

    swift_faults.inject_faults(reset=True, method="PUT", path_contains=swift_container)
    with pytest.raises(requests.ConnectionError):
        requests.put(f"{container}/o", data=b"x" * 100_000, headers=headers)
    assert requests.put(f"{container}/o", data=b"x", headers=headers).status_code == 201


def test_clear_faults(swift_faults: SwiftServer, swift_container: str) -> None:
    url, headers = _auth(swift_faults)
    swift_faults.inject_faults(status=500, count=0, path_contains=swift_container)
    for _ in range(3):
        assert requests.head(f"{url}/{swift_container}", headers=headers).status_code == 500
    swift_faults.clear_faults()
    assert requests.head(f"{url}/{swift_container}", headers=headers).status_code == 404


def test_kill_and_restart_proxy_keeps_data_and_tokens(
    swift_server: SwiftServer, swift_container: str
) -> None:
    url, headers = _auth(swift_server)
    requests.put(f"{url}/{swift_container}", headers=headers)
    requests.put(f"{url}/{swift_container}/o", data=b"kept", headers=headers)

    swift_server.kill_proxy()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/{swift_container}/o", headers=headers, timeout=5)
    swift_server.restart_proxy()

    got = requests.get(f"{url}/{swift_container}/o", headers=headers)
    assert (got.status_code, got.content) == (200, b"kept")
    assert _alive(swift_server.pids[-1])  # the new proxy is listed too


# -- keystone --------------------------------------------------------------------------------


def _keystone_auth(server: SwiftServer, kind: str) -> v3.Password | v3.ApplicationCredential:
    env = server.os_env(kind)
    if kind == "password":
        return v3.Password(
            auth_url=env["OS_AUTH_URL"],
            username=env["OS_USERNAME"],
            password=env["OS_PASSWORD"],
            project_name=env["OS_PROJECT_NAME"],
            user_domain_name=env["OS_USER_DOMAIN_NAME"],
            project_domain_name=env["OS_PROJECT_DOMAIN_NAME"],
        )
    return v3.ApplicationCredential(
        auth_url=env["OS_AUTH_URL"],
        application_credential_id=env["OS_APPLICATION_CREDENTIAL_ID"],
        application_credential_secret=env["OS_APPLICATION_CREDENTIAL_SECRET"],
    )


@pytest.mark.parametrize("kind", ["password", "application_credential"])
def test_keystone_session_reaches_swift(
    swift_server: SwiftServer, swift_container: str, kind: str
) -> None:
    sess = ks_session.Session(auth=_keystone_auth(swift_server, kind))
    assert sess.get_token()
    endpoint = sess.get_endpoint(service_type="object-store", interface="public")
    assert endpoint == (
        f"{swift_server.keystone_proxy_url}/v1/AUTH_{swift_server.keystone_project_id}"
    )
    sess.put(f"{endpoint}/{swift_container}")
    sess.put(f"{endpoint}/{swift_container}/o", data=kind.encode())
    assert sess.get(f"{endpoint}/{swift_container}/o").content == kind.encode()


def test_keystone_reader_is_no_operator(swift_server: SwiftServer, swift_container: str) -> None:
    env = swift_server.os_env("password", user="tester3")
    sess = ks_session.Session(
        auth=v3.Password(
            auth_url=env["OS_AUTH_URL"],
            username="tester3",
            password=env["OS_PASSWORD"],
            project_name="test",
            user_domain_name="Default",
            project_domain_name="Default",
        )
    )
    endpoint = sess.get_endpoint(service_type="object-store", interface="public")
    assert sess.put(f"{endpoint}/{swift_container}", raise_exc=False).status_code == 403


def test_keystone_proxy_faults(swift_faults: SwiftServer, swift_container: str) -> None:
    sess = ks_session.Session(auth=_keystone_auth(swift_faults, "password"))
    endpoint = sess.get_endpoint(service_type="object-store", interface="public")
    swift_faults.inject_faults(status=503, path_contains=swift_container, proxy="keystone")
    statuses = [
        sess.head(f"{endpoint}/{swift_container}", raise_exc=False).status_code for _ in range(2)
    ]
    assert statuses == [503, 404]


# -- the swift CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["tempauth", "password", "application_credential"])
def test_swift_cli(
    swift_server: SwiftServer, swift_container: str, tmp_path: Path, auth: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    env.update(swift_server.st_env() if auth == "tempauth" else swift_server.os_env(auth))
    account = "AUTH_test" if auth == "tempauth" else f"AUTH_{swift_server.keystone_project_id}"
    (tmp_path / "hello.txt").write_text("hello")

    def swift(*args: str) -> str:
        done = subprocess.run(
            [venv_bin("swift"), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert swift("upload", swift_container, "hello.txt").strip() == "hello.txt"
    assert swift("list", swift_container).split() == ["hello.txt"]
    assert f"Account: {account}" in swift("stat")
