"""The ``zarrstores`` command as a user runs it: serve, token, env, with the real CLIs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from zarrstores.devserver._proc import venv_bin

ZARRSTORES = [sys.executable, "-m", "zarrstores.cli"]


def exports_of(text: str) -> dict[str, str]:
    """The variables an ``export NAME='value'`` snippet sets, as a shell would see them."""
    out = subprocess.run(
        ["bash", "-c", f"{text}\nenv -0"], capture_output=True, check=True, env={}
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in env.items() if k not in ("PWD", "SHLVL", "_", "OLDPWD")}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(
        [*ZARRSTORES, *args], capture_output=True, text=True, env=full, timeout=120
    )


def swift_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(
        [venv_bin("swift"), *args], capture_output=True, text=True, env=full, timeout=120
    )


@dataclass
class Served:
    """A ``zarrstores serve`` run: its env file's text; once stopped, its output and exit code."""

    env: str = ""
    out: str = ""
    returncode: int | None = None


@contextlib.contextmanager
def serving(tmp_path: Path, *flags: str, wait: float = 120) -> Iterator[Served]:
    """``zarrstores serve FLAGS`` with its servers under ``tmp_path/data``, once it has written
    ``tmp_path/env.sh``; stopped with SIGTERM on leaving."""
    env_file = tmp_path / "env.sh"
    command = [*ZARRSTORES, "serve", *flags, "--dir", str(tmp_path / "data")]
    proc = subprocess.Popen(
        [*command, "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served()
    try:
        deadline = time.monotonic() + wait
        while not env_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert env_file.exists(), proc.stdout.read() if proc.poll() is not None else "timeout"
        served.env = env_file.read_text()
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        served.out, _ = proc.communicate(timeout=60)
        served.returncode = proc.returncode


def test_serve_prints_variables_that_swift_cli_uses(tmp_path: Path) -> None:
    with serving(tmp_path, "--no-keystone") as served:
        exports = exports_of(served.env)
        assert set(exports) >= {
            "ST_AUTH",
            "ST_USER",
            "ST_KEY",
            "AWS_ENDPOINT_URL",
            "BEARER_TOKEN_FILE",
        }
        assert swift_cli("post", "from-cli", env=exports).returncode == 0
        up = tmp_path / "hello.txt"
        up.write_text("hi")
        r = swift_cli("upload", "from-cli", str(up), "--object-name", "hello.txt", env=exports)
        assert r.returncode == 0, r.stderr
        assert swift_cli("list", "from-cli", env=exports).stdout.split() == ["hello.txt"]
        token = run_cli("token", env={"BEARER_TOKEN_FILE": exports["BEARER_TOKEN_FILE"]})
        assert token.returncode == 0, token.stderr
        assert re.search(r"subject: tester", token.stdout)
        s3 = run_cli("env", "s3", env=exports)
        assert s3.returncode == 0, s3.stderr
        assert "AWS_SESSION_TOKEN" in exports_of(s3.stdout)
    assert served.returncode == 0
    assert "# stopped" in served.out
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True)
    assert left.stdout == b"", "servers left running after serve stopped"


def test_env_swift_output_works_with_swift_cli(swift_server) -> None:
    st = {"ST_AUTH": swift_server.auth_url, "ST_USER": "test:tester", "ST_KEY": "testing"}
    r = run_cli("env", "swift", env=st)
    assert r.returncode == 0, r.stderr
    exports = exports_of(r.stdout)
    assert set(exports) == {"OS_STORAGE_URL", "OS_AUTH_TOKEN"}
    assert swift_cli("stat", env=exports).returncode == 0
    r = run_cli("env", "swift", env=swift_server.os_env("application_credential"))
    assert r.returncode == 0, r.stderr
    assert swift_cli("stat", env=exports_of(r.stdout)).returncode == 0


def test_env_s3_exports_for_aws_mc_and_rclone(s3_server, token_file, bucket) -> None:
    r = run_cli(
        "env",
        "s3",
        "--endpoint",
        s3_server.endpoint,
        "--token-file",
        str(token_file),
        "--alias",
        "local",
        env={},
    )
    assert r.returncode == 0, r.stderr
    exports = exports_of(r.stdout)
    assert (
        exports["MC_HOST_local"].startswith("http://ASIA")
        or "@127.0.0.1" in exports["MC_HOST_local"]
    )
    assert exports["RCLONE_CONFIG_LOCAL_ENDPOINT"] == s3_server.endpoint
    # the exported keys work for any S3 client: here botocore, reading the AWS_* variables
    import botocore.session

    session = botocore.session.Session()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ[name] = exports[name]
    try:
        client = session.create_client(
            "s3", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name="us-east-1"
        )
        client.put_object(Bucket=bucket, Key="via-env", Body=b"x")
        assert client.get_object(Bucket=bucket, Key="via-env")["Body"].read() == b"x"
    finally:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            del os.environ[name]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["token"], {"BEARER_TOKEN_FILE": "/nonexistent/token"}, "does not exist"),
        (["env", "swift"], {}, "no Swift credentials found"),
        (["env", "s3"], {}, "no S3 endpoint"),
    ],
)
def test_cli_errors_are_one_clear_line(args: list[str], env: dict[str, str], message: str) -> None:
    r = run_cli(*args, env=env)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_rgw_prints_variables_for_swift_and_sts(tmp_path: Path) -> None:
    """``serve --rgw``: Swift v1 auth and S3 with STS (role ARN, token file) on Ceph RGW, and
    no daemon left once it is stopped."""
    with serving(tmp_path, "--no-swift", "--no-s3", "--rgw") as served:
        exports = exports_of(served.env)
        assert exports["AWS_ROLE_ARN"] == "arn:aws:iam:::role/readwrite"
        assert swift_cli("post", "from-cli", env=exports).returncode == 0
        assert swift_cli("list", env=exports).stdout.split() == ["from-cli"]
        s3 = run_cli("env", "s3", env=exports)
        assert s3.returncode == 0, s3.stderr
        assert "AWS_SESSION_TOKEN" in exports_of(s3.stdout)
    assert served.returncode == 0 and "# stopped" in served.out
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True)
    assert left.stdout == b"", "daemons left running after serve stopped"


def test_ctrl_c_in_a_listing_ends_with_130_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zarrstores import cli
    from zarrstores.commands import listing

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "cmd_ls", interrupted)
    assert cli.main(["ls", "swift://somewhere"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "zarrstores: interrupted" and "Traceback" not in err
