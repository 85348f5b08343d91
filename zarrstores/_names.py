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


def check_s3_bucket(bucket: str) -> None:
    """Raise ``ConfigurationError`` for a bucket name no S3 request can carry, before one is
    made; other odd names are left to the server."""
    if not _SENDABLE_BUCKET.fullmatch(bucket):
        raise ConfigurationError(bucket_name_problem(bucket) or f"bucket {bucket!r}")


def check_s3_key(key: str) -> None:
    """Raise ``ValueError`` for an object key that S3 servers would store under another name,
    or without its data, or refuse, or that obstore cannot send."""
    if problem := s3_key_problem(key):
        raise ValueError(problem)


def s3_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be sent through obstore as it is (``check_s3_key``), or None."""
    if found := _CONTROL.search(key):
        return (
            f"key {shorten(key)!r} contains a control character ({found[0]!r}), which S3 "
            "object names here cannot have: remove it"
        )
    if "//" not in key and "/." not in key and key[0] != "." and key[-1] != "/":
        return None  # none of the cases below (checked once per request: this is the fast way)
    if key.endswith("/"):
        return (
            f"key {shorten(key)!r} ends with '/': S3 servers keep such keys as folder markers "
            "without data; remove the trailing '/'"
        )
    segments = key.split("/")
    if "" in segments:
        return (
            f"key {shorten(key)!r} has an empty path segment ('//'): S3 servers merge the "
            "slashes and store it under another name; use single slashes"
        )
    if "." in segments or ".." in segments:
        return (
            f"key {shorten(key)!r} has a '.' or '..' path segment, which S3 servers refuse; "
            "name it without one"
        )
    return None


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
