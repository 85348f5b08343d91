"""``zarrstores cp`` and ``zarrstores sync``: copy objects between Swift, S3 and local disk,
in parallel, resumable, verified by MD5, server-side within one backend, zarr metadata last
(docs/cli.md tells how, and the help text of the commands)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._files import md5_of_file
from ..auth import ConfigurationError
from ._common import Location, filesystem, human, parse_location, subcommand
from ._trees import LocalTree, Stored, Tree

IN_MEMORY = 16 << 20  # larger objects go through a temporary file (jobs x this in memory)
METADATA = frozenset({"zarr.json", ".zmetadata", ".zgroup", ".zarray", ".zattrs"})
MAX_ERRORS_SHOWN = 5


@dataclass
class Summary:
    """What a copy did; ``--json`` prints it."""

    source: str
    destination: str
    objects: int = 0
    copied: int = 0
    server_side: int = 0  # of ``copied``: copied by the server (Swift -> Swift, S3 -> S3)
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failed += 1
        self.errors.append(message)


class VerificationError(OSError):
    """An object's content does not match its source's checksum."""


def phases(names: Iterable[str]) -> list[list[str]]:
    """``names`` in write order: data objects first, then zarr metadata documents grouped by
    depth, deepest first (a store's root metadata, the consolidated one, is the last group)."""
    data: list[str] = []
    metadata: dict[int, list[str]] = {}
    for name in names:
        if name.rsplit("/", 1)[-1] in METADATA:
            metadata.setdefault(name.count("/"), []).append(name)
        else:
            data.append(name)
    groups = [sorted(data)] if data else []
    return groups + [sorted(metadata[d]) for d in sorted(metadata, reverse=True)]


def make_tree(location: Location, option_pairs: list[str] | None) -> Tree:
    if location.scheme == "file":
        return LocalTree(location)
    if not location.path:
        raise ConfigurationError(f"{location.url}: name a container or bucket")
    fs = filesystem(location, option_pairs, asynchronous=True, skip_instance_cache=True)
    return Tree(location, fs)


class Copier:
    """Copies the objects of one tree to another with ``jobs`` requests in flight."""

    def __init__(
        self, source: Tree, destination: Tree, summary: Summary, *, jobs: int, progress: Any
    ) -> None:
        self.source, self.destination, self.summary = source, destination, summary
        self.jobs, self.progress = jobs, progress
        # Swift to Swift, S3 to S3: every URL of one scheme has the same credentials and
        # endpoint, so both trees are in one account or on one endpoint, where the server copies.
        self.server_side = (
            not destination.local and source.location.scheme == destination.location.scheme
        )
        # source name -> (destination name, MD5 or None when unknown, size) of every object written
        self.copied: dict[str, tuple[str, str | None, int]] = {}

    async def _each(self, items: Iterable[Any], work: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``work`` on every item, ``jobs`` at a time."""
        queue = list(items)[::-1]

        async def worker() -> None:
            while queue:
                await work(queue.pop())

        await asyncio.gather(*(worker() for _ in range(min(self.jobs, len(queue)) or 1)))

    async def same(self, rel: str, dst_rel: str, src: Stored, dst: Stored | None) -> bool:
        """Whether the destination already holds the source's content: same size, and same MD5
        where both sides state one (a local file is hashed only then; against an SLO or a
        multipart upload, which state none, the size decides)."""
        if dst is None or dst.size != src.size:
            return False
        if not (src.md5 or self.source.local) or not (dst.md5 or self.destination.local):
            return True  # size only
        src_md5 = src.md5 or await self.source.md5(rel)
        dst_md5 = dst.md5 or await self.destination.md5(dst_rel)
        return src_md5 == dst_md5

    async def plan(
        self, wanted: dict[str, str], sources: dict[str, Stored], present: dict[str, Stored]
    ) -> list[str]:
        """The source names whose destination differs; counts the others as skipped."""
        todo: list[str] = []

        async def check(rel: str) -> None:
            if await self.same(rel, wanted[rel], sources[rel], present.get(wanted[rel])):
                self.summary.skipped += 1
            else:
                todo.append(rel)

        await self._each(sorted(wanted), check)
        return todo

    async def copy(
        self, todo: list[str], sources: dict[str, Stored], wanted: dict[str, str]
    ) -> None:
        """Copy ``todo`` phase by phase, each verified before the next: after a failure the
        metadata that would open the store is held back (the next run writes it)."""
        for group in phases(todo):
            if self.summary.failed:
                self.summary.failed += len(group)
                self.summary.errors.append(
                    f"{len(group):,} later object(s) (zarr metadata) not written because of the "
                    "failures above: run again"
                )
                continue
            await self._each(group, lambda rel: self._copy_one(rel, wanted[rel], sources[rel]))
            await self.verify(group)

    async def _copy_one(self, rel: str, dst_rel: str, stored: Stored) -> None:
        where = self.source.location.child_url(rel)
        digest: str | None
        try:
            if self.server_side:
                await self.destination.copy_from(self.source, rel, dst_rel, stored.size)
                digest = stored.md5  # checked at the destination by verify()
                self.summary.server_side += 1
            elif stored.size > IN_MEMORY:
                with tempfile.TemporaryDirectory(prefix="zarrstores-cp-") as tmp:
                    file = await self.source.as_file(rel, tmp)
                    digest = await asyncio.to_thread(md5_of_file, file)
                    _check_read(where, stored, file.stat().st_size, digest)
                    await self.destination.upload(dst_rel, file)
            else:
                data = await self.source.read(rel)
                digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
                _check_read(where, stored, len(data), digest)
                await self.destination.write(dst_rel, data)
        except PermissionError:
            raise  # refused credentials fail every object alike: stop with the one message
        except (OSError, ValueError) as e:
            self.summary.fail(f"{where}: {e}")
            return
        self.copied[rel] = (dst_rel, digest, stored.size)
        self.summary.copied += 1
        self.summary.bytes += stored.size
        self.progress.update(stored.size)
        self.progress.set_postfix_str(f"{self.summary.copied:,} done", refresh=False)

    async def verify(self, group: list[str]) -> None:
        """Check the copied objects of ``group`` at the destination against their source's MD5
        (one listing; an ETag that is no MD5: read back). A server-side copy of an object that
        states no MD5 is checked by size: reading it back would move the bytes it saved."""
        written = [rel for rel in group if rel in self.copied]
        if not written:
            return
        present = await self.destination.list()

        async def check(rel: str) -> None:
            dst_rel, digest, size = self.copied[rel]
            try:
                stored = present.get(dst_rel)
                if stored is None or stored.size != size or (digest and stored.md5 != digest):
                    stored = await self.destination.stat(dst_rel)  # a listing may lag behind
                if stored is None:
                    raise VerificationError("missing after it was written")
                if stored.size != size:
                    raise VerificationError(
                        f"{stored.size:,} bytes, the source has {size:,}: run again to recopy"
                    )
                stated = digest and (stored.md5 or await self.destination.md5(dst_rel))
                if stated != digest:  # (no digest: the size decided)
                    raise VerificationError(
                        f"MD5 {stated} differs from the source's {digest}: run again to recopy"
                    )
            except (OSError, ValueError) as e:
                self.summary.copied -= 1
                self.summary.server_side -= self.server_side
                self.summary.bytes -= size
                self.summary.fail(f"{self.destination.location.child_url(dst_rel)}: {e}")

        await self._each(written, check)


def _check_read(where: str, stored: Stored, size: int, digest: str) -> None:
    if size != stored.size or (stored.md5 and digest != stored.md5):
        raise VerificationError(
            f"read {size:,} bytes with MD5 {digest}, but the listing says {stored.size:,} bytes "
            f"and MD5 {stored.md5}: the object changed during the copy or arrived corrupted; "
            "run again"
        )


async def _targets(
    args: argparse.Namespace, source: Tree, destination: Tree
) -> tuple[dict[str, Stored], dict[str, str], dict[str, Stored]]:
    """(source objects, source name -> destination name, destination objects)."""
    sources = await source.list()
    if "" in sources:  # the source is one object
        sources = {"": sources[""]}
        name = source.location.path.rsplit("/", 1)[-1]
        into = args.dst.endswith("/") or (destination.local and Path(args.dst).is_dir())
        dst_rel = name if into else ""
        present = {dst_rel: s} if (s := await destination.stat(dst_rel)) else {}
        return sources, {"": dst_rel}, present
    if not sources:
        raise FileNotFoundError(f"{source.location.url} not found: nothing to copy")
    if not args.recursive:
        raise IsADirectoryError(
            f"{source.location.url} holds {len(sources):,} objects: pass -r to copy them all"
        )
    return sources, {rel: rel for rel in sources}, await destination.list()


async def run(args: argparse.Namespace, summary: Summary) -> None:
    from tqdm import tqdm

    source = make_tree(parse_location(args.src), args.option)
    destination = make_tree(parse_location(args.dst), args.option)
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM stops as Ctrl-C does: objects being written finish or are dropped whole.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    started = time.monotonic()
    try:
        sources, wanted, present = await _targets(args, source, destination)
        summary.objects = len(sources)
        copier = Copier(source, destination, summary, jobs=args.jobs, progress=None)
        todo = await copier.plan(wanted, sources, present)
        copier.progress = tqdm(
            total=sum(sources[rel].size for rel in todo),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=args.quiet or not todo,
            desc=f"copy {len(todo):,} objects",
            file=sys.stderr,
            dynamic_ncols=True,
        )
        with copier.progress:
            if todo:
                await destination.prepare()
            await copier.copy(todo, sources, wanted)
        if args.delete:
            extra = sorted(set(present) - set(wanted.values()))
            await destination.delete(extra)
            summary.deleted = len(extra)
    finally:
        summary.seconds = round(time.monotonic() - started, 3)


def _report(summary: Summary, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(asdict(summary), indent=2))
    elif not args.quiet:
        rate = summary.copied / summary.seconds if summary.seconds else 0.0
        print(
            f"copied {summary.copied:,} objects ({human(summary.bytes)}"
            f"{', server-side' if summary.server_side else ''}), skipped "
            f"{summary.skipped:,} already identical, deleted {summary.deleted:,}, failed "
            f"{summary.failed:,} in {summary.seconds:.1f} s ({rate:,.0f} objects/s)"
        )
    for error in summary.errors[:MAX_ERRORS_SHOWN]:
        print(f"zarrstores: failed: {error}", file=sys.stderr)
    if len(summary.errors) > MAX_ERRORS_SHOWN:
        print(f"zarrstores: ... and {len(summary.errors) - MAX_ERRORS_SHOWN} more", file=sys.stderr)


def _command(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigurationError(f"--jobs must be at least 1, got {args.jobs}")
    summary = Summary(source=args.src, destination=args.dst)
    try:
        asyncio.run(run(args, summary))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            f"\nzarrstores: interrupted after copying {summary.copied:,} objects: every "
            "object written is complete; run the same command again to resume",
            file=sys.stderr,
        )
        with contextlib.suppress(BrokenPipeError):
            _report(summary, args)
        return 130
    _report(summary, args)
    return 1 if summary.failed else 0


def _parser(sub: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """``cp`` or ``sync`` with the arguments they share."""
    p = subcommand(
        sub,
        name,
        _command,
        **kwargs,
        quiet="no progress bar, no summary line",
        json="print a JSON summary on stdout",
    )
    p.add_argument("src", help="swift://container/path, minio://bucket/path or a local path")
    p.add_argument("dst", help="where the copy goes (same forms)")
    p.add_argument("-j", "--jobs", type=int, default=16, help="objects in flight (default 16)")
    return p


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cp`` and ``sync`` to the ``zarrstores`` command."""
    about = (
        "Objects already identical at the destination (same size, and same MD5 where both "
        "sides state one) are skipped, so an interrupted run resumes where it stopped. Every "
        "copied object is checked against its source's MD5. Swift -> Swift and S3 -> S3 are "
        "copied by the server: the bytes do not pass through this machine. Zarr metadata is "
        "written after the chunks, the store's root metadata last. With -r, DST becomes a copy "
        "of SRC: SRC/a/b goes to DST/a/b. Exit status: 0 all copied, 1 some objects failed, 2 "
        "bad arguments or access, 130 interrupted."
    )
    c = _parser(
        sub,
        "cp",
        help="copy objects between Swift, S3 and local disk (resumable, verified)",
        description="Copy an object, or with -r everything under a prefix. " + about,
        examples=(
            "zarrstores cp -r swift://climate/tas.zarr minio://climate/tas.zarr",
            "zarrstores cp -r minio://climate/tas.zarr ./tas.zarr --jobs 32",
            "zarrstores cp swift://climate/notes.txt ./          # one object",
            "zarrstores cp -r --json -q ./tas.zarr swift://climate/tas.zarr",
        ),
    )
    c.add_argument("-r", "--recursive", action="store_true", help="everything under SRC")
    c.set_defaults(delete=False)

    s = _parser(
        sub,
        "sync",
        help="make DST a copy of SRC (copy what differs, --delete what SRC lacks)",
        description="Make DST hold what SRC holds: copy what is missing or differs (a "
        "corrupted object is found by its MD5 and copied again); with --delete, remove what "
        "SRC no longer has (after everything else is copied). " + about,
        examples=(
            "zarrstores sync swift://climate/tas.zarr minio://climate/tas.zarr",
            "zarrstores sync --delete ./tas.zarr swift://climate/tas.zarr",
        ),
    )
    s.add_argument("--delete", action="store_true", help="delete what SRC no longer has")
    s.set_defaults(recursive=True)
