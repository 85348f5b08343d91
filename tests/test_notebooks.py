"""The example notebooks: saved without outputs, what notebooks/make_notebooks.py writes, and run
top to bottom against the local servers with nothing but a user's environment variables."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from nbformat import NotebookNode
from test_readme import base_env

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SAVED = sorted(NOTEBOOKS.glob("*.ipynb"))


def make_notebooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_saved_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert (cell.outputs, cell.execution_count) == ([], None), cell.id


def test_saved_notebooks_are_what_make_notebooks_writes() -> None:
    built = make_notebooks().build()
    assert sorted(built) == [p.name for p in SAVED]
    for name, nb in built.items():
        assert nbformat.read(NOTEBOOKS / name, as_version=4) == nb, (
            f"{name} differs: run `python notebooks/make_notebooks.py`"
        )


@pytest.fixture(scope="session")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec ``python3`` for this interpreter (the venv's), written by ipykernel's own
    installer to a directory of the session: the notebooks run in the venv whatever kernels
    the machine has."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(prefix=str(prefix), kernel_name="python3")
    return prefix / "share" / "jupyter" / "kernels"


def execute(name: str, variables: dict[str, str], kernels: Path, cwd: Path) -> NotebookNode:
    """Run the saved notebook in a fresh kernel whose environment is ``variables`` (and PATH,
    HOME, the locale); raises ``CellExecutionError`` at the first cell that fails."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    manager = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    client = NotebookClient(nb, km=manager, timeout=120, resources={"metadata": {"path": str(cwd)}})
    client.execute(env={**base_env(), **variables})
    return nb


def text_of(nb: NotebookNode) -> str:
    """Everything the cells printed or displayed as text; fails on any error output."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{cell.id}: {out.ename}: {out.evalue}"
            if out.output_type == "stream":
                # One print may arrive in several stream messages ("public:", " True\n"):
                # they are one text, not lines of their own.
                parts.append(out.get("text", ""))
            else:
                parts.append(out.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


@pytest.fixture
def demo_bucket_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """On Ceph RGW, Swift containers and S3 buckets share one namespace: what one notebook
    made under the name ``notebook-demo`` is removed before the other runs."""
    yield
    if request.node.callspec.params.get("server") != "rgw_server":
        return
    admin = request.getfixturevalue("rgw_server").admin_client()
    for bucket in ("notebook-demo", "notebook-demo_segments"):
        with contextlib.suppress(admin.exceptions.NoSuchBucket):
            pages = admin.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in (item for page in pages for item in page.get("Contents", [])):
                admin.delete_object(Bucket=bucket, Key=item["Key"])
            admin.delete_bucket(Bucket=bucket)


@pytest.mark.usefixtures("demo_bucket_removed")
@pytest.mark.parametrize("server", ["swift_server", "rgw_server"])
def test_swift_notebook(server: str, request, kernels: Path, tmp_path: Path) -> None:
    """On OpenStack Swift and on Ceph RGW's Swift API, with the same variables (RGW does not
    say when its tokens expire)."""
    st_env = request.getfixturevalue(server).st_env()
    nb = execute("swift_xarray.ipynb", st_env, kernels, tmp_path)
    out = text_of(nb)
    assert ("Token expires in:" in out) == (server == "swift_server"), out
    for expected in (
        "'key': '***'",
        "foo/bar/zarr.json",
        "read back identical: True",
        "swift://notebook-demo/xarray-demo",
        "read with the token: True",
        "public: True",
        "anonymous read identical: True",
        "over HTTPS identical: True",
        "public: False",
        "refused:",
    ):
        assert expected in out, f"{expected!r} missing from the notebook's output:\n{out}"


@pytest.mark.usefixtures("demo_bucket_removed")
@pytest.mark.parametrize("server", ["s3_server", "rgw_server"])
def test_minio_notebook(
    server: str, request, token_file: Path, kernels: Path, tmp_path: Path
) -> None:
    """On SeaweedFS and on Ceph RGW's S3 API (whose STS needs ``AWS_ROLE_ARN``)."""
    s3 = request.getfixturevalue(server)
    variables = {"AWS_ENDPOINT_URL": s3.endpoint, "BEARER_TOKEN_FILE": str(token_file)}
    if server == "rgw_server":
        variables["AWS_ROLE_ARN"] = s3.readwrite_role_arn
    nb = execute("minio_sts_xarray.ipynb", variables, kernels, tmp_path)
    out = text_of(nb)
    for expected in (
        "subject: tester",
        "'notebook-demo'",
        "['access_key', 'region', 'secret_key', 'session_token']",
        "Padova",
        "3 rows: ['station', 'tas']",
        "read back identical: True",
        "public: True",
        "anonymous read identical: True",
        "public: False",
        "refused:",
    ):
        assert expected in out, f"{expected!r} missing from the notebook's output:\n{out}"
    assert (tmp_path / "stations.parquet").exists()
