"""``zarrstores share``: make a container/bucket (prefix) public or private, show which it is,
or print a time-limited read link: to a store on Swift (a TempURL signed for its prefix), to
one object on S3 (a presigned URL)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from .. import sharing
from ..auth import ConfigurationError
from ._common import Location, parse_location, parse_options, subcommand

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
KEY_HEADER = "X-Container-Meta-Temp-Url-Key"
ACCOUNT_KEY_HEADER = "X-Account-Meta-Temp-Url-Key"
PRESIGN_LIMIT = 7 * 86400  # SigV4's longest presigned URL


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    match = _DURATION.match(text)
    if not match or float(match[1]) <= 0:
        raise ConfigurationError(f"--expires {text!r}: give a duration like 3600, 30m, 12h or 7d")
    return int(float(match[1]) * _UNIT[match[2]])


async def _signing_key(fs: Any, container: str, large_objects: bool) -> tuple[str, str]:
    """(key, "container" or "account"): the container's Temp-URL key, created when missing;
    the account's when the store has large objects, whose segments live in another container
    that a container key does not reach."""
    from ..swift._urls import quote_name

    scope = "account" if large_objects else "container"
    path, where = ("", "") if large_objects else (quote_name(container), container)
    header = ACCOUNT_KEY_HEADER if large_objects else KEY_HEADER
    op = f"the Temp-URL key of the {scope}"
    reply = await fs.client.request("HEAD", path, op=f"read {op}", container=where)
    key = reply.headers.get(header)
    if not key:
        key = secrets.token_urlsafe(32)
        await fs.client.request(
            "POST", path, op=f"set {op}", container=where, headers={header: key}
        )
    return key, scope


async def swift_link(location: Location, options: dict[str, Any], seconds: int) -> dict[str, Any]:
    """A TempURL for every object under ``location``, signed for its prefix with the
    container's Temp-URL key (the account's when the store holds Static Large Objects)."""
    from swiftclient.utils import generate_temp_url  # (imports keystoneclient: ~1 s)

    from ..swift.fs import SwiftFileSystem

    fs = SwiftFileSystem(asynchronous=True, skip_instance_cache=True, **options)
    container, name = fs.split_path(location.path)
    try:
        found = await fs._find(location.path, detail=True) if name else {}
        large = any(info.get("slo") for info in found.values())
        key, scope = await _signing_key(fs, container, large)
        storage_url = (await fs.client.auth.aget()).storage_url
    finally:
        await fs.client.close()
    prefix = f"{name}/" if name else ""
    storage = urlsplit(storage_url)
    path = f"{storage.path}/{quote(container)}/{quote(prefix)}"
    query = generate_temp_url(path, seconds, key, "GET", prefix=True).split("?", 1)[1]
    base = f"{storage.scheme}://{storage.netloc}{path}".rstrip("/")
    return {
        "url": f"{base}/?{query}",
        "base_url": base,
        "storage_options": {"params": dict(part.split("=", 1) for part in query.split("&"))},
        "expires_at": datetime.fromtimestamp(int(time.time()) + seconds, UTC).isoformat(),
        "key": scope,
    }


async def revoke_links(location: Location, options: dict[str, Any]) -> None:
    """Replace the container's Temp-URL key: every link signed with it stops working."""
    from ..swift.fs import SwiftFileSystem

    fs = SwiftFileSystem(asynchronous=True, skip_instance_cache=True, **options)
    container, _ = fs.split_path(location.path)
    try:
        await fs.client.post_container(container, {KEY_HEADER: secrets.token_urlsafe(32)})
    finally:
        await fs.client.close()


def s3_link(location: Location, options: dict[str, Any], seconds: int) -> dict[str, Any]:
    """A presigned GET URL for one object, made with static keys: S3 signs objects one by one,
    and a URL signed with STS credentials would carry the session token."""
    from ..minio.fs import MinioFileSystem

    if seconds > PRESIGN_LIMIT:
        raise ConfigurationError(f"--expires: S3 presigned URLs last at most 7 days ({seconds} s)")
    fs = MinioFileSystem(skip_instance_cache=True, **options)
    if not fs.isfile(location.path):
        raise ConfigurationError(
            f"{location.url}: S3 has no time-limited link for a prefix (a presigned URL signs "
            "one object; a zarr store needs one per object): share a store on S3 with --public, "
            "or keep it on Swift for --expires"
        )
    creds = fs.credentials.get()
    if creds is None or creds.session_token is not None:
        why = (
            "anonymous access cannot sign a URL"
            if creds is None
            else "a URL signed with STS session credentials carries the session token"
        )
        raise ConfigurationError(
            f"{location.url}: {why}: give static keys for the presigned URL "
            "(-o minio:key=... -o minio:secret=..., or an mc alias)"
        )
    return {
        "url": fs.url(location.path, expires=seconds),
        "expires_at": datetime.fromtimestamp(int(time.time()) + seconds, UTC).isoformat(),
        "key": "static",
    }


def _temporary_link(
    location: Location, options: dict[str, Any], seconds: int, as_json: bool
) -> int:
    swift = location.scheme == "swift"
    if swift:
        link = asyncio.run(swift_link(location, options, seconds))
    else:
        link = s3_link(location, options, seconds)
    print(json.dumps(link, indent=2) if as_json else link["url"])
    if as_json or not swift:
        return 0
    print(
        f"# read-only, for anyone holding the link, until {link['expires_at']}; "
        "the container stays private"
    )
    if link["key"] == "account":
        print(
            "# signed with the account's Temp-URL key (the store has large objects, whose "
            "segments are in another container): share --revoke does not end this link"
        )
    print("# open with xarray (fsspec's HTTP filesystem sends the parameters with each request):")
    print(
        f"#   xr.open_zarr({link['base_url']!r}, "
        f"storage_options={json.dumps(link['storage_options'])})"
    )
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    location = parse_location(args.url)
    if location.scheme == "file":
        raise ConfigurationError(f"{args.url}: share works on swift:// and minio:// URLs")
    options = parse_options(args.option, location.scheme)
    if args.expires:
        return _temporary_link(location, options, parse_duration(args.expires), args.json)
    if args.revoke:
        if location.scheme != "swift":
            raise ConfigurationError(f"{location.url}: --revoke is for Swift's --expires links")
        asyncio.run(revoke_links(location, options))
        print(
            f"{location.url}: the --expires links signed with its container's key stop working "
            "now (links to stores with large objects use the account's key and run until they "
            "expire)"
        )
        return 0
    if args.public:
        sharing.make_public(location.url, options)
    elif args.private:
        sharing.make_private(location.url, options)
    public = sharing.is_public(location.url, options)
    if args.json:
        print(json.dumps({"url": location.url, "public": public}))
    else:
        print(f"{location.url}: {'public (anyone may list and read)' if public else 'private'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``share`` to the ``zarrstores`` command."""
    p = subcommand(
        sub,
        "share",
        cmd_share,
        help="make data public or private, or print a time-limited read link (Swift)",
        description="Show whether a container/bucket (on S3: a prefix) is public, make it "
        "public or private, or print a read-only link that expires (--expires). The link is a "
        "Swift TempURL signed for the store's prefix with the container's Temp-URL key (set "
        "when missing): it reads every object of the store, nothing else, and the container "
        "stays private. On S3 --expires gives a presigned URL for one object, made with static "
        "keys; S3 has no such link for a prefix.",
        examples=(
            "zarrstores share swift://climate                  # public or private?",
            "zarrstores share --public swift://climate         # anyone may list and read",
            "zarrstores share --private minio://bucket/tas.zarr",
            "zarrstores share --expires 7d swift://climate/tas.zarr",
            "zarrstores share --revoke swift://climate             # end all those links",
            "zarrstores share --expires 1d minio://bucket/notes.txt  # one object, static keys",
        ),
        json="print JSON",
    )
    p.add_argument("url", help="swift://container[/store] or minio://bucket[/prefix]")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--public", action="store_true", help="let anyone list and read")
    what.add_argument("--private", action="store_true", help="withdraw anonymous access")
    what.add_argument("--status", action="store_true", help="say whether it is public (default)")
    what.add_argument("--expires", metavar="DURATION", help="a read link valid this long (7d)")
    what.add_argument(
        "--revoke", action="store_true", help="end every --expires link to the container"
    )
