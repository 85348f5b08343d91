"""Public read access to a bucket or a prefix, through the bucket policy.

``make_public`` adds two statements for anonymous users: ``s3:GetObject`` on the prefix's
objects and ``s3:ListBucket`` limited to that prefix; ``make_private`` removes them. Other
statements of the policy are kept. Names and signatures are those of ``zarrstores.swift``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from zarr.core.sync import sync

from ..auth import ConfigurationError
from ._client import S3Error
from .fs import MinioFileSystem
from .store import MinioStore

__all__ = ["is_public", "make_private", "make_public", "toggle_public"]

Policy = dict[str, Any]
Target = MinioStore | str


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(bucket: str, prefix: str) -> list[Policy]:
    """The two statements that make ``prefix`` (all of ``bucket`` for "") public."""
    arn, anyone = f"arn:aws:s3:::{bucket}", {"Effect": "Allow", "Principal": "*"}
    objects = f"{arn}/{prefix}/*" if prefix else f"{arn}/*"
    get = {**anyone, "Action": ["s3:GetObject"], "Resource": [objects]}
    listing: Policy = {**anyone, "Action": ["s3:ListBucket"], "Resource": [arn]}
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}
    return [get, listing]


def _covers(statement: Policy, bucket: str, prefix: str) -> bool:
    """Whether ``statement`` lets anyone read every object under ``prefix``."""
    probe = f"arn:aws:s3:::{bucket}/{prefix}/" if prefix else f"arn:aws:s3:::{bucket}/"
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    return (
        statement.get("Effect") == "Allow"
        and "*" in _as_list(principal)
        and any(fnmatchcase("s3:GetObject", a) for a in _as_list(statement.get("Action", [])))
        and any(fnmatchcase(probe + "*", r) for r in _as_list(statement.get("Resource", [])))
    )


def _normalise(value: Any) -> Any:
    # Servers store one-element lists as strings and may add a Sid: compare without those.
    if isinstance(value, list):
        return sorted(value) if len(value) != 1 else value[0]
    if not isinstance(value, dict):
        return value
    out = {k: _normalise(v) for k, v in value.items() if k != "Sid"}
    if isinstance(out.get("Principal"), dict) and out["Principal"].get("AWS") == "*":
        out["Principal"] = "*"
    return out


async def _get_policy(fs: MinioFileSystem, bucket: str) -> Policy:
    try:
        answer = await fs._call_s3("get_bucket_policy", Bucket=bucket)
    except S3Error as e:
        if e.code != "NoSuchBucketPolicy":
            raise
        return {"Version": "2012-10-17", "Statement": []}
    policy = json.loads(answer["Policy"])
    policy["Statement"] = _as_list(policy.get("Statement", []))  # one statement may be bare
    return policy


async def _put_policy(fs: MinioFileSystem, bucket: str, policy: Policy) -> None:
    if policy["Statement"]:
        await fs._call_s3("put_bucket_policy", Bucket=bucket, Policy=json.dumps(policy))
        return
    try:
        await fs._call_s3("delete_bucket_policy", Bucket=bucket)
    except S3Error as e:
        if e.code != "NoSuchBucketPolicy":
            raise


def _run[T](
    target: Target,
    storage_options: Mapping[str, Any] | None,
    work: Callable[[MinioFileSystem, str, str], Awaitable[T]],
) -> T:
    """``work(fs, bucket, prefix)`` for ``target`` with an aiobotocore client (bucket policies
    are not object requests) of the store's endpoint, credentials, CA and proxy."""
    if isinstance(target, MinioStore):
        store, prefix = target, target.prefix
    else:
        path = target.split("://", 1)[1] if target.startswith(("minio://", "s3://")) else target
        bucket, _, prefix = path.strip("/").partition("/")
        store, prefix = MinioStore(bucket, **dict(storage_options or {})), prefix.strip("/")

    async def go() -> T:
        fs = MinioFileSystem(
            endpoint_url=store.endpoint_url,
            credentials=store.credentials,
            verify=store._verify,
            proxy=store.proxy,
            region=store.region,
            asynchronous=True,
            skip_instance_cache=True,
        )
        await fs.set_session()
        try:
            return await work(fs, store.bucket, prefix)
        finally:
            await fs._s3.close()

    return sync(go())


def is_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether anyone may read the objects under the target's prefix.

    ``target``: a ``MinioStore``, or ``"[minio://]bucket[/prefix]"`` (``s3://`` too) with
    ``storage_options`` (``endpoint_url``, ``token``... as for ``MinioStore``; else the
    environment). Raises ``FileNotFoundError`` for a missing bucket, ``PermissionError`` for
    credentials that may not read the bucket policy.
    """
    return _run(target, storage_options, _is_public)


async def _is_public(fs: MinioFileSystem, bucket: str, prefix: str) -> bool:
    policy = await _get_policy(fs, bucket)
    return any(_covers(s, bucket, prefix) for s in policy["Statement"])


def make_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> None:
    """Let anyone read and list the objects under the target's prefix (the whole bucket for
    none). Raises like ``is_public``; ``PermissionError`` when the credentials may not change
    the bucket policy."""
    _run(target, storage_options, _make_public)


async def _make_public(fs: MinioFileSystem, bucket: str, prefix: str) -> None:
    policy = await _get_policy(fs, bucket)
    present = [_normalise(s) for s in policy["Statement"]]
    policy["Statement"] += [s for s in _statements(bucket, prefix) if _normalise(s) not in present]
    await _put_policy(fs, bucket, policy)


def make_private(target: Target, storage_options: Mapping[str, Any] | None = None) -> None:
    """Remove the public read access ``make_public`` gave to the target's prefix; other
    statements stay. Raises like ``make_public``, and ``ConfigurationError`` when a wider
    statement (e.g. the whole bucket public) still lets anyone read it."""
    _run(target, storage_options, _make_private)


async def _make_private(fs: MinioFileSystem, bucket: str, prefix: str) -> None:
    policy = await _get_policy(fs, bucket)
    ours = [_normalise(s) for s in _statements(bucket, prefix)]  # as the server may store them
    policy["Statement"] = [s for s in policy["Statement"] if _normalise(s) not in ours]
    await _put_policy(fs, bucket, policy)
    if any(_covers(s, bucket, prefix) for s in policy["Statement"]):
        where = f"minio://{bucket}/{prefix}".rstrip("/")
        raise ConfigurationError(
            f"{where} is still public through a wider statement of the bucket policy; "
            "make that location private instead"
        )


def toggle_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Make the target public if it is private, private if public; returns whether it is
    public now."""
    return _run(target, storage_options, _toggle)  # one store: one set of credentials


async def _toggle(fs: MinioFileSystem, bucket: str, prefix: str) -> bool:
    public = await _is_public(fs, bucket, prefix)
    await (_make_private if public else _make_public)(fs, bucket, prefix)
    return not public
