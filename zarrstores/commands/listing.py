"""``zarrstores ls`` and ``zarrstores du``: what is stored under a URL, and how much."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fsspec.spec import AbstractFileSystem

from ._common import Location, filesystem, human, parse_location, subcommand

ZARR_MARKERS = frozenset({"zarr.json", ".zgroup", ".zarray"})


def _relative(location: Location, name: str) -> str:
    base = location.path.rstrip("/")
    name = name.rstrip("/")
    if base and name.startswith(base + "/"):
        return name[len(base) + 1 :]
    if name == base:
        return name.rsplit("/", 1)[-1]
    return name.lstrip("/") if base else name


def _modified(info: Mapping[str, Any]) -> str:
    value = info.get("last_modified") or info.get("LastModified") or info.get("mtime")
    if value is None:
        return "-"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return str(value).replace(" ", "T")[:19]


def _kind(fs: AbstractFileSystem, info: Mapping[str, Any]) -> str:
    if info["type"] != "directory":
        return "file"
    try:
        children = {n.rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(info["name"], detail=False)}
    except (FileNotFoundError, PermissionError):
        return "dir"
    return "zarr" if children & ZARR_MARKERS else "dir"


def objects(fs: AbstractFileSystem, location: Location) -> dict[str, Mapping[str, Any]]:
    """Every object under ``location`` (s3fs lists a prefix with no object as itself);
    ``FileNotFoundError`` if nothing is there."""
    found = fs.find(location.path, detail=True)
    found = {name: info for name, info in found.items() if info["type"] != "directory"}
    if not found and not fs.exists(location.path):
        raise FileNotFoundError(f"{location.url} not found: nothing is stored there")
    return found


def cmd_ls(args: argparse.Namespace) -> int:
    location = parse_location(args.url)
    fs = filesystem(location, args.option)
    if args.recursive:
        entries: Iterable[Mapping[str, Any]] = objects(fs, location).values()
    else:
        entries = fs.ls(location.path, detail=True)
    for info in sorted(entries, key=lambda i: i["name"]):
        name = _relative(location, info["name"]) + ("/" if info["type"] == "directory" else "")
        if args.long:
            kind = _kind(fs, info)
            size = f"{info.get('size') or 0:,}" if info["type"] == "file" else "-"
            print(f"{kind:<4} {size:>14} {_modified(info):<19} {name}")
        else:
            print(name)
    return 0


def _usage(location: Location, fs: AbstractFileSystem) -> dict[str, list[Any]]:
    """Objects and bytes per first path component under ``location`` ("" for files there)."""
    usage: dict[str, list[Any]] = {}
    for name, info in objects(fs, location).items():
        rel = _relative(location, name)
        head, sep, rest = rel.partition("/")
        row = usage.setdefault(head + sep, [0, 0, False])
        row[0] += 1
        row[1] += info.get("size") or 0
        row[2] = row[2] or rest in ZARR_MARKERS
    return usage


def cmd_du(args: argparse.Namespace) -> int:
    location = parse_location(args.url)
    fs = filesystem(location, args.option)
    usage = _usage(location, fs)
    total = [sum(r[0] for r in usage.values()), sum(r[1] for r in usage.values())]
    size = "{:,}".format if args.bytes else human
    if args.json:
        rows = {name: {"objects": r[0], "bytes": r[1], "zarr": r[2]} for name, r in usage.items()}
        summary = {"url": location.url, "objects": total[0], "bytes": total[1]}
        print(json.dumps(summary if args.summarize else {**summary, "entries": rows}, indent=2))
        return 0
    if not args.summarize:
        for name, (objects, nbytes, zarr) in sorted(usage.items()):
            print(f"{objects:>10,} {size(nbytes):>14}  {name}{'  (zarr)' if zarr else ''}")
    print(f"{total[0]:>10,} {size(total[1]):>14}  {location.url} (total)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``ls`` and ``du`` to the ``zarrstores`` command."""
    p = subcommand(
        sub,
        "ls",
        cmd_ls,
        help="list containers, buckets, objects and prefixes",
        description="List what is stored under a swift://, minio:// URL or a local path. "
        "Credentials come from the environment, as for the library.",
        examples=(
            "zarrstores ls swift://                      # the account's containers",
            "zarrstores ls -l swift://climate            # kind (file/dir/zarr), size, date",
            "zarrstores ls -r minio://bucket/tas.zarr    # every object, recursively",
            "zarrstores ls -o anon=true -o storage_url=https://host/v1/AUTH_x swift://public",
        ),
    )
    p.add_argument("url", help="swift://container/prefix, minio://bucket/prefix or a path")
    p.add_argument("-l", "--long", action="store_true", help="kind, size and date of each entry")
    p.add_argument("-r", "--recursive", action="store_true", help="every object below URL")

    d = subcommand(
        sub,
        "du",
        cmd_du,
        help="objects and bytes under a URL, per entry (a zarr store: per array)",
        description="Count objects and bytes under a URL, one line per entry below it and a "
        "total. On a zarr store the entries are its arrays; entries that are zarr stores are "
        "marked (zarr).",
        examples=(
            "zarrstores du swift://climate               # per store/prefix, and the total",
            "zarrstores du swift://climate/tas.zarr      # per array of the store",
            "zarrstores du -s --bytes minio://bucket     # one line: objects, exact bytes",
        ),
        json="print one JSON object",
    )
    d.add_argument("url", help="swift://container/prefix, minio://bucket/prefix or a path")
    d.add_argument("-s", "--summarize", action="store_true", help="only the total")
    d.add_argument("--bytes", action="store_true", help="exact byte counts, not KiB/MiB/GiB")
