"""What the command line tests share: running ``zarrstores`` as a user does, and the
environment ``zarrstores serve`` would export for the session's servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

__all__ = ["ZARRSTORES", "cli_env_fixture", "options_fixture", "run_cli", "summary_of"]

ZARRSTORES = [sys.executable, "-m", "zarrstores.cli"]


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(
        [*ZARRSTORES, *args], capture_output=True, text=True, env=full, input=stdin, timeout=300
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module", name="cli_env")
def cli_env_fixture(swift_server, s3_server, oidc_issuer, tmp_path_factory) -> dict[str, str]:
    """What ``zarrstores serve`` exports: tempauth for Swift, endpoint and token for S3."""
    token = tmp_path_factory.mktemp("token") / "token"
    oidc_issuer.write_token(token, expires_in=3600)
    return {
        "ST_AUTH": swift_server.auth_url,
        "ST_USER": "test:tester",
        "ST_KEY": "testing",
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "BEARER_TOKEN_FILE": str(token),
    }


@pytest.fixture(scope="module", name="options")
def options_fixture(cli_env) -> dict[str, dict[str, str]]:
    """storage_options for the test process's own reads."""
    return {
        "swift": {"authurl": cli_env["ST_AUTH"], "user": "test:tester", "key": "testing"},
        "minio": {
            "endpoint_url": cli_env["AWS_ENDPOINT_URL"],
            "token_file": cli_env["BEARER_TOKEN_FILE"],
        },
    }
