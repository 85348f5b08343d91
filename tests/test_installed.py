"""zarrstores as a user gets it: a wheel built from this tree, installed with swiftspec (which
claims ``swift://`` too) into a fresh virtual env, used from a directory outside the repository
without ``import zarrstores``.

The env runs the oldest Python that ``requires-python`` admits (3.12) when this machine has it,
so that a user's 3.12 is tested beside the suite's own Python. It is kept in
``.installed-venv/`` and reused while the wheel's contents, the extra packages and that Python
are the same (building the wheel takes seconds, a fresh env a few minutes). Versions
are pinned to those of the test env (its ``pip freeze`` as constraints), so pip resolves at once.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_readme import BLOCKS, _run, recipe_envs  # noqa: F401  (recipe_envs: a fixture)

from zarrstores.devserver.swift import SwiftServer

# Creating the env (first run, or after the wheel changed) takes minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1500)

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".installed-venv"
# Besides the wheel with its [server] extra; pytest only because tests/test_readme.py, the
# process that runs the documents' blocks, imports it.
EXTRAS = ("swiftspec==0.0.4", "distributed", "pytest")
DATASET = """
import numpy as np
import xarray as xr

ds = xr.Dataset({"tas": (("time", "x"), np.arange(48.0).reshape(8, 6))})
"""


def wheel_digest(wheel: Path) -> str:
    """The SHA-256 of the wheel's file names and contents (not of its zip timestamps)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            digest.update(name.encode() + b"\0" + z.read(name) + b"\0")
    return digest.hexdigest()


def _pip(python: Path | str, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr}"


def oldest_claimed() -> tuple[int, int]:
    """The oldest Python ``requires-python`` in pyproject.toml admits."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^requires-python = ">=(\d+)\.(\d+)"', pyproject, re.M)
    assert found, "pyproject.toml names no requires-python lower bound"
    return int(found[1]), int(found[2])


def version_of(python: Path | str) -> tuple[int, int] | None:
    """``python``'s (major, minor), None when it does not run (a pyenv shim of a version that
    is not active fails)."""
    code = "import sys; print(*sys.version_info[:2])"
    run = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if run.returncode:
        return None
    major, minor = run.stdout.split()
    return int(major), int(minor)


def user_python() -> str:
    """The Python the user env is made with: the oldest claimed, where this machine has it (on
    PATH or under pyenv, as the Makefile looks), else the suite's own."""
    major, minor = oldest_claimed()
    home = os.path.expanduser("~")
    candidates = [shutil.which(f"python{major}.{minor}")]
    candidates += sorted(glob.glob(f"{home}/.pyenv/versions/{major}.{minor}*/bin/python3"))
    for python in filter(None, candidates):
        if version_of(python) == (major, minor):
            return python
    return sys.executable


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a venv holding the wheel (with ``[server]``) and ``EXTRAS``."""
    out = tmp_path_factory.mktemp("wheel")
    build = ("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT))
    _pip(sys.executable, *build)
    (wheel,) = out.glob("zarrstores-*.whl")
    base = user_python()
    version = version_of(base)
    stamp = f"{wheel_digest(wheel)} {' '.join(EXTRAS)} python {version}\n"
    python, marker = VENV / "bin" / "python", VENV / ".installed-wheel"
    if python.exists() and marker.exists() and marker.read_text() == stamp:
        return python
    if not python.exists() or version_of(python) != version:
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
        _pip(python, "install", "-q", "--upgrade", "pip")
    marker.unlink(missing_ok=True)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    constraints = out / "constraints.txt"
    constraints.write_text("\n".join(r for r in frozen if not r.startswith(("zarrstores", "-e"))))
    install = ("install", "-q", "-c", str(constraints))
    _pip(python, *install, "--force-reinstall", "--no-deps", str(wheel))
    _pip(python, *install, f"{wheel}[server]", *EXTRAS)
    marker.write_text(stamp)
    return python


@pytest.fixture
def outside() -> Iterator[Path]:
    """A scratch directory outside the repository (where a user's notebook would be)."""
    with tempfile.TemporaryDirectory(prefix="zarrstores-user-") as d:
        path = Path(d).resolve()
        assert ROOT not in path.parents
        yield path


def user_env(python: Path, **variables: str) -> dict[str, str]:
    """A user's shell: the venv's bin on PATH, HOME, the locale, and ``variables``."""
    keep = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = os.pathsep.join([str(python.parent), "/usr/bin", "/bin"])
    return {**env, **variables}


def run_script(
    python: Path, cwd: Path, code: str, env: dict[str, str], timeout: float = 240
) -> str:
    script = cwd / "script.py"
    script.write_text(textwrap.dedent(code))
    result = subprocess.run(
        [str(python), str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture
def container(swift_server: SwiftServer) -> str:
    return f"installed-{uuid.uuid4().hex[:10]}"


def test_swift_urls_are_zarrstores_without_importing_it(
    installed: Path, outside: Path, swift_server: SwiftServer, container: str
) -> None:
    out = run_script(
        installed,
        outside,
        DATASET
        + f"""
import importlib.metadata
import sys
import warnings

import fsspec

assert "zarrstores" not in sys.modules
claims = [e.dist.name for e in importlib.metadata.entry_points(group="fsspec.specs")
          if e.name == "swift"]
assert sorted(claims) == ["swiftspec", "zarrstores"], claims
url = "swift://{container}/tas.zarr"
ds.to_zarr(url, mode="w", consolidated=True)
assert xr.open_zarr(url).tas.values.tolist() == ds.tas.values.tolist()
assert type(fsspec.filesystem("swift")).__module__ == "zarrstores.swift.fs"
fsspec.filesystem("swift").get_file("{container}/tas.zarr/zarr.json", "zarr.json")
assert open("zarr.json", "rb").read() == fsspec.filesystem("swift").cat_file(
    "{container}/tas.zarr/zarr.json"
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import swiftspec  # noqa: F401  (a notebook that imports it keeps working, and is told)
assert any("swiftspec was imported" in str(w.message) for w in caught), caught
assert fsspec.get_filesystem_class("swift").__module__ == "zarrstores.swift.fs"
print("listed first:", claims[0])
""",
        user_env(installed, **swift_server.st_env()),
    )
    assert "listed first:" in out


def test_swiftspec_url_form_in_a_user_install(
    installed: Path, outside: Path, swift_server: SwiftServer, container: str
) -> None:
    storage_url, token = swift_server.get_token()
    location = storage_url.split("://", 1)[1].replace("/v1/", "/")  # <host>/<account>
    run_script(
        installed,
        outside,
        DATASET
        + f"""
ds.to_zarr("swift://{location}/{container}/tas.zarr", mode="w", consolidated=True)
back = xr.open_zarr("swift://{container}/tas.zarr")
assert back.tas.values.tolist() == ds.tas.values.tolist()
""",
        user_env(installed, OS_STORAGE_URL=storage_url, OS_AUTH_TOKEN=token),
    )


def test_dask_cluster_writes_by_url(
    installed: Path, outside: Path, swift_server: SwiftServer, container: str
) -> None:
    run_script(
        installed,
        outside,
        DATASET
        + f"""
from distributed import Client, LocalCluster

if __name__ == "__main__":
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        where = client.run(lambda: __import__("fsspec").get_filesystem_class("swift").__module__)
        assert set(where.values()) == {{"zarrstores.swift.fs"}}, where
        url = "swift://{container}/by-dask.zarr"
        ds.chunk({{"time": 1}}).to_zarr(url, mode="w", consolidated=True)
        back = xr.open_zarr(url).tas.sum().compute()
        assert float(back) == float(ds.tas.sum()), back
""",
        user_env(installed, **swift_server.st_env()),
    )


@pytest.mark.parametrize("doc", ["README.md", "docs/switching.md"])
def test_documents_run_in_a_user_install(
    installed: Path,
    outside: Path,
    doc: str,
    recipe_envs,  # noqa: F811
) -> None:
    run = _run(doc, recipe_envs, outside, python=str(installed))
    expected = [b.line for b in BLOCKS if b.doc == doc and not b.skip]
    failed = [line for line, r in run.results.items() if r["status"] == "failed"]
    assert not failed and sorted(run.results) == expected, run.output[-5000:]


def test_server_extra_serves_and_runs_the_demo(installed: Path, outside: Path) -> None:
    env_file = outside / "servers.env"
    serve = subprocess.Popen(
        [
            str(installed.parent / "zarrstores"),
            "serve",
            "--no-keystone",
            "--dir",
            str(outside / "data"),
            "--env-file",
            str(env_file),
        ],
        cwd=outside,
        env=user_env(installed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not env_file.exists() and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.2)
        assert env_file.exists(), serve.stdout.read() if serve.poll() is not None else "timeout"
        listed = subprocess.run(
            ["bash", "-c", f"source {env_file} && swift post served && swift list"],
            cwd=outside,
            env=user_env(installed),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0 and "served" in listed.stdout.split(), listed.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0
    demo = subprocess.run(
        [str(installed), "-m", "zarrstores.demo"],
        cwd=outside,
        env=user_env(installed),
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    assert "All checks passed." in demo.stdout


def test_where_the_hook_cannot_run_importing_zarrstores_says_what_to_do(
    installed: Path, outside: Path
) -> None:
    # `python -S` processes no .pth file, as for packages on PYTHONPATH or under --target
    site = subprocess.run(
        [str(installed), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = textwrap.dedent(f"""
        import sys
        import warnings
        sys.path.append({site!r})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import zarrstores
        import fsspec
        print(fsspec.get_filesystem_class("swift").__module__)
        print("\\n".join(str(w.message) for w in caught))
    """)
    result = subprocess.run(
        [str(installed), "-S", "-c", code],
        cwd=outside,
        env=user_env(installed),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("zarrstores.swift.fs\n")
    assert "start-up hook (zarrstores-protocols.pth) did not run" in result.stdout
    assert "or import zarrstores first" in result.stdout


def test_the_user_env_runs_the_oldest_python_claimed(installed: Path) -> None:
    """What ``requires-python`` admits is what a user may have: the oldest is tested here."""
    want, got = oldest_claimed(), version_of(installed)
    assert got == want, (
        f"the user env runs Python {got}, not {want}: no Python {want[0]}.{want[1]} found on "
        "PATH or under ~/.pyenv/versions (install it there, e.g. pyenv install)"
    )
