"""Write the example notebooks from the cells below, without outputs.

    python notebooks/make_notebooks.py

Edit the cells here and run it again; tests/test_notebooks.py checks that the saved notebooks
are what this script writes, and runs them against the local servers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str) -> NotebookNode:
    """A markdown cell."""
    return new_markdown_cell(text)


def code(text: str) -> NotebookNode:
    """A code cell."""
    return new_code_cell(text)


SWIFT = [
    md("""\
# xarray and zarr on OpenStack Swift

zarr-swiftstore's notebook flow, with zarrstores: credentials from the environment, a zarr group
and array, the store as a mapping, xarray to and from zarr, a pre-authenticated token with its
expiry, and public (anonymous) reading.

The notebook reads its configuration only from the variables the `swift` CLI reads: `ST_AUTH`
(the v1 auth URL), `ST_USER` (`account:user`) and `ST_KEY`. For local servers, run
`zarrstores serve --env-file servers.env` and `source servers.env` before starting Jupyter."""),
    code("""\
import os
import warnings

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from zarrstores import SwiftStore, acquire_token, getenv_auth, is_public, make_public, toggle_public

# zarr notes that consolidated metadata is not in the v3 spec yet; xarray uses it all the same
warnings.filterwarnings("ignore", message="Consolidated metadata")"""),
    md("""\
## Credentials from the environment

`getenv_auth()` turns `ST_AUTH`/`ST_USER`/`ST_KEY` (or `OS_STORAGE_URL`/`OS_AUTH_TOKEN`) into
`storage_options`, as zarr-swiftstore's does. A `SwiftStore` given no options reads the same
variables itself."""),
    code("""\
storage_options = getenv_auth()
{name: "***" if name == "key" else value for name, value in storage_options.items()}"""),
    md("""\
## A zarr group and array

The store is the container `notebook-demo`, under the prefix `zarr-demo`. The container is
created by the first write."""),
    code("""\
store = SwiftStore("notebook-demo", "zarr-demo", storage_options=storage_options)
root = zarr.open_group(store=store, mode="w")
bar = root.zeros(name="foo/bar", shape=(10, 10), chunks=(5, 5), dtype="i4")
bar[:] = 42
bar[:2, :4]"""),
    md("""\
## The store is a mapping

`keys()` lists every key, `listdir()` one level; values are bytes."""),
    code("store.keys()"),
    code('store.listdir(), store.listdir("foo/bar")'),
    md("""\
## xarray to zarr and back"""),
    code("""\
ds = xr.Dataset(
    {"tas": (("time", "x", "y"), 280 + 10 * np.random.rand(8, 4, 5))},
    coords={
        "time": pd.date_range("2000-01-01", periods=8),
        "x": [10, 20, 30, 40],
        "y": [1, 2, 3, 4, 5],
    },
)
xr_store = SwiftStore("notebook-demo", "xarray-demo", storage_options=storage_options)
ds.to_zarr(xr_store, mode="w", consolidated=True)
back = xr.open_zarr(xr_store, consolidated=True)
print("read back identical:", back.load().identical(ds))"""),
    md("""\
The same data by URL, `swift://<container>/<prefix>`, for anything that takes fsspec URLs; the
store's `fsspec_url` gives it."""),
    code("""\
print(xr_store.fsspec_url)
xr.open_zarr(xr_store.fsspec_url, storage_options=storage_options)"""),
    md("""\
The store's `url` is its HTTP(S) address, as in zarr-swiftstore: with the token in a header,
fsspec's HTTP filesystem reads the private store (the consolidated metadata spares listings)."""),
    code("""\
token = storage_options.get("preauthtoken") or acquire_token(
    os.environ["ST_AUTH"], os.environ["ST_USER"], os.environ["ST_KEY"], update_env=False
)["preauthtoken"]
http = fsspec.filesystem("http", headers={"X-Auth-Token": token})
print(xr_store.url)
print("over HTTP with the token:", xr.open_zarr(http.get_mapper(xr_store.url)).load().identical(ds))"""),
    md("""\
## A pre-authenticated token

`acquire_token` authenticates once, prints how long the token lasts, sets `OS_STORAGE_URL` and
`OS_AUTH_TOKEN` in this kernel and returns them as `storage_options`: what sites that hand out
tokens only need. Without `key` it asks for it. The token is not renewed: acquire another when it
expires."""),
    code("""\
preauth = acquire_token(os.environ["ST_AUTH"], os.environ["ST_USER"], os.environ["ST_KEY"])
sorted(preauth)"""),
    code("""\
token_store = SwiftStore("notebook-demo", "xarray-demo", storage_options=preauth, read_only=True)
print("read with the token:", xr.open_zarr(token_store).load().identical(ds))"""),
    md("""\
## Public access

`is_public` and `toggle_public` (zarr-swiftstore's names) read and flip the container's read
ACL; `make_public` sets it: `.r:*,.rlistings`, as `swift post -r` would. Only an admin of the
account may change it."""),
    code("""\
make_public(xr_store)
print("public:", is_public(xr_store))"""),
    md("""\
Anyone can now read it without credentials: `anon=True` and the account's storage URL (the
public URL of the container without the container's name)."""),
    code("""\
anonymous = {"anon": True, "storage_url": preauth["preauthurl"]}
fs = fsspec.filesystem("swift", **anonymous)
print(fs.ls("notebook-demo/xarray-demo", detail=False))
public = xr.open_zarr("swift://notebook-demo/xarray-demo", storage_options=anonymous)
print("anonymous read identical:", public.load().identical(ds))"""),
    md("""\
Or over plain HTTPS, with fsspec's HTTP filesystem: the consolidated metadata spares the
listings."""),
    code("""\
print(xr_store.url)
print("over HTTPS identical:", xr.open_zarr(fsspec.get_mapper(xr_store.url)).load().identical(ds))"""),
    md("""\
Toggled back to private, anonymous reads are refused with a `PermissionError` that says why."""),
    code("""\
print("public:", toggle_public(xr_store))
try:
    xr.open_zarr("swift://notebook-demo/xarray-demo", storage_options=anonymous)
except PermissionError as e:
    print("refused:", e)"""),
]

MINIO = [
    md("""\
# xarray, pandas and zarr on MinIO with an OIDC token

Two flows on MinIO (or any S3 server with STS): InfnMinio's, from a token file to a minio client,
then STS keys for pyarrow, parquet up and down and a memory-mapped read; and PAVICS',
`to_zarr(consolidated=True)` and `open_zarr`, with anonymous reading once the data is public.

The notebook reads its configuration only from the environment: `AWS_ENDPOINT_URL` (MinIO's S3
and STS endpoint) and `BEARER_TOKEN_FILE` (the OIDC access token file that sts-wire or oidc-agent
keeps fresh). For local servers, run `zarrstores serve --env-file servers.env` and
`source servers.env` before starting Jupyter."""),
    code("""\
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from pyarrow import fs as pafs

from zarrstores import from_token, get_credentials, is_public, make_private, make_public
from zarrstores.auth import token_source

# zarr notes that consolidated metadata is not in the v3 spec yet; xarray uses it all the same
warnings.filterwarnings("ignore", message="Consolidated metadata")

endpoint = os.environ["AWS_ENDPOINT_URL"]
token_file = Path(os.environ["BEARER_TOKEN_FILE"])"""),
    md("""\
## The token

Whose it is and how long it lasts (`zarrstores token` shows the same). The file is read again at
every use, so a refreshed token is picked up."""),
    code("""\
info = token_source(token_file=token_file).info()
print("subject:", info.subject, "| expires in", round(info.expires_in / 60), "min")"""),
    md("""\
## InfnMinio: a minio client from the token

`from_token` exchanges the token at MinIO's STS (`AssumeRoleWithWebIdentity`) for temporary keys,
and again before they expire."""),
    code("""\
client = from_token(token_file, endpoint)
if not client.bucket_exists("notebook-demo"):
    client.make_bucket("notebook-demo")
[bucket.name for bucket in client.list_buckets()]"""),
    md("""\
## pyarrow with STS keys

`get_credentials` returns the keywords of `pyarrow.fs.S3FileSystem` (keys and region). They
expire (in an hour by default): call it again for fresh ones."""),
    code("""\
creds = get_credentials(endpoint, token_file)
print(sorted(creds))
s3 = pafs.S3FileSystem(endpoint_override=endpoint, **creds)"""),
    md("""\
Parquet up and down:"""),
    code("""\
stations = pd.DataFrame({"station": ["Bologna", "Padova", "Torino"], "tas": [288.1, 287.4, 285.9]})
stations.to_parquet("notebook-demo/stations.parquet", filesystem=s3)
pd.read_parquet("notebook-demo/stations.parquet", filesystem=s3)"""),
    md("""\
A memory-mapped read: copy the file once, then map the local copy."""),
    code("""\
local = Path("stations.parquet").absolute()
pafs.copy_files("notebook-demo/stations.parquet", str(local), source_filesystem=s3)
with pa.memory_map(str(local)) as source:
    table = pq.read_table(source)
print(table.num_rows, "rows:", table.column_names)"""),
    md("""\
## PAVICS: xarray to zarr and back

`minio://<bucket>/<path>` URLs take the endpoint from `AWS_ENDPOINT_URL` and the token from
`BEARER_TOKEN_FILE`: no options needed."""),
    code("""\
ds = xr.Dataset(
    {"tas": (("time", "lat", "lon"), 280 + 10 * np.random.rand(24, 10, 12))},
    coords={
        "time": pd.date_range("2000-01-01", periods=24, freq="MS"),
        "lat": np.linspace(40, 50, 10),
        "lon": np.linspace(-80, -69, 12),
    },
)
url = "minio://notebook-demo/pavics/tas.zarr"
ds.to_zarr(url, mode="w", consolidated=True)
back = xr.open_zarr(url, consolidated=True)
print("read back identical:", back.load().identical(ds))"""),
    md("""\
## Sharing

`make_public` lets anonymous users read and list the prefix (a statement in the bucket policy,
for that prefix only); anyone with the endpoint can then read it without a token."""),
    code("""\
make_public("minio://notebook-demo/pavics")
print("public:", is_public("minio://notebook-demo/pavics"))
public = xr.open_zarr(url, storage_options={"anon": True}, consolidated=True)
print("anonymous read identical:", public.load().identical(ds))"""),
    md("""\
`make_private` withdraws it: anonymous reads are refused with a `PermissionError` that says
why."""),
    code("""\
make_private("minio://notebook-demo/pavics")
print("public:", is_public("minio://notebook-demo/pavics"))
try:
    xr.open_zarr(url, storage_options={"anon": True}, consolidated=True)
except PermissionError as e:
    print("refused:", e)"""),
]

NOTEBOOKS = {"swift_xarray.ipynb": SWIFT, "minio_sts_xarray.ipynb": MINIO}


def notebook(cells: list[NotebookNode], stem: str) -> NotebookNode:
    """A notebook of ``cells``, with stable cell ids so that writing it again changes nothing."""
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    for i, cell in enumerate(cells):
        nb.cells.append(nbformat.from_dict({**cell, "id": f"{stem}-{i:02d}"}))
    nbformat.validate(nb)
    return nb


def build() -> dict[str, NotebookNode]:
    """Every notebook, by file name."""
    return {name: notebook(cells, Path(name).stem) for name, cells in NOTEBOOKS.items()}


def main() -> int:
    for name, nb in build().items():
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
