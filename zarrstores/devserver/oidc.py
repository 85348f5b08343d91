"""A test OpenID Connect issuer in this process (discovery document, JWKS), so tests can mint
RS256 tokens with any claims, broken ones too, that servers with STS verify against its JWKS."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from ._proc import LocalServer

__all__ = ["OIDCIssuer", "TokenFileRefresher"]


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed_der(key: rsa.RSAPrivateKey) -> bytes:
    """A self-signed certificate for ``key`` (DER): Ceph RGW checks tokens against ``x5c``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zarrstores test issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


class OIDCIssuer(LocalServer):
    """An OIDC issuer at :attr:`url`, serving from construction until ``stop()``; ``mint()``
    signs with the key in its JWKS, whose ``x5c`` certificate has the SHA-1 :attr:`thumbprint`
    (as IAM's OIDC providers want it)."""

    def __init__(self, *, audience: str = "zarrstores", client_id: str = "zarrstores") -> None:
        self.audience = audience
        self.client_id = client_id
        self.kid = f"zarrstores-test-{uuid.uuid4().hex[:8]}"
        self._key = _rsa_key()
        self._cert_der = _self_signed_der(self._key)
        self.thumbprint = hashlib.sha1(self._cert_der, usedforsecurity=False).hexdigest()
        self._wrong_key: rsa.RSAPrivateKey | None = None  # made on first bad_signature mint
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.jwks_uri = f"{self.url}/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oidc-issuer", daemon=True
        )
        self._thread.start()

    # -- documents served -------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document."""
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{self.url}/authorize",
            # Placeholders (discovery requires them): tokens come from mint(), not from here.
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["id_token", "token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set with the one public signing key."""
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        jwk["x5c"] = [base64.b64encode(self._cert_der).decode()]
        return {"keys": [jwk]}

    # -- tokens ------------------------------------------------------------------------------

    def mint(
        self,
        *,
        sub: str = "tester",
        policy: str | None = "readwrite",
        expires_in: float | None = 3600,
        aud: str | None = None,
        not_before: float | None = None,
        bad_signature: bool = False,
        kid: str | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """An RS256 JWT from this issuer.

        ``expires_in``: seconds until ``exp`` (``None``: no ``exp``; negative: already expired).
        ``not_before``: ``nbf`` in seconds from now (``None``: now). ``aud`` (default
        :attr:`audience`) and ``kid`` override those; ``policy=None`` leaves that claim out.
        ``bad_signature`` signs with another key under the same ``kid``.
        ``extra_claims`` are merged last; a ``None`` value removes the claim. No ``azp``:
        SeaweedFS takes one equal to its client id as the audience, hiding a wrong ``aud``.
        """
        now = int(time.time())
        exp = None if expires_in is None else int(now + expires_in)
        # An already-expired token was issued (and valid) before it expired.
        iat = now if exp is None else min(now, exp - 1)
        nbf = iat if not_before is None else int(now + not_before)
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": self.audience if aud is None else aud,
            "iat": iat,
            "nbf": nbf,
            "jti": uuid.uuid4().hex,
            "exp": exp,
            "policy": policy,
            **(extra_claims or {}),
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        if bad_signature and self._wrong_key is None:
            self._wrong_key = _rsa_key()
        key = self._wrong_key if bad_signature else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})

    def write_token(self, path: str | Path, *, pause: float = 0.0, **mint_kwargs: Any) -> str:
        """Mint a token and write it to ``path`` in place (mode 0600), as token daemons such as
        sts-wire do: truncate, wait ``pause`` s, write."""
        token = self.mint(**mint_kwargs)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already exists
            os.ftruncate(fd, 0)
            if pause:
                time.sleep(pause)
            os.write(fd, token.encode())
        finally:
            os.close(fd)
        return token

    def refresh_token_file(
        self, path: str | Path, every: float, *, pause: float = 0.02, **mint_kwargs: Any
    ) -> TokenFileRefresher:
        """Write a token to ``path`` now, then a fresh one every ``every`` s in a thread (stop
        it with ``.stop()`` or ``with``). A rewrite truncates the file and writes ``pause`` s
        later, so readers can catch an empty file, as with sts-wire."""
        return TokenFileRefresher(self, Path(path), every, pause, mint_kwargs)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OIDCIssuer:
        """Nothing to do (it serves from construction); for symmetry with the servers."""
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def __repr__(self) -> str:
        return f"OIDCIssuer(url={self.url!r}, audience={self.audience!r})"


class TokenFileRefresher(threading.Thread, contextlib.AbstractContextManager["TokenFileRefresher"]):
    """Rewrites a token file periodically in a daemon thread; ``count`` is the rewrites done."""

    def __init__(
        self, issuer: OIDCIssuer, path: Path, every: float, pause: float, mint: dict[str, Any]
    ) -> None:
        super().__init__(name="token-file-refresher", daemon=True)
        self.path, self.every, self.count = path, every, 0
        self._issuer, self._pause, self._mint = issuer, pause, mint
        self._stopped = threading.Event()
        # The first token is there when this returns, so readers never start with no file.
        self.token = issuer.write_token(path, **mint)
        self.start()

    def run(self) -> None:
        while not self._stopped.wait(self.every):
            self.token = self._issuer.write_token(self.path, pause=self._pause, **self._mint)
            self.count += 1

    def stop(self) -> None:
        """Stop rewriting (waits for a rewrite in progress to finish)."""
        self._stopped.set()
        self.join(self.every + self._pause + 5)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(issuer: OIDCIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            documents = {
                "/.well-known/openid-configuration": issuer.discovery,
                "/jwks.json": issuer.jwks,
            }
            document = documents.get(self.path.split("?", 1)[0])
            status, body = (200, document()) if document else (404, {"error": "not_found"})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
