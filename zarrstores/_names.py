"""Checks of container and bucket names, with errors that show long names shortened."""

from __future__ import annotations

import re

from .auth.errors import ConfigurationError, shorten

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SWIFT_MAX_CONTAINER = 256  # bytes (Swift's default constraint)


def bucket_name_problem(bucket: str) -> str | None:
    """What is wrong with ``bucket`` as an S3 bucket name, or None."""
    if _BUCKET.fullmatch(bucket) and ".." not in bucket:
        return None
    return (
        f"{shorten(bucket)!r} is not an S3 bucket name: use 3-63 lowercase letters, digits, '-' "
        "and '.', a letter or digit first and last"
    )


# What S3 clients send at all (botocore checks bucket names so before a request; obstore would
# panic on a space in one), and the control characters obstore refuses in a key.
_SENDABLE_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_s3_names(bucket: str, key: str) -> None:
    """Raise ``ValueError`` (``ConfigurationError`` for the bucket) for names no S3 request
    can carry, before one is made; other odd names are left to the server."""
    if not _SENDABLE_BUCKET.fullmatch(bucket):
        raise ConfigurationError(bucket_name_problem(bucket) or f"bucket {bucket!r}")
    if found := _CONTROL.search(key):
        raise ValueError(
            f"key {shorten(key)!r} contains a control character ({found[0]!r}), which S3 "
            "object names here cannot have: remove it"
        )


def check_swift_container(container: str) -> None:
    """Raise ``ConfigurationError`` for a container name Swift refuses by its length."""
    size = len(container.encode("utf-8", "surrogatepass"))
    if size > SWIFT_MAX_CONTAINER:
        raise ConfigurationError(
            f"container name {container[:40]!r}... has {size} bytes; Swift allows at most "
            f"{SWIFT_MAX_CONTAINER}: use a shorter name"
        )


def no_container_error(url: str, protocol: str, what: str) -> ConfigurationError:
    return ConfigurationError(
        f"no {what} in the URL {shorten(url)!r}: write {protocol}://<{what}>/<path> "
        f"(fsspec.filesystem({protocol!r}).ls('') lists the {what}s)"
    )
