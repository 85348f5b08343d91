"""The Shoots client run as a subprocess in its own env (``<repo>/.venv-shoots``, git-ignored,
made on first use: see :mod:`zarrstores.devserver.shoots`)."""

from __future__ import annotations

import os
import subprocess
import textwrap

from zarrstores.devserver.shoots import shoots_python

__all__ = ["run_shoots_client"]

_PRELUDE = """
import os
import pandas as pd
import numpy as np
from pyarrow.flight import FlightUnauthenticatedError
from shoots import ShootsClient, PutMode, BucketDeleteMode, DataFusionError, BucketNotEmptyError

def raises(kind, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError(f"{call.__name__}{args} did not raise {kind.__name__}")

def connect(token=None):
    root_cert = os.environ.get("ROOT_CERT")
    if root_cert:
        with open(root_cert) as f:
            root_cert = f.read()
    tls = os.environ.get("TLS") == "1"
    return ShootsClient("127.0.0.1", int(os.environ["PORT"]), tls, root_cert, token=token)
"""


def run_shoots_client(code: str, port: int, **env: str) -> str:
    """Run ``code`` (after a prelude defining ``connect()`` and ``raises()``) in the Shoots
    env against 127.0.0.1:``port``; its stdout. Fails the test with the client's stderr."""
    result = subprocess.run(
        [str(shoots_python()), "-c", _PRELUDE + textwrap.dedent(code)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/"),
            "PORT": str(port),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"Shoots client failed:\n{result.stderr[-4000:]}"
    return result.stdout
