"""The ``zarrstores`` subcommands for day-to-day work with stored data: ``ls``, ``du``, ``cp``,
``sync``, ``rm`` and ``share``, each taking ``swift://`` and ``minio://`` URLs and local paths."""

from __future__ import annotations

import argparse

from . import listing, remove, share, transfer

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the data subcommands to the ``zarrstores`` argument parser."""
    for module in (listing, transfer, remove, share):
        module.register(sub)
