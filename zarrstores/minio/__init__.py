"""MinIO / S3 with STS web identity: the ``minio://`` filesystem, ``MinioStore``, sharing, and
InfnMinio-style helpers (``from_token``, ``get_credentials``)."""

from .acl import is_public, make_private, make_public, toggle_public
from .compat import from_token, get_credentials
from .fs import MinioFileSystem
from .store import MinioStore

__all__ = [
    "MinioFileSystem",
    "MinioStore",
    "from_token",
    "get_credentials",
    "is_public",
    "make_private",
    "make_public",
    "toggle_public",
]
