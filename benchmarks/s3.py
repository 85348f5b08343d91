"""S3 with STS: the array round through our store, ``minio://``, s3fs, obstore and a raw
client. Ours exchange an OIDC token via STS themselves; the others are given the temporary
keys of one exchange as static keys (the same identity and policy on the server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zarr.abc.store import Store
from zarr.storage import FsspecStore, ObjectStore

from ._arrays import Contender, close_store, run_array, zarr_alone
from ._measure import Row
from ._raw import LoopRunner, RawS3, SigV4
from ._servers import BenchServers

STATIC_NOTE = "the temporary keys of one STS exchange, given as static keys"


def static_keys(servers: BenchServers) -> dict[str, Any]:
    """``key``/``secret``/``token`` of one STS exchange (s3fs's names)."""
    creds = servers.sts_credentials()
    return {
        "key": creds.access_key,
        "secret": creds.secret_key.reveal(),
        "token": creds.session_token.reveal() if creds.session_token else None,
    }


def at(servers: BenchServers) -> tuple[str, str]:
    """The S3 server's endpoint and region (as the helpers below take them)."""
    return servers.s3.endpoint, servers.s3.region


def s3fs_options(keys: dict[str, Any], endpoint: str, region: str) -> dict[str, Any]:
    """s3fs as its documentation shows it for a custom endpoint: keys, endpoint, region."""
    return {
        **keys,
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": region},
        "skip_instance_cache": True,
    }


def obstore_store(
    bucket: str, keys: dict[str, Any], endpoint: str, region: str, *, prefix: str | None = None
) -> Store:
    """zarr's ObjectStore over obstore's S3Store (path-style, plain http allowed)."""
    from obstore.store import S3Store

    s3 = S3Store(
        bucket,
        prefix=prefix,
        endpoint=endpoint,
        region=region,
        access_key_id=keys["key"],
        secret_access_key=keys["secret"],
        session_token=keys["token"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    return ObjectStore(s3)


def raw_client(servers: BenchServers, keys: dict[str, Any]) -> RawS3:
    signer = SigV4(keys["key"], keys["secret"], keys["token"], servers.s3.region)
    return RawS3(servers.s3.endpoint, signer)


class _RawArrays:
    """The raw client doing the array round's PUTs and GETs in ``bucket``."""

    def __init__(self, runner: LoopRunner, client: RawS3, bucket: str) -> None:
        self.runner, self.client, self.bucket = runner, client, bucket

    def write(self, items: list[tuple[str, bytes]]) -> None:
        self.runner.run(self.client.put_all(self.bucket, items))

    def read(self, names: list[str]) -> list[bytes]:
        return self.runner.run(self.client.get_all(self.bucket, names))

    def close(self) -> None:
        self.runner.run(self.client.close())


def contenders(servers: BenchServers, runner: LoopRunner) -> list[Contender]:
    """The five ways to the same S3 server, each in a bucket of its own."""
    from zarrstores.minio import MinioStore

    endpoint = servers.s3.endpoint
    token = servers.oidc_token()
    keys = static_keys(servers)
    buckets = {k: servers.new_bucket() for k in ("ours", "fs", "s3fs", "obs", "raw")}
    role = servers.sts_options()  # RGW: the role to assume
    minio_options = {"endpoint_url": endpoint, "token": token, **role}
    return [
        Contender(
            "MinioStore",
            "ours",
            lambda: MinioStore(buckets["ours"], endpoint_url=endpoint, token=token, **role),
            note="STS from the OIDC token",
            close=close_store,
        ),
        Contender(
            "minio:// FsspecStore",
            "ours",
            lambda: FsspecStore.from_url(f"minio://{buckets['fs']}", storage_options=minio_options),
            note="STS from the OIDC token",
            close=close_store,
        ),
        Contender(
            "s3fs",
            "alt",
            lambda: FsspecStore.from_url(
                f"s3://{buckets['s3fs']}", storage_options=s3fs_options(keys, *at(servers))
            ),
            note=STATIC_NOTE,
            close=close_store,
        ),
        Contender(
            "obstore",
            "alt",
            lambda: obstore_store(buckets["obs"], keys, *at(servers)),
            note=STATIC_NOTE + "; zarr.storage.ObjectStore",
        ),
        Contender(
            "raw aiohttp",
            "ceiling",
            raw=lambda: _RawArrays(runner, raw_client(servers, keys), buckets["raw"]),
            note="16 in flight, SigV4 by hand (hmac/hashlib), payload hashed",
            close=lambda made: made.close(),
        ),
    ]


def run_arrays(
    servers: BenchServers, *, chunks: int, reps: int, log: Callable[[str], None]
) -> list[Row]:
    runner = LoopRunner()
    try:
        return run_array(
            f"S3 on {servers.server_name}" if servers.server_name else "S3",
            [*contenders(servers, runner), zarr_alone()],
            chunks=chunks,
            reps=reps,
            pids=servers.s3_pids,
            log=log,
        )
    finally:
        runner.close()
