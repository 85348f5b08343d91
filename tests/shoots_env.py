"""The Shoots client in a virtual env of its own, run as a subprocess.

``shoots`` depends on the ``jwt`` package, which replaces PyJWT's ``jwt`` module (the test
OIDC issuer needs PyJWT), so the client cannot share the test env. The env is made on first
use at ``<repo>/.venv-shoots`` (git-ignored) and reused while its stamp file is there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

__all__ = ["SHOOTS_VERSION", "run_shoots_client", "shoots_python"]

SHOOTS_VERSION = "0.1.1"
_VENV = Path(__file__).resolve().parent.parent / ".venv-shoots"

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


def shoots_python() -> Path:
    """The Python of the Shoots env (made, with ``shoots`` from PyPI, if missing)."""
    python = _VENV / "bin" / "python"
    stamp = _VENV / f".installed-shoots-{SHOOTS_VERSION}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"shoots=={SHOOTS_VERSION}"], check=True
        )
        stamp.touch()
    return python


def run_shoots_client(code: str, port: int, **env: str) -> str:
    """Run ``code`` (after a prelude defining ``connect()`` and ``raises()``) in the Shoots
    env against 127.0.0.1:``port``; its stdout. Fails the test with the client's stderr."""
    result = subprocess.run(
        [str(shoots_python()), "-c", _PRELUDE + textwrap.dedent(code)],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"),
             "PORT": str(port), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"Shoots client failed:\n{result.stderr[-4000:]}"
    return result.stdout
