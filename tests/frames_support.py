"""Helpers of the frame store tests: a FrameStore on a backend's container or bucket."""

from __future__ import annotations

from typing import Any

from backends import FAST, Backend

from zarrstores.auth import STSCredentials
from zarrstores.frames import FrameStore

__all__ = ["frame_options", "frame_store"]


def frame_options(backend: Backend, endpoint: str | None = None) -> dict[str, Any]:
    """storage_options for ``backend`` (through ``endpoint``, e.g. a counting proxy)."""
    if backend.name == "swift":
        from zarrstores.auth import TempAuth

        server = backend.server  # type: ignore[attr-defined]
        if endpoint is None:
            return {"auth": backend.auth(), "retry": FAST}  # type: ignore[attr-defined]
        auth = TempAuth(
            server.auth_url, "test:tester", server.users["test:tester"],
            storage_url=f"{endpoint}/v1/AUTH_test",
        )
        return {"auth": auth, "retry": FAST}
    issuer = backend.issuer  # type: ignore[attr-defined]
    url = endpoint or backend.endpoint()  # type: ignore[attr-defined]
    return {
        "endpoint_url": url,
        "credentials": STSCredentials(backend.endpoint(), issuer.mint()),  # type: ignore[attr-defined]
        "skip_instance_cache": True,
    }


def frame_store(backend: Backend, prefix: str = "lake", endpoint: str | None = None) -> FrameStore:
    """A FrameStore at ``<protocol>://<container>/<prefix>`` on ``backend``."""
    protocol = "swift" if backend.name == "swift" else "minio"
    url = f"{protocol}://{backend.container}/{prefix}"
    return FrameStore(url, **frame_options(backend, endpoint))
