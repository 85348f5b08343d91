"""Helpers of the frame store tests: a FrameStore on a backend's container or bucket."""

from __future__ import annotations

from typing import Any

from backends import FAST, Backend

from zarrstores.auth import STSCredentials, TempAuth
from zarrstores.frames import FrameStore

__all__ = ["frame_options", "frame_store", "frame_url"]


def frame_options(
    backend: Backend, endpoint: str | None = None, *, read_only: bool = False
) -> dict[str, Any]:
    """storage_options for ``backend`` (through ``endpoint``, e.g. a counting proxy; with
    ``read_only``, credentials that may read but not write: Swift's non-admin ``tester3``, to
    whom the test grants a read ACL, or S3's read-only STS policy)."""
    if backend.name == "swift":
        server = backend.server  # type: ignore[attr-defined]
        user = "test:tester3" if read_only else "test:tester"
        storage_url = f"{endpoint or server.proxy_url}/v1/AUTH_test"
        auth = TempAuth(server.auth_url, user, server.users[user], storage_url=storage_url)
        return {"auth": auth, "retry": FAST}
    issuer = backend.issuer  # type: ignore[attr-defined]
    token = issuer.mint(policy="readonly" if read_only else "readwrite")
    return {
        "endpoint_url": endpoint or backend.endpoint(),  # type: ignore[attr-defined]
        "credentials": STSCredentials(backend.endpoint(), token),  # type: ignore[attr-defined]
        "skip_instance_cache": True,
    }


def frame_url(backend: Backend, prefix: str = "lake") -> str:
    """``<protocol>://<container>/<prefix>`` on ``backend``."""
    protocol = "swift" if backend.name == "swift" else "minio"
    return f"{protocol}://{backend.container}/{prefix}"


def frame_store(backend: Backend, prefix: str = "lake", endpoint: str | None = None) -> FrameStore:
    """A FrameStore at :func:`frame_url` on ``backend``."""
    return FrameStore(frame_url(backend, prefix), **frame_options(backend, endpoint))
