"""``zarrstores rm``: delete an object, or everything under a prefix (bulk deletes)."""

from __future__ import annotations

import argparse
import sys

from ._common import confirm, filesystem, human, parse_location, subcommand
from .listing import objects


def cmd_rm(args: argparse.Namespace) -> int:
    location = parse_location(args.url)
    fs = filesystem(location, args.option)
    prefix = not fs.isfile(location.path)
    found = objects(fs, location) if prefix else {location.path: fs.info(location.path)}
    if not found:
        raise FileNotFoundError(f"{location.url} not found: nothing to delete")
    if prefix and not args.recursive:
        raise IsADirectoryError(
            f"{location.url} holds {len(found):,} objects: pass -r to delete them all"
        )
    size = sum(info.get("size") or 0 for info in found.values())
    what = f"{len(found):,} object(s) ({human(size)}) under {location.url}"
    if not args.yes and not confirm(f"Delete {what}?"):
        print("zarrstores: nothing deleted", file=sys.stderr)
        return 1
    if not prefix:
        fs.rm(location.path)
    elif location.scheme == "minio":
        fs.rm(sorted(found))  # batched DeleteObjects; the bucket itself stays
    else:
        fs.rm(location.path, recursive=True)  # Swift: bulk delete, the container stays
    if not args.quiet:
        print(f"deleted {what}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rm`` to the ``zarrstores`` command."""
    p = subcommand(
        sub,
        "rm",
        cmd_rm,
        help="delete an object, or with -r everything under a prefix",
        description="Delete an object, or with -r every object under a prefix (a whole zarr "
        "store) with bulk deletes. Asks for confirmation unless --yes. Containers and buckets "
        "themselves are kept.",
        examples=(
            "zarrstores rm swift://climate/notes.txt",
            "zarrstores rm -r swift://climate/tas.zarr        # asks first",
            "zarrstores rm -r --yes minio://bucket/tmp/       # no question (scripts)",
        ),
        quiet="print nothing on success",
    )
    p.add_argument("url", help="swift://container/path, minio://bucket/path or a local path")
    p.add_argument("-r", "--recursive", action="store_true", help="everything under the prefix")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
