"""``zarrstores frames serve`` as a user runs it: credentials from the environment, TLS, a JWT
written to a token file, stopped by SIGTERM; and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pyarrow as pa
from backends import self_signed
from pyarrow import flight

from zarrstores.devserver._proc import free_port, listening, spawn, stop, venv_bin, wait_until
from zarrstores.devserver.swift import SwiftServer


class _Token(flight.ClientAuthHandler):
    """Sends a JWT in the handshake and with every call, as Shoots' client does."""

    def __init__(self, token: bytes) -> None:
        super().__init__()
        self.token = token

    def authenticate(self, outgoing: flight.ClientAuthSender, incoming: flight.ClientAuthReader):
        outgoing.write(self.token)

    def get_token(self) -> bytes:
        return self.token


def test_serve_with_tls_and_jwt(swift_server: SwiftServer, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    port, token_file = free_port(), tmp_path / "admin.jwt"
    env = {
        "PATH": os.environ["PATH"],
        **swift_server.st_env(),
        "ZARRSTORES_FRAMES_SECRET": uuid.uuid4().hex * 2,
    }
    root = f"swift://frames-{uuid.uuid4().hex[:8]}/lake"
    cmd = [
        venv_bin("zarrstores"),
        "frames",
        "serve",
        "--root",
        root,
        "--port",
        str(port),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--token-file",
        str(token_file),
    ]
    log = tmp_path / "serve.log"
    proc = spawn(cmd, log=log, env=env)
    try:
        wait_until(lambda: listening(port), what="frames serve", procs=[proc], log=log)
        assert token_file.stat().st_mode & 0o077 == 0
        url = f"grpc+tls://127.0.0.1:{port}"
        client = flight.FlightClient(url, tls_root_certs=cert.read_bytes())
        client.authenticate(_Token(token_file.read_bytes()))
        table = pa.table({"x": [1, 2, 3]})
        command = json.dumps({"name": "t", "mode": "error", "bucket": None}).encode()
        writer, _ = client.do_put(flight.FlightDescriptor.for_command(command), table.schema)
        writer.write_table(table)
        writer.close()
        ticket = json.dumps({"name": "t", "bucket": None, "sql": "SELECT sum(x) AS s FROM t"})
        assert client.do_get(flight.Ticket(ticket)).read_all().column("s").to_pylist() == [6]
    finally:
        stop([proc])
    assert proc.returncode == 0, log.read_text()
    output = log.read_text()
    assert token_file.read_text() not in output and env["ZARRSTORES_FRAMES_SECRET"] not in output
    assert env["ST_KEY"] not in output


def test_serve_refuses_bad_options(tmp_path: Path):
    def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_bin("zarrstores"), "frames", "serve", *args],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    result = serve()
    assert result.returncode == 2 and "--root URL" in result.stderr
    result = serve("--root", "swift://c/p", "--secret", "s")
    assert result.returncode == 2 and "--secret needs --tls-cert" in result.stderr
    result = serve("--root", "swift://c/p", "--tls-cert", "cert.pem")
    assert result.returncode == 2 and "both --tls-cert and --tls-key" in result.stderr
    result = serve("--root", "swift://c/p", "--token-file", str(tmp_path / "t.jwt"))
    assert result.returncode == 2 and "--token-file needs --secret" in result.stderr
    assert not (tmp_path / "t.jwt").exists()
