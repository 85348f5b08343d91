"""OIDC access tokens: where they come from, and what they say (claims read without verifying).

zarrstores never refreshes an OIDC token itself (one valid token per user: a refresh here would
invalidate the one sts-wire or oidc-agent keeps). A file source is re-read at every use.

Discovery order (``find_token``), after the WLCG bearer token discovery spec: ``BEARER_TOKEN``
(the token), ``BEARER_TOKEN_FILE`` (a path), ``$XDG_RUNTIME_DIR/bt_u$UID``, ``/tmp/bt_u$UID``;
then sts-wire's ``.token`` in the working directory, and ``~/.token``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import stat
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ._secret import Secret
from .errors import ConfigurationError, TokenError, TokenExpiredError, TokenNotFoundError, shorten

log = logging.getLogger("zarrstores.auth")

_HINT = (
    "Is sts-wire or oidc-agent running and refreshing it? "
    "(oidc-agent: `oidc-token <account> > $BEARER_TOKEN_FILE`)"
)


class TokenFilePermissionWarning(UserWarning):
    """The token file can be read by other users."""


@dataclass(frozen=True)
class TokenInfo:
    """What a token says of itself (unverified claims) and where it was found."""

    source: str
    subject: str | None
    issuer: str | None
    audience: str | list[str] | None
    expires_at: float | None

    @property
    def expires_in(self) -> float | None:
        """Seconds left (negative once expired); None when the token has no ``exp``."""
        return None if self.expires_at is None else self.expires_at - time.time()


_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def decode_claims(token: str, where: str = "") -> dict:
    """The JWT's payload claims, without verifying the signature (for diagnostics only);
    ``where`` the token came from, for messages."""
    the = f"the token from {where}" if where else "the token"
    if not _JWT.fullmatch(token):
        if token[:7].lower() == "bearer ":
            raise TokenError(f"{the} starts with 'Bearer ': keep only the token after it")
        if token.startswith("{"):
            raise TokenError(f"{the} is JSON: keep only its access token (`jq -r .access_token`)")
        if len(token.split()) > 1:
            raise TokenError(f"{the} has several words or lines: keep only the one token")
        raise TokenError(
            f"{the} is not a JWT: pass an OIDC access token (three dot-separated base64url "
            "parts)\nSome providers issue opaque tokens, which STS rejects."
        )
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        raise TokenError(f"{the} is not a JWT: its payload is not base64url JSON") from None
    if not isinstance(claims, dict):
        raise TokenError(f"{the} is not a JWT: its payload is not a JSON object")
    return claims


def _looks_like_path(text: str) -> bool:
    if not text:
        return False
    if text.startswith(("/", "~", "./", "../")) or text in (".", ".."):
        return True
    path = Path(text).expanduser()
    return path.exists() or ("/" in text and path.parent.is_dir())


def _looks_like_jwt(token: str) -> bool:
    try:
        decode_claims(token)
    except TokenError:
        return False
    return True


class TokenSource:
    """Where an OIDC access token comes from. ``get()`` returns the current token."""

    _where: str  # what describe() says: set by each kind

    def get(self) -> str:
        """The current token: stripped, a JWT, not expired; raises ``TokenError`` otherwise."""
        token, where = self._read(), self.describe()
        if not token:
            raise TokenError(f"the token from {where} is empty. {_HINT}")
        exp = decode_claims(token, where).get("exp")
        if isinstance(exp, int | float) and exp < time.time():
            when = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            ago = int(time.time() - exp)
            raise TokenExpiredError(
                f"the token from {where} expired at {when} ({ago} s ago). {_HINT}"
            )
        return token

    def _read(self) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the token comes from, for messages (never the token itself)."""
        return self._where

    def info(self) -> TokenInfo:
        """Claims of the current token, for ``zarrstores token`` and error messages."""
        claims = decode_claims(self._read())
        return TokenInfo(
            source=self.describe(),
            subject=claims.get("sub"),
            issuer=claims.get("iss"),
            audience=claims.get("aud"),
            expires_at=float(claims["exp"]) if "exp" in claims else None,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class StaticToken(TokenSource):
    """A token given as a value (it cannot be renewed: it works until it expires)."""

    def __init__(self, token: str, *, name: str = "the token given") -> None:
        self._token = Secret(token.strip())
        self._where = name

    def _read(self) -> str:
        return self._token.reveal()


class EnvToken(TokenSource):
    """A token in an environment variable, read at every use."""

    def __init__(self, var: str = "BEARER_TOKEN") -> None:
        self.var = var
        self._where = f"${var}"

    def _read(self) -> str:
        return os.environ.get(self.var, "").strip()


class FileToken(TokenSource):
    """A token file kept fresh by another program; re-read at every use. Writers such as sts-wire
    truncate and then write: an empty or partial read is retried for up to ``settle`` seconds."""

    def __init__(self, path: str | os.PathLike[str], *, settle: float = 2.0) -> None:
        self.path = Path(path).expanduser()
        self.settle = settle
        self._warned = False
        self._where = f"file {self.path}"

    def _read(self) -> str:
        deadline = time.monotonic() + self.settle
        while True:
            try:
                token = self.path.read_text().strip()
            except FileNotFoundError:
                raise TokenNotFoundError(
                    f"token file {shorten(str(self.path), 100)} does not exist: check the "
                    "path; is sts-wire or oidc-agent running?\n"
                    "(oidc-agent: `oidc-token <account> > $BEARER_TOKEN_FILE`)"
                ) from None
            except IsADirectoryError:
                raise TokenError(
                    f"token file {shorten(str(self.path), 100)} is a directory: name the "
                    "token file in it (sts-wire writes .token in the directory it runs in)"
                ) from None
            except (PermissionError, UnicodeDecodeError) as e:
                raise TokenError(
                    f"token file {self.path} cannot be read ({type(e).__name__}); "
                    "check its owner and permissions"
                ) from None
            if (token and _looks_like_jwt(token)) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        self._check_mode()
        return token

    def _check_mode(self) -> None:
        with contextlib.suppress(OSError):
            if not self._warned and self.path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
                self._warned = True
                warnings.warn(
                    f"token file {self.path} is readable by other users; run "
                    f"`chmod 600 {self.path}`",
                    TokenFilePermissionWarning,
                    stacklevel=4,
                )


class CallableToken(TokenSource):
    """A token returned by a function, called at every use."""

    def __init__(self, fn: Callable[[], str]) -> None:
        self.fn = fn
        self._where = f"callable {getattr(fn, '__qualname__', type(fn).__name__)}"

    def _read(self) -> str:
        return str(self.fn()).strip()


def find_token(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> TokenSource:
    """The first token source found in the discovery order (module docstring)."""
    env = os.environ if env is None else env
    uid, xdg, file = os.getuid(), env.get("XDG_RUNTIME_DIR"), env.get("BEARER_TOKEN_FILE")
    bearer = env.get("BEARER_TOKEN", "").strip()
    source: TokenSource | None = None
    if bearer:
        source = EnvToken() if env is os.environ else StaticToken(bearer, name="$BEARER_TOKEN")
    elif file:
        # Set but missing, BEARER_TOKEN_FILE still wins (as the WLCG spec says): its writer may
        # not have run yet, and the error then names that file instead of using another token.
        source = FileToken(file)
    files = {
        f"$XDG_RUNTIME_DIR/bt_u{uid}": Path(xdg) / f"bt_u{uid}" if xdg else None,
        f"/tmp/bt_u{uid}": Path(f"/tmp/bt_u{uid}"),
        "./.token": (cwd or Path.cwd()) / ".token",
        "~/.token": Path.home() / ".token",
    }
    source = source or next((FileToken(p) for p in files.values() if p and p.is_file()), None)
    if source is not None:
        log.debug("OIDC token found in %s", source.describe())
        return source
    places = [n if p is None or str(p) in n else f"{n} ({p})" for n, p in files.items()]
    looked = "\n  ".join(["$BEARER_TOKEN", "$BEARER_TOKEN_FILE (not set)", *places])
    raise TokenNotFoundError(
        f"no OIDC access token found. Looked in, in this order:\n  {looked}\n"
        "Set BEARER_TOKEN_FILE to the file sts-wire or oidc-agent keeps fresh, or pass "
        "token=... / token_file=..."
    )


def token_source(
    token: str | TokenSource | Callable[[], str] | None = None,
    token_file: str | os.PathLike[str] | None = None,
) -> TokenSource:
    """A ``TokenSource`` from what a user passes: a token, a source, a callable, a file, or
    nothing (discovery)."""
    if token is not None and token_file is not None:
        raise ConfigurationError("pass either token or token_file, not both")
    if isinstance(token, TokenSource):
        return token
    if callable(token):
        return CallableToken(token)
    if isinstance(token, str):
        # A path passed as token= is common (InfnMinio's get_credentials takes one): read it
        # as the file it names, so that a wrong path is reported as one.
        if not _looks_like_jwt(token.strip()) and _looks_like_path(token.strip()):
            return FileToken(token.strip())
        return StaticToken(token)
    if token_file is not None:
        return FileToken(token_file)
    return find_token()


def sharing_key(source: TokenSource) -> object:
    """What credentials got with ``source`` depend on, for sharing them: the file or variable
    read, a given token's value, else the source itself."""
    if isinstance(source, FileToken | EnvToken):
        return source.describe()
    return source._token if isinstance(source, StaticToken) else source
