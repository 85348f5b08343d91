"""``zarrstores share``: placeholder replaced below."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``share`` to the ``zarrstores`` command."""
