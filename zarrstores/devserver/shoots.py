"""Shoots (PyPI ``shoots``), the frame store's reference, and its server on local disk. Its env
is its own (its ``jwt`` package replaces PyJWT's module, which the OIDC issuer needs), made on
first use (a minute; pip's cache makes later ones fast), reused while its stamp is there."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from ._proc import LocalServer, free_port, listening

__all__ = ["SHOOTS_VERSION", "ShootsServerProcess", "shoots_python"]

SHOOTS_VERSION = "0.1.1"
DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-shoots"


def shoots_python(venv: Path = DEFAULT_VENV) -> Path:
    """The Python of the Shoots env at ``venv`` (made, with ``shoots`` from PyPI, if missing)."""
    python = venv / "bin" / "python"
    stamp = venv / f".installed-shoots-{SHOOTS_VERSION}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # One maker at a time: parallel test workers (or two benchmarks) may ask at once.
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", f"shoots=={SHOOTS_VERSION}"]
            subprocess.run(pip, check=True)
            stamp.touch()
    return python


class ShootsServerProcess(LocalServer):
    """``shoots-server`` on 127.0.0.1 storing in ``bucket_dir`` (plain gRPC, no JWT)."""

    def __init__(self, bucket_dir: Path, log: Path) -> None:
        super().__init__(bucket_dir)
        self.log = log
        self.port = 0

    def _start(self) -> None:
        self.port = free_port()
        server = shoots_python().parent / "shoots-server"
        cmd = [str(server), "--host", "127.0.0.1", "--port", str(self.port),
               "--bucket_dir", str(self.dir)]  # fmt: skip
        self._spawn("shoots", cmd, log=self.log)
        self._wait(lambda: listening(self.port), "shoots-server", self.log)
