"""A real OpenStack Swift on 127.0.0.1 from the project's virtual env: account, container and
object servers plus a tempauth proxy (with S3 API), and optionally Keystone and a second proxy
that authenticates with it. Configuration, rings and data live under one directory."""

from __future__ import annotations

import configparser
import getpass
import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._proc import (
    TEST_USERS,
    LocalServer,
    ServerStartError,
    SwiftV1Users,
    free_ports,
    http_status,
    write_ini,
)
from .keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER, KeystoneServer

if TYPE_CHECKING:
    from .oidc import OIDCIssuer

_BACKENDS = ("account", "container", "object")

# Importing swift pulls in eventlet, so rings are built in a child interpreter.
_BUILD_RINGS = """
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    builder = RingBuilder(6, 1, 1)  # part power 6, 1 replica: one device holds everything
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "sdb1", "weight": 1.0})
    builder.rebalance()
    builder.get_ring().save(f"{etc}/{name}.ring.gz")
"""

# What the swift-*-server scripts do, except that swift.conf is read from the configuration's
# directory for constraints too: Swift takes [swift-constraints] only from /etc/swift/swift.conf.
_RUN_SERVER = """
import os, sys
from swift.common import utils
name, module, conf = sys.argv[1:4]
utils.SWIFT_CONF_FILE = os.path.join(os.path.dirname(conf), "swift.conf")
from swift.common import constraints
constraints.reload_constraints()
sys.argv = [name, *sys.argv[3:]]
__import__(module, fromlist=["main"]).main()
"""

# The two proxies differ only in {auth}. The control filter (token cache, faults) comes right
# after the outermost middlewares (healthcheck stays truthful): injected answers skip the rest.
_PIPELINE = (
    "catch_errors gatekeeper healthcheck control proxy-logging listing_formats bulk "
    "tempurl {auth} copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)


class SwiftServer(SwiftV1Users, LocalServer):
    """Swift with tempauth users ``test:tester``, ``test2:tester2`` (admins) and ``test:tester3``
    (not admin): :attr:`users` maps each to its key. A kept ``dir`` can be started again.
    ``keystone=True`` adds Keystone (:attr:`keystone_url`, users in :data:`.keystone.USERS`) and
    a proxy using it (:attr:`keystone_proxy_url`) on the same storage; ``oidc_issuer`` federates
    that Keystone with the issuer. ``token_life`` (s) applies to both kinds of token.
    ``max_file_size`` and ``container_listing_limit`` override Swift's 5 GiB and 10,000 names.
    Start it from a thread that lives as long as the servers: they die with that thread.
    """

    def __init__(
        self,
        dir: str | Path | None = None,
        *,
        keystone: bool = False,
        token_life: int = 86400,
        max_file_size: int | None = None,
        container_listing_limit: int | None = None,
        oidc_issuer: OIDCIssuer | None = None,
    ) -> None:
        super().__init__(dir, "swift")
        self.with_keystone = keystone
        self.oidc_issuer = oidc_issuer
        self.token_life = token_life
        self.max_file_size = max_file_size
        self.container_listing_limit = container_listing_limit
        self.users = dict(TEST_USERS)
        self.proxy_url = ""
        self.auth_url = ""
        self.keystone_url = ""
        self.keystone_proxy_url = ""
        self.keystone_project_id = ""
        self.keystone: KeystoneServer | None = None
        self._ports: dict[str, int] = {}
        self._etc = self.dir / "etc"
        self._run = self.dir / "run"
        self._logs = self.dir / "log"

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self) -> None:
        for d in (self._etc, self._run, self._logs, self.dir / "srv" / "sdb1"):
            d.mkdir(parents=True, exist_ok=True)
        names = [*_BACKENDS, "proxy", "log"] + (["keystone-proxy"] if self.with_keystone else [])
        self._ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.proxy_url = f"http://127.0.0.1:{self._ports['proxy']}"
        self.auth_url = f"{self.proxy_url}/auth/v1.0"

        if self.with_keystone:
            # Keystone takes longest to start: launch it first, wait for it last.
            self.keystone_proxy_url = f"http://127.0.0.1:{self._ports['keystone-proxy']}"
            self.keystone = KeystoneServer(
                self.dir / "keystone",
                object_store_url=f"{self.keystone_proxy_url}/v1/AUTH_$(project_id)s",
                token_life=self.token_life,
                oidc_issuer=self.oidc_issuer.url if self.oidc_issuer else None,
                oidc_audience=self.oidc_issuer.audience if self.oidc_issuer else "zarrstores",
            )
            self.keystone.launch()
            self.pids += self.keystone.pids
            self.keystone_url = self.keystone.url

        self._write_swift_conf()
        for name in _BACKENDS:  # backends need no rings: they start while the rings are built
            self._write_backend_conf(name)
            self._spawn_server(name)
        self._build_rings()
        self._write_proxy_conf("proxy", "s3api tempauth")
        self._spawn_server("proxy")
        if self.keystone:
            self._write_proxy_conf("keystone-proxy", "authtoken keystoneauth")
            self._spawn_server("keystone-proxy")
        self._wait_healthy(list(self._procs))
        if self.keystone:
            self.keystone.wait_ready()
            self.keystone_project_id = self.keystone.project_ids["test"]

    def stop(self) -> None:
        if self.keystone:
            self.keystone.stop()
        super().stop()

    # -- addresses and credentials ------------------------------------------------------------

    def storage_url(self, account: str = "test") -> str:
        """The tempauth proxy's URL of ``AUTH_<account>``."""
        return f"{self.proxy_url}/v1/AUTH_{account}"

    def os_env(self, kind: str = "password", *, user: str = "tester") -> dict[str, str]:
        """``OS_*`` variables for Keystone (``keystone=True`` only); see KeystoneServer.os_env."""
        return self._require_keystone().os_env(kind, user=user)

    def _require_keystone(self) -> KeystoneServer:
        if self.keystone is None:
            raise RuntimeError("this SwiftServer was started without keystone=True")
        return self.keystone

    # -- faults -------------------------------------------------------------------------------

    def inject_faults(
        self,
        *,
        status: int | None = None,
        count: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        delay: float = 0.0,
        reset: bool = False,
        proxy: str = "tempauth",
    ) -> None:
        """Make the next ``count`` client requests matching ``method`` and ``path_contains``
        (every one when ``count`` < 1, until :meth:`clear_faults`) wait ``delay`` seconds, then
        lose their connection (``reset``), or get ``status``, or else go through.

        ``proxy`` is ``"tempauth"`` or ``"keystone"``. Faults add up; a request takes the first
        not used up. The proxy's internal requests (SLO segments, bulk) are not affected.
        """
        fault = {
            "id": uuid.uuid4().hex,
            "status": status,
            "count": count,
            "method": method.upper() if method else None,
            "path_contains": path_contains,
            "delay": delay,
            "reset": reset,
        }
        self._update_control(proxy, lambda c: c.setdefault("faults", []).append(fault))

    def clear_faults(self) -> None:
        """Remove all injected faults from both proxies."""
        for proxy in ("tempauth", "keystone") if self.with_keystone else ("tempauth",):
            self._update_control(proxy, lambda c: c.update(faults=[]))

    def invalidate_tokens(self) -> None:
        """Make every tempauth token issued so far fail (401) from the next request on."""
        self._update_control("tempauth", lambda c: c.update(generation=c.get("generation", 0) + 1))
        # Also covers a proxy that is down now: it must not load the old tokens on restart.
        (self._run / "proxy-tokens.json").unlink(missing_ok=True)

    def _update_control(self, proxy: str, change: Any) -> None:
        if proxy not in ("tempauth", "keystone"):
            raise ValueError(f"proxy is 'tempauth' or 'keystone', not {proxy!r}")
        if proxy == "keystone":
            self._require_keystone()
        path = self._run / f"{'proxy' if proxy == 'tempauth' else 'keystone-proxy'}-control.json"
        control = json.loads(path.read_text()) if path.exists() else {}
        change(control)
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_text(json.dumps(control))
        # Atomic: the proxy reads either version, never a partial one.
        os.replace(tmp, path)

    def kill_proxy(self) -> None:
        """SIGKILL the tempauth proxy (connections in flight break); see :meth:`restart_proxy`."""
        if proc := self._procs.pop("proxy", None):
            proc.kill()  # nothing when it has exited already
            proc.wait(10)

    def restart_proxy(self) -> None:
        """Start the tempauth proxy again on the same port (killing it first if it runs), from a
        thread that outlives it. Tokens survive, as with a real memcached; faults' counts do not.
        """
        self.kill_proxy()
        self._spawn_server("proxy")
        self._wait_healthy(["proxy"])

    # -- processes and configuration ----------------------------------------------------------

    def _spawn_server(self, name: str) -> None:
        server = "proxy" if name.endswith("proxy") else name
        conf = self._etc / f"{name}-server.conf"
        # The script's name first, so ps shows which server this is; -v: log to the log file.
        cmd = [sys.executable, "-c", _RUN_SERVER, f"swift-{server}-server"]
        cmd += [f"swift.{'obj' if server == 'object' else server}.server", str(conf), "-v"]
        self._spawn(name, cmd, log=self._logs / f"{name}.log")

    def _wait_healthy(self, names: list[str]) -> None:
        for name in names:
            url = f"http://127.0.0.1:{self._ports[name]}/healthcheck"
            log = self._logs / f"{name}.log"
            self._wait(lambda url=url: http_status(url) == 200, f"swift {name} server", log)

    def _build_rings(self) -> None:
        ports = [str(self._ports[name]) for name in _BACKENDS]
        result = subprocess.run(
            [sys.executable, "-c", _BUILD_RINGS, str(self._etc), *ports],
            capture_output=True,
            text=True,
            timeout=self._START_TIMEOUT,
        )
        if result.returncode != 0:
            raise ServerStartError(f"building the swift rings failed:\n{result.stderr}")

    def _write_swift_conf(self) -> None:
        path = self._etc / "swift.conf"
        old = configparser.ConfigParser()
        old.read(path)
        # A kept directory keeps its hash path prefix/suffix, or its objects would be lost.
        names = ("swift_hash_path_prefix", "swift_hash_path_suffix")
        hashes = {n: old.get("swift-hash", n, fallback=secrets.token_hex(8)) for n in names}
        sections: dict[str, dict[str, Any]] = {
            "swift-hash": hashes,
            "storage-policy:0": {"name": "Policy-0", "default": "yes"},
        }
        limits = {"max_file_size": self.max_file_size}
        limits["container_listing_limit"] = self.container_listing_limit
        if constraints := {k: v for k, v in limits.items() if v is not None}:
            sections["swift-constraints"] = constraints
        write_ini(path, sections)

    def _default_section(self, name: str) -> dict[str, Any]:
        return {
            "bind_ip": "127.0.0.1",
            "bind_port": self._ports[name],
            "workers": 0,  # one process per server: nothing to reap, nothing forked
            "user": getpass.getuser(),
            "swift_dir": self._etc,
            "devices": self.dir / "srv",
            "mount_check": "false",
            "disable_fallocate": "true",
            "log_name": name,
            # No /dev/log here; -v logs to the console, which is the log file.
            "log_udp_host": "127.0.0.1",
            "log_udp_port": self._ports["log"],
        }

    def _write_backend_conf(self, name: str) -> None:
        app: dict[str, Any] = {"use": f"egg:swift#{name}"}
        if name == "object":
            app["container_update_timeout"] = 10  # keeps listings consistent under load
        write_ini(
            self._etc / f"{name}-server.conf",
            {
                "DEFAULT": self._default_section(name),
                "pipeline:main": {"pipeline": f"healthcheck {name}-server"},
                f"app:{name}-server": app,
                "filter:healthcheck": {"use": "egg:swift#healthcheck"},
            },
        )

    def _write_proxy_conf(self, name: str, auth: str) -> None:
        pipeline = _PIPELINE.format(auth=auth)
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": self._default_section(name),
            "pipeline:main": {"pipeline": pipeline},
            "app:proxy-server": {
                "use": "egg:swift#proxy",
                "account_autocreate": "true",
                "allow_account_management": "true",
                # One node: the default (60 s after one 507) would make every request fail.
                "error_suppression_interval": 1,
                "error_suppression_limit": 100,
            },
            "filter:control": {
                "paste.filter_factory": "zarrstores.devserver._swift_filters:filter_factory",
                "control_file": self._run / f"{name}-control.json",
            },
        }
        # Swift's own middlewares, loaded as egg:swift#<name with _ for ->.
        for f in sorted(set(pipeline.split()) - {"control", "authtoken", "proxy-server"}):
            sections[f"filter:{f}"] = {"use": f"egg:swift#{f.replace('-', '_')}"}
        # Swift logs the first 16 characters of every token by default: none here.
        sections["filter:proxy-logging"]["reveal_sensitive_prefix"] = 0
        if name == "proxy":
            sections["filter:control"].update(
                persist_file=self._run / "proxy-tokens.json",
                persist_prefixes="AUTH_/token/ AUTH_/user/",
            )
            tempauth = sections["filter:tempauth"]
            tempauth["token_life"] = self.token_life
            for user, key in self.users.items():
                account, username = user.split(":")
                groups = "" if user == "test:tester3" else " .admin"
                tempauth[f"user_{account}_{username}"] = key + groups
        else:
            keystone = self._require_keystone()
            sections["filter:authtoken"] = {
                "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
                "www_authenticate_uri": keystone.url,
                "auth_url": keystone.url,
                "auth_type": "password",
                "username": SERVICE_USER,
                "password": SERVICE_PASSWORD,
                "project_name": SERVICE_PROJECT,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
                "delay_auth_decision": "true",
                "service_token_roles_required": "true",
                "cache": "swift.cache",  # validated tokens go in the dict cache, not memcached
                "include_service_catalog": "false",
                "interface": "public",  # the catalog lists only public endpoints
            }
            sections["filter:keystoneauth"].update(
                operator_roles="admin, member", reseller_prefix="AUTH_"
            )
        write_ini(self._etc / f"{name}-server.conf", sections)
