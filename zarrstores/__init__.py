"""zarrstores: xarray/zarr on OpenStack Swift and MinIO/S3, with the auth research clouds use.

- ``SwiftStore`` / ``swift://`` and ``MinioStore`` / ``minio://``: zarr v3 stores and fsspec
  filesystems for ``xr.open_zarr`` and ``ds.to_zarr``;
- ``is_public`` / ``make_public`` / ``make_private`` / ``toggle_public`` for either backend;
- ``from_token`` / ``get_credentials`` (minio-py and pyarrow with STS keys from an OIDC token);
- ``getenv_auth`` / ``acquire_token`` (zarr-swiftstore's helpers);
- ``zarrstores.auth``: token sources, STS, Swift auth kinds, exports for other tools.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

_HOOKED = "_zarrstores_protocols" in sys.modules  # imported at start-up by the .pth file

import _zarrstores_protocols  # noqa: E402

# Names are imported on first use: the local Swift servers load a paste filter from
# ``zarrstores.devserver``, and must not pull in zarr, s3fs and aiohttp with it.
_LAZY = {
    name: module
    for module, names in {
        "zarrstores.minio": ("MinioFileSystem", "MinioStore", "from_token", "get_credentials"),
        "zarrstores.swift": ("SwiftFileSystem", "SwiftStore"),
        "zarrstores.auth": ("acquire_token", "getenv_auth"),
        "zarrstores.sharing": ("is_public", "make_private", "make_public", "toggle_public"),
    }.items()
    for name in names
}


# Other packages (swiftspec) claim "swift" too: importing zarrstores makes both URL schemes
# ours (as the .pth file installed with it does in every process; see _zarrstores_protocols).
_zarrstores_protocols.install()
if not _HOOKED:
    _zarrstores_protocols.warn_if_unhooked()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zarrstores' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__version__ = "0.1.0"

__all__ = sorted(_LAZY)
