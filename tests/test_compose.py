"""docker-compose.yml, checked without a container engine (CI has none).

The file is read with PyYAML and the parts that make the set-up work are asserted: the four
services, MinIO trusting the OIDC service's realm with the `policy` claim, the realm issuing
that claim to the client the sidecar uses, the token file shared with the host, bind-mount
sources that exist, depends_on naming services, distinct host ports, and the host-side
instructions in the file's comments matching its ports. The token-refresher's script runs
for real here, against a stand-in token endpoint on 127.0.0.1, and `zarrstores token` reads
what it wrote.

No Compose validator runs here: none installs with the project (Debian's docker-compose is
v1.29 from 2021, needs apt, and rejects today's top-level `name`; PyPI has no official
one), and the compose-spec JSON schema is not shipped. Services' keys are checked against a
list of Compose attributes instead, which catches the typos a schema would.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
REALM_FILE = ROOT / "docker" / "keycloak" / "realm.json"
REFRESHER = ROOT / "docker" / "token-refresher" / "refresh.py"

SERVICES = {"oidc", "minio", "swift", "token-refresher"}

# Service attributes of the Compose specification that this file may use. A key outside the
# list is most likely a typo (`healtcheck`), which an engine would reject; add a real one
# here after checking it in the specification.
SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "devices",
    "dns", "entrypoint", "env_file", "environment", "expose", "extra_hosts", "healthcheck",
    "hostname", "image", "init", "labels", "logging", "mem_limit", "network_mode",
    "networks", "platform", "ports", "privileged", "profiles", "pull_policy", "read_only",
    "restart", "security_opt", "shm_size", "stop_grace_period", "stop_signal", "tmpfs",
    "tty", "ulimits", "user", "volumes", "working_dir",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "disable"}
DEPENDS_ON_CONDITIONS = {
    "service_started",
    "service_healthy",
    "service_completed_successfully",
}
RESTART_POLICIES = {"no", "always", "on-failure", "unless-stopped"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # PyYAML reads YAML 1.1, as Compose does not: unquoted "9000:9000" would be an integer
    # here. The ports test requires quoted ports, so the two readings agree.
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return json.loads(REALM_FILE.read_text())


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts_of(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes, short (``src:dst[:mode]``) or long syntax."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v["target"])))
        else:
            parts = str(v).split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def host_ports(services: dict[str, dict[str, Any]]) -> dict[tuple[str, int], tuple[str, int]]:
    """(host ip, host port) -> (service, container port), for every published port."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for name, svc in services.items():
        for spec in svc.get("ports") or []:
            assert isinstance(spec, str), f"{name}: quote port {spec!r} (YAML 1.1 base 60)"
            m = re.fullmatch(r"(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(?:/tcp)?", spec)
            assert m, f"{name}: port {spec!r} is not [ip:]host:container"
            key = (m.group(1) or "0.0.0.0", int(m.group(2)))
            assert key not in out, f"host port {key} used by {out.get(key)} and {name}"
            out[key] = (name, int(m.group(3)))
    return out


def published(services: dict[str, dict[str, Any]], service: str, container_port: int) -> int:
    for (_, port), (name, target) in host_ports(services).items():
        if (name, target) == (service, container_port):
            return port
    raise AssertionError(f"{service}:{container_port} is not published")


def realm_client(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    clients = [c for c in realm.get("clients", []) if c.get("clientId") == client_id]
    assert len(clients) == 1, f"realm {realm['realm']} has no client {client_id!r}"
    return clients[0]


def mapper(client: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in client.get("protocolMappers", []) if m["protocolMapper"] == kind]


# --- the compose file --------------------------------------------------------------------


def test_services_and_their_keys(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(compose) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    assert set(services) == SERVICES
    for name, svc in services.items():
        unknown = set(svc) - SERVICE_KEYS
        assert not unknown, f"{name}: unknown keys {unknown}"
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: name a tag in {image!r}"
        assert svc.get("restart", "no") in RESTART_POLICIES
        hc = svc["healthcheck"]
        assert set(hc) <= HEALTHCHECK_KEYS, f"{name}: healthcheck keys {set(hc)}"
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test form"
        for key in ("interval", "timeout", "start_period"):
            if key in hc:
                assert re.fullmatch(r"(\d+(ms|s|m|h))+", str(hc[key])), f"{name}: {key}"


def test_depends_on_names_services(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name
            condition = spec.get("condition", "service_started")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {dep}: {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck to wait for"
    # MinIO reads the discovery document once, at start-up: Keycloak must be ready by then.
    assert services["minio"]["depends_on"]["oidc"]["condition"] == "service_healthy"
    assert services["token-refresher"]["depends_on"]["oidc"]["condition"] == "service_healthy"


def test_ports_distinct_and_local(services: dict[str, Any]) -> None:
    ports = host_ports(services)
    assert ports, "nothing is published"
    for (ip, port), (name, _) in ports.items():
        assert ip == "127.0.0.1", f"{name} publishes {port} on {ip}: demo passwords, keep local"
    assert published(services, "minio", 9000) == 9000
    assert published(services, "swift", 8080) == 8080


def test_bind_mounts_exist_and_named_volumes_declared(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for source, target in mounts_of(svc):
            assert target.startswith("/"), f"{name}: {target!r}"
            if not source:
                continue  # an anonymous volume
            if is_bind(source):
                assert source.startswith("./"), f"{name}: {source!r} is not in the repository"
                path = (COMPOSE_FILE.parent / source).resolve()
                assert path.exists(), f"{name}: bind mount source {source} does not exist"
                assert ROOT in path.parents or path == ROOT, f"{name}: {source} leaves the repo"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"


def test_minio_trusts_the_oidc_service(services: dict[str, Any], realm: dict[str, Any]) -> None:
    env = env_of(services["minio"])
    url = urllib.parse.urlsplit(env["MINIO_IDENTITY_OPENID_CONFIG_URL"])
    assert url.scheme == "http"
    assert url.hostname == "oidc" and url.hostname in services
    assert url.path == f"/realms/{realm['realm']}/.well-known/openid-configuration"
    # The OIDC service listens on the port MinIO asks, inside the network.
    assert (url.port or 80) == 8080 == published_target(services, "oidc")
    assert env["MINIO_IDENTITY_OPENID_CLAIM_NAME"] == "policy"
    assert "MINIO_IDENTITY_OPENID_ROLE_POLICY" not in env  # claim-based, not role-based
    realm_client(realm, env["MINIO_IDENTITY_OPENID_CLIENT_ID"])
    assert env["MINIO_ROOT_USER"] and len(env["MINIO_ROOT_PASSWORD"]) >= 8
    assert services["oidc"]["command"][:2] == ["start-dev", "--import-realm"]
    targets = [t for _, t in mounts_of(services["oidc"])]
    assert "/opt/keycloak/data/import/realm.json" in targets


def published_target(services: dict[str, Any], service: str) -> int:
    targets = {target for (name, target) in host_ports(services).values() if name == service}
    assert len(targets) == 1, f"{service}: {targets}"
    return targets.pop()


def test_realm_gives_minio_what_it_checks(services: dict[str, Any], realm: dict[str, Any]) -> None:
    minio = env_of(services["minio"])
    client_id = minio["MINIO_IDENTITY_OPENID_CLIENT_ID"]
    client = realm_client(realm, client_id)
    assert realm["enabled"] and client["enabled"]
    assert client["serviceAccountsEnabled"] and not client["publicClient"]
    # The service account's user is in the file: Keycloak 26 imports that create it
    # themselves can fail with "Session not bound to a realm" (keycloak/keycloak#38647).
    users = [u for u in realm.get("users", []) if u.get("serviceAccountClientId") == client_id]
    assert [u["username"] for u in users] == [f"service-account-{client_id}"]
    # The claim MinIO reads, in the access token, naming a policy MinIO has built in.
    policy = [
        m["config"]
        for m in mapper(client, "oidc-hardcoded-claim-mapper")
        if m["config"]["claim.name"] == minio["MINIO_IDENTITY_OPENID_CLAIM_NAME"]
    ]
    assert len(policy) == 1
    assert policy[0]["access.token.claim"] == "true"
    assert policy[0]["claim.value"] in {"readwrite", "readonly", "writeonly", "consoleAdmin"}
    # MinIO refuses a token unless aud (else azp) names its client id.
    audiences = [m["config"] for m in mapper(client, "oidc-audience-mapper")]
    assert any(
        a.get("included.client.audience") == client_id and a["access.token.claim"] == "true"
        for a in audiences
    )
    # ... and one without `sub`.
    assert mapper(client, "oidc-sub-mapper")


def test_refresher_uses_the_realm_client(services: dict[str, Any], realm: dict[str, Any]) -> None:
    env = env_of(services["token-refresher"])
    url = urllib.parse.urlsplit(env["TOKEN_URL"])
    assert (url.hostname, url.port) == ("oidc", 8080)
    assert url.path == f"/realms/{realm['realm']}/protocol/openid-connect/token"
    client = realm_client(realm, env["CLIENT_ID"])
    assert env["CLIENT_ID"] == env_of(services["minio"])["MINIO_IDENTITY_OPENID_CLIENT_ID"]
    assert env["CLIENT_SECRET"] == client["secret"]
    # A token outlives the wait for the next one.
    assert realm["accessTokenLifespan"] > 2 * float(env["REFRESH_EVERY"])
    (source, target), *_ = [
        m for m in mounts_of(services["token-refresher"]) if m[1] == "/refresh.py"
    ]
    assert (COMPOSE_FILE.parent / source).resolve() == REFRESHER
    assert services["token-refresher"]["command"] == ["python", target]


def test_token_file_is_shared_with_the_host(services: dict[str, Any]) -> None:
    env = env_of(services["token-refresher"])
    token_file = Path(env["TOKEN_FILE"])
    binds = {t: s for s, t in mounts_of(services["token-refresher"]) if is_bind(s)}
    source = binds[str(token_file.parent)]
    host_dir = (COMPOSE_FILE.parent / source).resolve()
    assert host_dir.is_dir()
    # The directory is in the repository (so it belongs to the user, not to the engine,
    # which would create a missing one as root) while the tokens written there are not.
    keep = host_dir / ".gitignore"
    assert keep.read_text().splitlines()[-2:] == ["*", "!.gitignore"]
    # The host-side instructions point at that same file.
    rel = (host_dir / token_file.name).relative_to(ROOT).as_posix()
    assert f'BEARER_TOKEN_FILE="$PWD/{rel}"' in COMPOSE_FILE.read_text()


def test_host_instructions_match_the_ports(services: dict[str, Any]) -> None:
    comments = "\n".join(
        line.lstrip("# ") for line in COMPOSE_FILE.read_text().splitlines() if line.startswith("#")
    )
    minio = published(services, "minio", 9000)
    swift = published(services, "swift", 8080)
    assert f"AWS_ENDPOINT_URL=http://localhost:{minio}\n" in comments
    assert f"ST_AUTH=http://localhost:{swift}/auth/v1.0 ST_USER=test:tester ST_KEY=testing" in (
        comments
    )
    for service, port in [("minio", 9000), ("minio", 9001), ("swift", 8080), ("oidc", 8080)]:
        assert re.search(rf"\b{published(services, service, port)}\b", comments)


# --- the token-refresher's script, run for real ------------------------------------------


def load_refresher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zs_token_refresher", REFRESHER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_jwt(**claims: Any) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class TokenEndpoint:
    """A stand-in for Keycloak's token endpoint: client credentials in, a JWT out."""

    def __init__(self, client_id: str, secret: str, expires_in: int = 3600) -> None:
        self.client_id, self.secret, self.expires_in = client_id, secret, expires_in
        self.forms: list[dict[str, str]] = []
        self.token = ""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                endpoint.forms.append(form)
                ok = (
                    form.get("grant_type") == "client_credentials"
                    and form.get("client_id") == endpoint.client_id
                    and form.get("client_secret") == endpoint.secret
                )
                now = int(time.time())
                endpoint.token = fake_jwt(
                    sub="service-account", aud=[endpoint.client_id], policy="readwrite",
                    iss="http://oidc:8080/realms/zarrstores", iat=now,
                    exp=now + endpoint.expires_in,
                )  # fmt: skip
                body = (
                    {"access_token": endpoint.token, "expires_in": endpoint.expires_in}
                    if ok
                    else {"error": "unauthorized_client"}
                )
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realms/zarrstores/token"


@pytest.fixture
def endpoint(realm: dict[str, Any]) -> Iterator[TokenEndpoint]:
    client = realm_client(realm, "zarrstores")
    ep = TokenEndpoint(client["clientId"], client["secret"])
    thread = threading.Thread(target=ep.server.serve_forever, daemon=True)
    thread.start()
    yield ep
    ep.server.shutdown()
    ep.server.server_close()
    thread.join(timeout=10)


def run_refresher(
    *args: str, token_file: Path, url: str, secret: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "TOKEN_URL": url,
        "CLIENT_ID": "zarrstores",
        "CLIENT_SECRET": secret,
        "TOKEN_FILE": str(token_file),
        "REFRESH_EVERY": "600",
    }
    return subprocess.run(
        [sys.executable, str(REFRESHER), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_refresher_writes_a_private_token_the_cli_reads(
    endpoint: TokenEndpoint, realm: dict[str, Any], tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens" / "token"
    token_file.parent.mkdir()
    secret = realm_client(realm, "zarrstores")["secret"]
    out = run_refresher("--once", token_file=token_file, url=endpoint.url, secret=secret)
    assert out.returncode == 0, out.stderr
    assert endpoint.forms[-1]["grant_type"] == "client_credentials"
    assert token_file.read_text() == endpoint.token + "\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in token_file.parent.iterdir()) == ["token"]  # no temp left

    # What the host does with it: zarrstores finds, decodes and times the token.
    cli = subprocess.run(
        [sys.executable, "-m", "zarrstores.cli", "token", "--token-file", str(token_file),
         "--json"],
        capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    info = json.loads(cli.stdout)
    assert info["subject"] == "service-account"
    assert info["issuer"] == "http://oidc:8080/realms/zarrstores"
    assert "TokenFilePermissionWarning" not in cli.stderr

    # A second run replaces the file (new inode: a reader holds the old or the new one).
    inode = token_file.stat().st_ino
    out = run_refresher("--once", token_file=token_file, url=endpoint.url, secret=secret)
    assert out.returncode == 0, out.stderr
    assert token_file.read_text() == endpoint.token + "\n"
    assert token_file.stat().st_ino != inode

    # The container's health check: fresh passes, stale fails.
    check = run_refresher("--check", token_file=token_file, url="", secret="")
    assert check.returncode == 0, check.stderr
    old = time.time() - 3 * 600
    os.utime(token_file, (old, old))
    check = run_refresher("--check", token_file=token_file, url="", secret="")
    assert check.returncode == 1 and "old" in check.stderr


def test_refresher_refused_writes_nothing(endpoint: TokenEndpoint, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    out = run_refresher("--once", token_file=token_file, url=endpoint.url, secret="wrong")
    assert out.returncode == 1
    assert "401" in out.stderr
    assert list(tmp_path.iterdir()) == []
    missing = run_refresher("--check", token_file=token_file, url="", secret="")
    assert missing.returncode == 1


def test_refresher_waits_less_than_a_token_lives() -> None:
    refresher = load_refresher()
    assert refresher.next_wait(600, None) == 600
    assert refresher.next_wait(600, 3600) == 600
    assert refresher.next_wait(600, 300) == 150  # Keycloak's default 5-minute tokens
    assert refresher.next_wait(600, 2) == 5
