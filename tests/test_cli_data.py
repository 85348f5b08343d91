"""``zarrstores ls``/``du``/``rm``/``share`` as a user runs them, on Swift, S3 and local disk;
a ``share --expires`` link that reads a store without credentials and stops at expiry; and
no credential in anything the commands print."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr
from fixtures_cli import (  # noqa: F401  (the fixtures are used by name)
    cli_env_fixture,
    options_fixture,
    run_cli,
    summary_of,
)

# Imported for their protocols too: swift:// and minio:// are ours in this process.
from zarrstores.cli import main
from zarrstores.sharing import is_public

N_TIME = 30  # 30 tas chunks + 1 pr chunk + 1 time chunk + 4 metadata documents


@pytest.fixture(scope="module")
def small(cli_env, options) -> tuple[str, xr.Dataset]:
    """A small zarr store in a new Swift container: URL and dataset (36 objects)."""
    ds = xr.Dataset(
        {"tas": (("time", "cell"), np.random.default_rng(7).random((N_TIME, 3)))},
        coords={"time": np.arange(N_TIME)},
    )
    ds["pr"] = ("time", np.arange(N_TIME, dtype="f4"))
    url = f"swift://data-{uuid.uuid4().hex[:8]}/tas.zarr"
    encoding = {"tas": {"chunks": (1, 3)}, "pr": {"chunks": (N_TIME,)}}
    ds.to_zarr(url, mode="w", encoding=encoding, storage_options=options["swift"])
    return url, ds


def copies(url: str, cli_env: dict[str, str], bucket: str, tmp_path: Path) -> list[str]:
    """The store at ``url`` and its copies on S3 and local disk."""
    out = [url, f"minio://{bucket}/tas.zarr", str(tmp_path / "tas.zarr")]
    for dst in out[1:]:
        summary_of(run_cli("cp", "-r", "-q", "--json", url, dst, env=cli_env))
    return out


@pytest.mark.parametrize(
    ("command", "own"),
    [
        ("ls", "--long"),
        ("du", "--summarize"),
        ("cp", "--jobs"),
        ("sync", "--delete"),
        ("rm", "--yes"),
        ("share", "--expires"),
    ],
)
def test_help_shows_examples_own_and_common_options(command, own, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    options, _, rest = text.partition("common options:")
    common, _, examples = rest.partition("examples:")
    assert own in options and "--option" in common, text
    assert f"zarrstores {command} " in examples


def test_ls_and_du_on_every_backend(small, cli_env, bucket, tmp_path) -> None:
    url, _ = small
    for where in copies(url, cli_env, bucket, tmp_path):
        r = run_cli("ls", where, env=cli_env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["pr/", "tas/", "time/", "zarr.json"]
        recursive = run_cli("ls", "-r", where, env=cli_env).stdout.split()
        assert len(recursive) == N_TIME + 6 and "tas/c/29/0" in recursive
        parent = where.rsplit("/", 1)[0]
        long = run_cli("ls", "-l", parent, env=cli_env).stdout.splitlines()
        assert any(line.startswith("zarr") and line.endswith("tas.zarr/") for line in long)
        du = run_cli("du", "--bytes", where, env=cli_env).stdout.splitlines()
        rows = {line.split()[2]: line.split() for line in du}
        assert rows["tas/"][0] == str(N_TIME + 1) and rows["tas/"][3] == "(zarr)"
        summary = json.loads(run_cli("du", "-s", "--json", where, env=cli_env).stdout)
        assert summary["objects"] == N_TIME + 6 and summary["bytes"] > N_TIME * 24


def test_ls_of_nothing_is_one_clear_error(cli_env, swift_container) -> None:
    for args in (["ls", f"swift://{swift_container}/x"], ["du", "./no/such/dir"]):
        r = run_cli(*args, env=cli_env)
        assert r.returncode == 2
        assert "not found" in r.stderr and "Traceback" not in r.stderr


def test_rm_asks_first_then_bulk_deletes(small, cli_env, bucket, tmp_path) -> None:
    url, _ = small
    for where in copies(url, cli_env, bucket, tmp_path)[1:]:
        r = run_cli("rm", where, env=cli_env)
        assert r.returncode == 2 and "pass -r" in r.stderr
        declined = run_cli("rm", "-r", where, env=cli_env, stdin="n\n")
        assert declined.returncode == 1 and "nothing deleted" in declined.stderr
        assert f"Delete {N_TIME + 6} object(s)" in declined.stderr
        assert run_cli("ls", "-r", where, env=cli_env).stdout.count("\n") == N_TIME + 6
        agreed = run_cli("rm", "-r", where, env=cli_env, stdin="y\n")
        assert agreed.returncode == 0, agreed.stderr
        # (SeaweedFS may keep empty "directories"; no object is left)
        assert run_cli("ls", "-r", where, env=cli_env).stdout == ""
    one = f"minio://{bucket}/one.txt"
    (tmp_path / "one.txt").write_text("one")
    assert run_cli("cp", str(tmp_path / "one.txt"), one, env=cli_env).returncode == 0
    assert run_cli("rm", "--yes", one, env=cli_env).returncode == 0
    assert run_cli("ls", one, env=cli_env).returncode == 2


def test_share_public_private_status(small, cli_env, options) -> None:
    url, _ = small
    assert run_cli("share", url, env=cli_env).stdout.strip().endswith(": private")
    r = run_cli("share", "--public", url, env=cli_env)
    assert r.returncode == 0 and "public" in r.stdout
    assert is_public(url, options["swift"])
    r = run_cli("share", "--private", "--json", url, env=cli_env)
    assert json.loads(r.stdout)["public"] is False
    assert not is_public(url, options["swift"])


def test_share_expires_link_reads_without_credentials_until_expiry(small, cli_env, options) -> None:
    url, expected = small
    r = run_cli("share", "--expires", "20s", "--json", url, env=cli_env)
    assert r.returncode == 0, r.stderr
    link = json.loads(r.stdout)
    # No credentials in this process's reads: only the link's parameters.
    opened = xr.open_zarr(link["base_url"], storage_options=link["storage_options"])
    xr.testing.assert_identical(opened.load(), expected)
    params = link["storage_options"]["params"]
    assert requests.get(f"{link['base_url']}/zarr.json", params=params).status_code == 200
    # The container stays private, and the link reaches nothing outside the store.
    assert requests.get(f"{link['base_url']}/zarr.json").status_code == 401
    other = link["base_url"].rsplit("/", 1)[0] + "/other.zarr/zarr.json"
    assert requests.get(other, params=params).status_code == 401
    assert not is_public(url, options["swift"])
    time.sleep(max(0.0, datetime.fromisoformat(link["expires_at"]).timestamp() - time.time()) + 2)
    assert requests.get(f"{link['base_url']}/zarr.json", params=params).status_code == 401
    with pytest.raises(Exception, match="401"):
        xr.open_zarr(link["base_url"], storage_options=link["storage_options"])


def test_share_revoke_ends_links_before_expiry(small, cli_env) -> None:
    url, _ = small
    link = json.loads(run_cli("share", "--expires", "1h", "--json", url, env=cli_env).stdout)
    params = link["storage_options"]["params"]
    assert requests.get(f"{link['base_url']}/zarr.json", params=params).status_code == 200
    r = run_cli("share", "--revoke", url, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert requests.get(f"{link['base_url']}/zarr.json", params=params).status_code == 401
    fresh = json.loads(run_cli("share", "--expires", "1h", "--json", url, env=cli_env).stdout)
    fresh_params = fresh["storage_options"]["params"]
    assert requests.get(f"{link['base_url']}/zarr.json", params=fresh_params).status_code == 200


def test_share_expires_on_s3_presigns_one_object_with_static_keys(
    cli_env, s3_server, bucket
) -> None:
    admin = s3_server.admin_client()
    admin.put_object(Bucket=bucket, Key="notes.txt", Body=b"hello")
    admin.put_object(Bucket=bucket, Key="tas.zarr/zarr.json", Body=b"{}")
    r = run_cli("share", "--expires", "1h", f"minio://{bucket}/tas.zarr", env=cli_env)
    assert r.returncode == 2 and "S3 has no time-limited link for a prefix" in r.stderr
    r = run_cli("share", "--expires", "1h", f"minio://{bucket}/notes.txt", env=cli_env)
    assert r.returncode == 2 and "STS session credentials" in r.stderr
    assert "Traceback" not in r.stderr
    static = [
        "-o", f"minio:key={s3_server.admin_access_key}",
        "-o", f"minio:secret={s3_server.admin_secret_key}",
    ]  # fmt: skip
    r = run_cli("share", "--expires", "8s", "--json", *static, f"minio://{bucket}/notes.txt",
                env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert s3_server.admin_secret_key not in r.stdout + r.stderr
    link = json.loads(r.stdout)
    assert requests.get(link["url"]).content == b"hello"
    assert requests.get(link["url"].split("?")[0]).status_code == 403  # the bucket is private
    time.sleep(max(0.0, datetime.fromisoformat(link["expires_at"]).timestamp() - time.time()) + 2)
    assert requests.get(link["url"]).status_code == 403


def test_no_credentials_in_output_progress_or_json(small, cli_env, bucket, tmp_path) -> None:
    url, _ = small
    exports = run_cli("env", "swift", env=cli_env).stdout + run_cli("env", "s3", env=cli_env).stdout
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exports.splitlines()
        if line.startswith("export ")
    )
    env = {k: v.strip("'") for k, v in env.items()}
    secrets = [env["OS_AUTH_TOKEN"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]]
    assert all(len(s) > 8 for s in secrets)
    # Swift by its token; S3 by static keys given as options for minio:// only.
    preauth = {"OS_STORAGE_URL": env["OS_STORAGE_URL"], "OS_AUTH_TOKEN": env["OS_AUTH_TOKEN"]}
    s3 = [
        "-o", f"minio:endpoint_url={cli_env['AWS_ENDPOINT_URL']}",
        "-o", f"minio:key={env['AWS_ACCESS_KEY_ID']}",
        "-o", f"minio:secret={env['AWS_SECRET_ACCESS_KEY']}",
        "-o", f"minio:session_token={env['AWS_SESSION_TOKEN']}",
    ]  # fmt: skip
    dst = f"minio://{bucket}/secret-test.zarr"
    wrong_secret, wrong_token = env["AWS_SECRET_ACCESS_KEY"][::-1], env["AWS_SESSION_TOKEN"][:-4]
    runs = [
        run_cli("cp", "-r", *s3, url, dst, env=preauth),  # progress bar and summary
        run_cli("sync", "--json", *s3, url, dst, env=preauth),
        run_cli("ls", "-l", *s3, dst, env=preauth),
        run_cli("du", "--json", url, env=preauth),
        run_cli("share", "--expires", "1h", url, env=preauth),
        # refused: the errors name the credentials without their secrets
        run_cli("cp", "-r", *s3, "-o", f"minio:secret={wrong_secret}", url, dst, env=preauth),
        run_cli("ls", *s3, "-o", f"minio:session_token={wrong_token}", dst, env={}),
    ]
    assert [r.returncode for r in runs[:5]] == [0] * 5, [r.stderr for r in runs]
    assert "copy" in runs[0].stderr and "B/s" in runs[0].stderr  # the progress bar was there
    assert [r.returncode for r in runs[5:]] == [2, 2], [r.stderr for r in runs[5:]]
    secrets += [wrong_secret, wrong_token]
    for r in runs:
        for secret in secrets:
            assert secret not in r.stdout and secret not in r.stderr, r.args
