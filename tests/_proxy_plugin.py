"""A proxy.py plugin for the network tests: the forward proxy, and only it, knows where the
storage host names under ``.zarrstores.test`` are (127.0.0.1). A client that bypassed the proxy
could not even resolve them."""

from __future__ import annotations

from typing import Any

from proxy.http.proxy import HttpProxyBasePlugin

STORAGE_DOMAIN = ".zarrstores.test"


class StorageNames(HttpProxyBasePlugin):  # type: ignore[misc]
    """Resolves ``*.zarrstores.test`` to 127.0.0.1; other names as usual."""

    def resolve_dns(self, host: str, port: int) -> tuple[Any, Any]:
        if host.endswith(STORAGE_DOMAIN):
            return "127.0.0.1", None
        return None, None
