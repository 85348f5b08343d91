"""What every subcommand shares: URLs to filesystems, ``--option``, sizes, confirmation."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem

from ..auth import ConfigurationError

REMOTE_SCHEMES = ("swift", "minio")


@dataclass(frozen=True)
class Location:
    """A place named on the command line: ``swift://container/prefix``, ``minio://bucket/prefix``
    or a local path (``scheme`` ``"file"``, ``path`` absolute)."""

    url: str
    scheme: str
    path: str

    def child(self, rel: str) -> str:
        """The filesystem path of ``rel`` below this location ("" is the location itself)."""
        if not rel:
            return self.path
        return f"{self.path.rstrip('/')}/{rel}" if self.path else rel

    def child_url(self, rel: str) -> str:
        """``rel`` below this location, as a URL to show the user."""
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url


def parse_location(text: str) -> Location:
    """``swift://c/p``, ``minio://b/p``, ``file:///p`` or a local path."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Location(text, "file", os.path.abspath(text))
    if scheme == "file":
        return Location(text, "file", os.path.abspath(rest or "/"))
    if scheme not in REMOTE_SCHEMES:
        raise ConfigurationError(
            f"cannot use {text!r}: give a swift://container/path, minio://bucket/path or a local "
            "path"
        )
    return Location(f"{scheme}://{rest.strip('/')}", scheme, rest.strip("/"))


def parse_options(pairs: list[str] | None, scheme: str | None = None) -> dict[str, Any]:
    """``--option key=value`` pairs as storage_options for ``scheme``'s URLs: ``swift:key=v``
    and ``minio:key=v`` apply to that backend only, plain ``key=v`` to every remote URL.
    Values that read as JSON (numbers, true/false, objects) are decoded, others stay strings."""
    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        only, colon, name = key.partition(":")
        if colon and only in REMOTE_SCHEMES:
            if only != scheme:
                continue
            key = name
        if not sep or not key:
            raise ConfigurationError(f"--option {pair!r}: write it as key=value")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def filesystem(
    location: Location, option_pairs: list[str] | None, **kwargs: Any
) -> AbstractFileSystem:
    """The fsspec filesystem of ``location``, with the library's auth discovery and the
    ``--option`` pairs that apply to it."""
    if location.scheme == "file":
        return fsspec.filesystem("file")
    options = parse_options(option_pairs, location.scheme)
    # By class, not by protocol name: other packages (swiftspec) register swift:// too.
    if location.scheme == "swift":
        from ..swift.fs import SwiftFileSystem as cls
    else:
        from ..minio.fs import MinioFileSystem as cls
    return cls(**options, **kwargs)


def subcommand(
    sub: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    quiet: str | None = None,
    json: str | None = None,
) -> argparse.ArgumentParser:
    """A data subcommand's parser: ``examples`` in its help, and the common options
    ``-o/--option``, ``-q/--quiet`` and ``--json`` (these two when given their help text)."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=HelpFormat,
    )
    parser.set_defaults(func=func)
    common = parser.add_argument_group("common options")  # listed after the command's own
    common.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="a storage option (repeatable): KEY=VALUE for every URL, swift:KEY=VALUE or "
        "minio:KEY=VALUE for one backend, e.g. minio:endpoint_url=https://s3.example.org",
    )
    if quiet:
        common.add_argument("-q", "--quiet", action="store_true", help=quiet)
    if json:
        common.add_argument("--json", action="store_true", help=json)
    return parser


def human(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin: only ``y``/``yes`` agrees."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class HelpFormat(argparse.HelpFormatter):
    """Descriptions wrapped as usual; the examples epilog kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)
