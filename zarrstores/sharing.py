"""Public/private sharing for either backend: one set of names, dispatched by store or URL."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .auth import ConfigurationError


def _backend(target: Any) -> ModuleType:
    from .minio import MinioStore
    from .minio import acl as minio_acl
    from .swift import SwiftStore
    from .swift import acl as swift_acl

    url = target if isinstance(target, str) else ""
    if isinstance(target, SwiftStore) or url.startswith("swift://"):
        return swift_acl
    if isinstance(target, MinioStore) or url.startswith(("minio://", "s3://")):
        return minio_acl
    raise ConfigurationError(
        f"cannot tell whether {target!r} is on Swift or on S3: pass a SwiftStore/MinioStore or a "
        "swift://... / minio://... URL (or call zarrstores.swift.make_public / "
        "zarrstores.minio.make_public with a container/bucket name)"
    )


def is_public(target: Any, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether anonymous users can list and read ``target`` (a store or URL)."""
    return _backend(target).is_public(target, storage_options)


def make_public(target: Any, storage_options: Mapping[str, Any] | None = None) -> None:
    """Let anonymous users list and read ``target``; other grants are kept."""
    _backend(target).make_public(target, storage_options)


def make_private(target: Any, storage_options: Mapping[str, Any] | None = None) -> None:
    """Withdraw anonymous read and listing from ``target``; other grants are kept."""
    _backend(target).make_private(target, storage_options)


def toggle_public(target: Any, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Flip ``target`` between public and private; returns whether it is public now."""
    return _backend(target).toggle_public(target, storage_options)
