"""OpenStack Swift: ``swift://`` URLs for fsspec/xarray, ``SwiftStore`` for zarr, ACL helpers.

Authentication comes from the shared auth core (``zarrstores.auth``): ``storage_options`` or
the environment, the same names as the ``swift`` CLI and zarr-swiftstore (whose
``acquire_token``/``getenv_auth`` helpers are re-exported here for its notebooks).
"""

from ..auth import acquire_token, getenv_auth
from ._client import DEFAULT_SEGMENT_SIZE, SwiftClient
from ._errors import SwiftError, SwiftPermissionError
from .acl import is_public, make_private, make_public, toggle_public
from .fs import SwiftFile, SwiftFileSystem
from .store import SwiftStore

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "SwiftClient",
    "SwiftError",
    "SwiftFile",
    "SwiftFileSystem",
    "SwiftPermissionError",
    "SwiftStore",
    "acquire_token",
    "getenv_auth",
    "is_public",
    "make_private",
    "make_public",
    "toggle_public",
]
