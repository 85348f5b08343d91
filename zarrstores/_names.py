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
