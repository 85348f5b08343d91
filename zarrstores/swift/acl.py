"""Public read access to a container: its read ACL (``X-Container-Read``), as zarr-swiftstore's
``is_public``/``toggle_public`` and ``swift post -r`` set it. Public means ``.r:*`` (anyone may
read objects) and ``.rlistings`` (anyone may list); other entries (``project:user``, referrers)
are kept. The ``<container>_segments`` container, where large objects keep their parts,
follows, so they stay readable too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zarr.core.sync import sync

from ._client import SwiftClient, client_from_options
from ._errors import SwiftPermissionError
from .store import SwiftStore

__all__ = ["is_public", "make_private", "make_public", "toggle_public"]

PUBLIC_ENTRIES = (".r:*", ".rlistings")

Target = SwiftStore | str


def is_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether anyone may read the container's objects (``.r:*`` in its read ACL).

    ``target``: a ``SwiftStore``, a container name, ``swift://container/...`` or the
    container's ``https://.../v1/AUTH_.../container`` URL (then ``storage_options`` or the
    environment give the credentials). Raises ``FileNotFoundError`` for a missing container
    and ``PermissionError`` for credentials that may not read its ACL.
    """
    return ".r:*" in sync(_read_acl(*_resolve(target, storage_options), "see"))


def make_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> None:
    """Let anyone list and read the container (adds ``.r:*,.rlistings``, keeps other
    entries). Raises like ``is_public``; ``PermissionError`` says when the credentials
    may not change the ACL (only the account's admins can)."""
    sync(_change(*_resolve(target, storage_options), public=True))


def make_private(target: Target, storage_options: Mapping[str, Any] | None = None) -> None:
    """Stop anonymous access (removes ``.r:*`` and ``.rlistings``, keeps other entries).
    Raises like ``make_public``."""
    sync(_change(*_resolve(target, storage_options), public=False))


def toggle_public(target: Target, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Make a public container private and a private one public; returns the new state.
    Raises like ``make_public``."""
    client, container = _resolve(target, storage_options)
    public = ".r:*" not in sync(_read_acl(client, container, "see"))
    sync(_change(client, container, public=public))
    return public


# An account segment starts with a reseller prefix (AUTH_ and the like are upper case).
_ACCOUNT = re.compile(r"^[A-Z]+_")


def _resolve(target: Target, options: Mapping[str, Any] | None) -> tuple[SwiftClient, str]:
    if isinstance(target, SwiftStore):
        return target.client, target.container
    if not isinstance(target, str) or not target.strip("/"):
        raise TypeError(f"expected a SwiftStore, a container name or a URL, got {target!r}")
    opts = dict(options or {})
    if target.startswith("swift://"):
        container = target[len("swift://") :].strip("/").split("/")[0]
    elif target.startswith(("http://", "https://")):
        head, sep, rest = target.partition("/v1/")
        account, _, path = rest.partition("/")
        if not _ACCOUNT.match(account):
            # Ceph RGW's account-less form: https://host/swift/v1/container/...
            account, path = "", rest
        container = path.strip("/").split("/")[0]
        if not sep or not container:
            raise ValueError(f"{target!r} is not a Swift URL like https://host/v1/AUTH_x/container")
        if not {"auth", "storage_url", "preauthurl"} & opts.keys():
            opts["storage_url"] = f"{head}/v1/{account}".rstrip("/")
    else:
        container = target.strip("/")
        if "/" in container:
            raise ValueError(f"{target!r} is not a container name (did you mean swift://...?)")
    return client_from_options(opts), container


async def _read_acl(client: SwiftClient, container: str, verb: str) -> list[str]:
    try:
        headers = await client.head_container(container)
    except PermissionError as e:
        raise _refused(client, container, verb, e) from None
    if headers is None:
        raise FileNotFoundError(f"swift://{container} not found")
    return [e.strip() for e in headers.get("X-Container-Read", "").split(",") if e.strip()]


async def _change(client: SwiftClient, container: str, *, public: bool) -> None:
    segments = f"{container}_segments"
    for name in (container, segments):
        try:
            acl = await _read_acl(client, name, "change")
        except FileNotFoundError:
            if name == segments:
                continue  # no large objects: nothing more to open up
            raise
        kept = [e for e in acl if e not in PUBLIC_ENTRIES]
        new = [*kept, *PUBLIC_ENTRIES] if public else kept
        if new == acl:
            continue
        # An empty value removes the ACL; Ceph RGW ignores X-Remove-Container-Read.
        headers = {"X-Container-Read": ",".join(new)}
        if not new:
            headers["X-Remove-Container-Read"] = "1"
        try:
            await client.post_container(name, headers)
        except PermissionError as e:
            raise _refused(client, name, "change", e) from None


def _refused(client: SwiftClient, container: str, verb: str, e: Exception) -> Exception:
    return SwiftPermissionError(
        f"{client.auth.describe()} has no rights to {verb} the read ACL of container "
        f"{container!r}: only an admin of the container's account (project) can "
        f"({getattr(e, 'status', '') or 'refused'})",
        status=getattr(e, "status", 403),
    )
